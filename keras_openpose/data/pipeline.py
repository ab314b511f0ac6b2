"""tf.data input pipeline: store read + JPEG decode + domain effect + augmentation + targets.

Elements are ``(image, targets)`` with ``image`` float32 ``(B, c, c, 3)`` BGR 0..255 and
``targets`` a tuple of ``2 x stages`` tensors alternating PAF ``(B, g, g, 2L + 1)`` and heatmap
``(B, g, g, P + 2)``: the target channels followed by the ignore mask (last channel), which the
masked L2 loss in :mod:`keras_openpose.train.loop` splits off (``g = c / stride``). For distillation
(``clean=True``) the input is the pair ``(image, clean)``: the degraded crop and the same crop
without the domain effect (same warp), both float32 ``(B, c, c, 3)``; photo samples (unlabelled,
:class:`SampleMaker` ``photos``) have zero targets and a zero mask (no annotated loss).

Determinism: the sample order and every random draw come from ``(seed, step)`` alone, so a run
restarted at step ``k`` sees exactly the batches it would have seen (``start_step``).
"""
from __future__ import annotations

import numpy as np

from .augment import augment_photo, augment_sample
from ..codec import PafCodec
from ..config import AugmentConfig
from ..errors import DataError


#: Marks a :class:`DataError` raised inside tf.data, so the training loop can report it as one line.
DATA_ERROR = "keras_openpose data error:"

#: Photo suffixes read from an ``--images`` folder.
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
#: Photos larger than this (longer side, pixels) are area-resized to it when read: the effect
#: strengths are defined in COCO-sized source pixels (a 30 px blur of a 640 px image), and it
#: bounds the cost of the effect on a 12-megapixel photo.
PHOTO_MAX_SIDE = 640


def list_photos(folder) -> list:
    """The image files of ``folder`` (sorted, :data:`PHOTO_SUFFIXES`; not recursive).

    Raises:
        DataError: not a folder, or no images in it.
    """
    from pathlib import Path
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"--images {folder}: not a folder")
    files = sorted(q for q in folder.iterdir() if q.suffix.lower() in PHOTO_SUFFIXES and q.is_file())
    if not files:
        raise DataError(f"--images {folder}: no images ({', '.join(PHOTO_SUFFIXES)}) in the folder")
    return files


def check_sources(tc, store_path) -> None:
    """Check a run's data and teacher (``tc``: its :class:`~keras_openpose.config.TrainConfig`) before
    any work (no TensorFlow import: the command line calls it first).

    Raises:
        DataError: neither a store nor ``tc.images``; ``tc.images`` without ``tc.distill_from`` (photos
            have no labels: only a teacher can train on them); a negative or non-finite
            ``distill_weight``; a teacher file that does not exist.
    """
    import math
    from pathlib import Path
    if not store_path and not tc.images:
        raise DataError("no training data: give --store (labelled stores) or --images (unlabelled photos, "
                        "with --distill-from), or both")
    if tc.images and not tc.distill_from:
        raise DataError(f"--images {tc.images}: unlabelled photos train only against a teacher; "
                        "give --distill-from MODEL.keras (e.g. models/pose_normal.keras)")
    if not (math.isfinite(tc.distill_weight) and tc.distill_weight >= 0):
        raise DataError(f"--distill-weight {tc.distill_weight}: must be a finite number >= 0")
    if tc.distill_from and not Path(tc.distill_from).is_file():
        raise DataError(f"--distill-from {tc.distill_from}: model file not found")


