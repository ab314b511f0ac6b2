"""End to end on real non-human / non-COCO data (../shared/data/keypoints): store -> train the tiny
network -> evaluate -> predict, for hands (21 keypoints, no OKS sigmas), AI Challenger (14, several
people per image) and AP-10K animals (17, 54 species); and every command on OneHand10K."""
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, SHARED_KEYPOINTS, shared_split

pytestmark = pytest.mark.skipif(not SHARED_KEYPOINTS.is_dir(),
                                reason="../shared/data/keypoints (research-only images) is absent")

SETS = [  # annotation file, the skeleton `auto` must pick, training steps
    ("freihand/test_freihand.json", "hand21", 200),
    ("aic/test_aic.json", "aic14", 200),
    ("ap10k/test_ap10k.json", "ap10k17", 200),
]


def _labelled(split):
    return sum(int((np.asarray(a["keypoints"]).reshape(-1, 3)[:, 2] > 0).sum()) for a in split.data["annotations"]
               if a["num_keypoints"] > 0 and not a["iscrowd"])


@pytest.mark.parametrize("ann,skeleton,steps", SETS)
def test_store_train_evaluate_predict(tmp_path, ann, skeleton, steps):
    from keras_openpose.config import AugmentConfig, ExperimentConfig, InferenceOptions, TrainConfig
    from keras_openpose.evaluate import evaluate_predictor, map_scores
    from keras_openpose.inference import PoseEstimator, predict_source
    from keras_openpose.store import Store, build_store
    from keras_openpose.train import train_expert
    split = shared_split(ann)
    K = split.num_keypoints
    rep = build_store(split, tmp_path / "s.h5", workers=1, progress=False)
    assert rep["complete"] and Store(tmp_path / "s.h5").keypoints.shape[1:] == (K, 3)
    crop = 128
    cfg = ExperimentConfig(model="tiny", train=TrainConfig(
        batch_size=4, steps=steps, steps_per_epoch=steps // 2, learning_rate=2e-3, lr_step=int(0.75 * steps),
        lr_gamma=0.3, augment=AugmentConfig(crop=crop, enabled=False)))
    path = train_expert(cfg, tmp_path / "s.h5", tmp_path / "run", verbose=0)
    losses = [float(r.split(",")[1]) for r in (tmp_path / "run" / "training.csv").read_text().splitlines()[1:]]
    assert losses[-1] < 0.5 * losses[0], losses
    # the model file alone says which skeleton it predicts; people are evaluated at the training scale
    heights = [a["bbox"][3] / split.images[a["image_id"]]["height"] for a in split.data["annotations"]]
    box = int(round(0.6 * crop / np.median(heights) / 8) * 8)
    est = PoseEstimator.from_weights(path, InferenceOptions(box_size=box))
    assert est.skeleton.name == skeleton and est.skeleton.num_keypoints == K
    s = evaluate_predictor(est.estimate, split, split.image_ids, tmp_path / "eval", "run", progress=False,
                           skeleton=est.skeleton)
    has_sigmas = est.skeleton.oks_sigmas is not None
    assert (s["stats"] is not None) == has_sigmas and s["pck_alpha"] == (0.5 if has_sigmas else 0.2)
    assert s["pck_counts"]["all"][1] == _labelled(split)         # every labelled keypoint counted once
    # the maps learned the training images: heatmap peaks find most labelled keypoints
    ms = map_scores(est.maps, split, split.image_ids, codec=est.codec, progress=False)
    assert ms["recall"] >= 0.5, ms
    r = predict_source(str(split.image_dir), tmp_path / "pred", weights=path, options=InferenceOptions(box_size=box))
    poses = json.loads((tmp_path / "pred" / "poses.json").read_text())
    assert r["frames"] == len(split.images) and len(poses) == r["people"] > 0
    assert all(len(p["keypoints"]) == 3 * K for p in poses)
    print(json.dumps({"set": split.split, "skeleton": skeleton, "loss": [losses[0], losses[-1]],
                      "AP": s["stats"]["AP"] if has_sigmas else None, "pck": s["pck"]["all"],
                      "keypoint_recall": ms["recall"], "keypoint_f1": ms["f1"]}))


