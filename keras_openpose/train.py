"""Training of one CPM/PAF expert: masked L2 on every stage output (Cao et al. 2017, eq. 6),
resumable checkpoints, per-run logs.

Run folder (``--out``)::

    config.yaml            the TrainConfig of the run (written first)
    checkpoint.keras       model + optimizer state, written atomically after every epoch
    state.json             {"epoch": e, "step": s} of that checkpoint
    training.csv           one row per epoch (Keras CSVLogger; one file per run)
    tensorboard/           TensorBoard logs
    model.keras            the final model (written atomically at the end)

Resuming (``resume=True``, the default) reloads ``checkpoint.keras`` with its optimizer state and
step counter and restarts the deterministic data stream at that step, so the learning rate and
the batches match an uninterrupted run.
"""
from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import keras
from keras import ops

from .coco import write_json_atomic
from .config import TrainConfig, save_yaml, to_dict
from .errors import DataError


@keras.saving.register_keras_serializable(package="keras_openpose")
class MaskedL2(keras.losses.Loss):
    """Caffe-style Euclidean loss with an ignore mask (Cao et al. 2017, eq. 6).

    ``y_true`` is ``(B, h, w, C + 1)``: the target then the mask ``W(p)`` (1 = counted). The loss of
    a sample is ``0.5 * sum_p,c W(p) * (y_pred - y_true)^2``; Keras averages it over the batch.
    """

    def __init__(self, name="masked_l2", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        y_pred = ops.cast(y_pred, "float32")
        target, mask = y_true[..., :-1], y_true[..., -1:]
        return 0.5 * ops.sum(mask * ops.square(y_pred - target), axis=(1, 2, 3))


@keras.saving.register_keras_serializable(package="keras_openpose")
class MultiplierSGD(keras.optimizers.SGD):
    """SGD with CMU's per-layer learning-rate multipliers (Caffe ``lr_mult``).

    Backbone and stage 1: kernels x1, biases x2; stages >= 2 (layer names containing
    ``stage<t>`` with ``t >= 2``): kernels x4, biases x8. For momentum SGD, multiplying a
    variable's gradient by ``m`` is the same as multiplying its learning rate by ``m``, which is
    how the multipliers are applied.
    """

    def __init__(self, *args, multipliers=(1.0, 2.0, 4.0, 8.0), **kwargs):
        super().__init__(*args, **kwargs)
        self.multipliers = tuple(multipliers)

    def _mult(self, var) -> float:
        path = getattr(var, "path", var.name)
        m = re.search(r"stage(\d+)", path)
        later = bool(m) and int(m.group(1)) >= 2
        is_bias = path.endswith("bias")
        k1, b1, k2, b2 = self.multipliers
        return (b2 if is_bias else k2) if later else (b1 if is_bias else k1)

    def apply(self, grads, trainable_variables=None):
        tv = trainable_variables if trainable_variables is not None else self._trainable_variables
        grads = [None if g is None else g * self._mult(v) for g, v in zip(grads, tv)]
        return super().apply(grads, trainable_variables)

    def get_config(self):
        return {**super().get_config(), "multipliers": list(self.multipliers)}


def save_model_atomic(model: keras.Model, path: str | Path) -> Path:
    """``model.save`` to a temp file in the same folder, then rename: never a half-written model."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.keras")
    model.save(tmp)
    os.replace(tmp, path)
    return path


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


def train_expert(cfg: TrainConfig, store_path: str | Path, run_dir: str | Path, resume: bool = True,
                 init_from: str | Path | None = None, verbose: int | None = None,
                 callbacks: list | None = None, init_vgg19: str | Path | None = None) -> Path:
    """Train (or resume) one expert; returns the path of the final ``model.keras``.

    Args:
        cfg: the run's configuration (``cfg.effect`` is the domain applied on the fly).
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
    from .model import build_model, get_config
    from .pipeline import SampleMaker, make_dataset
    from .store import Store

    if cfg.effect not in EXPERT_DOMAINS:
        raise DataError(f"--effect {cfg.effect!r}: experts exist for {', '.join(EXPERT_DOMAINS)}")
    strategy = get_strategy(cfg.distribute)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_yaml(to_dict(cfg), run_dir / "config.yaml")
    set_precision(cfg.precision)
    keras.utils.set_random_seed(cfg.seed)
    paths = store_path if isinstance(store_path, (list, tuple)) else str(store_path).split(",")
    stores = [Store(p) for p in paths]
    maker = SampleMaker(stores, cfg.augment, cfg.effect, train=cfg.augment.enabled)
    if len(maker) == 0:
        raise DataError(f"{store_path}: the store has no main person to train on")
    total_epochs = max(1, -(-cfg.steps // cfg.steps_per_epoch))
    ckpt, state_file = run_dir / "checkpoint.keras", run_dir / "state.json"
    initial_epoch = 0
    with strategy.scope():
        if resume and ckpt.exists() and state_file.exists():
            model = keras.saving.load_model(ckpt)
            initial_epoch = json.loads(state_file.read_text())["epoch"]
        else:
            model = build_model(cfg.model)  # fully convolutional: (None, None, 3)
            if init_from:
                if not Path(init_from).is_file():
                    raise DataError(f"{init_from}: --init-from model not found")
                src = keras.saving.load_model(init_from, compile=False)
                try:
                    model.set_weights(src.get_weights())
                except ValueError as e:
                    raise DataError(f"{init_from}: weights do not fit network {cfg.model!r} ({e})") from None
            if init_vgg19:
                from .weights import load_vgg19_imagenet
                load_vgg19_imagenet(model, init_vgg19)
            compile_model(model, cfg)
    stages = len(model.outputs) // 2
    if initial_epoch < total_epochs:
        ds = make_dataset(maker, cfg.batch_size, total_epochs * cfg.steps_per_epoch, stages, cfg.seed,
                          start_step=initial_epoch * cfg.steps_per_epoch, parallel=cfg.workers or None)
        callbacks = [_AtomicCheckpoint(run_dir, cfg.steps_per_epoch),
                     keras.callbacks.CSVLogger(str(run_dir / "training.csv"), append=True),
                     keras.callbacks.TerminateOnNaN(), *(callbacks or [])]
        if os.environ.get("KERAS_OPENPOSE_TENSORBOARD", "1") != "0":
            callbacks.append(keras.callbacks.TensorBoard(str(run_dir / "tensorboard"), write_graph=False,
                                                         update_freq="epoch", profile_batch=0))
        if verbose is None:
            verbose = 1 if sys.stdout.isatty() else 2
        hist = model.fit(ds, epochs=total_epochs, initial_epoch=initial_epoch,
                         steps_per_epoch=cfg.steps_per_epoch, callbacks=callbacks, verbose=verbose,
                         shuffle=False)
        if any(not np.isfinite(v) for v in hist.history.get("loss", [])):
            raise DataError(f"{run_dir}: training diverged (loss is NaN); lower the learning rate")
    final = save_model_atomic(model, run_dir / "model.keras")
    write_json_atomic({"config": get_config(cfg.model).__dict__, "effect": cfg.effect,
                       "steps": total_epochs * cfg.steps_per_epoch}, run_dir / "model.json")
    for st in stores:
        st.close()
    return final
