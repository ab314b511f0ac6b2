"""Export to ONNX, LiteRT and OpenVINO with a parity check; every runtime behind one PoseEstimator."""
import json

import numpy as np
import pytest

from keras_openpose.errors import DataError


@pytest.fixture(scope="module")
def hand_model(tmp_path_factory):
    """An (untrained) tiny network for the 21-keypoint hand skeleton, saved in bfloat16."""
    from keras_openpose.codec import PafCodec
    from keras_openpose.model.networks import build_model, save_model_atomic
    from keras_openpose.skeleton import get_skeleton
    path = tmp_path_factory.mktemp("m") / "hand.keras"
    return save_model_atomic(build_model("tiny", PafCodec(get_skeleton("hand21")), precision="mixed_bfloat16"), path)


# the saved Keras model computes in bfloat16 (as trained on this CPU), the exports in float32 (OpenVINO:
# bf16 on AMX CPUs): maps agree to bf16 precision; the export's own check compares float32 with float32
@pytest.mark.slow
@pytest.mark.parametrize("fmt,suffix,tolerance", [("onnx", ".onnx", 0.03), ("litert", ".tflite", 0.03),
                                                   ("openvino", ".xml", 0.05)])
def test_export_parity_and_the_same_maps_through_from_weights(tmp_path, hand_model, val_split, fmt, suffix, tolerance):
    from keras_openpose.config import InferenceOptions
    from keras_openpose.export import export_model
    from keras_openpose.inference.estimator import PoseEstimator
    out = tmp_path / f"hand{suffix}"
    rep = export_model(hand_model, fmt, out)
    assert rep["max_abs_diff"] <= 1e-3 and rep["images"] == 4
    opts = InferenceOptions(box_size=256, flip=True)
    exported = PoseEstimator.from_weights(out, opts, peak_threshold=0.3)     # skeleton etc. from the file alone
    keras_est = PoseEstimator.from_weights(hand_model, opts, peak_threshold=0.3)
    assert exported.skeleton.name == "hand21" and exported.runtime.name == fmt
    assert exported.codec.decode_options.peak_threshold == 0.3
    img = val_split.read(val_split.image_ids[0])
    (h1, p1, s1), (h2, p2, s2) = exported.maps(img), keras_est.maps(img)
    assert s1 == s2 and h1.shape == h2.shape and h1.shape[2] == 22 and p1.shape == p2.shape and p1.shape[2] == 40
    assert np.abs(h1 - h2).max() <= tolerance and np.abs(p1 - p2).max() <= tolerance
    if fmt == "litert":
        assert json.loads((tmp_path / "hand.tflite.json").read_text())["codec"]["skeleton"]["name"] == "hand21"


@pytest.fixture(scope="module")
def batchnorm_model(tmp_path_factory):
    """A tiny batch-norm network with variance-preserving random kernels (maps of a real scale,
    unlike the N(0, 0.01) init whose outputs are ~1e-11) and its largest map value on a real image."""
    import dataclasses

    from keras_openpose.config import PROJECT_ROOT
    from keras_openpose.inference.runtimes import KerasRuntime
    from keras_openpose.inference.estimator import preprocess
    from keras_openpose.data.images import read_image
    from keras_openpose.model.networks import build_model, get_config, save_model_atomic
    m = build_model(dataclasses.replace(get_config("tiny"), norm="batch"), precision="float32")
    rng = np.random.default_rng(0)
    for v in m.weights:
        if v.path.endswith("kernel"):
            fan_in = int(np.prod(v.shape[:-1])) if v.shape[-1] != 1 else int(np.prod(v.shape[:2]))
            v.assign((rng.standard_normal(v.shape) / np.sqrt(fan_in)).astype(np.float32))
    img = read_image(sorted((PROJECT_ROOT / "dataset" / "sample" / "val2017").glob("*.jpg"))[0])
    paf, heat = KerasRuntime(m)(preprocess(img, 368, 1.0, 8)[0][None])
    scale = max(float(np.abs(paf).max()), float(np.abs(heat).max()))
    return save_model_atomic(m, tmp_path_factory.mktemp("bn") / "bn.keras"), scale


