"""The shipped Lightweight OpenPose: imported exactly from its OpenVINO IR, and usable out of the box.

Known answers (the IR is the reference): on real sample images the Keras maps equal OpenVINO's maps
of the same IR run in float32 with float activations (the import dequantises the int8 weights and
quantises no activation) within 1e-3 of the map scale (measured: 1.8e-6), and the AP on val2017
images is the same. The IR as shipped also fake-quantises its activations to 8 bits; its maps differ
by up to 0.45 and it scores lower (0.352 vs 0.368 on all 79 images; ``bench/import_parity.py``).
"""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from keras_openpose.config import InferenceOptions
from keras_openpose.errors import DataError
from keras_openpose.evaluate.runs import score_detections
from keras_openpose.model.weights import (PRETRAINED_IR, PRETRAINED_WEIGHTS, ensure_pretrained,
                                          openvino_float_model, read_openvino_ir)

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def pretrained():
    return ensure_pretrained(PRETRAINED_WEIGHTS)


def test_shipped_ir_is_small_and_licensed():
    files = list(PRETRAINED_IR.parent.iterdir())
    assert {f.name for f in files} >= {"human-pose-estimation-0001.xml", "human-pose-estimation-0001.bin", "LICENSE",
                                       "README.md"}
    assert all(f.stat().st_size <= 5 * 2**20 for f in files)
    assert "Apache License" in (PRETRAINED_IR.parent / "LICENSE").read_text()[:200]


def test_ir_reads_into_the_exact_architecture(pretrained):
    from keras_openpose.model.networks import build_model, load_network
    ir = read_openvino_ir(PRETRAINED_IR)
    assert len(ir["layers"]) == 58                                 # every convolution of the IR
    assert ir["outputs"] == {"Mconv7_stage2_L1": 38, "Mconv7_stage2_L2": 19}
    assert ir["input_scale"] == pytest.approx(1 / 255, rel=1e-4) and ir["input_offset"] == pytest.approx(-128 / 255, rel=1e-3)
    net = load_network(pretrained)
    assert net.count_params() == 4_099_058                        # the model card: 4.099 M
    assert build_model("lightweight").count_params() == 4_099_058
    k, b = ir["layers"]["conv5_1_dw"]
    assert k.shape == (3, 3, 512, 1) and net.get_layer("conv5_1_dw").dilation_rate == (2, 2)
    np.testing.assert_array_equal(net.get_layer("conv5_1_dw").get_weights()[0], k)
    np.testing.assert_array_equal(net.get_layer("conv5_1_dw").get_weights()[1], b)
    assert net.describe()["info"]["source"].startswith("OpenVINO IR")


def test_keras_maps_and_ap_equal_the_irs(pretrained, val_split):
    from keras_openpose.inference.runtimes import OpenVINORuntime
    from keras_openpose.inference.estimator import PoseEstimator
    opts = InferenceOptions(box_size=256)
    keras_est = PoseEstimator.from_weights(pretrained, opts)
    ir_est = PoseEstimator(OpenVINORuntime(PRETRAINED_IR, exact=True, model=openvino_float_model(PRETRAINED_IR)), opts)
    ids = [i for i in val_split.image_ids if val_split.anns_by_image[i]][:12]
    dets = {"keras": [], "ir": []}
    worst = scale = 0.0
    for i in ids:
        img = val_split.read(i)
        hk, pk, sk = keras_est.maps(img)
        ho, po, so = ir_est.maps(img)
        assert sk == so and hk.shape == ho.shape and pk.shape == po.shape
        worst = max(worst, np.abs(hk - ho).max(), np.abs(pk - po).max())
        scale = max(scale, np.abs(hk).max(), np.abs(pk).max())
        dets["keras"] += [{"image_id": i, "category_id": 1, **q} for q in keras_est.decode(hk, pk, sk, img.shape[:2])]
        dets["ir"] += [{"image_id": i, "category_id": 1, **q} for q in ir_est.decode(ho, po, so, img.shape[:2])]
    assert scale > 0.9                                            # real maps: peaks near 1
    assert worst <= 1e-3 * scale
    ap = {k: score_detections(val_split, ids, d, ap_draws=0)["stats"]["AP"] for k, d in dets.items()}
    assert ap["keras"] > 0.3                                      # a trained network, not a blank one
    assert ap["keras"] == pytest.approx(ap["ir"], abs=0.005)


def test_a_foreign_ir_runs_as_shipped(val_split):
    """The OMZ IR itself (NCHW, int8 activations) on OpenVINORuntime, with OpenPose COCO-18."""
    from keras_openpose.inference.estimator import PoseEstimator
    est = PoseEstimator.from_weights(PRETRAINED_IR, InferenceOptions(box_size=256))
    assert est.codec.num_heatmaps == 19 and est.codec.num_pafs == 38
    i = next(i for i in val_split.image_ids if len(val_split.anns_by_image[i]) == 1)
    people = est.estimate(val_split.read(i))
    assert people and max(p["score"] for p in people) > 0.3


def test_not_an_ir(tmp_path):
    bad = tmp_path / "x.xml"
    bad.write_text("<net/>")
    with pytest.raises(DataError, match="OpenVINO IR not found"):
        read_openvino_ir(bad)
    bad.with_suffix(".bin").write_bytes(b"")
    with pytest.raises(DataError, match="not an OpenVINO IR"):
        read_openvino_ir(bad)


def test_predict_works_out_of_the_box(tmp_path, pretrained):
    """``python -m keras_openpose.predict --input photo.jpg``: no --weights, the shipped network."""
    photo = REPO / "dataset" / "sample" / "val2017" / "000000397133.jpg"
    r = subprocess.run([sys.executable, "-m", "keras_openpose.predict", "--input", str(photo), "--out",
                        str(tmp_path / "out")], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    poses = json.loads((tmp_path / "out" / "poses.json").read_text())
    # COCO-17 keypoints out (the dataset's order); the man in front is found with most of his keypoints
    assert all(len(p["keypoints"]) == 3 * 17 for p in poses)
    assert any(p["score"] > 0.5 and sum(v > 0 for v in p["keypoints"][2::3]) >= 12 for p in poses)
    assert any((tmp_path / "out").glob("*_pose.jpg"))
