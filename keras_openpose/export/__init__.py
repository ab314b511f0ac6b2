"""Export a trained network for deployment: ONNX, LiteRT (``.tflite``) or OpenVINO IR.

The exported graph is the last stage only: input ``image (B, H, W, 3)`` float32 BGR 0..255 (the
normalisation is inside), outputs ``heatmaps (B, H/8, W/8, P + 1)`` and ``pafs (B, H/8, W/8, 2L)``,
height and width dynamic unless ``input_size`` fixes them. The decoder stays outside the graph.
The model's description (skeleton, stride, decoder options, input convention, network config) goes
with the file: ONNX ``metadata_props["keras_openpose"]``, OpenVINO ``rt_info["keras_openpose"]``,
LiteRT a ``<file>.json`` beside it (LiteRT flatbuffers have no free-form metadata here), so
:meth:`keras_openpose.inference.estimator.PoseEstimator.from_weights` reads any of them alone.

Every export ends with a parity check against Keras (float32) on real images; it fails past the
precision's tolerance.

int8 is static post-training quantisation: int8 weights per output channel (per-tensor weights make
the trained Lightweight OpenPose find no person at all), 8-bit activations per tensor with MinMax
ranges from calibration images at the inference heights, after :func:`equalize_channel_ranges` has
shrunk the few very wide activation channels (float-exact; without it the network loses 19 % of its
AP). On the COCO-trained Lightweight OpenPose the three int8 runtimes keep 97-99 % of the Keras fp32
AP (``bench/int8.py``).

    python -m keras_openpose.export --weights models/pose_normal.keras --format onnx --out models/pose_normal.onnx
"""
from __future__ import annotations

import contextlib
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
#: other), far below what moves a peak past the decoder's 0.1 threshold. int8: the COCO-trained Lightweight
#: OpenPose (map scale 1.2) differs by 0.066-0.075 (ONNX, LiteRT, OpenVINO) and keeps 97-99 % of its AP;
#: the previous recipe (no :func:`equalize_channel_ranges`, calibrated at height 368) differed by
#: 0.35-0.51 and kept 78 %, per-tensor weights by 1.2 (no person found): both fail.
TOLERANCE = {"fp32": 5e-3, "fp16": 3e-2, "int8": 0.25}
META_KEY = "keras_openpose"
#: int8 calibration: the first N images of the folder (sorted by name), resized to these input heights in
#: turn when the input size is dynamic (Lightweight OpenPose's 256, CMU's 368), and the quantile of channel
#: ranges that :func:`equalize_channel_ranges` shrinks wider channels to; all chosen by map error on
#: held-out train2017 images (README, "int8").
CALIBRATION_IMAGES = 40
CALIBRATION_HEIGHTS = (256, 368)
EQUALIZE_QUANTILE = 0.5


def float32_network(model):
    """A float32 copy of a :class:`~keras_openpose.model.networks.PoseNetwork` (exporters need float32)."""
    from ..model.networks import PoseNetwork
    cfg = dict(model.get_config(), precision="float32")
    copy = PoseNetwork.from_config(cfg)
    copy.set_weights(model.get_weights())
    return copy


def _signature(input_size):
    import tensorflow as tf
    h, w = input_size if input_size else (None, None)
    return [tf.TensorSpec((None, h, w, 3), tf.float32, name="image")]


def _maps_function(model, input_size):
    """The traced ``image -> {heatmaps, pafs}`` function (traced now, dilated convolutions as one op each)."""
    import tensorflow as tf

    @tf.function(input_signature=_signature(input_size), autograph=False)   # no Python control flow
    def maps(image):
        paf, heat = model(image, training=False)[-2:]
        return {"heatmaps": heat, "pafs": paf}
    with _native_dilations():
        maps.get_concrete_function()
    return maps


