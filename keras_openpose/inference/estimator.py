"""Inference: image -> network maps -> people, with CMU's input convention.

The image is resized so its height is ``box_size x scale`` (368 by default, as CMU does), padded
bottom/right to a multiple of the stride with grey 128, run through the network; the padding is
cropped off the maps, and the codec maps cells back to image pixels with the exact stride
``stride / s``. Multi-scale search averages maps over scales (resampled to the maps of the first
scale) and ``flip`` averages with the mirrored image (the codec swaps left/right channels and
negates the PAF x components): the test protocol of Cao et al. 2017, sec. 4.
"""
from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np

from ..codec import PAD_VALUE, PafCodec
from ..config import InferenceOptions
from ..errors import DataError
from .runtimes import KerasRuntime, RUNTIME_TYPES, load_runtime


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


class PoseEstimator:
    """A network on any runtime, its codec and the input handling.

    Example::

        est = PoseEstimator.from_weights("runs/quickstart/models/pose_normal.keras")   # or .onnx, .tflite, .xml
        people = est.estimate(cv2.imread("image.jpg"))   # [{"keypoints": [3K floats], "score": s}, ...]

    Args:
        model: a Keras model whose last two outputs are ``[PAF (2L), heatmaps (P + 1)]``, or a runtime
            (:func:`load_runtime`).
        options: :class:`~keras_openpose.config.InferenceOptions` (box size, scales, flip).
        codec: the maps' codec; default the model's own (:func:`keras_openpose.model.networks.network_codec`).
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
