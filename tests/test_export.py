"""Export to ONNX, LiteRT and OpenVINO with a parity check; every runtime behind one PoseEstimator."""
import json

import numpy as np
import pytest

from keras_openpose.errors import DataError


@pytest.fixture(scope="module")
def hand_model(tmp_path_factory):
    """An (untrained) tiny network for the 21-keypoint hand skeleton, saved in bfloat16."""
    from keras_openpose.codec import PafCodec
    from keras_openpose.model import build_model, save_model_atomic
    from keras_openpose.skeleton import get_skeleton
    path = tmp_path_factory.mktemp("m") / "hand.keras"
    return save_model_atomic(build_model("tiny", PafCodec(get_skeleton("hand21")), precision="mixed_bfloat16"), path)


# the saved Keras model computes in bfloat16 (as trained on this CPU), the exports in float32 (OpenVINO:
# bf16 on AMX CPUs): maps agree to bf16 precision; the export's own check compares float32 with float32
@pytest.mark.parametrize("fmt,suffix,tolerance", [("onnx", ".onnx", 0.03), ("litert", ".tflite", 0.03),
                                                   ("openvino", ".xml", 0.05)])
def test_export_parity_and_the_same_maps_through_from_weights(tmp_path, hand_model, val_split, fmt, suffix, tolerance):
    from keras_openpose.config import InferenceOptions
    from keras_openpose.export import export_model
    from keras_openpose.inference import PoseEstimator
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


def test_export_refuses_what_it_cannot_do(tmp_path, hand_model):
    from keras_openpose.export import export_model
    with pytest.raises(DataError, match="--precision int8 for onnx"):
        export_model(hand_model, "onnx", tmp_path / "x.onnx", precision="int8")
    with pytest.raises(DataError, match="needs --calibration-images"):
        export_model(hand_model, "litert", tmp_path / "x.tflite", precision="int8")
    with pytest.raises(DataError, match="unknown model file type"):
        from keras_openpose.inference import load_runtime
        load_runtime(tmp_path / "model.pt")
