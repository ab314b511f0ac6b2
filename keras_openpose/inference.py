"""Inference: image -> network maps -> people, with CMU's input convention.

The image is resized so its height is ``box_size x scale`` (368 by default, as CMU does), padded
bottom/right to a multiple of the stride with grey 128, run through the network; the padding is
cropped off the stride-8 maps, and the decoder maps cells back to input-image pixels with the exact
stride ``8 / s``. Multi-scale search averages maps over scales (resampled to the maps of the first
scale) and ``flip`` averages with the mirrored image (left/right channels swapped, PAF x negated).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .codec import DecodeOptions, decode_poses
from .errors import DataError
from .skeleton import DEFAULT_SKELETON, Skeleton

STRIDE = 8


def load_network(path: str | Path):
    """Load a trained network (``.keras``) for inference; raises :class:`DataError` naming the file."""
    import keras

    from . import train  # noqa: F401  (registers MaskedL2 for deserialisation)
    path = Path(path)
    if path.is_dir():
        path = path / "model.keras"
    if not path.is_file():
        raise DataError(f"{path}: model weights not found")
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as e:  # keras raises many types for a bad archive
        raise DataError(f"{path}: not a Keras model file ({type(e).__name__}: {str(e).splitlines()[0][:120]})") from None


def preprocess(image: np.ndarray, box_size: int = 368, scale: float = 1.0, stride: int = STRIDE):
    """Resize ``image (H, W, 3)`` to height ``box_size * scale`` (cubic) and pad to the stride.

    Returns:
        ``(padded float32 (Hp, Wp, 3), s, (hr, wr))`` with ``s`` the resize factor and
        ``(hr, wr)`` the resized size before padding.
    """
    if image is None or image.ndim != 3 or image.shape[2] != 3:
        raise DataError(f"expected a (H, W, 3) image, got {None if image is None else image.shape}")
    H, W = image.shape[:2]
    s = box_size * scale / H
    hr, wr = max(1, int(round(H * s))), max(1, int(round(W * s)))
    resized = cv2.resize(image, (wr, hr), interpolation=cv2.INTER_CUBIC)
    hp, wp = -(-hr // stride) * stride, -(-wr // stride) * stride
    out = np.full((hp, wp, 3), 128, np.uint8)
    out[:hr, :wr] = resized
    return out.astype(np.float32), s, (hr, wr)


def _flip_maps(heat, paf, skeleton: Skeleton):
    perm = skeleton.flip_permutation
    heat = heat[:, ::-1]
    heat = np.concatenate([heat[..., perm], heat[..., -1:]], -1)
    paf = paf[:, ::-1]
    # a flip maps limb (a, b) to limb (perm a, perm b); x components change sign
    index = {tuple(l): i for i, l in enumerate(skeleton.limbs)}
    out = np.empty_like(paf)
    for i, (a, b) in enumerate(skeleton.limbs):
        j = index.get((perm[a], perm[b]))
        if j is None:
            j = index[(perm[b], perm[a])]
            out[..., 2 * j], out[..., 2 * j + 1] = paf[..., 2 * i], -paf[..., 2 * i + 1]
        else:
            out[..., 2 * j], out[..., 2 * j + 1] = -paf[..., 2 * i], paf[..., 2 * i + 1]
    return heat, out


@dataclass
class InferenceOptions:
    """Input handling: ``box_size`` (368), ``scales`` (multiples of the box), ``flip`` averaging."""

    box_size: int = 368
    scales: tuple = (1.0,)
    flip: bool = False
    decode: DecodeOptions = field(default_factory=DecodeOptions)


class PoseEstimator:
    """A trained network plus the decoder.

    Example::

        est = PoseEstimator.from_weights("runs/quickstart/experts/normal/model.keras")
        poses = est.estimate(cv2.imread("image.jpg"))   # [{"keypoints": [51], "score": s}, ...]

    Args:
        model: a Keras model whose last two outputs are ``[PAF, heatmaps]``.
        options: :class:`InferenceOptions`.
    """

    def __init__(self, model, options: InferenceOptions | None = None, skeleton: Skeleton = DEFAULT_SKELETON):
        import tensorflow as tf
        self.model = model
        self.options = options or InferenceOptions()
        self.skeleton = skeleton
        self._fn = tf.function(lambda x: model(x, training=False)[-2:], reduce_retracing=True)
        self.timing = {"network_s": 0.0, "decode_s": 0.0, "images": 0}

    @classmethod
    def from_weights(cls, path: str | Path, options: InferenceOptions | None = None) -> "PoseEstimator":
        """Load a ``.keras`` model (or a run folder holding ``model.keras``)."""
        return cls(load_network(path), options)

    def maps(self, image: np.ndarray):
        """Heatmaps ``(h, w, 19)`` and PAFs ``(h, w, 38)`` of ``image`` (BGR uint8), averaged over
        scales and flips, at stride 8 of the first scale's resized image; with that image's ``s``.

        Returns:
            ``(heatmaps, pafs, stride)`` where ``stride`` = input-image pixels per cell (``8 / s``).
        """
        o = self.options
        t0 = time.perf_counter()
        acc_h = acc_p = None
        base = None
        n = 0
        for sc in o.scales:
            x, s, (hr, wr) = preprocess(image, o.box_size, sc)
            batch = x[None]
            if o.flip:
                batch = np.concatenate([batch, x[None, :, ::-1]], 0)
            paf, heat = self._fn(batch)
            paf, heat = np.asarray(paf, np.float32), np.asarray(heat, np.float32)
            h, w = -(-hr // STRIDE), -(-wr // STRIDE)
            hs, ps = [heat[0, :h, :w]], [paf[0, :h, :w]]
            if o.flip:
                # the mirrored input was padded on the right: cells of the image are the last w ones
                Wc = heat.shape[2]
                fh, fp = _flip_maps(heat[1, :h, Wc - w:], paf[1, :h, Wc - w:], self.skeleton)
                hs.append(fh)
                ps.append(fp)
            hm, pm = np.mean(hs, 0), np.mean(ps, 0)
            if base is None:
                base = (h, w, s)
            elif (h, w) != base[:2]:
                hm = cv2.resize(hm, (base[1], base[0]), interpolation=cv2.INTER_LINEAR)
                pm = cv2.resize(pm, (base[1], base[0]), interpolation=cv2.INTER_LINEAR)
            acc_h = hm if acc_h is None else acc_h + hm
            acc_p = pm if acc_p is None else acc_p + pm
            n += 1
        self.timing["network_s"] += time.perf_counter() - t0
        return acc_h / n, acc_p / n, STRIDE / base[2]

    def decode(self, heatmaps, pafs, stride, image_shape):
        t0 = time.perf_counter()
        poses = decode_poses(heatmaps, pafs, image_shape, stride=stride, skeleton=self.skeleton,
                             options=self.options.decode)
        self.timing["decode_s"] += time.perf_counter() - t0
        self.timing["images"] += 1
        return poses

    def estimate(self, image: np.ndarray) -> list[dict]:
        """People in ``image`` (``uint8 (H, W, 3)`` BGR): ``[{"keypoints": [51 floats, COCO order,
        input-image pixels], "score": float}]``."""
        heat, paf, stride = self.maps(image)
        return self.decode(heat, paf, stride, image.shape[:2])
