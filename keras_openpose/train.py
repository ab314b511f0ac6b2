"""Training of one CPM/PAF expert: masked L2 on every stage output (Cao et al. 2017, eq. 6),
resumable checkpoints, per-run logs.

Run folder (``--out``)::

    config.yaml            the ExperimentConfig of the run (written first)
    checkpoint.keras       model + optimizer state (its step counter included), written atomically
                           after every epoch: one file is the whole resume record
    training.csv           one row per epoch: epoch, loss, one column per stage output
    tensorboard/           TensorBoard logs
    model.keras            the final model (written atomically at the end; it carries its network
                           config, codec and domain: keras_openpose.model.PoseNetwork)
    run.lock               held while a run trains in the folder (a second run is refused)

Crash consistency: at the end of an epoch the CSV row is appended (and fsynced) first, then the
checkpoint replaces the previous one atomically. Resuming (``resume=True``, the default) reloads
``checkpoint.keras`` with its optimizer state; the epoch to resume from is its step counter divided
by ``steps_per_epoch``, CSV rows past it are dropped, and the deterministic data stream restarts at
that step, so a kill at any moment followed by the same command ends with the weights of an
uninterrupted run. A checkpoint is never written with non-finite weights.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import keras

from .files import OutputLock, atomic_write, kill_point
from .config import ExperimentConfig, TrainConfig, resolve_skeleton
from .errors import DataError
from .losses import MaskedL2, MultiplierSGD
from .model import save_model_atomic


class _EpochRecord(keras.callbacks.Callback):
    """End of an epoch: the CSV row, then the checkpoint (see module doc); refuses non-finite weights."""

    def __init__(self, run_dir: Path):
        super().__init__()
        self.run_dir = run_dir

    def on_epoch_end(self, epoch, logs=None):
        import numpy as np
        logs = dict(logs or {})
        bad = [w.path for w in self.model.weights if not np.all(np.isfinite(np.asarray(w)))]
        if bad or not np.isfinite(logs.get("loss", 0.0)):
            self.model.stop_training = True
            raise DataError(f"{self.run_dir}: training diverged in epoch {epoch + 1} (loss {logs.get('loss')}, "
                            f"{len(bad)} non-finite weight tensors); nothing saved: the last checkpoint is kept. "
                            "Lower the learning rate (targets were checked finite)")
        csv = self.run_dir / "training.csv"
        keys = sorted(logs)
        new = not csv.exists()
        with open(csv, "a") as f:
            if new:
                f.write(",".join(["epoch", *keys]) + "\n")
            f.write(",".join([str(epoch), *(repr(float(logs[k])) for k in keys)]) + "\n")
            f.flush()
            os.fsync(f.fileno())
        kill_point("csv_written")
        save_model_atomic(self.model, self.run_dir / "checkpoint.keras")
        kill_point("checkpoint_saved")


def _truncate_csv(csv: Path, epochs: int) -> None:
    """Keep the header and the rows of the first ``epochs`` epochs (rows of an epoch whose
    checkpoint was not written are dropped)."""
    if not csv.exists():
        return
    lines = csv.read_text().splitlines()
    keep = lines[:1] + [ln for ln in lines[1:] if ln and int(ln.split(",")[0]) < epochs]
    with atomic_write(csv, "w") as f:
        f.write("\n".join(keep) + "\n")


def set_precision(precision: str) -> None:
    """Set the Keras global dtype policy (``float32``, ``mixed_bfloat16``, ``mixed_float16``)."""
    if precision not in ("float32", "mixed_bfloat16", "mixed_float16", "bfloat16"):
        raise DataError(f"--precision {precision!r}: use float32, mixed_bfloat16 or mixed_float16")
    keras.mixed_precision.set_global_policy(precision)


_STRATEGIES: dict = {}


def get_strategy(name: str):
    """``tf.distribute`` strategy: ``none`` (default device) or ``mirrored`` (all local GPUs, or all
    logical CPU devices). The batch size is global: split over the replicas.

    ``multiworker`` (``MultiWorkerMirroredStrategy`` over the machines in ``TF_CONFIG``) raises
    :class:`DataError`: Keras 3's ``model.fit`` fails under it (``PerReplica`` cannot be converted
    to a tensor; keras-team/keras#20585, open), measured here with TF 2.21 / Keras 3.15 on two
    workers over loopback. Scale out preprocessing with tf.data service
    (:func:`keras_openpose.pipeline.distribute`) meanwhile.
    """
    import tensorflow as tf
    if name in ("none", "default", ""):
        return tf.distribute.get_strategy()
    if name not in _STRATEGIES:
        if name == "mirrored":
            gpus = tf.config.list_logical_devices("GPU")
            devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
            _STRATEGIES[name] = tf.distribute.MirroredStrategy(devices)
        elif name == "multiworker":
            raise DataError("--distribute multiworker: Keras 3 model.fit does not run under "
                            "MultiWorkerMirroredStrategy (keras-team/keras#20585); use mirrored on one "
                            "machine, and tf.data service workers to scale preprocessing")
        else:
            raise DataError(f"--distribute {name!r}: use none or mirrored")
    return _STRATEGIES[name]


def compile_model(model: keras.Model, cfg: TrainConfig) -> keras.Model:
    lr = keras.optimizers.schedules.ExponentialDecay(cfg.learning_rate, cfg.lr_step, cfg.lr_gamma, staircase=True)
    if cfg.optimizer == "adam":
        opt = keras.optimizers.Adam(lr)
    elif cfg.optimizer == "sgd":
        opt = keras.optimizers.SGD(lr, momentum=0.9)
    elif cfg.optimizer == "sgd_cmu":
        opt = MultiplierSGD(lr, momentum=0.9)
    else:
        raise DataError(f"optimizer {cfg.optimizer!r}: use adam, sgd or sgd_cmu (CMU lr multipliers)")
    model.compile(optimizer=opt, loss=[MaskedL2() for _ in model.outputs], jit_compile=bool(cfg.xla))
    return model


def training_codec(cfg: ExperimentConfig, stores):
    """The codec of a run: the experiment's skeleton (``auto``: OpenPose COCO-18 for COCO person
    keypoints, else the store's dataset skeleton) with its stride, widths and decoder options.

    Raises:
        DataError: stores of different keypoint layouts, or a skeleton that does not fit them.
    """
    names = {st.keypoint_names for st in stores}
    if len(names) > 1:
        raise DataError(f"stores {', '.join(str(st.path) for st in stores)} hold different keypoint layouts")
    skeleton = resolve_skeleton(cfg.skeleton, stores[0].coco_data() if stores[0].categories else None,
                                str(stores[0].path))
    if skeleton.num_keypoints != stores[0].keypoints.shape[1]:
        raise DataError(f"{stores[0].path}: {stores[0].keypoints.shape[1]} keypoints per person, skeleton "
                        f"{skeleton.name!r} has {skeleton.num_keypoints}")
    return cfg.make_codec(skeleton)


def train_expert(cfg: ExperimentConfig, store_path: str | Path, run_dir: str | Path, resume: bool = True,
                 init_from: str | Path | None = None, verbose: int | None = None,
                 callbacks: list | None = None, init_vgg19: str | Path | None = None) -> Path:
    """Train (or resume) one expert; returns the path of the final ``model.keras``.

    Args:
        cfg: the experiment (``cfg.model`` the network, ``cfg.train`` the schedule, ``cfg.train.effect``
            the domain applied on the fly, ``cfg.skeleton`` / ``cfg.codec`` / ``cfg.decode`` the maps).
        store_path: training store (:mod:`keras_openpose.store`), or several (a list, or paths
            separated by commas).
        run_dir: run folder (see module doc).
        resume: continue from ``run_dir/checkpoint.keras`` when present.
        init_from: a ``.keras`` model whose weights initialise the network (fine-tuning an expert
            from the normal model); ignored when resuming.
        callbacks: extra Keras callbacks (run after the checkpoint of each epoch is written).
        init_vgg19: ImageNet VGG-19 weights file for the ``vgg19`` backbone (else the documented
            random init: N(0, 0.01) kernels, zero biases, as CMU's prototxt).
    Raises:
        DataError: bad store, config or initial weights.
    """
    from .domains import EXPERT_DOMAINS

    tc: TrainConfig = cfg.train
    if tc.effect not in EXPERT_DOMAINS:
        raise DataError(f"--effect {tc.effect!r}: experts exist for {', '.join(EXPERT_DOMAINS)}")
    strategy = get_strategy(tc.distribute)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with OutputLock(run_dir / "run"):
        return _train(cfg, tc, strategy, store_path, run_dir, resume, init_from, verbose, callbacks, init_vgg19)


def _train(cfg, tc, strategy, store_path, run_dir, resume, init_from, verbose, callbacks, init_vgg19):
    import tensorflow as tf

    from .model import build_model, load_network
    from .pipeline import DATA_ERROR, SampleMaker, make_dataset
    from .store import Store
    cfg.to_yaml(run_dir / "config.yaml")
    set_precision(tc.precision)
    keras.utils.set_random_seed(tc.seed)
    paths = store_path if isinstance(store_path, (list, tuple)) else str(store_path).split(",")
    stores = [Store(p) for p in paths]
    codec = training_codec(cfg, stores)
    maker = SampleMaker(stores, tc.augment, codec, tc.effect, train=tc.augment.enabled)
    if len(maker) == 0:
        raise DataError(f"{store_path}: the store has no main person to train on")
    total_epochs = max(1, -(-tc.steps // tc.steps_per_epoch))
    ckpt = run_dir / "checkpoint.keras"
    initial_epoch = 0
    info = {"steps": total_epochs * tc.steps_per_epoch, "batch_size": tc.batch_size, "run": str(run_dir),
            "stores": [str(p) for p in paths]}
    with strategy.scope():
        if resume and ckpt.exists():
            model = load_network(ckpt, compile=True)
            initial_epoch = int(model.optimizer.iterations) // tc.steps_per_epoch
        else:
            model = build_model(cfg.model, codec, tc.precision, tc.effect)
            model.info.update(info)
            if init_from:
                src = load_network(init_from)
                try:
                    model.set_weights(src.get_weights())
                except ValueError as e:
                    raise DataError(f"{init_from}: weights do not fit network {cfg.model!r} ({e})") from None
            if init_vgg19:
                from .weights import load_vgg19_imagenet
                load_vgg19_imagenet(model, init_vgg19)
            compile_model(model, tc)
    _truncate_csv(run_dir / "training.csv", initial_epoch)
    if initial_epoch < total_epochs:
        ds = make_dataset(maker, tc.batch_size, total_epochs * tc.steps_per_epoch, model.stages, tc.seed,
                          start_step=initial_epoch * tc.steps_per_epoch, parallel=tc.workers or None)
        callbacks = [keras.callbacks.TerminateOnNaN(), _EpochRecord(run_dir), *(callbacks or [])]
        if os.environ.get("KERAS_OPENPOSE_TENSORBOARD", "1") != "0":
            callbacks.append(keras.callbacks.TensorBoard(str(run_dir / "tensorboard"), write_graph=False,
                                                         update_freq="epoch", profile_batch=0))
        if verbose is None:
            verbose = 1 if sys.stdout.isatty() else 2
        try:
            model.fit(ds, epochs=total_epochs, initial_epoch=initial_epoch, steps_per_epoch=tc.steps_per_epoch,
                      callbacks=callbacks, verbose=verbose, shuffle=False)
        except tf.errors.OpError as e:  # an error raised by the sample maker inside tf.data
            if DATA_ERROR in str(e):
                raise DataError(str(e).split(DATA_ERROR, 1)[1].strip().splitlines()[0]) from None
            raise
    final = save_model_atomic(model, run_dir / "model.keras")
    for st in stores:
        st.close()
    return final