class SampleMaker:
    """Makes training samples from one or more :class:`~keras_openpose.data.store.Store` (NumPy, no TF).

    Args:
        store: a store or a list of stores (e.g. train2014 and val2014-minus-the-test-list); the
            samples are the main people of all of them.
        cfg: augmentation settings.
        codec: the map codec (skeleton, stride, target widths).
        domain: expert domain whose effect is applied on the fly.
        train: random augmentation (else identity warp centred on the main person).
        photos: unlabelled image files (:func:`list_photos`) sampled after the stores' people
            (sample ``len(stores' people) + k`` is photo ``k``): a random view of the photo
            (:func:`keras_openpose.data.augment.augment_photo`), zero targets and zero mask.
    Raises:
        DataError: a store whose keypoint count is not the skeleton's.
    """

    def __init__(self, store, cfg: AugmentConfig, codec: PafCodec, domain: str = "normal", train: bool = True,
                 photos=()):
        self.stores = list(store) if isinstance(store, (list, tuple)) else [store]
        self.cfg, self.codec, self.domain, self.train = cfg, codec, domain, train
        self.photos = [str(q) for q in photos]
        K = codec.skeleton.num_keypoints
        for st in self.stores:
            if st.keypoints.shape[1] != K:
                raise DataError(f"{st.path}: {st.keypoints.shape[1]} keypoints per person, skeleton "
                                f"{codec.skeleton.name!r} has {K}")
        per = [st.samples() for st in self.stores]
        #: ``(S, 3)`` rows ``(store index, image row, person row)``
        self.rows = np.concatenate([np.zeros((0, 3))] + [np.concatenate([np.full((len(p), 1), k), p], 1)
                                                         for k, p in enumerate(per)]).astype(np.int64).reshape(-1, 3)
        self.samples = self.rows[:, 1:]

    def __len__(self):
        return len(self.samples) + len(self.photos)

    @property
    def grid(self) -> tuple[int, int]:
        """``(g, g)``: the map shape of a crop."""
        return self.codec.map_shape((self.cfg.crop, self.cfg.crop))

    def make(self, index: int, seed: int, clean: bool = False):
        """Sample ``index`` with random stream ``seed`` ->
        ``(image uint8 (c,c,3), heatmaps (g,g,P+1), pafs (g,g,2L), mask (g,g))``, then the clean
        crop ``uint8 (c,c,3)`` (same warp, no domain effect) when ``clean``."""
        i = index % len(self)
        rng = np.random.default_rng(seed)
        if i >= len(self.rows):
            return self._photo(i - len(self.rows), rng, clean)
        k, img_row, person = self.rows[i]
        st = self.stores[k]
        sl = st.people(img_row)
        crop, mask, parts, *pair = augment_sample(
            st.image(img_row), st.mask(img_row), st.keypoints[sl], st.centre[person], st.bbox[person, 3],
            rng, self.cfg, self.codec, self.domain, self.train, clean=clean)
        heat, paf = self.codec.encode_parts(parts, self.grid)
        if not (np.isfinite(heat).all() and np.isfinite(paf).all()):
            raise DataError(f"{DATA_ERROR} {st.path}: image {int(st.image_ids[img_row])} has non-finite keypoints or "
                            "bbox (rebuild the store: the annotation check now skips them)")
        return (crop, heat, paf, mask, *pair)

    def _photo(self, k: int, rng, clean: bool):
        import cv2
        path = self.photos[k]
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is None:
            raise DataError(f"{DATA_ERROR} {path}: not a readable image")
        h, w = img.shape[:2]
        if max(h, w) > PHOTO_MAX_SIDE:
            f = PHOTO_MAX_SIDE / max(h, w)
            img = cv2.resize(img, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
        crop, clean_crop = augment_photo(img, rng, self.cfg, self.domain, self.train)
        g = self.grid
        heat = np.zeros((*g, self.codec.num_heatmaps), np.float32)
        paf = np.zeros((*g, self.codec.num_pafs), np.float32)
        out = (crop, heat, paf, np.zeros(g, np.float32))
        return (*out, clean_crop) if clean else out


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
                 start_step: int = 0, parallel: int | None = None, replicas: tuple[int, int, int] | None = None,
                 clean: bool = False):
    """The batched, prefetched ``tf.data.Dataset`` of ``steps - start_step`` batches (see module doc).

    Args:
        maker: sample factory.
        batch_size: the global batch (all replicas together).
        stages: number of network stages (targets are repeated once per stage).
        parallel: parallel map calls (``None`` = ``tf.data.AUTOTUNE``); order stays deterministic.
        replicas: ``(first, count, total)``: build only the share of replicas ``first .. first +
            count - 1`` of ``total`` (:func:`replica_share`); batches are then per replica
            (``batch_size / total`` samples). ``None``: the whole global batch.
        clean: the input is ``(image, clean image)`` (distillation; see module doc).
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
        crop, heat, paf, mask, *pair = maker.make(int(i), int(s), clean=clean)
        m = mask[..., None]
        return (crop.astype(np.float32), np.concatenate([paf, m], -1).astype(np.float32),
                np.concatenate([heat, m], -1).astype(np.float32), *(x.astype(np.float32) for x in pair))

    def _tf(i, s):
        img, paf, heat, *pair = tf.numpy_function(_make, [i, s], [tf.float32] * (4 if clean else 3), stateful=False)
        img.set_shape((c, c, 3))
        paf.set_shape((g, g, L2 + 1))
        heat.set_shape((g, g, P1 + 1))
        for x in pair:
            x.set_shape((c, c, 3))
        x = (img, pair[0]) if clean else img
        return x, tuple(t for _ in range(stages) for t in (paf, heat))

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
