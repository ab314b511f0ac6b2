"""Training of one CPM/PAF expert: masked L2 on every stage output (Cao et al. 2017, eq. 6), one
training loop for every ``tf.distribute`` strategy, resumable checkpoints, per-run logs.

Run folder (``--out``; written by the chief worker only)::

    config.yaml            the ExperimentConfig of the run (written first)
    checkpoint.keras       model + optimizer state (its step counter included), written atomically
                           after every epoch and on preemption: one file is the whole resume record
    progress.json          the loss sums of the epoch in progress, when the checkpoint was taken in
                           the middle of an epoch (preemption); valid only for the checkpoint's step
    training.csv           one row per epoch: epoch, loss, one column per stage output
    tensorboard/train/     TensorBoard scalars (``epoch_loss``, ``epoch_<output>_loss``)
    model.keras            the final model (written atomically at the end; it carries its network
                           config, codec and domain: keras_openpose.model.networks.PoseNetwork)
    run.lock               held while a run trains in the folder (a second run is refused)

The loop (:class:`TrainLoop`) replaces ``model.fit``, which Keras 3 cannot run under
``MultiWorkerMirroredStrategy`` (keras-team/keras#20585): a ``tf.function`` step calls
``strategy.run`` on each replica's batch and ``strategy.reduce`` on the losses. The same code runs
the default strategy (one device), ``mirrored`` (the GPUs, or logical CPUs, of one machine) and
``multiworker`` (the machines of ``TF_CONFIG``). ``batch_size`` is the global batch; replica ``r`` of
``R`` trains on slice ``r`` of every global batch of the one deterministic ``(seed, step)`` sample
schedule (:func:`keras_openpose.data.pipeline.replica_share`), and the per-replica loss is the global
mean's share (Keras losses divide by ``R``; the optimizer sums the replicas' gradients), so ``R``
replicas at global batch ``B`` follow one process at batch ``B`` up to float rounding.

Crash consistency: at the end of an epoch the CSV row is appended (and fsynced) first, then the
checkpoint replaces the previous one atomically. Resuming (``resume=True``, the default) reloads
``checkpoint.keras`` with its optimizer state; training restarts at its step counter, CSV rows of
epochs past it are dropped, and the deterministic data stream restarts at that step, so a kill at
any moment followed by the same command ends with the weights of an uninterrupted run. A
checkpoint is never written with non-finite weights.

Faults of a distributed run (see :mod:`keras_openpose.errors`):

* SIGTERM to any worker: its flag rides on the step's all-reduce of the losses, so every worker
  learns it at the same step, saves the checkpoint there (the chief into the run folder, the others
  into a temporary folder they delete: a checkpoint write reads every variable, a collective under
  ``MultiWorkerMirroredStrategy``) and raises :class:`~keras_openpose.errors.Preempted` (exit status
  42). TF's ``PreemptionCheckpointHandler`` is not used: it probes the GCE metadata server at start,
  watches maintenance events instead of SIGTERM on GCE GPUs and does nothing on GCE CPUs.
* a worker that dies: the survivors' collectives fail (the coordination service's heartbeat, or the
  ``worker_timeout`` of every collective) and they raise :class:`~keras_openpose.errors.ClusterError`
  naming the lost task; relaunching resumes from the last checkpoint.
* a peer that never starts: :class:`~keras_openpose.errors.ClusterError` after ``worker_timeout``.

Label-free adaptation (knowledge distillation, Hinton et al. 2015 "Distilling the knowledge in a
neural network", here with the L2 regression of maps instead of softened class probabilities):
with ``TrainConfig.distill_from`` a frozen teacher network (e.g. the normal expert) sees the clean
crop and the student (the expert being trained) the degraded copy of the same crop, warped with
the same matrix (:func:`keras_openpose.data.augment.augment_sample`; pairing a clean and a degraded view
of one augmentation is this project's design, in the spirit of FixMatch's weak/strong views, Sohn
et al. 2020). The loss adds ``distill_weight x sum_t MaskedL2(teacher's last-stage map, student's
stage-t map)`` with a mask of ones (the teacher labels every pixel, crowds and unannotated people
included), in the MaskedL2 convention (0.5 x the sum of squares per sample, batch mean). The teacher
runs in the same ``tf.function`` step in the run's precision, without gradient. Photos of
``TrainConfig.images`` (unlabelled) have no annotated loss (zero mask), only the teacher term.
``training.csv`` then has a ``distill_<output>_loss`` column per output. The teacher's file and
SHA-256 are recorded in the checkpoint (``info["teacher"]``): a resume with another teacher, none,
or a teacher file that changed is refused.
"""
from __future__ import annotations

