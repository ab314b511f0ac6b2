"""Weights users already have: the CMU Caffe model and the reference's Keras 2 ``.h5`` files.

* :func:`read_caffemodel` parses a ``.caffemodel`` (a protobuf ``NetParameter``) with a minimal
  wire-format reader: no Caffe, no protobuf package, no network. Both the current ``layer``
  (field 100, ``LayerParameter``: name 1, blobs 7) and the legacy ``layers`` (field 2,
  ``V1LayerParameter``: name 4, blobs 6) forms are read; a ``BlobProto`` gives its shape (field 7,
  or the legacy num/channels/height/width 1-4) and float data (field 5, packed or not).
* :func:`load_caffe_weights` puts them into :func:`keras_openpose.model.networks.build_model` ``("vgg19")``
  by layer name; Caffe kernels ``(out, in, kh, kw)`` become Keras ``(kh, kw, in, out)``.
* :func:`load_reference_h5` loads a Keras 2 ``save_weights`` file (``weights.0100.h5`` of
  kevinlin311tw / ainu412 keras-openpose-reproduce): groups per layer name with
  ``<layer>/kernel:0`` and ``<layer>/bias:0`` datasets, already in Keras axis order.

The CMU network (``pose_iter_440000.caffemodel`` with ``pose_deploy.prototxt``) uses the same
layer names, input convention (BGR, ``x / 256 - 0.5``) and channel layout as our ``vgg19`` config.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError
from ..config import PROJECT_ROOT


def _varint(buf: bytes, pos: int):
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def iter_fields(buf: bytes):
    """Yield ``(field_number, wire_type, value)`` of a protobuf message: ``value`` is an int for
    varint (0) and fixed (1, 5: raw bytes) types, ``bytes`` for length-delimited (2)."""
    pos, n = 0, len(buf)
    while pos < n:
        key, pos = _varint(buf, pos)
        field, wt = key >> 3, key & 7
        if wt == 0:
            val, pos = _varint(buf, pos)
        elif wt == 1:
            val, pos = buf[pos:pos + 8], pos + 8
        elif wt == 2:
            ln, pos = _varint(buf, pos)
            val, pos = buf[pos:pos + ln], pos + ln
        elif wt == 5:
            val, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported wire type {wt}")
        if pos > n:
            raise ValueError("truncated message")
        yield field, wt, val


def _blob(buf: bytes) -> np.ndarray:
    shape, legacy, data = [], {}, []
    for f, wt, v in iter_fields(buf):
        if f == 7 and wt == 2:  # BlobShape { repeated int64 dim = 1 [packed] }
            for g, gwt, gv in iter_fields(v):
                if g == 1 and gwt == 2:
                    p = 0
                    while p < len(gv):
                        d, p = _varint(gv, p)
                        shape.append(d)
                elif g == 1:
                    shape.append(gv)
        elif f in (1, 2, 3, 4) and wt == 0:
            legacy[f] = v
        elif f == 5:
            data.append(np.frombuffer(v, "<f4") if wt == 2 else np.frombuffer(v, "<f4", count=1))
    arr = np.concatenate(data) if data else np.zeros(0, np.float32)
    if not shape and legacy:
        shape = [legacy.get(k, 1) for k in (1, 2, 3, 4)]
    if shape and int(np.prod(shape)) == arr.size:
        arr = arr.reshape(shape)
    return arr.astype(np.float32)


def read_caffemodel(path: str | Path) -> dict[str, list[np.ndarray]]:
    """``{layer name: [blob, ...]}`` for every layer with blobs (weights then bias, Caffe shapes).

    Raises:
        DataError: missing file or bytes that are not a Caffe NetParameter.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: caffemodel not found")
    buf = path.read_bytes()
    out = {}
    try:
        for f, wt, v in iter_fields(buf):
            if wt != 2 or f not in (2, 100):
                continue
            name_field, blob_field = (1, 7) if f == 100 else (4, 6)
            name, blobs = None, []
            for g, gwt, gv in iter_fields(v):
                if g == name_field and gwt == 2:
                    name = gv.decode("utf-8", "replace")
                elif g == blob_field and gwt == 2:
                    blobs.append(_blob(gv))
            if name and blobs:
                out[name] = blobs
    except ValueError as e:
        raise DataError(f"{path}: not a Caffe model ({e})") from None
    if not out:
        raise DataError(f"{path}: no layer with weights found (not a Caffe model?)")
    return out


