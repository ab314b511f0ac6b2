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


def _name_path(e: OSError, path: Path):
    """Re-raise ``e`` naming ``path`` when the OS did not name a file (``write`` on a full disk)."""
    if e.filename is None and e.errno is not None:
        raise OSError(e.errno, e.strerror, str(path)) from None
    raise e


@contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path next to ``path``; on success it is renamed to ``path``, on an
    exception it is removed (the previous ``path``, if any, is untouched). For writers that want a
    file name (``model.save``, ``cv2.imwrite``): the temporary name keeps the suffix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    try:
        try:
            yield tmp
            os.replace(tmp, path)
        except OSError as e:
            _name_path(e, path)
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
        try:
            with open(tmp, mode) as f:
                fault_point("atomic_write", path)
                yield f
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as e:
            _name_path(e, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes_atomic(data: bytes, path: str | Path) -> Path:
    with atomic_write(path, "wb") as f:
        f.write(data)
    return Path(path)


def write_image_atomic(image, path: str | Path) -> Path:
    """Write an image (``(H, W, 3)`` BGR uint8) atomically, encoded by the file's suffix (JPEG
    for a suffix OpenCV cannot write). ``cv2.imwrite`` only returns ``False`` on a failed write
    (a full disk, a read-only folder); here every failure is one :class:`~keras_openpose.errors.DataError`
    naming the path and, where the OS gave one, its error.

    Raises:
        DataError: ``<path>: <OS error>`` or ``<path>: image encoding failed``.
    """
    import cv2

    from .errors import DataError
    path = Path(path)
    ext = path.suffix.lower() if path.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff",
                                                          ".webp") else ".jpg"
    try:
        ok, buf = cv2.imencode(ext, image)
    except cv2.error as e:
        raise DataError(f"{path}: image encoding failed ({str(e).strip().splitlines()[-1][:120]})") from None
    if not ok:
        raise DataError(f"{path}: image encoding failed")
    try:
        return write_bytes_atomic(buf.tobytes(), path)
    except OSError as e:
        raise DataError(os_error_line(e) or f"{path}: {e}") from None


def json_safe(obj):
    """``obj`` with every non-finite float (NaN, inf: "undefined", e.g. AP without people) as
    ``None``: JSON has no NaN, and a reader must not mistake one for a number."""
    import math
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:   # NumPy scalars
        return json_safe(obj.item())
    return obj


def write_json_atomic(obj, path: str | Path) -> Path:
    """Write JSON to ``path`` atomically (never a half-written file); non-finite numbers are
    written as ``null`` (:func:`json_safe`)."""
    with atomic_write(path, "w") as f:
        json.dump(json_safe(obj), f, allow_nan=False)
    return Path(path)


def copy_atomic(src: str | Path, dst: str | Path) -> Path:
    """Copy ``src`` to ``dst`` atomically."""
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
    return Path(dst)


class OutputLock:
    """An exclusive lock of the project's own on an output: ``<path>.lock``, held with ``flock``
    (released by the kernel when the holder dies, even by SIGKILL; HDF5's own file locking is
    not relied on: NFS users switch it off with ``HDF5_USE_FILE_LOCKING=FALSE``).

    The lock file records its holder (pid, host, start time, command) and stays behind, empty,
    when released (removing it would let two runs lock different files of the same name).

    Args:
        path: the output (a file or a folder) to protect.
        blocking: wait for the lock instead of failing.
    Raises:
        DataError: (non-blocking) another run holds the lock; the message names the holder.
    """

    def __init__(self, path: str | Path, blocking: bool = False):
        self.target = Path(path)
        self.path = self.target.with_name(self.target.name + ".lock")
        self.blocking = blocking
        self.fd = None

    def __enter__(self):
        import fcntl
        import socket
        import sys
        import time

        from .errors import DataError
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if self.blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "unknown holder"
            os.close(fd)
            raise DataError(f"{self.target}: in use by another run ({holder}); wait for it to end or stop it") from None
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S"),
                "command": " ".join(sys.argv)[:300]}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self.fd = fd
        return self

    def __exit__(self, *exc):
        import fcntl
        if self.fd is not None:
            os.ftruncate(self.fd, 0)
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
        return False


def _probe_folder(folder: Path, what: str, path: Path):
    """Create (and remove) a file in ``folder``: the one test of writability that sees a read-only
    file system, permissions, ACLs and root squash alike."""
    import tempfile

    from .errors import DataError
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".write_test"):
            pass
    except OSError as e:
        raise DataError(f"{what} {path}: folder {folder} is not writable ({e.strerror})") from None