import json
import os
import re
import signal
import sys
import tempfile
from pathlib import Path

import keras

from ..config import ExperimentConfig, TrainConfig, resolve_skeleton
from ..errors import ClusterError, DataError, Preempted
from ..files import OutputLock, atomic_write, kill_point, write_json_atomic
from ..model.losses import LeanAdam, MaskedL2, MultiplierSGD
from ..model.networks import save_model_atomic
from .cluster import get_strategy, worker_info


def set_precision(precision: str) -> str:
    """Set the Keras global dtype policy (``float32``, ``mixed_bfloat16``, ``mixed_float16``, or
    ``auto``: this machine's fastest, :func:`~keras_openpose.model.precision.resolve_precision`).

    Returns:
        the policy set (``auto`` resolved).
    Raises:
        DataError: an unknown policy name.
    """
    from ..model.precision import resolve_precision
    try:
        precision = resolve_precision(precision)
    except ValueError as e:
        raise DataError(f"--precision: {e}") from None
    keras.mixed_precision.set_global_policy(precision)
    return precision


# ------------------------------------------------------------------------------------------
# strategies
# ------------------------------------------------------------------------------------------

def compile_model(model: keras.Model, cfg: TrainConfig) -> keras.Model:
    """Attach the optimizer and the per-output :class:`MaskedL2` losses (saved with checkpoints;
    ``mixed_float16`` wraps the optimizer in Keras' ``LossScaleOptimizer``)."""
    lr = keras.optimizers.schedules.ExponentialDecay(cfg.learning_rate, cfg.lr_step, cfg.lr_gamma, staircase=True)
    if cfg.optimizer == "adam":
        opt = LeanAdam(lr)
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


# ------------------------------------------------------------------------------------------
# the loop
# ------------------------------------------------------------------------------------------

def _truncate_csv(csv: Path, epochs: int) -> None:
    """Keep the header and the rows of the first ``epochs`` epochs (rows of an epoch whose
    checkpoint was not written are dropped)."""
    if not csv.exists():
        return
    lines = csv.read_text().splitlines()
    keep = lines[:1] + [ln for ln in lines[1:] if ln and int(ln.split(",")[0]) < epochs]
    with atomic_write(csv, "w") as f:
        f.write("\n".join(keep) + "\n")


def _lost_task(message: str) -> str:
    """The task a collective error names (``/job:worker/replica:0/task:1`` -> ``worker 1``)."""
    m = re.search(r"/job:(\w+)/replica:\d+/task:(\d+)", message) or re.search(r"task:? ?(\d+)", message)
    if m is None:
        return "a peer"
    return f"{m.group(1)} {m.group(2)}" if m.lastindex == 2 else f"worker {m.group(1)}"


