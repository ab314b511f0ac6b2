"""Files that are never half-written: every output of the project goes through :func:`atomic_write`
(a temporary file in the same folder, flushed and fsynced, then renamed over the target; a rename
within one file system is atomic on POSIX, so readers see the old file or the new one, never a mix).
"""
from __future__ import annotations

import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


@contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path next to ``path``; on success it is renamed to ``path``, on an
    exception it is removed (the previous ``path``, if any, is untouched). For writers that want a
    file name (``model.save``, ``cv2.imwrite``): the temporary name keeps the suffix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextmanager
def atomic_write(path: str | Path, mode: str = "wb"):
    """Open a temporary file for writing (``mode`` ``"w"`` or ``"wb"``); on success it is fsynced
    and renamed to ``path``; on an exception it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(path)
    try:
        with open(tmp, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes_atomic(data: bytes, path: str | Path) -> Path:
    with atomic_write(path, "wb") as f:
        f.write(data)
    return Path(path)


def write_json_atomic(obj, path: str | Path) -> Path:
    """Write JSON to ``path`` atomically (never a half-written file)."""
    with atomic_write(path, "w") as f:
        json.dump(obj, f)
    return Path(path)


def copy_atomic(src: str | Path, dst: str | Path) -> Path:
    """Copy ``src`` to ``dst`` atomically."""
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
    return Path(dst)
