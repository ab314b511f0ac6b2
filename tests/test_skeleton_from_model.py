"""The skeleton always comes from the model files (issue 20 item 4, issue 21 item 4): disagreement,
cached-score evaluation and the ensemble read the experts' limbs from their files, never re-derive
them from the test annotations; experts with different skeletons are refused. Also the leftovers
of issue 21: the training lock before TensorFlow, keypoint names at ``--init-from``, eval overlay
write failures as one line."""
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, SAMPLE
from keras_openpose.errors import DataError

#: COCO nose, shoulders, hips, wrists under names no shipped skeleton has, and no links: the
#: skeleton is derived from the annotations (a minimum spanning tree of keypoint distances).
KEEP = [0, 5, 6, 11, 12, 9, 10]
NAMES = [f"k{i}" for i in range(len(KEEP))]
#: The test annotations list the keypoints in reverse (as another data set may): their spanning
#: tree joins other keypoints than the training annotations' (checked below).
TEST_ORDER = list(range(len(KEEP)))[::-1]


def _subset(split_name, out, order=None):
    d = json.loads((SAMPLE / "annotations" / f"person_keypoints_{split_name}.json").read_text())
    d["categories"] = [{"id": 1, "name": "thing", "supercategory": "thing", "keypoints": NAMES, "skeleton": []}]
    for a in d["annotations"]:
        kp = np.asarray(a["keypoints"], float).reshape(-1, 3)[KEEP]
        kp = kp[order] if order is not None else kp
        a["keypoints"], a["num_keypoints"] = kp.ravel().tolist(), int((kp[:, 2] > 0).sum())
    out.write_text(json.dumps(d))
    return d


def _limbs(skeleton):
    return [skeleton.limb_name(i) for i in range(skeleton.num_limbs)]


@pytest.fixture(scope="module")
def derived(tmp_path_factory):
    """Train / test annotation files whose data-derived skeletons differ, and three experts (one
    tiny network, copied) trained, so to speak, on the train file's skeleton."""
    from keras_openpose.codec import PafCodec
    from keras_openpose.config import resolve_skeleton
    from keras_openpose.model.networks import build_model, save_model_atomic
    root = tmp_path_factory.mktemp("derived")
    train = _subset("train2017", root / "train.json")
    test = _subset("val2017", root / "test.json", TEST_ORDER)
    model_sk = resolve_skeleton("auto", train, "train.json")
    data_sk = resolve_skeleton("auto", test, "test.json")
    assert model_sk.added_links and set(_limbs(model_sk)) != set(_limbs(data_sk))     # the premise of the test
    models = root / "models"
    path = save_model_atomic(build_model("tiny", PafCodec(model_sk), precision="float32"), models / "pose_normal.keras")
    for d in ("dark", "motion_blur"):
        (models / f"pose_{d}.keras").write_bytes(path.read_bytes())
    return {"root": root, "test": root / "test.json", "test_data": test, "models": models,
            "model_sk": model_sk, "data_sk": data_sk}


def test_model_skeleton_is_read_without_building_the_network(derived):
    from keras_openpose.model.networks import load_network
    from keras_openpose.inference.runtimes import model_skeleton, models_skeleton
    sk = model_skeleton(derived["models"] / "pose_normal.keras")
    assert sk == derived["model_sk"] == load_network(derived["models"] / "pose_normal.keras").codec.skeleton
    assert models_skeleton(sorted(derived["models"].glob("pose_*.keras"))) == sk
    with pytest.raises(DataError, match="model file not found"):
        model_skeleton(derived["root"] / "missing.keras")


def _write_results(res, split_name, dets_by_tag):
    for tag, dets in dets_by_tag.items():
        run = res / f"{split_name}-{tag}-open-pose-single-scale-1"
        run.mkdir(parents=True, exist_ok=True)
        (run / f"{split_name}-{tag}_result.json").write_text(json.dumps(dets))


