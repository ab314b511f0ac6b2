"""Image domains: the degradations that define the experts' training data and the test domains.

* ``dark``: brightness scaled by ``factor`` (reference default 0.5, = PIL ``ImageEnhance.Brightness``):
  ``out = round(img * factor)`` (:func:`darken`; the test domain and the classifier). The dark
  expert trains on a mix (:func:`dark_training_effect`, :data:`DARK_TRAIN_MIX`): half its samples
  :func:`darken` at a random factor, half :func:`low_light` (a simulated low-light capture: linear
  light x a log-uniform exposure, sensor noise, JPEG, lamps kept clipped or not), so it also sees
  the noise and tone curve of real night frames.
* ``motion_blur``: a linear box kernel of ``length`` pixels (reference default 30, horizontal) at
  ``angle`` degrees, centred on the pixel (the reference's even 30x30 kernel was shifted by one
  pixel; here a length-30 box is an odd kernel of 31 taps with half weights on the two end taps).
* ``low_light``: a realistic low-light capture (:func:`low_light`: linear light x ``exposure``,
  Poisson-Gaussian sensor noise, JPEG; default exposure 0.1, lamps kept), the test domain of the
  dark expert beside the synthetic ``dark``.
* ``resolution``: down-scaling by ``factor`` (default 0.5, area interpolation). The test domain keeps
  the small image; the annotations are rescaled by :func:`keras_openpose.data.testsets.rescale_annotations`.

All effects take and return ``uint8 (H, W, 3)`` BGR images (``resolution`` changes ``H, W``).
"""
from __future__ import annotations

import cv2
import numpy as np

from ..errors import DataError

from ..config import DOMAINS, EXPERT_DOMAINS  # noqa: F401  (named by the experiment's config; used here)
#: The original project's strengths (ainu412 keras-openpose-reproduce, its dark and motion-blur
#: generators): the defaults of every effect.
DEFAULT_STRENGTH = {"normal": None, "dark": 0.5, "low_light": 0.1, "motion_blur": 30.0, "resolution": 0.5}
#: Ranges drawn from when training (experts and classifier), so no single strength is memorised.
TRAIN_STRENGTH_RANGE = {"dark": (0.25, 0.75), "motion_blur": (10.0, 45.0)}
#: The dark expert's training effect (:func:`dark_training_effect`): the share of samples made with
#: :func:`low_light` (the rest :func:`darken` at ``TRAIN_STRENGTH_RANGE["dark"]``), its exposure
#: range (drawn log-uniformly: 0.03 = 5 stops darker, 0.5 = 1 stop), the probability of
#: ``keep_highlights`` and the JPEG quality range (uniform integers, both ends included).
DARK_TRAIN_MIX = {"low_light_share": 0.5, "exposure": (0.03, 0.5), "keep_highlights": 0.5,
                  "jpeg_quality": (70, 95)}


def effect_from_flag(effect: str) -> str:
    """Map the reference's ``--effect`` suffix (``""``, ``_dark``, ``_motion_blur``, ``_resolution``)
    or a plain domain name to a domain name; raises :class:`DataError` for anything else."""
    name = effect.lstrip("_") or "normal"
    if name in ("ours", ""):
        name = "normal"
    if name not in DOMAINS:
        raise DataError(f"--effect {effect!r}: unknown effect; use one of '', _dark, _low_light, _motion_blur, _resolution")
    return name


def scale_brightness(img: np.ndarray, factor: float) -> np.ndarray:
    """Brightness x ``factor`` (> 0), rounded and clipped to uint8."""
    if not factor > 0.0:
        raise ValueError(f"brightness factor must be > 0, got {factor}")
    return np.clip(np.rint(img.astype(np.float32) * factor), 0, 255).astype(np.uint8)


def darken(img: np.ndarray, factor: float = 0.5) -> np.ndarray:
    """Brightness x ``factor`` (0 < factor <= 1), rounded to uint8."""
    if not 0.0 < factor <= 1.0:
        raise ValueError(f"dark factor must be in (0, 1], got {factor}")
    return scale_brightness(img, factor)


