"""Training of one CPM/PAF expert: masked L2 on every stage output (Cao et al. 2017, eq. 6),
resumable checkpoints, per-run logs.

Run folder (``--out``)::

    config.yaml            the ExperimentConfig of the run (written first)
    checkpoint.keras       model + optimizer state, written atomically after every epoch
    state.json             {"epoch": e, "step": s} of that checkpoint
    training.csv           one row per epoch (Keras CSVLogger; one file per run)
    tensorboard/           TensorBoard logs
    model.keras            the final model (written atomically at the end; it carries its network
                           config, codec and domain: keras_openpose.model.PoseNetwork)

Resuming (``resume=True``, the default) reloads ``checkpoint.keras`` with its optimizer state and
step counter and restarts the deterministic data stream at that step, so the learning rate and
the batches match an uninterrupted run.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import keras

from .files import write_json_atomic
from .config import ExperimentConfig, TrainConfig, resolve_skeleton
from .errors import DataError
from .losses import MaskedL2, MultiplierSGD
from .model import save_model_atomic


class _AtomicCheckpoint(keras.callbacks.Callback):
    def __init__(self, run_dir: Path, steps_per_epoch: int):
        super().__init__()
        self.run_dir, self.spe = run_dir, steps_per_epoch

    def on_epoch_end(self, epoch, logs=None):
        save_model_atomic(self.model, self.run_dir / "checkpoint.keras")
        write_json_atomic({"epoch": epoch + 1, "step": (epoch + 1) * self.spe,
                           "loss": float((logs or {}).get("loss", float("nan")))}, self.run_dir / "state.json")


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
    import numpy as np

    from .domains import EXPERT_DOMAINS
    from .model import build_model, load_network
    from .pipeline import SampleMaker, make_dataset
    from .store import Store

    tc: TrainConfig = cfg.train
    if tc.effect not in EXPERT_DOMAINS:
        raise DataError(f"--effect {tc.effect!r}: experts exist for {', '.join(EXPERT_DOMAINS)}")
    strategy = get_strategy(tc.distribute)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
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
    ckpt, state_file = run_dir / "checkpoint.keras", run_dir / "state.json"
    initial_epoch = 0
    info = {"steps": total_epochs * tc.steps_per_epoch, "batch_size": tc.batch_size, "run": str(run_dir),
            "stores": [str(p) for p in paths]}
    with strategy.scope():
        if resume and ckpt.exists() and state_file.exists():
            model = load_network(ckpt, compile=True)
            initial_epoch = json.loads(state_file.read_text())["epoch"]
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
    if initial_epoch < total_epochs:
        ds = make_dataset(maker, tc.batch_size, total_epochs * tc.steps_per_epoch, model.stages, tc.seed,
                          start_step=initial_epoch * tc.steps_per_epoch, parallel=tc.workers or None)
        callbacks = [_AtomicCheckpoint(run_dir, tc.steps_per_epoch),
                     keras.callbacks.CSVLogger(str(run_dir / "training.csv"), append=True),
                     keras.callbacks.TerminateOnNaN(), *(callbacks or [])]
        if os.environ.get("KERAS_OPENPOSE_TENSORBOARD", "1") != "0":
            callbacks.append(keras.callbacks.TensorBoard(str(run_dir / "tensorboard"), write_graph=False,
                                                         update_freq="epoch", profile_batch=0))
        if verbose is None:
            verbose = 1 if sys.stdout.isatty() else 2
        hist = model.fit(ds, epochs=total_epochs, initial_epoch=initial_epoch,
                         steps_per_epoch=tc.steps_per_epoch, callbacks=callbacks, verbose=verbose,
                         shuffle=False)
        if any(not np.isfinite(v) for v in hist.history.get("loss", [])):
            raise DataError(f"{run_dir}: training diverged (loss is NaN); lower the learning rate")
    final = save_model_atomic(model, run_dir / "model.keras")
    for st in stores:
        st.close()
    return final