def _assign(model, name: str, kernel: np.ndarray, bias: np.ndarray | None, source: str):
    try:
        layer = model.get_layer(name)
    except ValueError:
        return False
    want = [w.shape for w in layer.get_weights()]
    got = [kernel.shape] + ([bias.shape] if bias is not None else [])
    if [tuple(s) for s in want] != [tuple(s) for s in got]:
        raise DataError(f"{source}: layer {name}: shapes {got} do not fit {want}")
    layer.set_weights([kernel] + ([bias] if bias is not None else []))
    return True


def load_caffe_weights(model, caffemodel: str | Path, strict: bool = True) -> list[str]:
    """Load CMU Caffe weights into ``model`` by layer name; returns the names loaded.

    Args:
        strict: every convolution of ``model`` must be found (else :class:`DataError` lists them).
    """
    blobs = read_caffemodel(caffemodel)
    loaded = []
    for name, bl in blobs.items():
        k = bl[0]
        if k.ndim != 4:
            continue
        if _assign(model, name, k.transpose(2, 3, 1, 0), bl[1].reshape(-1) if len(bl) > 1 else None, str(caffemodel)):
            loaded.append(name)
    _check_complete(model, loaded, caffemodel, strict)
    return loaded


#: Keras ``applications.VGG19`` layer names -> CMU backbone names (the 10 layers CMU initialises).
VGG19_IMAGENET_NAMES = {f"block{b}_conv{i}": f"conv{b}_{i}" for b, n in ((1, 2), (2, 2), (3, 4), (4, 2))
                        for i in range(1, n + 1)}


def load_vgg19_imagenet(model, path: str | Path) -> list[str]:
    """Initialise ``conv1_1 ... conv4_2`` from an ImageNet VGG-19 weights file the user has (Keras
    applications' ``vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5``), as CMU trained from
    ImageNet VGG-19. Nothing is downloaded. Note the input convention differs from ImageNet's
    (BGR ``x / 256 - 0.5``, as CMU); fine-tuning absorbs it, as in the original training."""
    return load_reference_h5(model, path, strict=False, rename=VGG19_IMAGENET_NAMES, require=VGG19_IMAGENET_NAMES.values())


def load_reference_h5(model, path: str | Path, strict: bool = True, rename: dict | None = None,
                      require=None) -> list[str]:
    """Load a Keras 2 ``save_weights`` HDF5 (the reference's ``weights.0100.h5``) by layer name.

    Args:
        rename: ``{name in the file: name in the model}``; layers not in it keep their name
            (with ``rename`` given, only renamed layers are loaded).
        require: names that must be loaded (else :class:`DataError`).
    """
    import h5py
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: weights file not found")
    loaded = []
    try:
        f = h5py.File(path, "r")
    except OSError:
        raise DataError(f"{path}: not an HDF5 file") from None
    with f:
        root = f["model_weights"] if "model_weights" in f else f
        names = [n.decode() if isinstance(n, bytes) else n for n in root.attrs.get("layer_names", list(root.keys()))]
        for name in names:
            if rename is not None and name not in rename:
                continue
            g = root[name]
            wn = [n.decode() if isinstance(n, bytes) else n for n in g.attrs.get("weight_names", [])]
            if not wn:
                continue
            arrs = {w.split("/")[-1].split(":")[0]: np.asarray(g[w]) for w in wn}
            if "kernel" not in arrs:
                continue
            target = rename[name] if rename else name
            if _assign(model, target, arrs["kernel"], arrs.get("bias"), str(path)):
                loaded.append(target)
    _check_complete(model, loaded, path, strict)
    missing = [n for n in (require or []) if n not in loaded]
    if missing:
        raise DataError(f"{path}: no weights for {', '.join(missing)}")
    return loaded