def _cli(*args, timeout=300):
    r = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, (args, r.stderr[-2000:])
    assert "Traceback" not in r.stderr
    return r.stdout


def test_every_command_on_a_hand_dataset(tmp_path):
    """OneHand10K through the scripts a user runs: check, masks, store, train, test domains, eval,
    ensemble (all experts), disagreement, predict; no flag names the skeleton."""
    ann = SHARED_KEYPOINTS / "onehand10k" / "test_onehand10k.json"
    split = shared_split("onehand10k/test_onehand10k.json")
    out = _cli("dataset/check_coco.py", "--annotations", str(ann))
    assert "4 images, 4 annotations (4 people with keypoints); missing 0, unreadable 0" in out
    _cli("training/generate_masks_coco2014.py", "--annotations", str(ann), "--out", str(tmp_path / "masks"))
    assert len(list((tmp_path / "masks").glob("*.png"))) == 4
    out = _cli("training/generate_hdf5_coco2014.py", "--annotations", str(ann), "--out", str(tmp_path / "h.h5"),
               "--masks", str(tmp_path / "masks"), "--workers", "1")
    assert "4 images, 4 people, 4 main people" in out
    models = tmp_path / "models"
    _cli("training/train_pose.py", "--store", str(tmp_path / "h.h5"), "--config", "tiny", "--steps", "60",
         "--steps-per-epoch", "30", "--batch-size", "4", "--crop", "128", "--lr", "0.002", "--out",
         str(tmp_path / "run"), "--models-dir", str(models), "--peak-threshold", "0.05")
    from keras_openpose.model import load_network, network_codec
    codec = network_codec(load_network(models / "pose_normal.keras"))
    assert codec.skeleton.name == "hand21" and codec.decode_options.peak_threshold == 0.05   # saved in the model
    for d in ("dark", "motion_blur"):   # stand-in experts for the ensemble and disagreement commands
        (models / f"pose_{d}.keras").write_bytes((models / "pose_normal.keras").read_bytes())
    _cli("dataset/make_test_domains.py", "--annotations", str(ann), "--domains", "normal,dark", "--out", str(tmp_path / "test"))
    test_ann = tmp_path / "test" / "annotations" / "person_keypoints_test_onehand10k_dark.json"
    assert json.loads(test_ann.read_text())["categories"][0]["keypoints"][0] == "wrist"
    res = tmp_path / "results"
    out = _cli("eval/eval_coco2014_single_scale.py", "--models-dir", str(models), "--annotations", str(ann),
               "--out", str(res), "--box-size", "168")
    assert "PCK@0.2" in out and "AP undefined" in out
    summary = json.loads(next(res.glob("test_onehand10k-ours-*/summary.json")).read_text())
    assert summary["stats"] is None and summary["pck_counts"]["all"][1] == _labelled(split) == 63
    _cli("train_domain_classifier/ensemble.py", "--models-dir", str(models), "--annotations", str(ann),
         "--mode", "all", "--out", str(res), "--box-size", "168")
    out = _cli("util_ainu.py", "--annotations", str(ann), "--results", str(res), "--out", str(tmp_path / "dis"))
    rep = json.loads((tmp_path / "dis" / "test_onehand10k-three-model-disagreement.json").read_text())
    assert list(rep["limbs"])[:2] == ["wrist-thumb1", "thumb1-thumb2"] and len(rep["limbs"]) == 20
    if rep["n_persons"]:   # three copies of one model: they agree exactly
        assert rep["total_transl"] == pytest.approx(0.0, abs=1e-9)
    out = _cli("-m", "keras_openpose.predict", "--weights", str(models / "pose_normal.keras"), "--input",
               str(ann.parent), "--out", str(tmp_path / "pred"), "--box-size", "168", "--show-kpt-name")
    poses = json.loads((tmp_path / "pred" / "poses.json").read_text())
    assert f"{len(poses)} people in 4 frames" in out and all(len(p["keypoints"]) == 63 for p in poses)
    assert len(list((tmp_path / "pred").glob("*_pose.jpg"))) == 4