class TrainLoop:
    """One training loop for every strategy: ``tf.function`` steps of ``strategy.run`` and
    ``strategy.reduce``, epochs of ``steps_per_epoch`` steps, SIGTERM-safe (see module doc).

    Args:
        model: a compiled :class:`~keras_openpose.model.networks.PoseNetwork` created under
            ``strategy.scope()`` (optimizer and per-output losses from :func:`compile_model`).
        strategy: the ``tf.distribute`` strategy.
        run_dir: the run folder (chief) ; other workers keep their checkpoints in a temporary folder.
        verbose: 0 silent, 1 progress bar, 2 one line per epoch (the chief only).

        teacher: a frozen network created under ``strategy.scope()`` with the model's output
            channels (distillation, see module doc); the batches' input is then ``(image, clean)``.
        distill_weight: weight ``w`` of the teacher term.

    The step (per replica): ``L = sum_t MaskedL2_t / R + sum(regularisers) / R`` (the Keras loss
    already divides by ``R``; the regularisers are divided here so that ``R`` replicas add up to one
    process), plus ``w x sum_t D_t`` with a teacher (``D_t``: the masked L2 of output ``t`` to the
    teacher's last-stage map of the same kind, mask of ones, also divided by ``R``), gradients of
    ``L`` (scaled by the ``LossScaleOptimizer`` under ``mixed_float16``), ``optimizer.apply``
    (which all-reduces them), and one all-reduce of ``[L, L_1..L_T, (D_1..D_T,) stop]``.
    """

    def __init__(self, model, strategy, run_dir: Path, verbose: int = 2, tensorboard: bool = True,
                 teacher=None, distill_weight: float = 1.0):
        import tensorflow as tf
        self.model, self.strategy, self.run_dir = model, strategy, Path(run_dir)
        self.teacher, self.distill_weight = teacher, float(distill_weight)
        self.worker, self.num_workers, self.chief = worker_info(strategy)
        self.verbose = verbose if self.chief else 0
        self.names = ["loss"] + [f"{n}_loss" for n in model.output_names]
        if teacher is not None:
            self.names += [f"distill_{n}_loss" for n in model.output_names]
        self.replicas = strategy.num_replicas_in_sync
        self._stop_requested = False
        self._done = _iterations(model)
        self._tmp = None if self.chief else Path(tempfile.mkdtemp(prefix=f"keras_openpose_worker{self.worker}_"))
        self._writer = (tf.summary.create_file_writer(str(self.run_dir / "tensorboard" / "train"))
                        if self.chief and tensorboard else None)
        with strategy.scope():   # optimizer slots are distributed variables: created here, not in the step
            if not model.optimizer.built:
                model.optimizer.build(model.trainable_variables)
        self._step = self._make_step(bool(getattr(model, "jit_compile", False)))

    # -- the step -----------------------------------------------------------------------------
    def _make_step(self, xla: bool):
        import tensorflow as tf
        model, opt, R = self.model, self.model.optimizer, self.replicas
        losses = self.model.loss
        teacher, w = self.teacher, self.distill_weight

        def teacher_targets(clean):
            """The teacher's last-stage ``[PAF, heatmaps]`` with a mask channel of ones (float32)."""
            maps = [tf.stop_gradient(keras.ops.cast(t, "float32")) for t in teacher(clean, training=False)[-2:]]
            return [keras.ops.concatenate([t, keras.ops.ones_like(t[..., :1])], -1) for t in maps]

        def replica_step(x, ys, stop):
            distill = []
            if teacher is not None:
                x, clean = x
                targets = teacher_targets(clean)
            with tf.GradientTape() as tape:
                outs = model(x, training=True)
                per_output = [fn(y, o) for fn, y, o in zip(losses, ys, outs)]
                total = keras.ops.sum(keras.ops.stack(per_output))
                if teacher is not None:   # outputs alternate PAF, heatmaps: output i learns targets[i % 2]
                    distill = [fn(targets[i % 2], o) for i, (fn, o) in enumerate(zip(losses, outs))]
                    total = total + w * keras.ops.sum(keras.ops.stack(distill))
                if model.losses:
                    total = total + keras.ops.sum(keras.ops.stack([keras.ops.sum(r) for r in model.losses])) / R
                scaled = opt.scale_loss(total)
            grads = tape.gradient(scaled, model.trainable_variables)
            opt.apply(grads, model.trainable_variables)
            return keras.ops.stack([total, *per_output, *distill, stop / R])

        @tf.function(jit_compile=xla, reduce_retracing=True)
        def step(iterator, stop):
            values = self.strategy.run(replica_step, args=(*next(iterator), stop))
            return self.strategy.reduce(tf.distribute.ReduceOp.SUM, values, axis=None)

        return step

    def step(self, iterator, stop: bool = False):
        """One training step on the next batch of ``iterator`` (a distributed iterator); returns the
        all-reduced ``[loss, loss per output..., (distillation loss per output...,) stop flag]``
        (NumPy, every worker the same)."""
        import tensorflow as tf
        return self._step(iterator, tf.constant(1.0 if stop else 0.0)).numpy()

    def agree(self, values: list[float]) -> bool:
        """Whether every worker holds the same ``values`` (one all-reduce; ``True`` on one worker)."""
        import numpy as np
        import tensorflow as tf
        if self.num_workers == 1:
            return True
        v = tf.constant(values, tf.float64)

        @tf.function
        def all_sum():
            return self.strategy.reduce(tf.distribute.ReduceOp.SUM,
                                        self.strategy.run(lambda: v / self.replicas), axis=None)
        total = all_sum()
        return bool(np.allclose(total.numpy(), np.asarray(values), rtol=1e-9, atol=0))

    # -- checkpoints -------------------------------------------------------------------------
    def _checkpoint_path(self) -> Path:
        return (self.run_dir if self.chief else self._tmp) / "checkpoint.keras"

    def save_checkpoint(self, epoch_sums=None) -> None:
        """Every worker writes the checkpoint (the chief into the run folder); ``epoch_sums``: the
        loss sums of a partly done epoch (written first to ``progress.json``)."""
        import numpy as np
        bad = [w.path for w in self.model.weights if not np.all(np.isfinite(keras.ops.convert_to_numpy(w)))]
        if bad:
            raise DataError(f"{self.run_dir}: {len(bad)} non-finite weight tensors; nothing saved: the last "
                            "checkpoint is kept. Lower the learning rate (targets were checked finite)")
        if self.chief:
            progress = self.run_dir / "progress.json"
            if epoch_sums is not None:
                write_json_atomic({"step": self._done, "sums": [float(s) for s in epoch_sums]}, progress)
            elif progress.exists():
                progress.unlink()
        self.model.info["trained_steps"] = self._done
        save_model_atomic(self.model, self._checkpoint_path())
        if self.chief:
            kill_point("checkpoint_saved")

    def _epoch_progress(self, step: int):
        p = self.run_dir / "progress.json"
        if step and p.exists():
            d = json.loads(p.read_text())
            if d.get("step") == step and len(d.get("sums", ())) == len(self.names):
                return d["sums"]
        return None

    def _record_epoch(self, epoch: int, means: dict) -> None:
        csv = self.run_dir / "training.csv"
        new = not csv.exists()
        with open(csv, "a") as f:
            if new:
                f.write(",".join(["epoch", *self.names]) + "\n")
            f.write(",".join([str(epoch), *(repr(float(means[k])) for k in self.names)]) + "\n")
            f.flush()
            os.fsync(f.fileno())
        if self._writer is not None:
            import tensorflow as tf
            with self._writer.as_default():
                for k, v in means.items():
                    tf.summary.scalar(f"epoch_{k}", v, step=epoch)
            self._writer.flush()
        kill_point("csv_written")

    # -- run ---------------------------------------------------------------------------------
    def _on_sigterm(self, signum, frame):
        self._stop_requested = True

    def fit(self, dataset_fn, steps: int, steps_per_epoch: int) -> None:
        """Train from the model's step counter to ``steps``.

        Args:
            dataset_fn: ``start_step, replicas -> tf.data.Dataset`` of per-replica batches for the
                replicas ``(first, count, total)`` of this worker.
        Raises:
            DataError: the loss or weights became non-finite (nothing is saved).
            Preempted: SIGTERM reached a worker (all saved a checkpoint at the same step).
            ClusterError: a worker was lost.
        """
        import tensorflow as tf
        start = self._done = _iterations(self.model)
        if not self.agree([float(start)]):
            raise ClusterError(f"{self.run_dir}: the workers resume from different steps (this one from {start}); "
                               "the run folder must be on a file system every worker reads")
        if start >= steps:
            return
        iterator = self.iterator(dataset_fn, start)
        previous = signal.signal(signal.SIGTERM, self._on_sigterm) if _main_thread() else None
        try:
            self._loop(iterator, start, steps, steps_per_epoch)
        except tf.errors.OpError as e:
            raise self._translate(e) from None
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
            if self._tmp is not None:
                import shutil
                shutil.rmtree(self._tmp, ignore_errors=True)

    def iterator(self, dataset_fn, start: int = 0):
        """The distributed iterator over this worker's share of the batches from step ``start``
        (``dataset_fn(start, (first replica, local replicas, all replicas))``)."""
        local = self.replicas // self.num_workers

        def per_worker(ctx):
            return dataset_fn(start, (ctx.input_pipeline_id * local, local, self.replicas))
        return iter(self.strategy.distribute_datasets_from_function(per_worker))

    def _loop(self, iterator, start, steps, steps_per_epoch):
        import numpy as np
        step = start
        sums = np.asarray(self._epoch_progress(start) or np.zeros(len(self.names)), np.float64)
        while step < steps:
            epoch = step // steps_per_epoch
            end = min((epoch + 1) * steps_per_epoch, steps)
            bar = keras.utils.Progbar(end - epoch * steps_per_epoch, verbose=self.verbose,
                                      stateful_metrics=self.names) if self.verbose else None
            if bar is not None:
                print(f"Epoch {epoch + 1}/{-(-steps // steps_per_epoch)}", flush=True)
            while step < end:
                kill_point("step")
                values = self.step(iterator, self._stop_requested)
                step = self._done = step + 1
                if not np.all(np.isfinite(values[:-1])):
                    raise DataError(f"{self.run_dir}: training diverged in epoch {epoch + 1} (loss {values[0]:.4g} "
                                    f"at step {step}); nothing saved: the last checkpoint is kept. Lower the "
                                    "learning rate (targets were checked finite)")
                sums += values[:-1]
                done = step - epoch * steps_per_epoch
                if bar is not None:
                    bar.update(done, [(k, s / done) for k, s in zip(self.names, sums)], finalize=step == end)
                if values[-1] > 0:   # a worker got SIGTERM: every worker stops after this same step
                    break
            if step == end:
                if self.chief:
                    self._record_epoch(epoch, dict(zip(self.names, sums / (end - epoch * steps_per_epoch))))
                self.save_checkpoint()
                sums[:] = 0
            else:
                self.save_checkpoint(sums)   # mid-epoch: the epoch's loss sums go with it
            if values[-1] > 0 and step < steps:
                raise Preempted(f"SIGTERM: every worker saved its checkpoint at step {step} of {steps}; "
                                "relaunch the same command(s) to resume", step)

    def _translate(self, e):
        from ..data.pipeline import DATA_ERROR
        msg = str(e)
        if DATA_ERROR in msg:   # an error raised by the sample maker inside tf.data
            return DataError(msg.split(DATA_ERROR, 1)[1].strip().splitlines()[0])
        import tensorflow as tf
        if self.num_workers > 1 and isinstance(e, (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
                                                   tf.errors.CancelledError, tf.errors.AbortedError,
                                                   tf.errors.InternalError)):
            m = re.search(r"(UNAVAILABLE|DEADLINE_EXCEEDED|CANCELLED|ABORTED|INTERNAL):[^\n]*", msg)
            why = m.group(0)[:160] if m else type(e).__name__
            return ClusterError(f"worker {self.worker}: lost {_lost_task(msg)} of {self.num_workers} "
                                f"({why}); relaunch every worker to resume from the "
                                "last checkpoint")
        return e


