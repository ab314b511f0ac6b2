"""The training path: exact resume, the learning check, several replicas."""
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO
from keras_openpose.config import AugmentConfig, ExperimentConfig, TrainConfig


def _cfg(**kw):
    base = dict(batch_size=2, steps=6, steps_per_epoch=2, learning_rate=1e-3, lr_step=3,
                lr_gamma=0.5, precision="float32", augment=AugmentConfig(crop=64))
    base.update(kw)
    return ExperimentConfig(model="tiny", train=TrainConfig(**base))


TRAIN = """
import sys; sys.path.insert(0, {repo!r})
import tensorflow as tf
tf.config.experimental.enable_op_determinism()
from keras_openpose.config import AugmentConfig, ExperimentConfig, TrainConfig
from keras_openpose.errors import PREEMPTED_EXIT_CODE, Preempted
from keras_openpose.train.loop import train_expert
cfg = ExperimentConfig(model="tiny", train=TrainConfig(batch_size=2, steps=6, steps_per_epoch=2, learning_rate=1e-3,
                       lr_step=3, lr_gamma=0.5, precision="float32", augment=AugmentConfig(crop=64)))
try:
    print(train_expert(cfg, {store!r}, {run!r}, verbose=0))
except Preempted:
    sys.exit(PREEMPTED_EXIT_CODE)
"""


def _train_process(store, run, kill_at=""):
    env = {"KERAS_OPENPOSE_TENSORBOARD": "0", "PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "2",
           "KERAS_OPENPOSE_KILL_AT": kill_at}
    return subprocess.run([sys.executable, "-c", TRAIN.format(repo=str(REPO), store=str(store), run=str(run))],
                          capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory, train_store):
    run = tmp_path_factory.mktemp("ref") / "run"
    r = _train_process(train_store, run)
    assert r.returncode == 0, r.stderr[-2000:]
    return run


