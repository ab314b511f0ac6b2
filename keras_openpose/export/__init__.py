"""Export a trained network for deployment: ONNX, LiteRT (``.tflite``) or OpenVINO IR.

The exported graph is the last stage only: input ``image (B, H, W, 3)`` float32 BGR 0..255 (the
normalisation is inside), outputs ``heatmaps (B, H/8, W/8, P + 1)`` and ``pafs (B, H/8, W/8, 2L)``,
height and width dynamic unless ``input_size`` fixes them. The decoder stays outside the graph.
The model's description (skeleton, stride, decoder options, input convention, network config) goes
with the file: ONNX ``metadata_props["keras_openpose"]``, OpenVINO ``rt_info["keras_openpose"]``,
LiteRT a ``<file>.json`` beside it (LiteRT flatbuffers have no free-form metadata here), so
:meth:`keras_openpose.inference.PoseEstimator.from_weights` reads any of them alone.

Every export ends with a parity check against Keras (float32) on real images; it fails past the
precision's tolerance.

    python -m keras_openpose.export --weights models/pose_normal.keras --format onnx --out models/pose_normal.onnx
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..files import atomic_path, write_json_atomic

FORMATS = {"onnx": ".onnx", "litert": ".tflite", "openvino": ".xml"}
#: Largest |exported - Keras float32| of any map value allowed by the parity check, per precision.
#: fp32: engines sum in different orders; a trained group-norm network (maps up to 1.5) differs from
#: Keras by 1.6e-3 in ONNX Runtime, OpenVINO and LiteRT alike (and they by up to 0.9e-3 from each
#: other), far below what moves a peak past the decoder's 0.1 threshold.
TOLERANCE = {"fp32": 5e-3, "fp16": 3e-2, "int8": 0.25}
META_KEY = "keras_openpose"


def float32_network(model):
    """A float32 copy of a :class:`~keras_openpose.model.PoseNetwork` (exporters need float32)."""
    from ..model import PoseNetwork
    cfg = dict(model.get_config(), precision="float32")
    copy = PoseNetwork.from_config(cfg)
    copy.set_weights(model.get_weights())
    return copy


def _signature(input_size):
    import tensorflow as tf
    h, w = input_size if input_size else (None, None)
    return [tf.TensorSpec((None, h, w, 3), tf.float32, name="image")]


def _maps_function(model, input_size):
    import tensorflow as tf

    @tf.function(input_signature=_signature(input_size))
    def maps(image):
        paf, heat = model(image, training=False)[-2:]
        return {"heatmaps": heat, "pafs": paf}
    return maps


def export_model(weights, fmt: str, out, precision: str = "fp32", input_size=None, calibration_images=None,
                 check_images=None) -> dict:
    """Export ``weights`` (a ``.keras`` network) to ``fmt`` at ``out`` and check parity.

    Args:
        fmt: ``onnx``, ``litert`` or ``openvino``.
        precision: ``fp32``; ``fp16`` (LiteRT, OpenVINO: weights in half precision); ``int8``
            (post-training quantisation calibrated on ``calibration_images``: LiteRT's converter;
            ONNX and OpenVINO through ONNX Runtime's static QDQ quantisation, per-channel int8
            weights and uint8 activations, which OpenVINO runs as int8: vgg19 at 368x552 on this
            2-core AMX CPU 202 ms vs 420 ms in bf16).
        input_size: ``(H, W)`` to fix the input size (default dynamic).
        calibration_images: a folder of images for int8.
        check_images: a folder of images for the parity check (default: the bundled sample).
    Returns:
        ``{"path", "format", "precision", "max_abs_diff", "tolerance", "images"}``.
    Raises:
        DataError: unknown format or precision, a missing dependency, or parity past tolerance.
    """
    from ..model import load_network
    if fmt not in FORMATS:
        raise DataError(f"--format {fmt!r}: use {', '.join(FORMATS)}")
    if precision not in TOLERANCE or (fmt == "onnx" and precision == "fp16"):
        raise DataError(f"--precision {precision} for {fmt}: supported are onnx fp32/int8, openvino and litert "
                        "fp32/fp16/int8")
    if precision == "int8" and not calibration_images:
        raise DataError("--precision int8 needs --calibration-images DIR")
    out = Path(out)
    model = float32_network(load_network(weights))
    description = json.dumps({**model.describe(), "export": {"format": fmt, "precision": precision,
                                                             "input_size": list(input_size) if input_size else None}})
    fn = _maps_function(model, input_size)
    out.parent.mkdir(parents=True, exist_ok=True)
    if precision == "int8" and fmt in ("onnx", "openvino"):
        _to_int8_via_onnx(fn, out, fmt, description, calibration_images, model.codec.stride, input_size)
    elif fmt == "onnx":
        _to_onnx(fn, out, description)
    elif fmt == "litert":
        _to_litert(fn, out, precision, calibration_images, model.codec.stride, input_size)
        # LiteRT names its outputs after the graph's (Identity, Identity_1, in any order): keep the map
        names = {t.name.split(":")[0]: key for key, t in fn.get_concrete_function().structured_outputs.items()}
        write_json_atomic({**json.loads(description), "litert_outputs": names}, out.with_name(out.name + ".json"))
    else:
        _to_openvino(fn, out, precision, description)
    try:
        return parity(model, out, precision, check_images, input_size)
    except DataError:   # a file that failed its check is not left where a runtime would load it
        for f in (out, out.with_suffix(".bin") if fmt == "openvino" else None, out.with_name(out.name + ".json")):
            if f is not None and f.exists():
                f.unlink()
        raise


def _to_onnx(fn, out: Path, description: str) -> None:
    try:
        import onnx
        import tf2onnx
    except ImportError as e:
        raise DataError(f"ONNX export needs tf2onnx and onnx ({e.name} is not installed: pip install tf2onnx onnx)") from None
    proto, _ = tf2onnx.convert.from_function(fn, input_signature=fn.input_signature, opset=17)
    entry = proto.metadata_props.add()
    entry.key, entry.value = META_KEY, description
    with atomic_path(out) as tmp:
        onnx.save(proto, str(tmp))


def _images(folder, n: int):
    from ..coco import read_image
    from ..inference import IMAGE_EXT
    files = sorted(f for f in Path(folder).iterdir() if f.suffix.lower() in IMAGE_EXT)[:n]
    if not files:
        raise DataError(f"{folder}: no images")
    return [read_image(f) for f in files]


def _network_inputs(folder, stride: int, input_size, n: int):
    """Network inputs ``(1, H, W, 3)`` of up to ``n`` images of ``folder``, resized as at inference
    (:func:`keras_openpose.inference.preprocess`, height ``input_size[0]`` when fixed, else the
    default box) and cropped / padded to ``input_size`` when fixed (calibration and parity)."""
    from ..config import InferenceOptions
    from ..codec import PAD_VALUE
    from ..inference import preprocess
    out = []
    for im in _images(folder, n):
        x = preprocess(im, input_size[0] if input_size else InferenceOptions().box_size, 1.0, stride)[0]
        if input_size:
            pad = np.full((*input_size, 3), PAD_VALUE, np.float32)
            x = x[:input_size[0], :input_size[1]]
            pad[:x.shape[0], :x.shape[1]] = x
            x = pad
        out.append(x[None].astype(np.float32))
    return out


def _to_int8_via_onnx(fn, out: Path, fmt: str, description: str, calibration_images, stride: int,
                      input_size) -> None:
    """float32 ONNX, then ONNX Runtime's static quantisation (QDQ, per-channel) calibrated on real
    images; for OpenVINO the quantised ONNX is converted to IR (its int8 kernels run the QDQ pairs)."""
    import tempfile
    try:
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    except ImportError:
        raise DataError("int8 ONNX / OpenVINO export needs onnxruntime (pip install onnxruntime)") from None
    import onnx
    inputs = _network_inputs(calibration_images, stride, input_size, 16)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(inputs)

        def get_next(self):
            x = next(self.it, None)
            return None if x is None else {"image": x}
    with tempfile.TemporaryDirectory() as d:
        fp32, q = Path(d) / "fp32.onnx", Path(d) / "int8.onnx"
        _to_onnx(fn, fp32, description)
        quantize_static(str(fp32), str(q), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        proto = onnx.load(str(q))
        if not any(e.key == META_KEY for e in proto.metadata_props):
            entry = proto.metadata_props.add()
            entry.key, entry.value = META_KEY, description
        if fmt == "onnx":
            with atomic_path(out) as tmp:
                onnx.save(proto, str(tmp))
            return
        onnx.save(proto, str(q))
        import openvino as ov
        try:
            ov_model = ov.convert_model(str(q))
        except Exception as e:  # OpenVINO's ONNX frontend: e.g. GroupNorm's dynamic reduction axes
            raise DataError(f"{out}: OpenVINO cannot read the int8 ONNX graph ({str(e).splitlines()[0][:120]}); "
                            "group-norm networks (tiny) export int8 to onnx or litert only") from None
        _save_openvino(ov_model, out, "int8", description)


def _to_litert(fn, out: Path, precision: str, calibration_images, stride: int, input_size) -> None:
    import tensorflow as tf
    conv = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn)
    if precision == "fp16":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_types = [tf.float16]
    elif precision == "int8":
        samples = _network_inputs(calibration_images, stride, input_size or (256, 256), 16)

        def representative():
            yield from ([x] for x in samples)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = representative
    data = conv.convert()
    with atomic_path(out) as tmp:
        tmp.write_bytes(data)


def _to_openvino(fn, out: Path, precision: str, description: str) -> None:
    """OpenVINO's TensorFlow frontend on the function itself (its ONNX frontend rejects the dynamic
    reduction axes of GroupNorm)."""
    try:
        import openvino as ov
    except ImportError:
        raise DataError("OpenVINO export needs openvino (pip install openvino)") from None
    _save_openvino(ov.convert_model(fn.get_concrete_function()), out, precision, description)


def _save_openvino(ov_model, out: Path, precision: str, description: str) -> None:
    import openvino as ov
    ov_model.set_rt_info(description, META_KEY)
    tmp = out.with_name(f".{out.stem}.tmp{os.getpid()}.xml")
    ov.save_model(ov_model, str(tmp), compress_to_fp16=precision == "fp16")
    os.replace(tmp.with_suffix(".bin"), out.with_suffix(".bin"))
    os.replace(tmp, out)


def parity(model, path, precision: str = "fp32", check_images=None, input_size=None, n: int = 4) -> dict:
    """Largest |exported - Keras| map value on ``n`` real images at the inference input size.

    Raises:
        DataError: past :data:`TOLERANCE` of ``precision``.
    """
    from ..config import PROJECT_ROOT
    from ..inference import KerasRuntime, load_runtime
    folder = check_images or PROJECT_ROOT / "dataset" / "sample" / "val2017"
    runtime = load_runtime(path, exact=True)
    ref = KerasRuntime(model)
    worst = 0.0
    for x in _network_inputs(folder, ref.codec.stride, input_size, n):
        a_paf, a_heat = runtime(x)
        b_paf, b_heat = ref(x)
        worst = max(worst, float(np.abs(a_heat - b_heat).max()), float(np.abs(a_paf - b_paf).max()))
    rep = {"path": str(path), "precision": precision, "max_abs_diff": worst, "tolerance": TOLERANCE[precision],
           "images": n}
    if not worst <= TOLERANCE[precision]:
        raise DataError(f"{path}: parity check failed: max |exported - Keras| = {worst:.3g} > {TOLERANCE[precision]} "
                        f"({precision}, {n} images of {folder}); the file is removed")
    return rep
