"""Inference: image -> network maps -> people, with CMU's input convention, and frame sources.

The image is resized so its height is ``box_size x scale`` (368 by default, as CMU does), padded
bottom/right to a multiple of the stride with grey 128, run through the network; the padding is
cropped off the maps, and the codec maps cells back to image pixels with the exact stride
``stride / s``. Multi-scale search averages maps over scales (resampled to the maps of the first
scale) and ``flip`` averages with the mirrored image (the codec swaps left/right channels and
negates the PAF x components).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import cv2
import numpy as np

from .codec import PAD_VALUE, PafCodec
from .config import InferenceOptions
from .errors import DataError

__all__ = ["PoseEstimator", "InferenceOptions", "load_runtime", "preprocess", "frames", "VideoWriter",
           "predict_source", "VIDEO_EXT", "IMAGE_EXT"]


def preprocess(image: np.ndarray, box_size: int, scale: float, stride: int, max_side: int = 2048):
    """Resize ``image (H, W, 3)`` to height ``box_size * scale`` (cubic) and pad to the stride; an
    image whose resized longest side would exceed ``max_side`` is resized to fit it instead.

    Returns:
        ``(padded float32 (Hp, Wp, 3), s, (hr, wr))`` with ``s`` the resize factor and
        ``(hr, wr)`` the resized size before padding.
    Raises:
        DataError: not a ``(H, W, 3)`` image, or one so elongated that its short side would be
            under one map cell (``stride`` pixels) at ``max_side``.
    """
    if image is None or image.ndim != 3 or image.shape[2] != 3:
        raise DataError(f"expected a (H, W, 3) image, got {None if image is None else image.shape}")
    H, W = image.shape[:2]
    s = min(box_size * scale / H, max_side / max(H, W))
    if min(H, W) * s < stride:
        raise DataError(f"image {W}x{H}: too elongated for the network (short side under {stride} px once the "
                        f"long side fits {max_side} px)")
    hr, wr = max(1, int(round(H * s))), max(1, int(round(W * s)))
    resized = cv2.resize(image, (wr, hr), interpolation=cv2.INTER_CUBIC)
    hp, wp = -(-hr // stride) * stride, -(-wr // stride) * stride
    out = np.full((hp, wp, 3), PAD_VALUE, np.uint8)
    out[:hr, :wr] = resized
    return out.astype(np.float32), s, (hr, wr)


# ---------------------------------------------------------------------------------------------
# Runtimes: (B, H, W, 3) float32 BGR 0..255 -> (pafs (B, h, w, 2L), heatmaps (B, h, w, P + 1)), numpy
# ---------------------------------------------------------------------------------------------


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
    run happen here, on a small blank input, so that no image pays for them."""

    name = "keras"

    def __init__(self, model, codec: PafCodec | None = None):
        import tensorflow as tf

        from .model import network_codec
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
            from .codec import DEFAULT_CODEC
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
    from .weights import ensure_pretrained
    path = ensure_pretrained(path)
    kind = runtime or RUNTIMES.get(path.suffix.lower(), "keras" if path.is_dir() else None)
    if kind is None:
        raise DataError(f"{path}: unknown model file type; use .keras, .onnx, .tflite or an OpenVINO .xml")
    if kind != "keras" and not path.is_file():
        raise DataError(f"{path}: model weights not found")
    if kind == "keras":
        from .model import load_network
        return KerasRuntime(load_network(path))
    if kind == "openvino":
        return OpenVINORuntime(path, exact)
    return {"onnx": OnnxRuntime, "litert": LiteRTRuntime}[kind](path)