@pytest.mark.slow
def test_killed_and_preempted_training_resumes_to_the_uninterrupted_weights(tmp_path, train_store, reference_run):
    """One run through three faults, each time resumed by the same command from the checkpoint's own
    step counter: kill -9 between epoch 2's CSV row and its checkpoint; kill -9 right after the
    resumed run's first checkpoint (epoch 2, step 4); SIGTERM in the middle of epoch 3 (checkpoint
    at step 5 with the epoch's loss sums in progress.json, exit 42). The run ends with the
    uninterrupted weights, optimizer state and CSV (one row per epoch: none lost, none repeated)."""
    import json
    run = tmp_path / "run"
    r = _train_process(train_store, run, "csv_written:2")          # epoch 2's row written, its checkpoint not
    assert r.returncode == -9 and not (run / "model.keras").exists()
    assert len((run / "training.csv").read_text().splitlines()) == 1 + 2
    r = _train_process(train_store, run, "checkpoint_saved:1")     # resumes at epoch 2, killed once it is saved
    assert r.returncode == -9 and not (run / "model.keras").exists()
    assert len((run / "training.csv").read_text().splitlines()) == 1 + 2     # epoch 2's row once
    r = _train_process(train_store, run, "step:1:TERM")            # SIGTERM in its first step, step 5 (epoch 3 of 3)
    assert r.returncode == 42, r.stderr[-2000:]
    assert json.loads((run / "progress.json").read_text())["step"] == 5
    assert not (run / "model.keras").exists()
    r = _train_process(train_store, run)
    assert r.returncode == 0, r.stderr[-2000:]
    from keras_openpose.model.networks import load_network
    ref = load_network(reference_run / "model.keras", compile=True)
    got = load_network(run / "model.keras", compile=True)
    assert int(got.optimizer.iterations) == int(ref.optimizer.iterations) == 6
    assert float(got.optimizer.learning_rate) == pytest.approx(2.5e-4)   # 1e-3 x 0.5^(6 // 3)
    for a, b in zip(ref.get_weights(), got.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    epochs = [ln.split(",")[0] for ln in (run / "training.csv").read_text().splitlines()[1:]]
    assert epochs == ["0", "1", "2"]                 # none lost, none repeated
    assert (run / "training.csv").read_text() == (reference_run / "training.csv").read_text()


def test_divergence_never_checkpoints_non_finite_weights(tmp_path, train_store):
    from keras_openpose.errors import DataError
    from keras_openpose.train.loop import train_expert
    cfg = _cfg(steps=4, optimizer="sgd")
    # the config refuses rates above 10; the loop's guard must hold whatever makes a run diverge
    object.__setattr__(cfg.train, "learning_rate", 1e30)
    with pytest.raises(DataError, match="training diverged in epoch 1 .* nothing saved"):
        train_expert(cfg, train_store, tmp_path / "run", verbose=0)
    assert not (tmp_path / "run" / "checkpoint.keras").exists() and not (tmp_path / "run" / "model.keras").exists()


def test_lean_adam_is_keras_adam_bit_for_bit_in_fewer_ops():
    """The training loop's Adam computes the step's scalars once: the same variables and moments as
    ``keras.optimizers.Adam`` to the last bit after 5 steps (eager and traced, a staircase
    schedule halving the rate), in under 60 % of its graph ops (22 variables)."""
    import keras
    import tensorflow as tf
    from keras_openpose.model.losses import LeanAdam
    rng = np.random.default_rng(0)
    shapes = [(3, 3, 4, 8), (8,), (5,), (1, 1, 8, 3)] * 5 + [(2,), (7, 2)]
    init = [rng.standard_normal(s).astype("float32") for s in shapes]
    grads = [[tf.constant(rng.standard_normal(s).astype("float32")) for s in shapes] for _ in range(5)]

    def run(cls, traced):
        vs = [keras.Variable(w) for w in init]
        opt = cls(keras.optimizers.schedules.ExponentialDecay(1e-2, 2, 0.5, staircase=True))
        fn = tf.function(lambda g: opt.apply(g, vs)) if traced else (lambda g: opt.apply(g, vs))
        for g in grads:
            fn(g)
        ops = len(fn.get_concrete_function(grads[0]).graph.get_operations()) if traced else None
        return [keras.ops.convert_to_numpy(v) for v in [*vs, *opt.variables]], ops

    for traced in (False, True):
        (ref, ref_ops), (got, got_ops) = run(keras.optimizers.Adam, traced), run(LeanAdam, traced)
        assert len(ref) == len(got) == 3 * len(shapes) + 1 and int(got[len(shapes)]) == 5   # vars, steps, m, v
        for a, b in zip(ref, got):
            np.testing.assert_array_equal(a, b)
        if traced:
            assert got_ops < 0.6 * ref_ops, (got_ops, ref_ops)


def test_cmu_learning_rate_multipliers(vgg19_network):
    from keras_openpose.model.losses import MultiplierSGD
    m = vgg19_network
    opt = MultiplierSGD(1.0)
    mult = {v.path: opt._mult(v) for v in m.trainable_variables}
    assert mult["conv1_1/kernel"] == 1 and mult["conv1_1/bias"] == 2
    assert mult["conv5_5_CPM_L2/kernel"] == 1 and mult["Mconv3_stage4_L1/kernel"] == 4
    assert mult["Mconv7_stage6_L2/bias"] == 8


@pytest.mark.slow
def test_it_learns(tmp_path, train_store, train_split):
    """Overfit a few training images without augmentation: the loss falls and the decoded poses on
    those images reach AP >= 0.5 (a check of the whole training path, not of generalisation).
    128 px crops, 180 steps, ``precision: auto``. Measured, 10 runs two at a time (both cores busy):
    on an AVX2 CPU (auto = float32) AP 0.917 and last / first epoch loss 0.269 in every run; on an
    AMX CPU (auto = mixed_bfloat16, not bit-reproducible under load) AP 0.944, loss ratio 0.28 in
    6 runs; other schedules there: 160 steps AP 0.944, 200-300 steps 1.0, 192 px crops x 200 steps
    0.67-0.93. The margin to AP 0.5 and ratio 0.5 is wide on both. Export parity of a GroupNorm
    network is tests/test_export.py's, of a trained one test_int8_export_of_the_trained_network_keeps_its_ap."""
    from keras_openpose.evaluate.cocoeval import coco_keypoint_eval
    from keras_openpose.config import InferenceOptions
    from keras_openpose.inference.estimator import PoseEstimator
    from keras_openpose.data.pipeline import SampleMaker
    from keras_openpose.data.store import Store, build_store
    from keras_openpose.train.loop import train_expert
    # three images with one large, well-annotated person each
    chosen = []
    for i in train_split.ids_with_people():
        people = [a for a in train_split.anns_by_image[i] if a["num_keypoints"] > 0]
        if len(people) == 1 and people[0]["num_keypoints"] >= 12 and not any(a["iscrowd"] for a in train_split.anns_by_image[i]):
            chosen.append(i)
    chosen = chosen[:3]
    assert len(chosen) == 3
    store = tmp_path / "few.h5"
    build_store(train_split, store, exclude_ids=set(train_split.image_ids) - set(chosen), workers=1, progress=False)
    side = 128                                                   # crop side, input pixels
    aug = AugmentConfig(crop=side, enabled=False)
    cfg = _cfg(steps=180, steps_per_epoch=60, batch_size=3, learning_rate=2e-3, lr_step=120, lr_gamma=0.3,
               precision="auto", augment=aug)
    path = train_expert(cfg, store, tmp_path / "run", verbose=0)
    est = PoseEstimator.from_weights(path, InferenceOptions(box_size=side))
    losses = [float(r.split(",")[1]) for r in (tmp_path / "run" / "training.csv").read_text().splitlines()[1:]]
    assert losses[-1] < 0.5 * losses[0], losses
    # decode the training crops themselves (person centred, 0.6 x crop tall)
    maker = SampleMaker(Store(store), aug, est.codec, "normal", train=False)
    gt = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "person"}]}
    dets = []
    from keras_openpose.data.augment import transform_points, warp_matrix, draw_params
    st = Store(store)
    for k, (row, person) in enumerate(maker.samples):
        crop, *_ = maker.make(k, 0)
        m = warp_matrix(st.centre[person], st.bbox[person, 3], draw_params(None, aug, train=False), aug)
        kp = st.keypoints[person].copy()
        lab = kp[:, 2] > 0
        kp[lab, :2] = transform_points(kp[lab, :2], m)
        s = np.sqrt(abs(np.linalg.det(m[:, :2])))
        x, y, w, h = st.bbox[person]
        gt["images"].append({"id": k + 1, "height": side, "width": side, "file_name": f"{k}.jpg"})
        gt["annotations"].append({"id": k + 1, "image_id": k + 1, "category_id": 1, "iscrowd": 0,
                                  "keypoints": kp.reshape(-1).tolist(), "num_keypoints": int(lab.sum()),
                                  "area": float(w * h * s * s), "bbox": [0, 0, side, side]})
        dets += [{"image_id": k + 1, "category_id": 1, **p} for p in est.estimate(crop)]
    stats, _ = coco_keypoint_eval(gt, dets)
    assert stats["AP"] >= 0.5, (stats, losses)


