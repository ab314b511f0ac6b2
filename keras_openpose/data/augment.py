"""Training augmentation: one affine warp per sample (the original project's augmentation, Cao et al. 2017 sec. 4; scale jitter really applied).

The warp maps source-image pixels to crop pixels::

    M = T(crop/2) . F(flip) . S(scale) . R(theta) . T(-(centre + jitter))

with ``scale = target_dist * crop / bbox_height * U(scale_min, scale_max)`` so the main person's
bbox height becomes ``target_dist x crop`` before the jitter. Keypoints are transformed with the
same matrix (pixel centres at integer coordinates, as OpenCV), so a rotated person's heatmap peaks
where its warped keypoint lands. The domain effect is applied to the source image before the warp,
as the test sets are made (a 30 px blur means 30 source pixels).

For distillation (:mod:`keras_openpose.train.loop`) the clean source is warped too, with the same
matrix: the teacher's clean crop and the student's degraded crop are the same view of the scene
(the same geometric augmentation, only the domain effect differs; this project's design, in the
spirit of the weak/strong views of one image in FixMatch, Sohn et al. 2020).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..config import AugmentConfig
from .domains import random_effect
from ..codec import PafCodec


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


def _warp(image: np.ndarray, m: np.ndarray, c: int) -> np.ndarray:
    return cv2.warpAffine(image, m, (c, c), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=(128, 128, 128))


def augment_sample(image: np.ndarray, mask: np.ndarray, keypoints: np.ndarray, centre, person_height: float,
                   rng: np.random.Generator, cfg: AugmentConfig, codec: PafCodec, domain: str = "normal",
                   train: bool = True, clean: bool = False):
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
        clean: also return the source without the effect, warped with the same matrix.
    Returns:
        ``(crop uint8 (c, c, 3), map_mask float32 (g, g), parts (N, P, 3) crop pixels)`` with
        ``g = codec.map_shape((c, c))``, then ``clean_crop uint8 (c, c, 3)`` when ``clean``
        (the random draws, hence the crop, are the same either way);
        the mask is warped with nearest-neighbour (outside the image = 1), area-averaged to the
        map grid and re-binarised at 0.5.
    """
    source = image
    if domain != "normal":
        image = random_effect(image, domain, rng, randomize=train and cfg.randomize_effect,
                              random_angle=False)
    p = draw_params(rng, cfg, train)
    m = warp_matrix(centre, person_height, p, cfg)
    c = cfg.crop
    crop = _warp(image, m, c)
    mk = cv2.warpAffine(mask, m, (c, c), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=1)
    gh, gw = codec.map_shape((c, c))
    mk = (cv2.resize(mk.astype(np.float32), (gw, gh), interpolation=cv2.INTER_AREA) >= 0.5).astype(np.float32)
    skeleton = codec.skeleton
    parts = skeleton.keypoints_to_parts(keypoints)
    parts[..., :2] = transform_points(parts[..., :2], m)
    if p.flip:
        parts = parts[:, skeleton.flip_permutation]
    if clean:
        return crop, mk, parts, (crop if source is image else _warp(source, m, c))
    return crop, mk, parts


def augment_photo(image: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig, domain: str = "normal",
                  train: bool = True):
    """A random view of an unlabelled photo for distillation: the domain effect on the source, then
    one warp (:func:`warp_matrix`: scale, rotation, flip and jitter drawn as :func:`draw_params`)
    centred at a uniformly drawn point of the photo, with the photo's height as the reference
    (``person_height = cfg.target_dist x H``): at scale 1 the photo is ``crop`` pixels tall, as
    inference resizes an image's height to the box. Without ``train``: the identity draw centred
    on the photo.

    Args:
        image: ``uint8 (H, W, 3)`` BGR source.
    Returns:
        ``(crop uint8 (c, c, 3), clean_crop uint8 (c, c, 3))``: the degraded and the clean source
        warped with the same matrix.
    """
    source = image
    if domain != "normal":
        image = random_effect(image, domain, rng, randomize=train and cfg.randomize_effect,
                              random_angle=False)
    p = draw_params(rng, cfg, train)
    h, w = source.shape[:2]
    centre = (rng.uniform(0, w - 1), rng.uniform(0, h - 1)) if train else ((w - 1) / 2, (h - 1) / 2)
    m = warp_matrix(centre, cfg.target_dist * h, p, cfg)
    crop = _warp(image, m, cfg.crop)
    return crop, (crop if source is image else _warp(source, m, cfg.crop))