def _iterations(model) -> int:
    """Training steps done: ``model.info["trained_steps"]``, which the loop sets before every
    checkpoint (the optimizer's counter does not advance on the steps a ``LossScaleOptimizer``
    skips for non-finite float16 gradients), else the optimizer's counter."""
    if "trained_steps" in getattr(model, "info", {}):
        return int(model.info["trained_steps"])
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


def _main_thread() -> bool:
    import threading
    return threading.current_thread() is threading.main_thread()


# ------------------------------------------------------------------------------------------
# entry point
# ------------------------------------------------------------------------------------------

def _teacher_identity(path) -> dict:
    """``{"path", "sha256"}`` of a teacher file (recorded in the checkpoint, checked on resume)."""
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return {"path": str(Path(path).resolve()), "sha256": h.hexdigest()}


def load_teacher(src, precision: str, codec):
    """The frozen teacher built from a loaded network ``src`` in ``precision`` (call under the
    strategy's scope: its variables are then the strategy's).

    Raises:
        DataError: a teacher whose maps are not the codec's (other skeleton or channel counts).
    """
    from ..model.networks import PoseNetwork, network_codec, with_precision
    tcodec = network_codec(src)
    same = (tcodec.num_pafs, tcodec.num_heatmaps) == (codec.num_pafs, codec.num_heatmaps) and \
        tuple(tcodec.skeleton.parts) == tuple(codec.skeleton.parts) and \
        tuple(map(tuple, tcodec.skeleton.limbs)) == tuple(map(tuple, codec.skeleton.limbs))
    if not same:
        raise DataError(f"--distill-from: the teacher's maps ({tcodec}) are not the run's ({codec})")
    if isinstance(src, PoseNetwork):
        teacher = with_precision(src, precision, "teacher")
    else:
        teacher = keras.models.clone_model(src)
        teacher.set_weights(src.get_weights())
    teacher.trainable = False
    return teacher