@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus(tmp_path, train_store):
    code = f"""
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import sys; sys.path.insert(0, {str(REPO)!r})
from keras_openpose.config import ExperimentConfig, TrainConfig, AugmentConfig
from keras_openpose.train.loop import train_expert, get_strategy
print("replicas", get_strategy("mirrored").num_replicas_in_sync)
cfg = ExperimentConfig(model="tiny", train=TrainConfig(batch_size=4, steps=2, steps_per_epoch=2, precision="float32",
                       distribute="mirrored", augment=AugmentConfig(crop=64)))
print(train_expert(cfg, {str(train_store)!r}, {str(tmp_path / 'mirrored')!r}, verbose=0))
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       env={"KERAS_OPENPOSE_TENSORBOARD": "0", "PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert r.returncode == 0, r.stderr[-2000:]
    assert "replicas 2" in r.stdout and "model.keras" in r.stdout


@pytest.mark.slow
def test_float16_loss_scaling_counts_skipped_steps(tmp_path, train_store):
    """mixed_float16 wraps the optimizer in Keras' LossScaleOptimizer, which skips the first steps
    (float16 overflow while the scale falls): the run still counts every step it took, so a resume
    does not train them again."""
    from keras_openpose.model.networks import load_network
    from keras_openpose.train.loop import train_expert
    cfg = _cfg(steps=4, steps_per_epoch=2, precision="mixed_float16")
    train_expert(cfg, train_store, tmp_path / "run", verbose=0)
    ck = load_network(tmp_path / "run" / "checkpoint.keras", compile=True)
    assert type(ck.optimizer).__name__ == "LossScaleOptimizer"
    assert ck.info["trained_steps"] == 4 and int(ck.optimizer.iterations) < 4     # steps were skipped
    rows = (tmp_path / "run" / "training.csv").read_text().splitlines()
    train_expert(cfg, train_store, tmp_path / "run", verbose=0)                   # resume: nothing left to do
    assert (tmp_path / "run" / "training.csv").read_text().splitlines() == rows and len(rows) == 3



# ------------------------------------------------------------------------------------------
# label-free adaptation: distillation from a teacher, unlabelled photos, the dark training mix
# ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_teacher(tmp_path_factory):
    """A tiny float32 network (seeded random weights) saved as a teacher file."""
    import keras
    from keras_openpose.model.networks import build_model, save_model_atomic
    keras.utils.set_random_seed(7)
    return save_model_atomic(build_model("tiny", precision="float32"), tmp_path_factory.mktemp("teacher") / "t.keras")


def _first_row(run):
    head, row = (run / "training.csv").read_text().splitlines()[:2]
    return dict(zip(head.split(","), map(float, row.split(","))))


@pytest.mark.slow
def test_distillation_term_is_zero_for_the_teacher_itself(tmp_path, train_store, tiny_teacher):
    """Student initialised from the teacher, effect normal: the teacher and the student see the same
    crop, so at step 0 the student's last stage is the teacher's last stage: its distillation terms
    are exactly 0 (earlier stages are compared with the teacher's last one: > 0); with motion blur
    the student sees a blurred crop: > 0. The annotated loss stays (store samples)."""
    from keras_openpose.train.loop import train_expert
    rows = {}
    for effect in ("normal", "motion_blur"):
        cfg = _cfg(steps=1, steps_per_epoch=1, effect=effect, distill_from=str(tiny_teacher),
                   augment=AugmentConfig(crop=128))
        train_expert(cfg, train_store, tmp_path / effect, init_from=tiny_teacher, verbose=0)
        rows[effect] = _first_row(tmp_path / effect)
    distill = [k for k in rows["normal"] if k.startswith("distill_")]
    annotated = [k for k in rows["normal"] if k not in ("epoch", "loss") and not k.startswith("distill_")]
    assert len(distill) == len(annotated) == 4, rows                 # tiny: 2 stages x (PAF, heatmaps)
    assert [rows["normal"][k] for k in distill[-2:]] == [0.0, 0.0]   # the known answer
    assert all(rows["normal"][k] > 0 for k in distill[:-2] + annotated)
    assert all(rows["motion_blur"][k] > 0 for k in distill)


def test_clean_crop_is_the_same_view(train_store):
    """make(clean=True) draws the same warp as make(): its first four outputs are unchanged; the
    clean crop is the source warped with that matrix (identical for the normal domain)."""
    from keras_openpose.codec import DEFAULT_CODEC
    from keras_openpose.data.pipeline import SampleMaker
    from keras_openpose.data.store import Store
    st = Store(train_store)
    for domain in ("normal", "motion_blur"):
        maker = SampleMaker(st, AugmentConfig(crop=128), DEFAULT_CODEC, domain)
        plain = maker.make(3, 11)
        *pair, clean = maker.make(3, 11, clean=True)
        for a, b in zip(plain, pair):
            np.testing.assert_array_equal(a, b)
        normal = SampleMaker(st, AugmentConfig(crop=128), DEFAULT_CODEC, "normal").make(3, 11)[0]
        assert np.array_equal(clean, normal) if domain == "normal" else not np.array_equal(clean, plain[0])


CLI_TRAIN = """
import sys; sys.path.insert(0, {repo!r})
import tensorflow as tf
tf.config.experimental.enable_op_determinism()
from keras_openpose.cli import run, train_pose
run(train_pose, {argv!r})
"""


def _cli_process(argv, kill_at=""):
    env = {"KERAS_OPENPOSE_TENSORBOARD": "0", "PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "2",
           "KERAS_OPENPOSE_KILL_AT": kill_at}
    return subprocess.run([sys.executable, "-c", CLI_TRAIN.format(repo=str(REPO), argv=[str(a) for a in argv])],
                          capture_output=True, text=True, timeout=300, env=env)


@pytest.mark.slow
def test_photos_distillation_trains_publishes_and_resumes_exactly(tmp_path, tiny_teacher):
    """--images DIR --distill-from M (no store) trains and publishes; SIGTERM mid-run, then the
    same command, ends with the uninterrupted weights; a resume with another teacher is refused."""
    import json
    from conftest import SAMPLE
    from keras_openpose.config import load_yaml
    from keras_openpose.errors import DataError
    from keras_openpose.model.networks import load_network

    def argv(name):
        return ["--images", SAMPLE / "train2017", "--distill-from", tiny_teacher, "--init-from", tiny_teacher,
                "--effect", "_motion_blur", "--config", "tiny", "--crop", "128", "--steps", "4",
                "--steps-per-epoch", "2", "--batch-size", "2", "--precision", "float32", "--lr", "1e-3",
                "--out", tmp_path / name, "--models-dir", tmp_path / f"models_{name}"]
    r = _cli_process(argv("ref"))
    assert r.returncode == 0, r.stderr[-2000:]
    published = tmp_path / "models_ref" / "pose_motion_blur.keras"
    assert published.is_file()
    man = json.loads((tmp_path / "models_ref" / "manifest.json").read_text())
    assert man["pose_motion_blur"]["distill_from"] == str(tiny_teacher)
    assert load_yaml(tmp_path / "ref" / "config.yaml")["train"]["distill_from"] == str(tiny_teacher)
    head = (tmp_path / "ref" / "training.csv").read_text().splitlines()[0].split(",")
    rows = [dict(zip(head, map(float, ln.split(",")))) for ln in (tmp_path / "ref" / "training.csv").read_text().splitlines()[1:]]
    assert all(v == 0.0 for row in rows for k, v in row.items() if k != "epoch" and k != "loss"
               and not k.startswith("distill_"))                # photos: no annotated loss
    assert all(row[k] > 0 for row in rows for k in head if k.startswith("distill_"))

    r = _cli_process(argv("resumed"), "step:3:TERM")             # SIGTERM before step 3 (epoch 2 of 2)
    assert r.returncode == 42, r.stderr[-2000:]
    assert not (tmp_path / "resumed" / "model.keras").exists()
    r = _cli_process(argv("resumed"))
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "resumed" / "training.csv").read_text() == (tmp_path / "ref" / "training.csv").read_text()
    ref, got = load_network(published), load_network(tmp_path / "models_resumed" / "pose_motion_blur.keras")
    assert got.info["teacher"]["sha256"] == ref.info["teacher"]["sha256"]
    for a, b in zip(ref.get_weights(), got.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)

    from keras_openpose.train.loop import train_expert
    other = tmp_path / "other.keras"
    other.write_bytes(published.read_bytes())
    cfg = _cfg(steps=6, steps_per_epoch=2, effect="motion_blur", distill_from=str(other), images=str(SAMPLE / "train2017"),
               augment=AugmentConfig(crop=128))
    with pytest.raises(DataError, match="trained with teacher .*t.keras, this run gives .*other.keras"):
        train_expert(cfg, None, tmp_path / "ref", verbose=0)


def test_photos_without_teacher_are_refused(tmp_path):
    from conftest import SAMPLE
    from keras_openpose.cli import train_pose
    from keras_openpose.errors import DataError
    with pytest.raises(DataError, match="--images .*give --distill-from") as e:
        train_pose(["--images", str(SAMPLE / "train2017"), "--config", "tiny", "--out", str(tmp_path / "run"),
                    "--models-dir", str(tmp_path / "models")])
    assert "\n" not in str(e.value) and not (tmp_path / "run").exists()
    with pytest.raises(DataError, match="no training data"):
        train_pose(["--config", "tiny", "--out", str(tmp_path / "run")])


def test_dark_training_effect_mixes_darken_and_low_light():
    """The dark expert's training effect draws both kinds, each within its documented range, and
    is a function of the seed."""
    import cv2
    from conftest import SAMPLE
    from keras_openpose.data.domains import (DARK_TRAIN_MIX, TRAIN_STRENGTH_RANGE, dark_training_effect,
                                             darken, random_effect)
    img = cv2.imread(str(sorted((SAMPLE / "train2017").glob("*.jpg"))[0]))[:160, :200]
    kinds = []
    for seed in range(12):
        out, p = dark_training_effect(img, np.random.default_rng(seed))
        kinds.append(p["kind"])
        np.testing.assert_array_equal(out, random_effect(img, "dark", np.random.default_rng(seed)))
        if p["kind"] == "darken":
            assert TRAIN_STRENGTH_RANGE["dark"][0] <= p["factor"] <= TRAIN_STRENGTH_RANGE["dark"][1]
            np.testing.assert_array_equal(out, darken(img, p["factor"]))
        else:
            lo, hi = DARK_TRAIN_MIX["exposure"]
            assert lo <= p["exposure"] <= hi and isinstance(p["keep_highlights"], bool)
            assert out.mean() < img.mean()
    assert kinds == [dark_training_effect(img, np.random.default_rng(s))[1]["kind"] for s in range(12)]
    assert {"darken", "low_light"} <= set(kinds), kinds