def test_disagreement_uses_the_models_limbs_not_the_test_datas(derived, tmp_path):
    """Two experts return the ground truth, the third moves keypoint k1 by 6 px: exactly the
    model's limbs that end at k1 disagree (the test data's skeleton joins k1 elsewhere)."""
    from keras_openpose.cli import disagreement
    gts = [a for a in derived["test_data"]["annotations"] if a["num_keypoints"] > 0 and not a["iscrowd"]]
    exact = [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0} for a in gts]
    moved = []
    for d in exact:
        kp = np.asarray(d["keypoints"], float).reshape(-1, 3)
        kp[1, 0] += 6.0 * (kp[1, 2] > 0)
        moved.append({**d, "keypoints": kp.ravel().tolist()})
    res = tmp_path / "results"
    _write_results(res, "test", {"ours": exact, "dark": exact, "motion_blur": moved})
    argv = ["--annotations", str(derived["test"]), "--images", str(SAMPLE / "val2017"), "--results", str(res),
            "--models-dir", str(derived["models"]), "--out", str(tmp_path / "dis")]
    disagreement(argv)
    rep = json.loads((tmp_path / "dis" / "test-three-model-disagreement.json").read_text())
    model_limbs = _limbs(derived["model_sk"])
    assert list(rep["limbs"]) == model_limbs and list(rep["limbs"]) != _limbs(derived["data_sk"])
    at_k1 = {n for n in model_limbs if "k1" in n.split("-")}
    assert at_k1 and at_k1 != {n for n in _limbs(derived["data_sk"]) if "k1" in n.split("-")}
    assert {n for n, v in rep["limbs"].items() if v["transl"] > 0} == at_k1
    assert all(rep["limbs"][n]["transl"] == 0.0 for n in model_limbs if n not in at_k1)
    # an expert trained with another skeleton (the same keypoints, other limbs) is refused by name
    other = tmp_path / "other"
    other.mkdir()
    for d in ("normal", "motion_blur"):
        (other / f"pose_{d}.keras").write_bytes((derived["models"] / "pose_normal.keras").read_bytes())
    from keras_openpose.codec import PafCodec
    from keras_openpose.model.networks import build_model, save_model_atomic
    save_model_atomic(build_model("tiny", PafCodec(derived["data_sk"]), precision="float32"), other / "pose_dark.keras")
    with pytest.raises(DataError, match=r"experts with different skeletons: .*limbs"):
        disagreement(argv[:-4] + ["--models-dir", str(other), "--out", str(tmp_path / "dis2")])
    # without the experts' files, only an explicit --skeleton names the layout
    with pytest.raises(DataError, match="model file not found; the limbs are the experts' own"):
        disagreement(argv[:-4] + ["--models-dir", str(tmp_path / "none"), "--out", str(tmp_path / "dis3")])
    with pytest.raises(DataError, match=r"--skeleton dataset: the expert's limbs"):   # not the experts': refused
        disagreement(argv + ["--skeleton", "dataset"])


def test_cached_scores_take_the_models_skeleton(derived, tmp_path, monkeypatch):
    """Eval with --compute_keypoint False and the ensemble's `all` mode on cached predictions: the
    skeleton handed to scoring is the model file's (no network is built)."""
    import keras_openpose.evaluate.runs as ev
    from keras_openpose.cli import ensemble, eval_single_scale
    seen = []
    real = ev.evaluate_predictor

    def spy(*args, **kw):
        seen.append(kw["skeleton"])
        return real(*args, **kw)
    monkeypatch.setattr(ev, "evaluate_predictor", spy)
    monkeypatch.setattr("keras_openpose.inference.estimator.PoseEstimator.from_weights",
                        lambda *a, **k: pytest.fail("no network is loaded to score cached predictions"))
    data = derived["test_data"]
    ids = [im["id"] for im in data["images"]]
    res = tmp_path / "results"
    for tag in ("ours", "dark", "motion_blur"):
        run = res / f"test-{tag}-open-pose-single-scale-{len(ids)}"
        run.mkdir(parents=True)
        with open(run / "predictions.jsonl", "w") as f:
            for i in ids:
                people = [{"keypoints": a["keypoints"], "score": 1.0} for a in data["annotations"]
                          if a["image_id"] == i and a["num_keypoints"] > 0 and not a["iscrowd"]]
                f.write(json.dumps({"image_id": i, "seconds": 0.0, "people": people}) + "\n")
    common = ["--annotations", str(derived["test"]), "--images", str(SAMPLE / "val2017"), "--compute_keypoint", "False",
              "--out", str(res), "--models-dir", str(derived["models"])]
    eval_single_scale(common)
    ensemble(common + ["--mode", "all"])
    assert len(seen) == 4 and all(s == derived["model_sk"] for s in seen)
    pck = json.loads((res / f"test-ours-open-pose-single-scale-{len(ids)}" / "summary.json").read_text())["pck"]
    assert pck["all"] == pytest.approx(1.0)        # the ground truth as predictions: the known answer
    with pytest.raises(DataError, match="model file not found"):
        eval_single_scale(common[:-2] + ["--models-dir", str(tmp_path / "none")])