def train_expert(cfg: ExperimentConfig, store_path: str | Path | None, run_dir: str | Path, resume: bool = True,
                 init_from: str | Path | None = None, verbose: int | None = None,
                 init_vgg19: str | Path | None = None) -> Path:
    """Train (or resume) one expert; returns the path of the final ``model.keras`` (on every
    worker: the chief's run folder).

    Args:
        cfg: the experiment (``cfg.model`` the network, ``cfg.train`` the schedule and strategy,
            ``cfg.train.effect`` the domain applied on the fly, ``cfg.skeleton`` / ``cfg.codec`` /
            ``cfg.decode`` the maps).
        store_path: training store (:mod:`keras_openpose.data.store`), or several (a list, or paths
            separated by commas); ``None`` with ``cfg.train.images`` (photos only). The photos of
            ``cfg.train.images`` are sampled besides the stores' people; ``cfg.train.distill_from``
            adds the teacher term (module doc).
        run_dir: run folder (see module doc); with ``multiworker`` on several machines, a folder on a
            file system every worker reads (they resume from the chief's checkpoint).
        resume: continue from ``run_dir/checkpoint.keras`` when present.
        init_from: a ``.keras`` model whose weights initialise the network (fine-tuning an expert
            from the normal model); ignored when resuming.
        verbose: 0 silent, 1 progress bar, 2 a line per epoch (default: 1 on a terminal, else 2).
        init_vgg19: ImageNet VGG-19 weights file for the ``vgg19`` backbone (else the documented
            random init: N(0, 0.01) kernels, zero biases, as CMU's prototxt).
    Raises:
        DataError: bad store, photo folder, teacher, config or initial weights
            (:func:`keras_openpose.data.pipeline.check_sources`);
            a resume with another teacher than the checkpoint's; a diverged run.
        Preempted: SIGTERM (after the checkpoint).
        ClusterError: a lost or missing worker.
    """
    from ..data.domains import EXPERT_DOMAINS

    tc: TrainConfig = cfg.train
    if tc.effect not in EXPERT_DOMAINS:
        raise DataError(f"--effect {tc.effect!r}: experts exist for {', '.join(EXPERT_DOMAINS)}")
    from ..data.pipeline import check_sources
    check_sources(tc, store_path)
    strategy = get_strategy(tc.distribute, tc.worker_timeout)   # first: before TensorFlow runs any op
    _, _, chief = worker_info(strategy)
    run_dir = Path(run_dir)
    policy = keras.config.dtype_policy()     # the run's precision is set for the run only
    try:
        if not chief:
            return _train(cfg, tc, strategy, store_path, run_dir, resume, init_from, verbose, init_vgg19, chief)
        run_dir.mkdir(parents=True, exist_ok=True)
        with OutputLock(run_dir / "run"):
            return _train(cfg, tc, strategy, store_path, run_dir, resume, init_from, verbose, init_vgg19, chief)
    finally:
        keras.config.set_dtype_policy(policy)