class PoseEstimator:
    """A network on any runtime, its codec and the input handling.

    Example::

        est = PoseEstimator.from_weights("runs/quickstart/models/pose_normal.keras")   # or .onnx, .tflite, .xml
        people = est.estimate(cv2.imread("image.jpg"))   # [{"keypoints": [3K floats], "score": s}, ...]

    Args:
        model: a Keras model whose last two outputs are ``[PAF (2L), heatmaps (P + 1)]``, or a runtime
            (:func:`load_runtime`).
        options: :class:`~keras_openpose.config.InferenceOptions` (box size, scales, flip).
        codec: the maps' codec; default the model's own (:func:`keras_openpose.model.network_codec`).
    """

    def __init__(self, model, options: InferenceOptions | None = None, codec: PafCodec | None = None):
        self.runtime = model if isinstance(model, RUNTIME_TYPES) else KerasRuntime(model)
        self.model = getattr(self.runtime, "model", None)
        self.options = options or InferenceOptions()
        self.codec = codec or self.runtime.codec
        self.timing = {"network_s": 0.0, "decode_s": 0.0, "images": 0}

    @property
    def skeleton(self):
        return self.codec.skeleton

    @classmethod
    def from_weights(cls, path: str | Path, options: InferenceOptions | None = None, runtime: str | None = None,
                     **decode) -> "PoseEstimator":
        """Load a saved network: ``.keras`` (or a run folder), ``.onnx``, ``.tflite`` or OpenVINO ``.xml``
        (``runtime`` overrides the choice by suffix); its skeleton, stride and decoder options come
        from the file. ``decode`` overrides single :class:`~keras_openpose.codec.DecodeOptions` fields."""
        rt = load_runtime(path, runtime)
        return cls(rt, options, rt.codec.with_decode(**decode) if decode else rt.codec)

    def maps(self, image: np.ndarray):
        """Heatmaps ``(h, w, P + 1)`` and PAFs ``(h, w, 2L)`` of ``image`` (BGR uint8), averaged over
        scales and flips, on the map grid of the largest scale (its cells are the finest; the maps
        of the other scales are resampled onto it bilinearly with the cell centres of every scale
        at their exact image positions, :func:`keras_openpose.codec.cells_to_pixels`). One scale:
        the network's own maps, padding cropped.

        Returns:
            ``(heatmaps, pafs, stride)`` where ``stride`` = image pixels per cell (``codec.stride / s``
            of the largest scale).
        """
        o, st = self.options, self.codec.stride
        t0 = time.perf_counter()
        per_scale = []                      # (heatmaps, pafs, resize factor s) of each scale
        for sc in o.scales:
            x, s, (hr, wr) = preprocess(image, o.box_size, sc, st, o.max_side)
            batch = x[None]
            if o.flip:
                batch = np.concatenate([batch, x[None, :, ::-1]], 0)
            paf, heat = self.runtime(batch)
            h, w = -(-hr // st), -(-wr // st)
            hm, pm = heat[0, :h, :w], paf[0, :h, :w]
            if o.flip:
                # the mirrored input was padded on the right: cells of the image are the last w ones
                Wc = heat.shape[2]
                fh, fp = self.codec.flip_maps(heat[1, :h, Wc - w:], paf[1, :h, Wc - w:])
                hm, pm = 0.5 * (hm + fh), 0.5 * (pm + fp)
            per_scale.append((hm, pm, s))
        heat, paf, s_base = max(per_scale, key=lambda m: m[0].shape[0] * m[0].shape[1])
        if len(per_scale) > 1:
            hb, wb = heat.shape[:2]

            def resample(n_dst, n_src, r):
                """``(n_dst, n_src)`` linear interpolation: base cell i sits at cell
                ``(i + 1/2) r - 1/2`` of a scale whose resize factor is ``r`` times the base's."""
                c = np.clip((np.arange(n_dst) + 0.5) * r - 0.5, 0, n_src - 1)
                i0 = np.minimum(np.floor(c).astype(np.int64), n_src - 1)
                i1 = np.minimum(i0 + 1, n_src - 1)
                m = np.zeros((n_dst, n_src), np.float32)
                np.add.at(m, (np.arange(n_dst), i0), 1 - (c - i0))
                np.add.at(m, (np.arange(n_dst), i1), c - i0)
                return m

            acc_h, acc_p = np.zeros_like(heat), np.zeros_like(paf)
            for hm, pm, s in per_scale:
                if hm.shape[:2] == (hb, wb) and s == s_base:
                    acc_h += hm
                    acc_p += pm
                    continue
                ry, rx = resample(hb, hm.shape[0], s / s_base), resample(wb, hm.shape[1], s / s_base)
                acc_h += np.einsum("ij,jkc,lk->ilc", ry, hm, rx, optimize=True)
                acc_p += np.einsum("ij,jkc,lk->ilc", ry, pm, rx, optimize=True)
            heat, paf = acc_h / len(per_scale), acc_p / len(per_scale)
        self.timing["network_s"] += time.perf_counter() - t0
        return np.ascontiguousarray(heat, np.float32), np.ascontiguousarray(paf, np.float32), st / s_base

    def decode(self, heatmaps, pafs, stride, image_shape) -> list[dict]:
        """People from maps (:meth:`keras_openpose.codec.PafCodec.decode`), timed."""
        t0 = time.perf_counter()
        poses = self.codec.decode(heatmaps, pafs, image_shape, stride=stride)
        self.timing["decode_s"] += time.perf_counter() - t0
        self.timing["images"] += 1
        return poses

    def estimate(self, image: np.ndarray) -> list[dict]:
        """People in ``image`` (``uint8 (H, W, 3)`` BGR): ``[{"keypoints": [3K floats, dataset
        keypoint order, image pixels], "score": float}]``."""
        heat, paf, stride = self.maps(image)
        return self.decode(heat, paf, stride, image.shape[:2])


# ---------------------------------------------------------------------------------------------
# Frame sources and the video writer
# ---------------------------------------------------------------------------------------------

VIDEO_EXT = (".mp4", ".avi", ".mov", ".mkv", ".webm")
#: The readable image types: one list for every reader (:data:`keras_openpose.coco.IMAGE_EXT`).
from .coco import IMAGE_EXT  # noqa: E402


def is_video(source: str) -> bool:
    """A webcam index (``"0"``) or a video file name."""
    return str(source).isdigit() or str(source).lower().endswith(VIDEO_EXT)


def _types() -> str:
    return ", ".join(IMAGE_EXT + VIDEO_EXT)


def check_source(source: str) -> None:
    """The cheap checks of a frame source, before any network is loaded: it exists, and is a
    webcam index, a video or image file of a known type, or a folder holding an image.

    Raises:
        DataError: ``<source>: not found``, an unknown file type, or a folder without images.
    """
    source = str(source)
    if source.isdigit():
        return
    p = Path(source)
    if not p.exists():
        raise DataError(f"{p}: {'video' if is_video(source) else 'input'} not found")
    if p.is_dir():
        if not any(f.suffix.lower() in IMAGE_EXT for f in p.iterdir() if f.is_file()):
            raise DataError(f"{p}: no images in the folder (readable: {', '.join(IMAGE_EXT)})")
    elif p.suffix.lower() not in IMAGE_EXT + VIDEO_EXT:
        raise DataError(f"{p}: not a readable type ({p.suffix or 'no extension'}); use {_types()}")


def _folder_entry_problem(f: Path) -> str | None:
    """Why a folder entry is not an image to process (``None``: it is one, by type)."""
    if f.is_dir():
        return "a folder (subfolders are not searched)"
    if f.suffix.lower() in VIDEO_EXT:
        return "a video (give it as --input on its own)"
    if f.suffix.lower() not in IMAGE_EXT:
        return f"not an image type ({f.suffix or 'no extension'}; readable: {', '.join(IMAGE_EXT)})"
    return None


def frames(source: str, skipped: list | None = None):
    """Yield ``(name, BGR frame)`` from an image, a folder of images, a video file or a webcam index.
    ``name`` is the file name with its extension (``a.jpg`` and ``a.png`` never collide) or
    ``frame_<k>`` for a video.

    Every entry of a folder is either yielded or, with ``skipped``, appended to it as ``"<file>:
    <reason>"`` (an unreadable or truncated image, a file of another type, a subfolder).

    Args:
        skipped: in a folder, entries that are not used are appended here (default: an unreadable
            image raises; other entries are left out).
    Raises:
        DataError: a source that is missing or cannot be opened, an empty folder or video, or
            (without ``skipped``) an unreadable image.
    """
    from .coco import read_image
    source = str(source)
    check_source(source)
    if is_video(source):
        cap = cv2.VideoCapture(int(source) if source.isdigit() else source)
        if not cap.isOpened():
            raise DataError(f"{source}: cannot open video source")
        k = 0
        try:
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                yield f"frame_{k:06d}", frame
                k += 1
        finally:
            cap.release()
        if k == 0:
            raise DataError(f"{source}: no frame could be read")
        return
    p = Path(source)
    if p.is_dir():
        for f in sorted(p.iterdir()):
            reason = _folder_entry_problem(f)
            if reason is not None:
                if skipped is not None:
                    skipped.append(f"{f}: {reason}")
                continue
            try:
                img = read_image(f)
            except DataError as e:
                if skipped is None:
                    raise
                skipped.append(str(e))
                continue
            yield f.name, img
    else:
        yield p.name, read_image(p)


class VideoWriter:
    """An MP4 writer opened on the first frame (its size fixes the video's). A writer that cannot
    open, a disk that fills up, or a file left empty is a :class:`DataError` naming the file (OpenCV
    reports none of them)."""

    def __init__(self, path: str | Path, fps: float = 25.0):
        self.path, self.fps, self._w, self._n = Path(path), fps, None, 0

    def write(self, frame: np.ndarray) -> None:
        import shutil
        if self._w is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._w = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps,
                                      (frame.shape[1], frame.shape[0]))
            if not self._w.isOpened():
                raise DataError(f"{self.path}: cannot open the video writer (mp4v)")
        if self._n % 16 == 0 and shutil.disk_usage(self.path.parent).free < 2 * frame.nbytes:
            raise DataError(f"{self.path}: {os.strerror(28)}")
        self._w.write(frame)
        self._n += 1

    def close(self) -> None:
        if self._w is not None:
            self._w.release()
            self._w = None
            if not self.path.is_file() or self.path.stat().st_size == 0:
                raise DataError(f"{self.path}: the video was not written")