def motion_kernel(length: float = 30.0, angle: float = 0.0) -> np.ndarray:
    """Normalised linear motion-blur kernel: a box of ``length`` pixels along ``angle`` degrees
    (0 = horizontal, counter-clockwise), centred; odd size ``2 * ceil(length / 2) + 1``.

    For ``angle = 0`` the middle row holds ``1/length`` on the inner taps and the remainder split
    between the two end taps, so the kernel is exactly a centred continuous box of ``length`` pixels.
    """
    if length < 1:
        raise ValueError(f"blur length must be >= 1 pixel, got {length}")
    half = length / 2.0
    r = int(np.ceil(half))
    size = 2 * r + 1
    taps = np.arange(-r, r + 1, dtype=np.float64)
    # coverage of each unit tap [t - 0.5, t + 0.5] by the box [-half, half]
    row = np.clip(np.minimum(taps + 0.5, half) - np.maximum(taps - 0.5, -half), 0, 1)
    k = np.zeros((size, size), np.float64)
    k[r] = row
    if angle % 180:
        rot = cv2.getRotationMatrix2D((float(r), float(r)), angle, 1.0)
        k = cv2.warpAffine(k, rot, (size, size), flags=cv2.INTER_LINEAR)
    return (k / k.sum()).astype(np.float32)


def motion_blur(img: np.ndarray, length: float = 30.0, angle: float = 0.0) -> np.ndarray:
    """Linear motion blur with :func:`motion_kernel` (reflected borders)."""
    k = motion_kernel(length, angle)
    if angle % 180 == 0:  # horizontal: only the middle row is non-zero; a 1-row kernel is ~30x faster
        k = k[k.shape[0] // 2:k.shape[0] // 2 + 1]
    out = cv2.filter2D(img.astype(np.float32), -1, k, borderType=cv2.BORDER_REFLECT_101)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def downscale(img: np.ndarray, factor: float = 0.5) -> np.ndarray:
    """Resize to ``(W * factor) // 1, (H * factor) // 1`` pixels with area interpolation."""
    h, w = img.shape[:2]
    nw, nh = max(1, int(w * factor)), max(1, int(h * factor))
    return cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA)


def _srgb_to_linear(x):
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(x):
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(np.maximum(x, 0.0), 1 / 2.4) - 0.055)


#: :func:`_srgb_to_linear` of every uint8 level ``v / 255`` (float32, the values the formula gives).
_SRGB_TO_LINEAR = _srgb_to_linear(np.arange(256, dtype=np.float32) / np.float32(255.0)).astype(np.float32)


def low_light(img: np.ndarray, exposure: float = 0.1, rng: np.random.Generator | None = None,
              shot_noise: float = 0.01, read_noise: float = 0.002, keep_highlights: bool = True,
              jpeg_quality: int = 85) -> np.ndarray:
    """A low-light capture of the scene: half the dark expert's training samples
    (:func:`dark_training_effect`), and a check of the classifier on darkness it was not trained on
    (the classifier trains on :func:`darken`).

    sRGB -> linear light (IEC 61966-2-1), light x ``exposure``, heteroscedastic sensor noise of
    variance ``shot_noise * y + read_noise^2`` (the Poisson-Gaussian model of Foi et al. 2008, as
    used by Brooks et al. 2019 "Unprocessing"), back to sRGB, JPEG at ``jpeg_quality``. With
    ``keep_highlights`` the pixels clipped in the source (>= 250: lamps, windows, sky) stay
    clipped, as light sources do in a night scene.

    Args:
        img: ``uint8 (H, W, 3)``; exposure in (0, 1] (0.1 = 3.3 stops darker).
    Returns:
        ``uint8 (H, W, 3)``.
    """
    if not 0.0 < exposure <= 1.0:
        raise ValueError(f"exposure must be in (0, 1], got {exposure}")
    rng = rng or np.random.default_rng(0)
    # The same float32 operations as the formulas above, in place (about 1.4x faster, the same bytes):
    # sRGB -> linear looked up per uint8 level, the noise's terms summed in the same order.
    y = _SRGB_TO_LINEAR[img] * np.float32(exposure)
    noise = rng.standard_normal(y.shape, dtype=np.float32)
    sd = np.multiply(y, shot_noise, dtype=np.float32)
    sd += read_noise ** 2
    noise *= np.sqrt(sd, out=sd)
    y += noise
    if keep_highlights:
        y[img >= 250] = 1.0
    np.clip(y, 0.0, 1.0, out=y)
    srgb = np.power(y, 1 / 2.4, dtype=np.float32)         # y >= 0 here: the formula's max(x, 0) is x
    srgb *= 1.055
    srgb -= 0.055
    dim = y <= 0.0031308
    srgb[dim] = 12.92 * y[dim]
    srgb *= 255
    out = np.clip(np.rint(srgb, out=srgb), 0, 255, out=srgb).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else out