def _train(cfg, tc, strategy, store_path, run_dir, resume, init_from, verbose, init_vgg19, chief):
    import dataclasses

    from ..model.networks import build_model, load_network, network_codec
    from ..model.networks import get_config as get_network_config
    from ..data.pipeline import SampleMaker, list_photos, make_dataset, per_replica_batch
    from ..data.store import Store
    if chief:
        cfg.to_yaml(run_dir / "config.yaml")
    precision = set_precision(tc.precision)    # auto: this machine's policy (the model records it)
    photos = list_photos(tc.images) if tc.images else []
    teacher_src = load_network(tc.distill_from) if tc.distill_from else None   # before the seed: loading draws
    teacher_id = _teacher_identity(tc.distill_from) if tc.distill_from else None
    keras.utils.set_random_seed(tc.seed)
    paths = ([] if not store_path else
             list(store_path) if isinstance(store_path, (list, tuple)) else str(store_path).split(","))
    stores = [Store(p) for p in paths]
    # photos only: the teacher's skeleton (the maps it teaches), with this experiment's codec settings
    codec = training_codec(cfg, stores) if stores else cfg.make_codec(network_codec(teacher_src).skeleton)
    maker = SampleMaker(stores, tc.augment, codec, tc.effect, train=tc.augment.enabled, photos=photos)
    if len(maker) == 0:
        raise DataError(f"{store_path}: the store has no main person to train on")
    per_replica_batch(tc.batch_size, strategy.num_replicas_in_sync)   # fails before any work
    total_steps = max(1, -(-tc.steps // tc.steps_per_epoch)) * tc.steps_per_epoch
    ckpt = run_dir / "checkpoint.keras"
    info = {"steps": total_steps, "batch_size": tc.batch_size, "run": str(run_dir),
            "stores": [str(p) for p in paths]}
    if tc.images:
        info["images"] = str(tc.images)
    if teacher_id:
        info["teacher"] = teacher_id
    with strategy.scope():
        if resume and ckpt.exists():
            model = load_network(ckpt, compile=True)
            had = model.info.get("teacher")
            if (had or {}).get("sha256") != (teacher_id or {}).get("sha256"):
                changed = " (its file changed since)" if had and teacher_id and had["path"] == teacher_id["path"] else ""
                raise DataError(f"{ckpt}: trained with teacher {had['path'] if had else 'none'}, this run gives "
                                f"{tc.distill_from or 'none'}{changed}; resume with the same --distill-from, "
                                "or start anew with --no-resume")
        else:
            # TrainConfig.weight_decay owns the L2 of the kernels (fine-tuning a trained network: 0)
            network = dataclasses.replace(get_network_config(cfg.model), weight_decay=tc.weight_decay)
            model = build_model(network, codec, precision, tc.effect)
            model.info.update(info)
            if init_from:
                src = load_network(init_from)
                from ..skeleton import (check_same_layout)  # same count, other names: weights would fit silently
                check_same_layout(network_codec(src).skeleton, codec.skeleton, f"--init-from {init_from}",
                                  ("the model", "the training data"))
                try:
                    model.set_weights(src.get_weights())
                except ValueError as e:
                    raise DataError(f"{init_from}: weights do not fit network {cfg.model!r} ({e})") from None
            if init_vgg19:
                from ..model.weights import load_vgg19_imagenet
                load_vgg19_imagenet(model, init_vgg19)
            compile_model(model, tc)
        teacher = load_teacher(teacher_src, precision, codec) if teacher_src is not None else None
    start = _iterations(model)
    if chief:
        _truncate_csv(run_dir / "training.csv", start // tc.steps_per_epoch)
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    loop = TrainLoop(model, strategy, run_dir, verbose,
                     tensorboard=os.environ.get("KERAS_OPENPOSE_TENSORBOARD", "1") != "0",
                     teacher=teacher, distill_weight=tc.distill_weight)

    def dataset(start_step, replicas):
        return make_dataset(maker, tc.batch_size, total_steps, model.stages, tc.seed, start_step=start_step,
                            parallel=tc.workers or None, replicas=replicas, clean=teacher is not None)
    loop.fit(dataset, total_steps, tc.steps_per_epoch)
    final = run_dir / "model.keras"
    if chief:
        save_model_atomic(model, final)
        (run_dir / "progress.json").unlink(missing_ok=True)
    for st in stores:
        st.close()
    return final