def _check_complete(model, loaded, source, strict):
    convs = [layer.name for layer in model.layers if layer.get_weights()]
    missing = [n for n in convs if n not in loaded]
    if strict and missing:
        raise DataError(f"{source}: no weights for {len(missing)} layers of the network (first: {missing[0]})")


# ------------------------------------------------------------------------------------------
# OpenVINO IR (Lightweight OpenPose, Intel Open Model Zoo human-pose-estimation-0001)
# ------------------------------------------------------------------------------------------

def _fold(output, cache: dict) -> np.ndarray:
    """The value of a constant subgraph ending at ``output`` (an ``openvino.Output``), evaluated
    node by node with OpenVINO's own reference kernels (``Node.evaluate``): ``Constant``,
    ``Convert``, ``FakeQuantize``, ``Multiply``, ``Subtract``, ``Reshape``, ... Stored float16
    constants are widened to float32 first and every node is evaluated in float32, as OpenVINO's
    CPU plugin does when it compiles a float16 IR for f32 inference (``FakeQuantize`` evaluated in
    float16 would round the dequantised weights by up to 1e-3 of their range)."""
    return _evaluate(output, cache).astype(np.float32)


def _evaluate(output, cache: dict) -> np.ndarray:
    import openvino as ov
    node = output.get_node()
    key = (node.get_friendly_name(), output.get_index())
    if key in cache:
        return cache[key]
    if node.get_type_name() == "Constant":
        value = np.asarray(node.get_data())
        value = value.astype(np.float32) if value.dtype == np.float16 else value
    elif node.get_type_name() == "Parameter":
        raise ValueError(f"{node.get_friendly_name()} depends on the network input (not a constant)")
    else:
        ins = [ov.Tensor(np.ascontiguousarray(_evaluate(node.input_value(i), cache)))
               for i in range(node.get_input_size())]
        f16 = ov.Type.f16
        outs = [ov.Tensor(ov.Type.f32 if node.get_output_element_type(k) == f16 else node.get_output_element_type(k),
                          node.get_output_shape(k))
                for k in range(node.get_output_size())]
        if not node.evaluate(outs, ins):
            raise ValueError(f"OpenVINO cannot evaluate {node.get_type_name()} {node.get_friendly_name()}")
        value = np.asarray(outs[output.get_index()].data)
    cache[key] = value
    return value


