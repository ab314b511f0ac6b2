"""Scripts: --help with examples, booleans that parse False, one-line errors naming the file."""
import argparse
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, run_script
from keras_openpose.cli import str2bool

SCRIPTS = ["training/generate_masks_coco2014.py", "training/generate_hdf5_coco2014.py", "training/train_pose.py",
           "train_domain_classifier/train.py", "train_domain_classifier/validate.py",
           "train_domain_classifier/ensemble.py", "eval/eval_coco2014_single_scale.py",
           "dataset/make_test_domains.py", "util_ainu.py", "training/convert_weights.py", "-m keras_openpose.predict", "-m keras_openpose.export",
           "dataset/check_coco.py"]


def _run(*args, timeout=120):
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)


def _error_line(r):
    """The one error line (TensorFlow's own start-up log lines on stderr are not ours)."""
    assert "Traceback" not in r.stderr, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, r.stderr
    return lines[0]


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_script_has_help_with_examples(script):
    r = _run(*script.split(), "--help")
    assert r.returncode == 0, r.stderr
    assert "examples:" in r.stdout and "python" in r.stdout


def test_booleans_parse_false():
    assert str2bool("False") is False and str2bool("false") is False and str2bool("0") is False
    assert str2bool("True") is True
    with pytest.raises(argparse.ArgumentTypeError):
        str2bool("maybe")


def test_missing_image_is_a_one_line_error(tmp_path, val_split):
    import json
    import shutil
    root = tmp_path / "coco"
    (root / "annotations").mkdir(parents=True)
    (root / "val2017").mkdir()
    data = val_split.data
    keep = data["images"][:3]
    for im in keep[1:]:
        shutil.copy(val_split.image_path(im["id"]), root / "val2017" / im["file_name"])
    ids = {im["id"] for im in keep}
    sub = {**data, "images": keep, "annotations": [a for a in data["annotations"] if a["image_id"] in ids]}
    (root / "annotations" / "person_keypoints_val2017.json").write_text(json.dumps(sub))
    (tmp_path / "m").mkdir()
    r = _run("eval/eval_coco2014_single_scale.py", "--coco_dataType", "val2017", "--coco-root", str(root),
             "--weights", str(tmp_path / "m" / "missing.keras"))
    assert r.returncode == 2
    assert _error_line(r).endswith("missing.keras: model weights not found")
    r = _run("training/generate_masks_coco2014.py", "--coco-root", str(root), "--split", "val2017",
             "--out", str(tmp_path / "masks"))
    assert r.returncode == 0  # masks need only the annotations
    r = _run("training/generate_hdf5_coco2014.py", "--coco-root", str(root), "--split", "val2017",
             "--out", str(tmp_path / "s.h5"), "--workers", "1")
    # the first image is missing: skipped, counted and listed, never silently dropped
    assert r.returncode == 0, r.stderr
    assert "1 skipped" in r.stdout and keep[0]["file_name"] + ": image not found" in r.stdout


def test_non_coco_annotation_file_is_a_one_line_error(tmp_path):
    root = tmp_path / "coco"
    (root / "annotations").mkdir(parents=True)
    (root / "train2017").mkdir()
    bad = root / "annotations" / "person_keypoints_train2017.json"
    bad.write_text('{"images": [], "info": {}}')
    r = _run("training/generate_masks_coco2014.py", "--coco-root", str(root), "--split", "train2017", "--out",
             str(tmp_path / "m"))
    assert r.returncode == 2
    assert _error_line(r) == f"error: {bad}: not a COCO annotation file (no 'annotations' list)"


@pytest.fixture(scope="module")
def untrained_model(tmp_path_factory):
    from keras_openpose.model.networks import build_model
    path = tmp_path_factory.mktemp("m") / "tiny.keras"
    build_model("tiny").save(path)
    return path