def _write_image(image: np.ndarray, path: Path) -> None:
    """Write an overlay (JPEG) atomically; a failed encode or write is a :class:`DataError`
    naming the file and the OS error."""
    from .files import os_error_line, write_bytes_atomic
    ok, buf = cv2.imencode(".jpg", image)
    if not ok:
        raise DataError(f"{path}: JPEG encoding failed")
    try:
        write_bytes_atomic(buf.tobytes(), path)
    except OSError as e:
        raise DataError(os_error_line(e) or f"{path}: {e}") from None


def _write_json(obj, path: Path) -> None:
    from .files import os_error_line, write_json_atomic
    try:
        write_json_atomic(obj, path)
    except OSError as e:
        raise DataError(os_error_line(e) or f"{path}: {e}") from None


def predict_source(source: str, out_dir: str | Path, weights: str | Path | None = None,
                   models_dir: str | Path | None = None, mode: str = "route",
                   options: InferenceOptions | None = None, decode: dict | None = None,
                   show_names: bool = False, show_maps: bool = False, max_frames: int | None = None,
                   track: bool = False, smooth: bool = False) -> dict:
    """Poses in every frame of ``source`` (:func:`frames`) from one expert (``weights``) or the
    ensemble of ``models_dir`` (``mode`` route or fuse); one network pass per frame serves both the
    people and the map panels.

    Writes ``out_dir/<name>_pose.jpg`` per image (``name`` = the file name with its extension, e.g.
    ``a.png_pose.jpg``; or ``overlay.mp4`` for a video or webcam) and ``poses.json`` =
    ``[{"image_id": frame or file name, "category_id": 1, "keypoints": [3K], "score"}]``; every
    entry of a folder that is not used (unreadable or truncated images, other file types, subfolders)
    is listed with its reason in ``skipped.json``. With ``track``
    (videos) every person gets a stable ``"id"`` (:class:`keras_openpose.tracking.PoseTracker`),
    ``smooth`` adds One-Euro smoothing of its keypoints.

    Returns:
        ``{"frames", "people", "skipped": [lines], "network_ms", "decode_ms", "fps"}`` (milliseconds
        per frame; ``fps`` over the whole stream, reading and writing included).
    Raises:
        DataError: a missing model or an unreadable source, an output folder that cannot be written
            (checked before any work), a failed write (naming the file and the OS error).
    """
    from .files import check_output_dir
    from .visualize import draw_poses, map_panel
    check_source(source)
    out = check_output_dir(out_dir)
    decode = decode or {}
    if weights:
        experts = [PoseEstimator.from_weights(weights, options, **decode)]
        maps_fn, decoder = experts[0].maps, experts[0]
    else:
        from .ensemble import Ensemble
        ens = Ensemble.from_models_dir(models_dir, options, **decode)
        experts, maps_fn, decoder = list(ens.experts.values()), ens.predictor(mode, maps=True), ens
    skeleton = experts[0].skeleton
    tracker = None
    if track or smooth:
        from .tracking import PoseTracker
        tracker = PoseTracker(skeleton, smooth=smooth)
    video = VideoWriter(out / "overlay.mp4") if is_video(source) else None
    results, n, skipped = [], 0, []

    def finish(name, frame, maps):
        """Decode, track, draw and write one frame (runs while the network works on the next)."""
        nonlocal n
        heat, paf, stride = maps
        people = decoder.decode(heat, paf, stride, frame.shape[:2])
        if tracker is not None:
            people = tracker.update(people)
        n += 1
        vis = draw_poses(frame, people, skeleton, show_names=show_names)
        if show_maps:
            vis = np.concatenate([vis, map_panel(frame, heat, paf)[:, frame.shape[1]:]], 1)
        results.extend({"image_id": name, "category_id": 1, **q} for q in people)
        if video is not None:
            video.write(vis)
        else:
            _write_image(vis, out / f"{name}_pose.jpg")

    t0 = time.perf_counter()
    from concurrent.futures import ThreadPoolExecutor
    try:
        # frame t is decoded and drawn while the network (one call in flight: an ensemble keeps
        # per-call state) runs on frame t+1, and a reader thread fetches the frames ahead
        with ThreadPoolExecutor(1) as network, ThreadPoolExecutor(1) as reader:
            stream = frames(source, skipped)
            ahead = reader.submit(next, stream, None)
            pending, k = None, 0
            while True:
                item = ahead.result()
                if item is not None and (max_frames is None or k < max_frames):
                    ahead = reader.submit(next, stream, None)
                else:
                    item = None
                done = None
                if pending is not None:
                    try:
                        done = (pending[0], pending[1], pending[2].result())
                    except DataError as e:      # e.g. an image too elongated for the network
                        skipped.append(f"{pending[0]}: {e}")
                pending = None if item is None else (*item, network.submit(maps_fn, item[1]))
                if done is not None:
                    finish(*done)
                if pending is None:
                    break
                k += 1
    except BaseException:
        if video is not None:
            try:
                video.close()
            except DataError:
                pass                            # the first error is the one to report
        raise
    if video is not None:
        video.close()
    wall = time.perf_counter() - t0
    _write_json(results, out / "poses.json")
    if skipped:
        _write_json(skipped, out / "skipped.json")
    per = max(n, 1)
    return {"frames": n, "people": len(results), "skipped": skipped,
            "network_ms": 1000 * sum(e.timing["network_s"] for e in experts) / per,
            "decode_ms": 1000 * sum(e.timing["decode_s"] for e in experts) / per,
            "fps": n / wall if wall > 0 else 0.0}