@contextlib.contextmanager
def _native_dilations():
    """While tracing: a dilated stride-1 convolution becomes one ``Conv2D`` / ``DepthwiseConv2dNative`` op
    with a ``dilations`` attribute (the same maps; TensorFlow's CPU kernels, tf2onnx, LiteRT and OpenVINO
    all run it) instead of TensorFlow's SpaceToBatchND -> convolution -> BatchToSpaceND. For a dynamic input
    size tf2onnx turned each of those into ~40 shape ops (Slice, Concat, SpaceToDepth ...) around an
    undilated Conv with its bias as a separate Add, which ONNX Runtime's quantiser then quantised apart
    (Lightweight OpenPose has 6 dilated convolutions: 1,000 ONNX nodes -> 120)."""
    import tensorflow as tf
    conv, depthwise = tf.nn.convolution, tf.nn.depthwise_conv2d

    def pair(v):
        return [int(v)] * 2 if np.ndim(v) == 0 else [int(u) for u in v]

    def native(x, data_format, strides, dilations, padding):
        return (dilations is not None and max(pair(dilations)) > 1 and x.shape.rank == 4
                and data_format in (None, "NHWC") and isinstance(padding, str) and padding.upper() in ("SAME", "VALID")
                and all(s == 1 for s in pair(1 if strides is None else strides)))

    def convolution(input, filters, strides=None, padding="VALID", data_format=None, dilations=None, name=None):
        if native(input, data_format, strides, dilations, padding) and filters.shape.rank == 4 \
                and filters.shape[2] == input.shape[-1]:
            return tf.raw_ops.Conv2D(input=input, filter=filters, strides=[1, 1, 1, 1], padding=padding.upper(),
                                     dilations=[1, *pair(dilations), 1])
        return conv(input, filters, strides, padding, data_format, dilations, name)

    def depthwise_conv2d(input, filter, strides, padding, data_format=None, dilations=None, name=None):
        if native(input, data_format, strides, dilations, padding):
            return tf.raw_ops.DepthwiseConv2dNative(input=input, filter=filter, strides=[1, 1, 1, 1],
                                                    padding=padding.upper(), dilations=[1, *pair(dilations), 1])
        return depthwise(input, filter, strides, padding, data_format, dilations, name)
    tf.nn.convolution, tf.nn.depthwise_conv2d = convolution, depthwise_conv2d
    try:
        yield
    finally:
        tf.nn.convolution, tf.nn.depthwise_conv2d = conv, depthwise


def _positive_homogeneous(layer) -> bool:
    """A plain ReLU: ``relu(x / s) = relu(x) / s`` for ``s > 0``."""
    import keras
    if not isinstance(layer, keras.layers.ReLU):
        return False
    c = layer.get_config()
    return not c.get("max_value") and not c.get("negative_slope") and not c.get("threshold")


def equalize_channel_ranges(model, samples, quantile: float = EQUALIZE_QUANTILE) -> list:
    """Shrink the wide channels of every ReLU output that feeds depthwise convolutions only, in place,
    without changing the maps: output channel ``c`` of the convolution before the ReLU (kernel and bias)
    is divided by ``s_c >= 1`` and channel ``c`` of the depthwise kernels after it multiplied by ``s_c``
    (zero padding in between commutes). ``s_c = max(1, range_c / q)`` with ``range_c`` the channel's
    largest value on ``samples`` (network inputs) and ``q`` the ``quantile`` of the live channels' ranges.

    int8 runtimes quantise an activation with one scale per tensor: in the COCO-trained Lightweight
    OpenPose one channel of ``conv5_2_sep`` reaches 812 where the median channel reaches 6.5 (``conv5_1_sep``:
    339), so at 256 levels the others kept ~2 levels. Weights are quantised per output channel, so the
    rescaled kernels lose nothing. A data-driven form of cross-layer equalisation (Nagel et al., "Data-Free
    Quantization Through Weight Equalization and Bias Correction", ICCV 2019).

    Returns:
        ``[(layer name, largest s, channels rescaled)]``.
    """
    import keras
    pairs = []
    for act in model.layers:
        nodes = act._inbound_nodes
        if not _positive_homogeneous(act) or len(nodes) != 1 or len(nodes[0].parent_nodes) != 1:
            continue
        prod = nodes[0].parent_nodes[0].operation
        if not isinstance(prod, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)) or not prod.use_bias \
                or len(prod._outbound_nodes) != 1 or getattr(prod, "depth_multiplier", 1) != 1:
            continue
        consumers = []
        for n in act._outbound_nodes:
            c = n.operation
            if isinstance(c, keras.layers.ZeroPadding2D) and len(c._outbound_nodes) == 1:
                c = c._outbound_nodes[0].operation
            consumers.append(c)
        if consumers and all(isinstance(c, keras.layers.DepthwiseConv2D) and c.depth_multiplier == 1
                             for c in consumers):
            pairs.append((prod, act, consumers))
    if not pairs:
        return []
    import tensorflow as tf
    probe = keras.Model(model.inputs, [a.output for _, a, _ in pairs])
    # one graph for every sample size (calibration images have their own widths): eager calls cost ~4x
    run = tf.function(lambda x: probe(x, training=False), input_signature=_signature(None))
    top = None
    for x in samples:
        outs = run(np.asarray(x, np.float32))
        m = [np.asarray(o).max(axis=(0, 1, 2)) for o in (outs if isinstance(outs, (list, tuple)) else [outs])]
        top = m if top is None else [np.maximum(a, b) for a, b in zip(top, m)]
    done = []
    for (prod, _, consumers), r in zip(pairs, top):
        live = r[r > 0]
        if not live.size:
            continue
        s = np.maximum(1.0, r / float(np.quantile(live, quantile))).astype(np.float32)
        if s.max() <= 1.0:
            continue
        kernel, bias = prod.get_weights()
        kernel = kernel / (s[:, None] if isinstance(prod, keras.layers.DepthwiseConv2D) else s)
        prod.set_weights([kernel, bias / s])
        for c in consumers:
            w = c.get_weights()
            c.set_weights([w[0] * s[:, None]] + w[1:])
        done.append((prod.name, float(s.max()), int((s > 1).sum())))
    return done


