"""The one image reader of the package (predict, eval, the classifier and the store): the readable
types (:data:`IMAGE_EXT`), a decode check that refuses truncated or corrupt files
(:func:`image_problem`), and :func:`read_image` / :func:`decode_image` returning BGR ``uint8
(H, W, 3)`` as OpenCV does.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import DataError

def image_problem(data: bytes | None, height: int | None = None, width: int | None = None):
    """Why an image file cannot be used, or ``None``: missing (``data is None``), not decodable,
    truncated (a JPEG without its end marker, a PNG without ``IEND``), or not the annotated size.
    Shared by ``check_coco`` and the store, so both skip the same images.

    Returns:
        ``(image uint8 (H, W, 3), None)`` or ``(None, reason)``.
    """
    if data is None:
        return None, "image not found"
    head, tail = data[:12], data.rstrip(b"\0")[-4096:]
    if head[:2] == b"\xff\xd8" and b"\xff\xd9" not in tail:
        return None, "truncated JPEG (no end marker)"
    if head[:8] == b"\x89PNG\r\n\x1a\n" and b"IEND" not in tail:
        return None, "truncated PNG (no IEND chunk)"
    if head[:4] == b"GIF8" and b";" not in tail[-16:]:
        return None, "truncated GIF (no trailer)"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP" and len(data) < 8 + int.from_bytes(head[4:8], "little"):
        return None, "truncated WebP (shorter than its RIFF size)"
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        return None, "not a readable image"
    if height is not None and img.shape[:2] != (height, width):
        return None, f"size {img.shape[1]}x{img.shape[0]} differs from the annotation ({width}x{height})"
    return img, None


#: The image types of every reader of the project (predict, eval, the classifier, the store): what
#: OpenCV decodes here. Any other file of a folder given to predict is listed as skipped, by type.
IMAGE_EXT = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def read_image(path: str | Path) -> np.ndarray:
    """The one image reader (predict, eval, the classifier; the store checks the same way): an
    image file as ``uint8 (H, W, 3)`` BGR, refused when :func:`image_problem` finds it truncated or
    undecodable (a GIF gives its first frame).

    Raises:
        DataError: ``<file>: image not found``, ``<file>: truncated JPEG (no end marker)``, ...
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: image not found" if not path.exists() else f"{path}: not a file")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    img, reason = image_problem(data)
    if reason:
        raise DataError(f"{path}: {reason}")
    return img


def decode_image(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode JPEG/PNG bytes to ``uint8 (H, W, 3)`` BGR; raises :class:`DataError` naming ``name``."""
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise DataError(f"{name}: not a readable image")
    return img


