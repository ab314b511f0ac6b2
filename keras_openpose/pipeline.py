"""tf.data input pipeline: store read + JPEG decode + domain effect + augmentation + targets.

Elements are ``(image, targets)`` with ``image`` float32 ``(B, c, c, 3)`` BGR 0..255 and
``targets`` a tuple of ``2 x stages`` tensors alternating PAF ``(B, g, g, 2L + 1)`` and heatmap
``(B, g, g, P + 2)``: the target channels followed by the ignore mask (last channel), which the
masked L2 loss in :mod:`keras_openpose.train` splits off (``g = c / stride``).

Determinism: the sample order and every random draw come from ``(seed, step)`` alone, so a run
restarted at step ``k`` sees exactly the batches it would have seen (``start_step``).
"""
from __future__ import annotations

import numpy as np

from .augment import augment_sample
from .codec import PafCodec
from .config import AugmentConfig
from .errors import DataError


#: Marks a :class:`DataError` raised inside tf.data, so the training loop can report it as one line.
DATA_ERROR = "keras_openpose data error:"


class SampleMaker:
    """Makes training samples from one or more :class:`~keras_openpose.store.Store` (NumPy, no TF).

    Args:
        store: a store or a list of stores (e.g. train2014 and val2014-minus-the-test-list); the
            samples are the main people of all of them.
        cfg: augmentation settings.
        codec: the map codec (skeleton, stride, target widths).
        domain: expert domain whose effect is applied on the fly.
        train: random augmentation (else identity warp centred on the main person).
    Raises:
        DataError: a store whose keypoint count is not the skeleton's.
    """

    def __init__(self, store, cfg: AugmentConfig, codec: PafCodec, domain: str = "normal", train: bool = True):
        self.stores = list(store) if isinstance(store, (list, tuple)) else [store]
        self.cfg, self.codec, self.domain, self.train = cfg, codec, domain, train
        K = codec.skeleton.num_keypoints
        for st in self.stores:
            if st.keypoints.shape[1] != K:
                raise DataError(f"{st.path}: {st.keypoints.shape[1]} keypoints per person, skeleton "
                                f"{codec.skeleton.name!r} has {K}")
        per = [st.samples() for st in self.stores]
        #: ``(S, 3)`` rows ``(store index, image row, person row)``
        self.rows = np.concatenate([np.concatenate([np.full((len(p), 1), k), p], 1) for k, p in enumerate(per)]
                                   ).astype(np.int64).reshape(-1, 3)
        self.samples = self.rows[:, 1:]

    def __len__(self):
        return len(self.samples)

    @property
    def grid(self) -> tuple[int, int]:
        """``(g, g)``: the map shape of a crop."""
        return self.codec.map_shape((self.cfg.crop, self.cfg.crop))

    def make(self, index: int, seed: int):
        """Sample ``index`` with random stream ``seed`` ->
        ``(image uint8 (c,c,3), heatmaps (g,g,P+1), pafs (g,g,2L), mask (g,g))``."""
        k, img_row, person = self.rows[index % len(self.rows)]
        rng = np.random.default_rng(seed)
        st = self.stores[k]
        sl = st.people(img_row)
        crop, mask, parts = augment_sample(
            st.image(img_row), st.mask(img_row), st.keypoints[sl], st.centre[person], st.bbox[person, 3],
            rng, self.cfg, self.codec, self.domain, self.train)
        heat, paf = self.codec.encode_parts(parts, self.grid)
        if not (np.isfinite(heat).all() and np.isfinite(paf).all()):
            raise DataError(f"{DATA_ERROR} {st.path}: image {int(st.image_ids[img_row])} has non-finite keypoints or "
                            "bbox (rebuild the store: the annotation check now skips them)")
        return crop, heat, paf, mask


def sample_schedule(n_samples: int, steps: int, batch_size: int, seed: int, start_step: int = 0):
    """Sample indices and per-sample seeds for steps ``start_step .. steps - 1``: a fresh seeded
    permutation per pass over the data. Returns two int64 arrays of length
    ``(steps - start_step) * batch_size``."""
    total = steps * batch_size
    passes = -(-total // max(n_samples, 1))
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(n_samples) for _ in range(passes)])[:total]
    seeds = np.random.default_rng([seed, 1]).integers(0, 2**62, size=total)
    lo = start_step * batch_size
    return order[lo:], seeds[lo:]


def per_replica_batch(batch_size: int, num_replicas: int) -> int:
    """``batch_size / num_replicas``: ``batch_size`` is the global batch of all replicas.

    Raises:
        DataError: not divisible.
    """
    if batch_size % num_replicas:
        raise DataError(f"--batch-size {batch_size} is the global batch: it must be divisible by the "
                        f"{num_replicas} replicas")
    return batch_size // num_replicas