def _make_folder(folder: Path, what: str, path: Path):
    from .errors import DataError
    above = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if above is not None and not above.is_dir():
        raise DataError(f"{what} {path}: {above} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"{what} {path}: cannot create folder {folder} ({e.strerror})") from None


def check_output_file(path: str | Path, what: str = "--out", example: str | None = None):
    """Fail early (before any work) when ``path`` cannot be written as a file: it is a folder, a
    file stands where its folder should be, or its folder cannot be created or written (a
    read-only file system, permissions). Creates the folder.

    Raises:
        DataError: naming the path and the problem.
    """
    from .errors import DataError
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{what} {path}: is a folder; give a file name" + (f" (e.g. {path / example})" if example else ""))
    _make_folder(path.parent, what, path)
    _probe_folder(path.parent, what, path)
    if path.exists() and not os.access(path, os.W_OK):
        raise DataError(f"{what} {path}: the existing file is not writable")


def check_output_dir(path: str | Path, what: str = "--out") -> Path:
    """Fail early (before any work) when ``path`` cannot be the output folder: it is a file, a
    file stands where one of its folders should be, or it cannot be created or written. Creates it.

    Raises:
        DataError: naming the path and the problem.
    """
    path = Path(path)
    from .errors import DataError
    if path.exists() and not path.is_dir():
        raise DataError(f"{what} {path}: is a file; give a folder")
    _make_folder(path, what, path)
    _probe_folder(path, what, path)
    return path


def os_error_line(e: BaseException) -> str | None:
    """One line for a failed read or write: ``<path>: <OS error>`` (``No space left on device``,
    ``Read-only file system``, ...), also for HDF5's errors, which carry the errno in their text;
    ``None`` when ``e`` is not an operating-system error."""
    import errno as errno_mod
    import re
    text = str(e)
    filename = getattr(e, "filename", None)
    m = re.search(r"errno = (\d+)", text)          # HDF5: "... filename = '...', errno = 28, ..."
    if m and int(m.group(1)) in errno_mod.errorcode:
        name = re.search(r"filename = '([^']*)'", text)
        filename, reason = (name.group(1) if name else filename), os.strerror(int(m.group(1)))
    elif isinstance(e, OSError) and e.errno is not None and e.strerror:
        reason = str(e.strerror).splitlines()[0]
    else:
        return None
    return f"{filename}: {reason}" if filename else reason


def fault_point(name: str, path: str | Path = "") -> None:
    """Fault injection for the write-failure tests: when ``KERAS_OPENPOSE_FAULT_AT`` is
    ``"<name>:<n>[:<ERRNO name>]"``, the ``n``-th and later times the process reaches ``name`` it
    raises the ``OSError`` a full disk (default ``ENOSPC``) would. A no-op otherwise."""
    spec = os.environ.get("KERAS_OPENPOSE_FAULT_AT")
    if not spec or not spec.startswith(name + ":"):
        return
    import errno as errno_mod
    _FAULT_COUNTS[name] = _FAULT_COUNTS.get(name, 0) + 1
    parts = spec.split(":")
    if _FAULT_COUNTS[name] >= int(parts[1]):
        code = getattr(errno_mod, parts[2] if len(parts) > 2 else "ENOSPC")
        raise OSError(code, os.strerror(code), str(path))


_FAULT_COUNTS: dict = {}


def kill_point(name: str) -> None:
    """Fault injection for the crash tests: when ``KERAS_OPENPOSE_KILL_AT`` is ``"<name>:<n>"``,
    the process kills itself with SIGKILL the ``n``-th time it reaches ``name``
    (``"<name>:<n>:TERM"``: sends itself SIGTERM once instead). A no-op otherwise."""
    spec = os.environ.get("KERAS_OPENPOSE_KILL_AT")
    if not spec or not spec.startswith(name + ":"):
        return
    _KILL_COUNTS[name] = _KILL_COUNTS.get(name, 0) + 1
    parts = spec.split(":")
    if _KILL_COUNTS[name] == int(parts[1]) or (_KILL_COUNTS[name] > int(parts[1]) and parts[2:] != ["TERM"]):
        import signal
        os.kill(os.getpid(), signal.SIGTERM if parts[2:] == ["TERM"] else signal.SIGKILL)


_KILL_COUNTS: dict = {}
