"""Frame sources and sinks: an image, a folder (every file processed or listed as skipped with its
reason), a video file or a webcam as ``(name, frame)`` pairs, and an atomic video writer.
"""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from ..errors import DataError
from ..data.images import IMAGE_EXT

VIDEO_EXT = (".mp4", ".avi", ".mov", ".mkv", ".webm")
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
    from ..data.images import read_image
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