def read_openvino_ir(path: str | Path) -> dict:
    """The weights of an OpenVINO IR CPM/PAF network, dequantised.

    Every ``Convolution`` / ``GroupConvolution`` weight input is a constant subgraph (int8 values
    stored as float16, ``FakeQuantize`` with per-channel output ranges, ``Convert``); it is
    evaluated exactly by OpenVINO (:func:`_fold`), not re-implemented. The bias is the constant
    of the ``Add`` that follows (batch norm folded into it), zero when there is none.

    Returns:
        ``{"layers": {keras name: (kernel, bias)}, "input_scale", "input_offset", "outputs":
        {result name: channels}, "input": (N, C, H, W)}``; kernels in Keras order ``(kh, kw, in,
        out)`` (``Conv2D``) or ``(kh, kw, C, 1)`` (``DepthwiseConv2D``); the Keras name is the
        convolution's (``/WithoutBiases`` dropped) with ``/`` -> ``_``.
    Raises:
        DataError: a missing file, not an IR, no OpenVINO, or a weight that is not constant.
    """
    path = Path(path)
    if not path.is_file() or not path.with_suffix(".bin").is_file():
        raise DataError(f"{path}: OpenVINO IR not found (needs {path.name} and {path.with_suffix('.bin').name})")
    try:
        import openvino as ov
    except ImportError:
        raise DataError(f"{path}: reading an OpenVINO IR needs openvino (pip install openvino)") from None
    try:
        model = ov.Core().read_model(str(path))
    except RuntimeError as e:
        raise DataError(f"{path}: not an OpenVINO IR ({str(e).splitlines()[0][:120]})") from None
    cache, out = {}, {}
    scale, offset = 1.0, 0.0
    try:
        # the normalisation: the chain of Multiply / Add by scalars that follows the input
        node = model.inputs[0].get_node()
        while True:
            nxt = [t.get_node() for t in node.output(0).get_target_inputs()]
            if len(nxt) != 1 or nxt[0].get_type_name() not in ("Multiply", "Add", "Convert"):
                break
            node = nxt[0]
            if node.get_type_name() == "Convert":      # f32 input -> the IR's f16
                continue
            v = np.unique(_fold(node.input_value(1), cache))
            if v.size != 1:
                raise DataError(f"{path}: per-channel input normalisation {v} is not supported")
            scale, offset = (scale * float(v[0]), offset * float(v[0])) if node.get_type_name() == "Multiply" \
                else (scale, offset + float(v[0]))
        for node in model.get_ordered_ops():
            kind = node.get_type_name()
            if kind not in ("Convolution", "GroupConvolution"):
                continue
            w = _fold(node.input_value(1), cache)
            if kind == "Convolution":
                kernel = w.transpose(2, 3, 1, 0)                      # (out, in, kh, kw) -> (kh, kw, in, out)
            else:
                g, o, i, kh, kw = w.shape
                if o != 1 or i != 1:
                    raise DataError(f"{path}: {node.get_friendly_name()}: only depthwise group convolutions")
                kernel = w.reshape(g, kh, kw).transpose(1, 2, 0)[..., None]   # (kh, kw, C, 1)
            bias = np.zeros(kernel.shape[-1] if kind == "Convolution" else kernel.shape[2], np.float32)
            consumers = [t.get_node() for t in node.output(0).get_target_inputs()]
            adds = [c for c in consumers if c.get_type_name() == "Add"]
            if len(consumers) == 1 and adds:
                try:
                    bias = _fold(adds[0].input_value(1), cache).reshape(-1)
                except ValueError:
                    pass                                              # a residual Add, not a bias
            name = node.get_friendly_name().removesuffix("/WithoutBiases").replace("/", "_")
            out[name] = (kernel.astype(np.float32), bias.astype(np.float32))
    except ValueError as e:
        raise DataError(f"{path}: {e}") from None
    if not out:
        raise DataError(f"{path}: no convolution found (not a CPM/PAF network?)")
    results = {r.get_friendly_name().removesuffix("/sink_port_0"): int(r.get_input_partial_shape(0)[1].get_length())
               for r in model.get_results()}
    return {"layers": out, "input_scale": scale, "input_offset": offset, "outputs": results,
            "input": tuple(model.inputs[0].get_partial_shape().to_shape())}


def load_openvino_ir(model, path: str | Path) -> list[str]:
    """Put the weights of an OpenVINO IR (:func:`read_openvino_ir`) into ``model`` by layer name;
    every convolution of ``model`` must be found and every IR convolution must be used, and the
    IR's input normalisation must be the model's (``normalize`` layer).

    Returns:
        the names loaded.
    Raises:
        DataError: a layer missing on either side, a shape that does not fit, or another
            normalisation.
    """
    ir = read_openvino_ir(path)
    norm = model.get_layer("normalize")
    if not (np.isclose(norm.scale, ir["input_scale"], rtol=1e-6) and np.isclose(norm.offset, ir["input_offset"], atol=1e-6)):
        raise DataError(f"{path}: input normalisation x * {ir['input_scale']:.8g} + {ir['input_offset']:.8g} is not "
                        f"the network's (x * {norm.scale:.8g} + {norm.offset:.8g})")
    loaded = []
    for name, (kernel, bias) in ir["layers"].items():
        if not _assign(model, name, kernel, bias, str(path)):
            raise DataError(f"{path}: layer {name} of the IR has no counterpart in network {model.name}")
        loaded.append(name)
    _check_complete(model, loaded, path, strict=True)
    return loaded