@pytest.mark.slow
@pytest.mark.parametrize("fmt,suffix", [("onnx", ".onnx"), ("openvino", ".xml")])
def test_int8_export_calibrated_on_real_images(tmp_path, batchnorm_model, fmt, suffix):
    """ONNX Runtime's static QDQ quantisation (OpenVINO runs the same graph as int8): the maps stay
    within a quarter of their own scale on real images, and the file is really quantised.

    On a CPU without VNNI (AVX2 only) both runtimes multiply uint8 x int8 pairs with a 16-bit
    saturating add (``vpmaddubsw``), which these random full-range kernels overflow: measured 0.49
    of the scale there (the trained network stays within the export tolerance there: 0.20 vs 0.066
    on an AMX CPU, and keeps its AP). ``reduce_range`` (7-bit weights) avoids the overflow but made
    the trained network fail its parity check (0.44), so the export keeps 8 bits."""
    from keras_openpose.config import PROJECT_ROOT
    from keras_openpose.export import export_model
    from keras_openpose.model.precision import cpu_flags
    path, scale = batchnorm_model
    out = tmp_path / f"q{suffix}"
    rep = export_model(path, fmt, out, precision="int8", calibration_images=PROJECT_ROOT / "dataset" / "sample" / "train2017")
    vnni = bool((cpu_flags() or frozenset()) & {"avx512_vnni", "avx_vnni", "amx_int8"})
    assert rep["precision"] == "int8" and 0 < rep["max_abs_diff"] <= (0.25 if vnni else 0.6) * scale, (rep, scale, vnni)
    if fmt == "onnx":
        import onnx
        ops = {n.op_type for n in onnx.load(str(out)).graph.node}
        assert {"QuantizeLinear", "DequantizeLinear"} <= ops
        from keras_openpose.inference.estimator import PoseEstimator
        assert PoseEstimator.from_weights(out).codec.skeleton.name == "openpose_coco18"


@pytest.mark.slow
def test_a_failed_parity_check_leaves_no_file(tmp_path, batchnorm_model, monkeypatch):
    """Every format's files (.onnx; .xml + .bin; .tflite + its .json) are removed when the check
    fails. The network is the batch-norm one: any network serves, and without GroupNorm's
    reshapes and moments its three conversions take a third of the time."""
    from keras_openpose import export
    path, _ = batchnorm_model
    monkeypatch.setitem(export.TOLERANCE, "fp32", -1.0)          # any difference fails
    for fmt, name in (("onnx", "x.onnx"), ("openvino", "x.xml"), ("litert", "x.tflite")):
        with pytest.raises(DataError, match="parity check failed.*the file is removed"):
            export.export_model(path, fmt, tmp_path / name)
    assert not list(tmp_path.iterdir())


def test_export_refuses_what_it_cannot_do(tmp_path, hand_model):
    from keras_openpose.export import export_model
    with pytest.raises(DataError, match="--precision fp16 for onnx"):
        export_model(hand_model, "onnx", tmp_path / "x.onnx", precision="fp16")
    with pytest.raises(DataError, match="needs --calibration-images"):
        export_model(hand_model, "onnx", tmp_path / "x.onnx", precision="int8")
    with pytest.raises(DataError, match="needs --calibration-images"):
        export_model(hand_model, "litert", tmp_path / "x.tflite", precision="int8")
    with pytest.raises(DataError, match="unknown model file type"):
        from keras_openpose.inference.runtimes import load_runtime
        load_runtime(tmp_path / "model.pt")