def replica_share(idx, seeds, batch_size: int, num_replicas: int, first: int, count: int):
    """The part of a global sample schedule that replicas ``first .. first + count - 1`` (of
    ``num_replicas``) train on: global batch ``s`` (``batch_size`` samples) is cut into
    ``num_replicas`` consecutive slices of ``batch_size / num_replicas``; the result lists, step by
    step, the slices of the requested replicas in order (how ``tf.distribute`` hands consecutive
    per-replica batches of one input pipeline to its local replicas). So any number of workers
    trains on exactly the samples, and per-sample random streams, of one process at the same
    global batch.

    Raises:
        DataError: ``batch_size`` not divisible by ``num_replicas``.
    """
    per = per_replica_batch(batch_size, num_replicas)
    steps = len(idx) // batch_size

    def cut(a):
        return a[:steps * batch_size].reshape(steps, num_replicas, per)[:, first:first + count].reshape(-1)
    return cut(np.asarray(idx)), cut(np.asarray(seeds))


def make_dataset(maker: SampleMaker, batch_size: int, steps: int, stages: int, seed: int = 0,
                 start_step: int = 0, parallel: int | None = None, replicas: tuple[int, int, int] | None = None):
    """The batched, prefetched ``tf.data.Dataset`` of ``steps - start_step`` batches (see module doc).

    Args:
        maker: sample factory.
        batch_size: the global batch (all replicas together).
        stages: number of network stages (targets are repeated once per stage).
        parallel: parallel map calls (``None`` = ``tf.data.AUTOTUNE``); order stays deterministic.
        replicas: ``(first, count, total)``: build only the share of replicas ``first .. first +
            count - 1`` of ``total`` (:func:`replica_share`); batches are then per replica
            (``batch_size / total`` samples). ``None``: the whole global batch.
    """
    import tensorflow as tf

    idx, seeds = sample_schedule(len(maker), steps, batch_size, seed, start_step)
    if replicas is not None:
        first, count, total = replicas
        idx, seeds = replica_share(idx, seeds, batch_size, total, first, count)
        batch_size //= total
    c, (g, _) = maker.cfg.crop, maker.grid
    P1, L2 = maker.codec.num_heatmaps, maker.codec.num_pafs

    def _make(i, s):
        crop, heat, paf, mask = maker.make(int(i), int(s))
        m = mask[..., None]
        return (crop.astype(np.float32), np.concatenate([paf, m], -1).astype(np.float32),
                np.concatenate([heat, m], -1).astype(np.float32))

    def _tf(i, s):
        img, paf, heat = tf.numpy_function(_make, [i, s], [tf.float32, tf.float32, tf.float32], stateful=False)
        img.set_shape((c, c, 3))
        paf.set_shape((g, g, L2 + 1))
        heat.set_shape((g, g, P1 + 1))
        return img, tuple(t for _ in range(stages) for t in (paf, heat))

    ds = tf.data.Dataset.from_tensor_slices((idx, seeds))
    ds = ds.map(_tf, num_parallel_calls=parallel or tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size, drop_remainder=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def start_data_service(workers: int = 1, port: int = 0):
    """Start an in-process tf.data service (one dispatcher + ``workers`` workers) on loopback.

    For users who outgrow one machine, run the dispatcher and workers on preprocessing hosts
    (``tf.data.experimental.service.DispatchServer`` / ``WorkerServer``) and pass the dispatcher's
    address to :func:`distribute`; the dataset definition stays the same.

    Returns:
        ``(dispatcher, [worker, ...])``; ``dispatcher.target`` is the address (``grpc://localhost:N``).
    """
    import tensorflow as tf
    svc = tf.data.experimental.service
    dispatcher = svc.DispatchServer(svc.DispatcherConfig(port=port))
    address = dispatcher.target.split("://")[1]
    ws = [svc.WorkerServer(svc.WorkerConfig(dispatcher_address=address)) for _ in range(workers)]
    return dispatcher, ws


def distribute(dataset, service: str, job_name: str | None = None):
    """Run ``dataset``'s preprocessing on tf.data service workers at ``service`` (``grpc://host:port``).

    ``processing_mode="distributed_epoch"`` splits the elements among workers, so each sample is
    produced once; element order across workers is not deterministic, the content of each is.
    """
    import tensorflow as tf
    return dataset.apply(tf.data.experimental.service.distribute(
        processing_mode="distributed_epoch", service=service, job_name=job_name))