# ------------------------------------------------------------------------------------------
# issue 21 leftovers
# ------------------------------------------------------------------------------------------

LOCKED = """
import sys; sys.path.insert(0, {repo!r})
from keras_openpose.cli import run, train_pose
try:
    run(train_pose, {argv!r})
finally:
    print("tensorflow imported:", "tensorflow" in sys.modules)
"""


def test_training_lock_is_checked_before_tensorflow(tmp_path, train_store):
    from keras_openpose.files import OutputLock
    argv = ["--store", str(train_store), "--config", "tiny", "--steps", "2", "--out", str(tmp_path / "run"),
            "--models-dir", str(tmp_path / "models")]
    with OutputLock(tmp_path / "run" / "run"):
        r = subprocess.run([sys.executable, "-c", LOCKED.format(repo=str(REPO), argv=argv)], cwd=REPO,
                           capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "run/run: in use by another run" in r.stderr and "Traceback" not in r.stderr
    assert "tensorflow imported: False" in r.stdout


def test_init_from_with_other_keypoint_names_is_refused(tmp_path, train_store):
    """A model with COCO-17's layout under other names fits the weights exactly; it is refused by name."""
    from keras_openpose.codec import PafCodec
    from keras_openpose.config import ExperimentConfig, TrainConfig
    from keras_openpose.model.networks import build_model, save_model_atomic
    from keras_openpose.skeleton import COCO17, Skeleton
    from keras_openpose.train.loop import train_expert
    d = COCO17.to_dict()
    rename = {n: f"part{i}" for i, n in enumerate(d["keypoints"])}
    d = {**d, "name": "renamed", "keypoints": [rename[n] for n in d["keypoints"]],
         "limbs": [[rename[a], rename[b]] for a, b in d["limbs"]],
         "flip_pairs": [[rename[a], rename[b]] for a, b in d["flip_pairs"]]}
    d.pop("added_links", None)
    src = save_model_atomic(build_model("tiny", PafCodec(Skeleton.from_dict(d)), precision="float32"),
                            tmp_path / "src.keras")
    cfg = ExperimentConfig(model="tiny", skeleton="coco17", train=TrainConfig(steps=1, steps_per_epoch=1,
                                                                              batch_size=2, precision="float32"))
    with pytest.raises(DataError, match=r"--init-from .*src.keras: the model's keypoints \[part0, .*\] are not "
                                        r"the training data's \[nose, "):
        train_expert(cfg, train_store, tmp_path / "run", init_from=src, verbose=0)


def test_eval_overlay_write_failure_is_one_line(tmp_path, val_split, monkeypatch):
    from keras_openpose import files
    from keras_openpose.evaluate.runs import evaluate_predictor
    monkeypatch.setenv("KERAS_OPENPOSE_FAULT_AT", "atomic_write:1")        # the disk is full from the first write
    monkeypatch.setattr(files, "_FAULT_COUNTS", {})
    ids = val_split.image_ids[:2]
    name = val_split.images[ids[0]]["file_name"]
    with pytest.raises(DataError) as e:
        evaluate_predictor(lambda img: [], val_split, ids, tmp_path / "ev", progress=False, overlays=True,
                           evaluate=False)
    assert str(e.value) == f"{tmp_path / 'ev' / 'predictions' / name}: No space left on device"
    assert not list((tmp_path / "ev" / "predictions").iterdir())             # nothing half-written