def apply_effect(img: np.ndarray, domain: str, strength: float | None = None, angle: float = 0.0) -> np.ndarray:
    """Apply the effect of ``domain`` at ``strength`` (``None`` = the reference default).

    Args:
        img: ``uint8 (H, W, 3)``.
        domain: one of :data:`DOMAINS`.
        strength: dark factor, blur length in source pixels, or resolution factor.
        angle: blur direction in degrees (``motion_blur`` only).
    Raises:
        DataError: unknown domain.
    """
    s = DEFAULT_STRENGTH.get(domain) if strength is None else strength
    if domain == "normal":
        return img
    if domain == "dark":
        return darken(img, s)
    if domain == "motion_blur":
        return motion_blur(img, s, angle)
    if domain == "low_light":      # the test domain: exposure s, sensor noise seeded by the image content
        seed = int(np.frombuffer(img[::max(1, img.shape[0] // 16), ::max(1, img.shape[1] // 16)].tobytes(), np.uint8).sum())
        return low_light(img, s, rng=np.random.default_rng(seed))
    if domain == "resolution":
        return downscale(img, s)
    raise DataError(f"unknown domain {domain!r}; known: {', '.join(DOMAINS)}")


def draw_dark_effect(rng: np.random.Generator) -> dict:
    """One random draw of the dark expert's training effect (:data:`DARK_TRAIN_MIX`):
    ``{"kind": "darken", "factor": f}`` or ``{"kind": "low_light", "exposure": e,
    "keep_highlights": k, "jpeg_quality": q}`` (exposure log-uniform)."""
    mix = DARK_TRAIN_MIX
    if rng.uniform() >= mix["low_light_share"]:
        lo, hi = TRAIN_STRENGTH_RANGE["dark"]
        return {"kind": "darken", "factor": float(rng.uniform(lo, hi))}
    lo, hi = mix["exposure"]
    exposure = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    keep = bool(rng.uniform() < mix["keep_highlights"])
    q_lo, q_hi = mix["jpeg_quality"]
    return {"kind": "low_light", "exposure": exposure, "keep_highlights": keep,
            "jpeg_quality": int(rng.integers(q_lo, q_hi + 1))}


def dark_training_effect(img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """The dark expert's training effect: :func:`draw_dark_effect`, then :func:`darken` or
    :func:`low_light` (its sensor noise drawn from ``rng`` after the parameters), so the result is
    a function of ``img`` and the state of ``rng``.

    Args:
        img: ``uint8 (H, W, 3)`` BGR.
    Returns:
        ``(uint8 (H, W, 3), the drawn parameters)``.
    """
    p = draw_dark_effect(rng)
    if p["kind"] == "darken":
        return darken(img, p["factor"]), p
    return low_light(img, p["exposure"], rng, keep_highlights=p["keep_highlights"],
                     jpeg_quality=p["jpeg_quality"]), p


def random_effect(img: np.ndarray, domain: str, rng: np.random.Generator, randomize: bool = True,
                  random_angle: bool = False) -> np.ndarray:
    """Apply ``domain`` at a strength drawn from :data:`TRAIN_STRENGTH_RANGE` (or the default when
    ``randomize`` is False); ``random_angle`` draws the blur direction uniformly in [0, 180).
    ``dark`` with ``randomize`` is the expert's training mix (:func:`dark_training_effect`)."""
    if domain == "normal":
        return img
    if randomize and domain == "dark":
        return dark_training_effect(img, rng)[0]
    if randomize and domain in TRAIN_STRENGTH_RANGE:
        lo, hi = TRAIN_STRENGTH_RANGE[domain]
        s = float(rng.uniform(lo, hi))
    else:
        s = DEFAULT_STRENGTH[domain]
    angle = float(rng.uniform(0, 180)) if (random_angle and domain == "motion_blur") else 0.0
    return apply_effect(img, domain, s, angle)
