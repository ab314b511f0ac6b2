"""Training augmentation: one affine warp per sample (reference §5.2; scale jitter really applied).

The warp maps source-image pixels to crop pixels::

    M = T(crop/2) . F(flip) . S(scale) . R(theta) . T(-(centre + jitter))

with ``scale = target_dist * crop / bbox_height * U(scale_min, scale_max)`` so the main person's
bbox height becomes ``target_dist x crop`` before the jitter. Keypoints are transformed with the
same matrix (pixel centres at integer coordinates, as OpenCV), so a rotated person's heatmap peaks
where its warped keypoint lands. The domain effect is applied to the source image before the warp,
as the test sets are made (a 30 px blur means 30 source pixels).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .config import AugmentConfig
from .domains import random_effect
from .codec import PafCodec


@dataclass
class WarpParams:
    """One random draw of the augmentation."""

    scale: float
    angle: float
    dx: float
    dy: float
    flip: bool


def draw_params(rng: np.random.Generator, cfg: AugmentConfig, train: bool = True) -> WarpParams:
    if not train:
        return WarpParams(1.0, 0.0, 0.0, 0.0, False)
    return WarpParams(
        scale=float(rng.uniform(cfg.scale_min, cfg.scale_max)),
        angle=float(rng.uniform(-cfg.max_rotation, cfg.max_rotation)),
        dx=float(rng.uniform(-cfg.centre_jitter, cfg.centre_jitter)),
        dy=float(rng.uniform(-cfg.centre_jitter, cfg.centre_jitter)),
        flip=bool(rng.uniform() < cfg.flip_prob))


def warp_matrix(centre, person_height: float, p: WarpParams, cfg: AugmentConfig) -> np.ndarray:
    """The ``(2, 3)`` affine matrix from source pixels to crop pixels (see module doc)."""
    s = cfg.target_dist * cfg.crop / max(person_height, 1.0) * p.scale
    t = np.deg2rad(p.angle)
    c, si = np.cos(t), np.sin(t)
    shift = np.array([[1, 0, -(centre[0] + p.dx)], [0, 1, -(centre[1] + p.dy)], [0, 0, 1]], np.float64)
    rot = np.array([[c, si, 0], [-si, c, 0], [0, 0, 1]], np.float64)   # counter-clockwise on screen
    scale = np.diag([s, s, 1.0])
    flip = np.diag([-1.0 if p.flip else 1.0, 1.0, 1.0])
    half = (cfg.crop - 1) / 2.0
    back = np.array([[1, 0, half], [0, 1, half], [0, 0, 1]], np.float64)
    return (back @ flip @ scale @ rot @ shift)[:2]


def transform_points(points: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Apply a ``(2, 3)`` affine matrix to ``(..., 2)`` points."""
    return points @ m[:, :2].T + m[:, 2]


def augment_sample(image: np.ndarray, mask: np.ndarray, keypoints: np.ndarray, centre, person_height: float,
                   rng: np.random.Generator, cfg: AugmentConfig, codec: PafCodec, domain: str = "normal",
                   train: bool = True):
    """Warp one sample and convert its people to the codec skeleton's parts in crop pixels.

    Args:
        image: ``uint8 (H, W, 3)`` BGR source.
        mask: ``uint8 (H, W)`` ignore mask (1 = loss used).
        keypoints: ``(N, K, 3)`` all people of the image, source pixels, COCO ``v``, in the
            skeleton's keypoint order.
        codec: the map codec (skeleton: parts and flip pairs; stride: the mask's grid).
        centre: ``(x, y)`` of the main person (source pixels); ``person_height``: its bbox height.
        domain: effect applied to the source before the warp (random strength when training and
            ``cfg.randomize_effect``).
    Returns:
        ``(crop uint8 (c, c, 3), map_mask float32 (g, g), parts (N, P, 3) crop pixels)`` with
        ``g = codec.map_shape((c, c))``;
        the mask is warped with nearest-neighbour (outside the image = 1), area-averaged to the
        map grid and re-binarised at 0.5.
    """
    if domain != "normal":
        image = random_effect(image, domain, rng, randomize=train and cfg.randomize_effect,
                              random_angle=False)
    p = draw_params(rng, cfg, train)
    m = warp_matrix(centre, person_height, p, cfg)
    c = cfg.crop
    crop = cv2.warpAffine(image, m, (c, c), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=(128, 128, 128))
    mk = cv2.warpAffine(mask, m, (c, c), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=1)
    gh, gw = codec.map_shape((c, c))
    mk = (cv2.resize(mk.astype(np.float32), (gw, gh), interpolation=cv2.INTER_AREA) >= 0.5).astype(np.float32)
    skeleton = codec.skeleton
    parts = skeleton.keypoints_to_parts(keypoints)
    parts[..., :2] = transform_points(parts[..., :2], m)
    if p.flip:
        parts = parts[:, skeleton.flip_permutation]
    return crop, mk, parts