def test_predict_on_an_image_and_a_video(tmp_path, pretrained_weights, val_split):
    """The shipped (trained) network: it finds the people of the sample images and decodes them in
    milliseconds (an untrained network's noise maps give hundreds of peaks and take seconds a frame)."""
    import json

    import cv2
    img = val_split.image_path(val_split.image_ids[0])
    r = run_script("-m", "keras_openpose.predict", "--weights", str(pretrained_weights), "--input", str(img),
             "--out", str(tmp_path / "img"), "--show-kpt-name", "--show-maps")
    assert r.returncode == 0, r.stderr[-1500:]
    over = cv2.imread(str(tmp_path / "img" / f"{img.name}_pose.jpg"))   # keyed by the file name
    h, w = cv2.imread(str(img)).shape[:2]
    assert over.shape[:2] == (h, 3 * w)  # overlay + heatmap panel + PAF panel
    poses = json.loads((tmp_path / "img" / "poses.json").read_text())
    assert f"{len(poses)} people in 1 frames" in r.stdout
    assert poses and all(p["image_id"] == img.name and len(p["keypoints"]) == 51 for p in poses)
    # a short video made from sample images
    video = tmp_path / "clip.mp4"
    vw = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 5, (320, 240))
    for i in val_split.image_ids[:4]:
        vw.write(cv2.resize(val_split.read(i), (320, 240)))
    vw.release()
    r = run_script("-m", "keras_openpose.predict", "--weights", str(pretrained_weights), "--input", str(video),
             "--out", str(tmp_path / "vid"), "--track", "--smooth", "--peak-threshold", "0.02", "--min-mean-score", "0")
    assert r.returncode == 0, r.stderr[-1500:]
    assert "in 4 frames" in r.stdout and (tmp_path / "vid" / "overlay.mp4").stat().st_size > 0
    cap = cv2.VideoCapture(str(tmp_path / "vid" / "overlay.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 4
    tracked = json.loads((tmp_path / "vid" / "poses.json").read_text())
    assert tracked and all(isinstance(p["id"], int) and p["id"] >= 1 for p in tracked)   # tracked people carry ids
    for f in {p["image_id"] for p in tracked}:                                          # one id per person a frame
        ids = [p["id"] for p in tracked if p["image_id"] == f]
        assert len(ids) == len(set(ids))


def test_eval_script_full_report_on_known_answer(tmp_path, val_split):
    """Ground truth written as the cached predictions: the eval script's report must say AP 1.0,
    PCK 1.0, and match every detection to its own GT id."""
    import json

    import pandas as pd
    ids = val_split.image_ids
    out = tmp_path / "results"
    run_dir = out / f"val2017-ours-open-pose-single-scale-{len(ids)}"
    run_dir.mkdir(parents=True)
    with open(run_dir / "predictions.jsonl", "w") as f:
        for i in ids:
            people = [{"keypoints": a["keypoints"], "score": 1.0} for a in val_split.anns_by_image[i]
                      if a["num_keypoints"] > 0 and not a["iscrowd"]]
            f.write(json.dumps({"image_id": i, "seconds": 0.01, "people": people}) + "\n")
    r = run_script("eval/eval_coco2014_single_scale.py", "--effect", "", "--coco_dataType", "val2017",
             "--coco-root", "dataset/sample", "--compute_keypoint", "False", "--eval_compute_keypoint", "True",
             "--out", str(out))
    assert r.returncode == 0, r.stderr[-1500:]
    assert "AP 1.000" in r.stdout
    csv = pd.read_csv(run_dir / "val2017-ours_result.csv").set_index("evaluation_metrics")["value"]
    assert csv["AP"] == pytest.approx(1.0) and csv["PCK@0.5 all"] == pytest.approx(1.0)
    assert csv["PCK@0.5 difficult"] == pytest.approx(1.0) and csv["NME all"] == pytest.approx(0.0)
    matched = json.loads((run_dir / "val2017-ours_result_matchGtId.json").read_text())
    by_id = {a["id"]: a for a in val_split.data["annotations"]}
    assert matched and all(by_id[d["gtId"]]["keypoints"] == d["keypoints"] for d in matched)
    assert len(json.loads((run_dir / "val2017-ours_result.json").read_text())) == len(matched)


@pytest.mark.slow
def test_ensemble_script_fuse_with_map_scores(tmp_path, untrained_model, train_split, val_split):
    """ensemble.py end to end: three experts + a classifier -> COCO report and map scores. The
    experts are copies of one network, so the fused maps are its maps (weights summing to 1): the
    command's map errors must be the one network's, computed here. Peaks of an untrained network
    are noise (hundreds per image, moved by a 1e-7 change of the maps), so the peak scores are
    taken at --peak-threshold 1.0, above every heatmap value: no peak, recall = precision = F1 = 0."""
    import json
    import shutil

    from keras_openpose.ensemble.classifier import train_classifier
    models = tmp_path / "models"
    models.mkdir()
    for d in ("normal", "dark", "motion_blur"):
        shutil.copy(untrained_model, models / f"pose_{d}.keras")
    train_classifier(train_split.image_dir, None, models / "domain_classifier.pt", epochs=1, max_images=4,
                     progress=False, feature_reps=1)
    r = run_script("train_domain_classifier/ensemble.py", "--coco_dataType", "val2017", "--coco-root",
             str(REPO / "dataset" / "sample"), "--models-dir", str(models), "--mode", "fuse", "--fir_img_num", "3",
             "--map-scores", "--peak-threshold", "1.0", "--out", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr[-1500:]
    run = tmp_path / "out" / "val2017-ensemble_fuse-open-pose-single-scale-3"
    ms = json.loads((run / "map_scores.json").read_text())
    from keras_openpose.evaluate.maps import map_scores
    from keras_openpose.inference.estimator import PoseEstimator
    est = PoseEstimator.from_weights(untrained_model)
    top = []

    def maps(img):
        m = est.maps(img)
        top.append(float(m[0][..., :-1].max()))
        return m
    ref = map_scores(maps, val_split, val_split.image_ids[:3], codec=est.codec, progress=False)
    assert max(top) < 1.0 and ref["peaks_per_image"] > 0          # the flag, not the maps, removed every peak
    assert ms["images"] == 3 and ms["peaks_per_image"] == 0
    assert (ms["recall"], ms["precision"], ms["f1"]) == (0.0, 0.0, 0.0)
    for k in ("heatmap_mse", "paf_mse"):     # float32 rounding of w1 M + w2 M + w3 M only
        assert ms[k] == pytest.approx(ref[k], rel=1e-5), k
    assert (run / "val2017-ensemble_fuse_result.csv").exists() and "keypoint F1" in r.stdout


def test_pipelined_prediction_equals_one_frame_at_a_time(tmp_path, untrained_model, val_split):
    """predict_source overlaps reading / decoding of frame t with the network on frame t+1: the people
    must be exactly those of a plain loop, in order, and max_frames must hold."""
    import json
    import shutil

    from keras_openpose.config import InferenceOptions
    from keras_openpose.inference.estimator import PoseEstimator
    from keras_openpose.predict import predict_source
    d = tmp_path / "imgs"
    d.mkdir()
    ims = val_split.data["images"][:4]
    for im in ims:
        shutil.copy(val_split.image_path(im["id"]), d / im["file_name"])
    opts = InferenceOptions(box_size=128)
    r = predict_source(str(d), tmp_path / "out", weights=untrained_model, options=opts, max_frames=3,
                       decode={"peak_threshold": 0.02, "min_mean_score": 0.0})
    est = PoseEstimator.from_weights(untrained_model, opts, peak_threshold=0.02, min_mean_score=0.0)
    expected = [{"image_id": f.name, "category_id": 1, **p}
                for f in sorted(d.iterdir())[:3] for p in est.estimate(val_split.read(int(f.stem)))]
    got = json.loads((tmp_path / "out" / "poses.json").read_text())
    assert r["frames"] == 3 and len(expected) > 0
    assert [g["image_id"] for g in got] == [e["image_id"] for e in expected]
    np.testing.assert_allclose([g["keypoints"] for g in got], [e["keypoints"] for e in expected], atol=1e-4)