def _explicit_dilated_pads(graph) -> None:
    """ONNX Runtime refuses ``auto_pad SAME_*`` on dilated Convs (tf2onnx writes it for TensorFlow's
    ``SAME``): stride-1 ones get the equivalent explicit ``pads``."""
    import onnx
    weights = {t.name: list(t.dims) for t in graph.initializer}
    for node in graph.node:
        attrs = {a.name: a for a in node.attribute}
        auto = attrs.get("auto_pad")
        if node.op_type != "Conv" or auto is None or auto.s not in (b"SAME_UPPER", b"SAME_LOWER"):
            continue
        dil = list(attrs["dilations"].ints) if "dilations" in attrs else []
        kernel = list(attrs["kernel_shape"].ints) if "kernel_shape" in attrs else weights.get(node.input[1], [])[2:]
        if not dil or max(dil) == 1 or len(kernel) != len(dil) or any(s != 1 for s in attrs["strides"].ints
                                                                       if "strides" in attrs):
            continue
        total = [d * (k - 1) for d, k in zip(dil, kernel)]
        first = [t // 2 if auto.s == b"SAME_UPPER" else t - t // 2 for t in total]
        node.attribute.remove(auto)
        node.attribute.append(onnx.helper.make_attribute("pads", first + [t - f for t, f in zip(total, first)]))


def export_model(weights, fmt: str, out, precision: str = "fp32", input_size=None, calibration_images=None,
                 check_images=None) -> dict:
    """Export ``weights`` (a ``.keras`` network) to ``fmt`` at ``out`` and check parity.

    Args:
        fmt: ``onnx``, ``litert`` or ``openvino``.
        precision: ``fp32``; ``fp16`` (LiteRT, OpenVINO: weights in half precision); ``int8``
            (post-training quantisation calibrated on :data:`CALIBRATION_IMAGES` images of
            ``calibration_images`` at the inference size, after :func:`equalize_channel_ranges` on
            them: LiteRT's converter; ONNX and OpenVINO through ONNX Runtime's static QDQ
            quantisation, per-channel int8 weights, uint8 activations, MinMax ranges, which OpenVINO
            runs as int8: vgg19 at 368x552 on this 2-core AMX CPU 202 ms vs 420 ms in bf16).
        input_size: ``(H, W)`` to fix the input size (default dynamic).
        calibration_images: a folder of images for int8.
        check_images: a folder of images for the parity check (default: the bundled sample).
    Returns:
        ``{"path", "format", "precision", "max_abs_diff", "tolerance", "images"}``.
    Raises:
        DataError: unknown format or precision, a missing dependency, or parity past tolerance.
    """
    from ..model.networks import load_network
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
    samples, net = None, model
    if precision == "int8":      # the parity check compares with the network as it was
        samples = calibration_inputs(calibration_images, model.codec.stride, input_size)
        net = float32_network(model)
        equalize_channel_ranges(net, samples)
    fn = _maps_function(net, input_size)
    out.parent.mkdir(parents=True, exist_ok=True)
    if precision == "int8" and fmt in ("onnx", "openvino"):
        _to_int8_via_onnx(fn, out, fmt, description, samples)
    elif fmt == "onnx":
        _to_onnx(fn, out, description)
    elif fmt == "litert":
        _to_litert(fn, out, precision, samples)
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
    _explicit_dilated_pads(proto.graph)
    entry = proto.metadata_props.add()
    entry.key, entry.value = META_KEY, description
    with atomic_path(out) as tmp:
        onnx.save(proto, str(tmp))


def _images(folder, n: int):
    from ..data.images import read_image
    from ..data.images import IMAGE_EXT
    files = sorted(f for f in Path(folder).iterdir() if f.suffix.lower() in IMAGE_EXT)[:n]
    if not files:
        raise DataError(f"{folder}: no images")
    return [read_image(f) for f in files]


def calibration_inputs(folder, stride: int, input_size=None, n: int = CALIBRATION_IMAGES,
                       heights=CALIBRATION_HEIGHTS):
    """int8 calibration inputs: :func:`_network_inputs` of the first ``n`` images of ``folder``, at
    ``heights`` in turn when the input size is dynamic."""
    return _network_inputs(folder, stride, input_size, n, None if input_size else heights)


def _network_inputs(folder, stride: int, input_size, n: int, heights=None):
    """Network inputs ``(1, H, W, 3)`` of up to ``n`` images of ``folder``, resized as at inference
    (:func:`keras_openpose.inference.estimator.preprocess`, height ``input_size[0]`` when fixed, else
    ``heights`` in turn, else the default box) and cropped / padded to ``input_size`` when fixed
    (calibration and parity)."""
    from ..config import InferenceOptions
    from ..codec import PAD_VALUE
    from ..inference.estimator import preprocess
    out = []
    for k, im in enumerate(_images(folder, n)):
        h = input_size[0] if input_size else heights[k % len(heights)] if heights else InferenceOptions().box_size
        x = preprocess(im, h, 1.0, stride)[0]
        if input_size:
            pad = np.full((*input_size, 3), PAD_VALUE, np.float32)
            x = x[:input_size[0], :input_size[1]]
            pad[:x.shape[0], :x.shape[1]] = x
            x = pad
        out.append(x[None].astype(np.float32))
    return out


def _to_int8_via_onnx(fn, out: Path, fmt: str, description: str, samples) -> None:
    """float32 ONNX, then ONNX Runtime's static quantisation (QDQ, int8 weights per output channel,
    uint8 activations per tensor, MinMax ranges) calibrated on ``samples`` one by one (they differ in
    size); for OpenVINO the quantised ONNX is converted to IR (its int8 kernels run the QDQ pairs)."""
    import tempfile
    try:
        from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                              QuantType, quantize_static)
    except ImportError:
        raise DataError("int8 ONNX / OpenVINO export needs onnxruntime (pip install onnxruntime)") from None
    import onnx

    class Reader(CalibrationDataReader):     # set_range: quantize_static calibrates image by image
        def __init__(self):
            self.set_range(0, len(samples))

        def __len__(self):
            return len(samples)

        def set_range(self, start_index, end_index):
            self.it = iter(samples[start_index:end_index])

        def get_next(self):
            x = next(self.it, None)
            return None if x is None else {"image": x}
    with tempfile.TemporaryDirectory() as d:
        fp32, q = Path(d) / "fp32.onnx", Path(d) / "int8.onnx"
        _to_onnx(fn, fp32, description)
        quantize_static(str(fp32), str(q), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax, extra_options={"CalibStridedMinMax": 1})
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


def _to_litert(fn, out: Path, precision: str, samples=None) -> None:
    import tensorflow as tf
    conv = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn)
    if precision == "fp16":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_types = [tf.float16]
    elif precision == "int8":
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
    from ..inference.runtimes import KerasRuntime, load_runtime
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