def test_channel_equalisation_keeps_the_maps_and_narrows_the_widest_channel():
    """A ReLU channel 100x wider than the others (as conv5_2_sep of the trained Lightweight OpenPose,
    812 vs a median of 6.5) is shrunk to the median, the depthwise kernel after it takes the factor back."""
    import keras
    from keras import layers

    from keras_openpose.export import equalize_channel_ranges
    keras.utils.set_random_seed(0)       # the initial weights: the wide channel's factor depends on them
    inp = keras.Input((None, None, 3))
    x = layers.ReLU(name="r")(layers.Conv2D(8, 1, name="c")(inp))
    y = layers.DepthwiseConv2D(3, padding="same", name="dw")(layers.ZeroPadding2D(1)(x))
    m = keras.Model(inp, layers.Conv2D(4, 1)(layers.ReLU()(y)))
    rng = np.random.default_rng(0)
    k, b = m.get_layer("c").get_weights()
    k[..., 5] *= 100
    b[5] = 1.0
    m.get_layer("c").set_weights([k, b])
    xs = [rng.uniform(0, 1, (1, 16, 16, 3)).astype(np.float32) for _ in range(3)]
    before = [np.asarray(m(x)) for x in xs]
    probe = keras.Model(inp, x)
    wide = [float(np.asarray(probe(x)).max(axis=(0, 1, 2))[5]) for x in xs]
    done = equalize_channel_ranges(m, xs)
    assert done and done[0][0] == "c" and done[0][1] > 10
    assert max(float(np.asarray(probe(x)).max(axis=(0, 1, 2))[5]) for x in xs) < max(wide) / 10
    for x, ref in zip(xs, before):
        np.testing.assert_allclose(np.asarray(m(x)), ref, rtol=1e-4, atol=1e-5)


def _ap(est, split, ids):
    from keras_openpose.evaluate.runs import score_detections
    dets = []
    for i in ids:
        img = split.read(i)
        heat, paf, stride = est.maps(img)
        dets += [{"image_id": int(i), "category_id": 1, **q} for q in est.decode(heat, paf, stride, img.shape[:2])]
    return score_detections(split, ids, dets)["stats"]["AP"]


@pytest.mark.slow
def test_int8_export_of_the_trained_network_keeps_its_ap(tmp_path, val_split):
    """The real network (made from the shipped IR) exported to ONNX int8, calibrated on train2017:
    AP within 0.97 of Keras fp32 on the first 12 val2017 images with people at input height 256
    (measured: Keras fp32 AP 0.489 there, this int8 export 0.489; the previous recipe, without channel
    equalisation and calibrated at height 368, 0.369 (and its parity 0.50 failed the check); per-tensor
    weights 0.0, no person found on all of val2017). The fp32 reference is measured here too, so that a
    change of the decoder moves both. Dilated convolutions are single Conv nodes."""
    import onnx

    from keras_openpose.config import PROJECT_ROOT, InferenceOptions
    from keras_openpose.export import TOLERANCE, export_model
    from keras_openpose.inference.estimator import PoseEstimator
    from keras_openpose.model.weights import PRETRAINED_IR, PRETRAINED_WEIGHTS, ensure_pretrained
    if not PRETRAINED_IR.is_file():
        pytest.skip("the shipped IR is missing")
    out = tmp_path / "lwop_int8.onnx"
    rep = export_model(ensure_pretrained(PRETRAINED_WEIGHTS), "onnx", out, precision="int8",
                       calibration_images=PROJECT_ROOT / "dataset" / "sample" / "train2017")
    assert rep["max_abs_diff"] <= TOLERANCE["int8"]          # measured 0.066; the previous recipe 0.50
    ops = [n.op_type for n in onnx.load(str(out)).graph.node]
    assert "SpaceToDepth" not in ops and ops.count("Conv") == 58
    opts = InferenceOptions(box_size=256)
    ids = val_split.ids_with_people()[:12]
    fp32 = _ap(PoseEstimator.from_weights(PRETRAINED_WEIGHTS, opts), val_split, ids)
    int8 = _ap(PoseEstimator.from_weights(out, opts), val_split, ids)
    assert fp32 > 0.3 and int8 >= 0.97 * fp32, (int8, fp32)
