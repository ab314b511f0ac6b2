"""Runtimes: one call ``runtime(x)`` from a batch of network inputs ``(B, H, W, 3)`` float32 BGR
0..255 to ``(pafs (B, h, w, 2L), heatmaps (B, h, w, P + 1))`` numpy, for a saved Keras network, an
ONNX, LiteRT or OpenVINO export, or a foreign OpenVINO IR; each carries the
:class:`~keras_openpose.codec.PafCodec` it was trained with (read from the file's own description).
:func:`load_runtime` picks one by file suffix; :func:`model_skeleton` reads a model file's skeleton
without building the network.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError
import json
import os
from ..codec import PAD_VALUE, PafCodec
from ..skeleton import DEFAULT_SKELETON, Skeleton, check_same_layout, get_skeleton

def model_skeleton(path) -> Skeleton:
    """The skeleton a saved network was trained with, read from the file's own description.

    A ``.keras`` file of a :class:`~keras_openpose.model.networks.PoseNetwork` is a zip whose ``config.json``
    holds the network's config with its ``codec``: it is read without TensorFlow and without building
    the network. Other files (exported ``.onnx``/``.tflite``/``.xml``, plain functional models) are
    opened by :func:`keras_openpose.inference.runtimes.load_runtime`. The shipped pretrained file is made
    from its IR first when missing (:func:`keras_openpose.model.weights.ensure_pretrained`).

    Args:
        path: a model file, or a run folder holding ``model.keras``.
    Returns:
        the model's :class:`Skeleton`.
    Raises:
        DataError: a missing file, or one that is not a model (naming the file).
    """
    import json
    import zipfile
    p = Path(path)
    if p.is_dir():
        p = p / "model.keras"
    if not p.exists():
        from ..model.weights import ensure_pretrained
        p = ensure_pretrained(p)
    if not p.is_file():
        raise DataError(f"{p}: model file not found")
    if p.suffix.lower() == ".keras" and zipfile.is_zipfile(p):
        try:
            with zipfile.ZipFile(p) as z:
                config = json.loads(z.read("config.json"))
        except (KeyError, ValueError, zipfile.BadZipFile, OSError) as e:
            raise DataError(f"{p}: not a Keras model file ({type(e).__name__}: {e})") from None
        if isinstance(config, dict) and str(config.get("registered_name", "")).endswith(">PoseNetwork"):
            codec = (config.get("config") or {}).get("codec") or {}
            sk = codec.get("skeleton") if isinstance(codec, dict) else None
            if sk is None:
                return DEFAULT_SKELETON
            return Skeleton.from_dict(sk, f"{p} (model description)") if isinstance(sk, dict) else get_skeleton(sk)
    return load_runtime(p).codec.skeleton


def models_skeleton(paths, names=None) -> Skeleton:
    """The one skeleton of several saved networks (the experts of an ensemble), by
    :func:`model_skeleton`; experts whose skeletons differ are refused.

    Args:
        paths: model files; ``names``: their labels for messages (default the paths).
    Raises:
        DataError: a missing model, or two models with different keypoints, parts or limbs
            (:func:`check_same_layout`, naming both).
    """
    paths = list(paths)
    names = list(names) if names is not None else [str(p) for p in paths]
    if not paths:
        raise DataError("no model files to read a skeleton from")
    first = model_skeleton(paths[0])
    for p, n in zip(paths[1:], names[1:]):
        check_same_layout(first, model_skeleton(p), f"{p}: experts with different skeletons", (names[0], n))
    return first


def _codec_from_description(text, source) -> PafCodec:
    try:
        return PafCodec.from_dict(json.loads(text)["codec"], str(source))
    except (ValueError, KeyError, TypeError):
        raise DataError(f"{source}: no keras_openpose description (export it with python -m keras_openpose.export)") from None


class KerasRuntime:
    """A Keras network as one ``tf.function`` traced once, for any batch and image size: its input
    signature is ``(None, None, None, 3)`` float32, so images of new sizes (every COCO image has
    its own width) reuse the same graph instead of tracing a new one (TensorFlow's ``retracing``
    warning; a trace costs as much as tens of network passes). The trace and the graph's first
    run happen here, on a small blank input, so that no image pays for them. A network saved in
    bfloat16 runs in float32 on a CPU without native bfloat16
    (:func:`keras_openpose.model.networks.for_this_machine`)."""

    name = "keras"

    def __init__(self, model, codec: PafCodec | None = None):
        import tensorflow as tf

        from ..model.networks import for_this_machine, network_codec
        model = for_this_machine(model)     # bfloat16 on a CPU without it: float32 (10x faster there)
        self.model = model
        self.codec = codec or network_codec(model)
        self._fn = tf.function(lambda x: model(x, training=False)[-2:],
                               input_signature=[tf.TensorSpec((None, None, None, 3), tf.float32)])
        self._fn(np.full((1, 8 * self.codec.stride, 8 * self.codec.stride, 3), PAD_VALUE, np.float32))

    def __call__(self, x: np.ndarray):
        paf, heat = self._fn(np.asarray(x, np.float32))
        return np.asarray(paf, np.float32), np.asarray(heat, np.float32)


class OnnxRuntime:
    """An exported ``.onnx`` file on ONNX Runtime (CPU)."""

    name = "onnx"

    def __init__(self, path):
        try:
            import onnxruntime as ort
        except ImportError:
            raise DataError(f"{path}: running ONNX needs onnxruntime (pip install onnxruntime)") from None
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        meta = self.session.get_modelmeta().custom_metadata_map
        self.codec = _codec_from_description(meta.get("keras_openpose"), path)
        self._input = self.session.get_inputs()[0].name

    def __call__(self, x: np.ndarray):
        paf, heat = self.session.run(["pafs", "heatmaps"], {self._input: np.ascontiguousarray(x, np.float32)})
        return paf, heat


class LiteRTRuntime:
    """An exported ``.tflite`` file on LiteRT (``ai_edge_litert``); its description is ``<file>.json``.
    Outputs are taken by name (LiteRT may list them in another order), and the input is resized
    when the image size changes."""

    name = "litert"

    def __init__(self, path):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise DataError(f"{path}: running LiteRT needs ai-edge-litert (pip install ai-edge-litert)") from None
        meta = Path(str(path) + ".json")
        text = meta.read_text() if meta.is_file() else None
        self.codec = _codec_from_description(text, meta)
        self.outputs = json.loads(text).get("litert_outputs", {"Identity": "heatmaps", "Identity_1": "pafs"})
        self.interp = Interpreter(model_path=str(path), num_threads=os.cpu_count())
        self._shape = None

    def __call__(self, x: np.ndarray):
        it = self.interp
        inp = it.get_input_details()[0]
        if self._shape != x.shape:
            it.resize_tensor_input(inp["index"], x.shape, strict=False)
            it.allocate_tensors()
            self._shape = x.shape
        it.set_tensor(inp["index"], np.ascontiguousarray(x, np.float32))
        it.invoke()
        outs = {self.outputs[d["name"]]: it.get_tensor(d["index"]) for d in it.get_output_details()}
        return outs["pafs"], outs["heatmaps"]


class OpenVINORuntime:
    """An OpenVINO IR (``.xml`` + ``.bin``, or an ``openvino.Model``) on the CPU plugin. The plugin
    computes in bf16 on CPUs with AMX unless ``exact`` asks for f32 (the export's parity check does).

    Exports of this project carry their description (``rt_info``) and NHWC maps. A foreign IR of
    the CMU channel layout (Intel Open Model Zoo's ``human-pose-estimation-0001``: input ``(N, 3,
    H, W)`` BGR 0..255, outputs ``*_L1`` PAFs ``(N, 38, h, w)`` and ``*_L2`` heatmaps ``(N, 19, h,
    w)``) runs as it is, with OpenPose COCO-18 and NCHW <-> NHWC transposes."""

    name = "openvino"

    def __init__(self, path, exact: bool = False, model=None):
        try:
            import openvino as ov
        except ImportError:
            raise DataError(f"{path}: running OpenVINO needs openvino (pip install openvino)") from None
        core = ov.Core()
        model = model if model is not None else core.read_model(str(path))
        try:
            text = model.get_rt_info(["keras_openpose"]).astype(str)
        except RuntimeError:
            text = None
        self.nchw = text is None and self._is_cmu_layout(model)
        if self.nchw:
            from ..codec import DEFAULT_CODEC
            self.codec = DEFAULT_CODEC
            model.reshape([-1, 3, -1, -1])
            names = {o.get_any_name(): o for o in model.outputs}
            self._names = {"pafs": next(n for n in names if n.split("/")[0].endswith("_L1")),
                           "heatmaps": next(n for n in names if n.split("/")[0].endswith("_L2"))}
        else:
            self.codec = _codec_from_description(text, path)
            self._names = {"pafs": "pafs", "heatmaps": "heatmaps"}
        self.compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"} if exact else {})
        self._out = {o.get_any_name(): o for o in self.compiled.outputs}

    @staticmethod
    def _is_cmu_layout(model) -> bool:
        outs = [o.get_any_name().split("/")[0] for o in model.outputs]
        return (len(model.inputs) == 1 and model.inputs[0].get_partial_shape()[1].get_length() == 3
                and any(n.endswith("_L1") for n in outs) and any(n.endswith("_L2") for n in outs))

    def __call__(self, x: np.ndarray):
        if self.nchw:
            r = self.compiled(np.ascontiguousarray(x.transpose(0, 3, 1, 2), np.float32))
            return (r[self._out[self._names["pafs"]]].transpose(0, 2, 3, 1),
                    r[self._out[self._names["heatmaps"]]].transpose(0, 2, 3, 1))
        r = self.compiled(np.ascontiguousarray(x, np.float32))
        return r[self._out["pafs"]], r[self._out["heatmaps"]]


RUNTIMES = {".keras": "keras", ".onnx": "onnx", ".tflite": "litert", ".xml": "openvino"}
RUNTIME_TYPES = (KerasRuntime, OnnxRuntime, LiteRTRuntime, OpenVINORuntime)


def load_runtime(path, runtime: str | None = None, exact: bool = False):
    """A runtime for a saved network, chosen by suffix (``.keras``, ``.onnx``, ``.tflite``, ``.xml``)
    unless ``runtime`` names one; it carries the network's codec (``.codec``). ``exact`` keeps
    OpenVINO in f32 (else bf16 where the CPU has it).

    Raises:
        DataError: a missing file, an unknown suffix, a missing engine, or a file without description.
    """
    from ..model.weights import ensure_pretrained
    path = ensure_pretrained(path)
    kind = runtime or RUNTIMES.get(path.suffix.lower(), "keras" if path.is_dir() else None)
    if kind is None:
        raise DataError(f"{path}: unknown model file type; use .keras, .onnx, .tflite or an OpenVINO .xml")
    if kind != "keras" and not path.is_file():
        raise DataError(f"{path}: model weights not found")
    if kind == "keras":
        from ..model.networks import load_network
        return KerasRuntime(load_network(path))
    if kind == "openvino":
        return OpenVINORuntime(path, exact)
    return {"onnx": OnnxRuntime, "litert": LiteRTRuntime}[kind](path)