def openvino_float_model(path: str | Path, quantized_activations: bool = False):
    """The IR as an ``openvino.Model`` computing in float32 for reference runs: float16 constants
    widened, the input ``Convert`` to float16 dropped and, unless ``quantized_activations``, the
    ``FakeQuantize`` nodes on activations bypassed (the weights keep theirs: they are the int8
    weights). With ``quantized_activations`` it is the IR as shipped (int8 activations too).
    Input ``(N, 3, H, W)`` BGR 0..255, any H, W.

    Raises:
        DataError: as :func:`read_openvino_ir`.
    """
    read_openvino_ir(path)        # the same checks and messages
    import openvino as ov
    import openvino.opset13 as opset
    model = ov.Core().read_model(str(path))
    for node in model.get_ordered_ops():
        kind = node.get_type_name()
        if kind == "Constant" and node.get_output_element_type(0) == ov.Type.f16:
            wide = opset.constant(np.asarray(node.get_data(), np.float32))
            for t in list(node.output(0).get_target_inputs()):
                t.replace_source_output(wide.output(0))
        elif kind == "Convert" and node.input_value(0).get_node().get_type_name() == "Parameter":
            for t in list(node.output(0).get_target_inputs()):
                t.replace_source_output(node.input_value(0))
    model.validate_nodes_and_infer_types()
    if not quantized_activations:
        for node in model.get_ordered_ops():
            if node.get_type_name() == "FakeQuantize" and node.input_value(0).get_node().get_type_name() != "Constant":
                for t in list(node.output(0).get_target_inputs()):
                    t.replace_source_output(node.input_value(0))
        model.validate_nodes_and_infer_types()
    model.reshape([-1, 3, -1, -1])
    return model


#: The pretrained network shipped with the repository (Intel Open Model Zoo
#: ``human-pose-estimation-0001``, Lightweight OpenPose trained on COCO; Apache-2.0, see its README).
PRETRAINED_IR = PROJECT_ROOT / "models" / "lightweight_openpose" / "human-pose-estimation-0001.xml"
#: Where its Keras conversion lives (made from the IR on first use; not committed: 16 MB).
PRETRAINED_WEIGHTS = PRETRAINED_IR.parent.parent / "pose_normal.keras"


def convert_openvino_ir(ir: str | Path, out: str | Path, config: str = "lightweight") -> dict:
    """Import an OpenVINO IR CPM/PAF network into a self-describing
    :class:`~keras_openpose.model.networks.PoseNetwork` (float32, OpenPose COCO-18) saved at ``out``.

    Returns:
        ``{"path", "layers", "parameters", "input_scale", "input_offset"}``.
    Raises:
        DataError: as :func:`load_openvino_ir`.
    """
    from .networks import build_model, save_model_atomic
    model = build_model(config, precision="float32")
    loaded = load_openvino_ir(model, ir)
    model.info.update({"source": f"OpenVINO IR {Path(ir).name}", "imported_layers": len(loaded),
                       "licence": "Apache-2.0 (Intel Open Model Zoo)" if "human-pose-estimation" in str(ir) else None})
    save_model_atomic(model, out)
    norm = model.get_layer("normalize")
    return {"path": str(out), "layers": len(loaded), "parameters": int(model.count_params()),
            "input_scale": float(norm.scale), "input_offset": float(norm.offset)}


def ensure_pretrained(path: str | Path = PRETRAINED_WEIGHTS) -> Path:
    """``path`` itself, after converting the shipped IR into it when it is the default pretrained
    file (:data:`PRETRAINED_WEIGHTS`) and missing (a few seconds, once; nothing is downloaded)."""
    path = Path(path)
    if not path.exists() and path.resolve() == PRETRAINED_WEIGHTS.resolve() and PRETRAINED_IR.is_file():
        import sys
        print(f"{path}: converting the shipped Lightweight OpenPose ({PRETRAINED_IR.name}) once", file=sys.stderr)
        convert_openvino_ir(PRETRAINED_IR, path)
    return path
