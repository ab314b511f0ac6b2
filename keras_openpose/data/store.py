"""One compact HDF5 store per training split, shared by every domain.

Each image is stored **once**: its original JPEG bytes, its ignore mask as PNG bytes, and its people
as arrays. Domain effects and augmentation happen on the fly in :mod:`keras_openpose.data.pipeline`, so
there is no per-domain copy (the reference kept three ~182 GB HDF5 files).

Layout (all datasets indexed by image row ``i`` or person row ``j``)::

    /images/jpeg         vlen uint8 (N,)   original file bytes
    /images/mask_png     vlen uint8 (N,)   ignore mask, PNG, 255 = loss used, 0 = ignored
    /images/image_id     int64 (N,)
    /images/size         int32 (N, 2)      height, width
    /images/people       int64 (N, 2)      first person row, number of people
    /images/file_name    str (N,)
    /people/keypoints    float32 (M, K, 3)    dataset keypoint order, x y v (image pixels)
    /people/bbox         float32 (M, 4)       x, y, w, h
    /people/area         float32 (M,)         segmentation area, px²
    /people/centre       float32 (M, 2)       bbox centre
    /people/scale        float32 (M,)         bbox height / 368 (the reference's scale_provided)
    /people/is_main      bool (M,)            a sample is centred on this person
    attrs: split, annotation_file, keypoint_names (JSON), categories (JSON: the categories with
           keypoints), n_images, n_skipped, skipped (JSON list of {"file", "image"|"annotation",
           "reason"}: what the validation and the image check skipped), complete
    OUT.skipped.txt      the skipped entries, one line each

Crash consistency: HDF5 files are not crash-safe (a kill during a write can leave a file that
cannot be opened, or rows beyond what was recorded), so a build never resumes *inside* an HDF5 file.
Images are processed in a fixed order, in blocks of ``block`` images; each finished block is written
to its own small file ``OUT.parts/block_<k>.h5`` (temporary name, fsync, rename). The store is then
assembled from the blocks into a temporary file, checked, and renamed to ``OUT``. A kill at any
moment leaves complete blocks only, and the same command redoes the rest: the result is the store
an uninterrupted build writes, dataset for dataset. ``OUT.lock`` keeps two builds off one output.
A write the OS refuses (a full disk, a read-only file system) ends the build with one
:class:`DataError` naming the output and the OS error; the finished blocks stay, and the same
command resumes once there is space (blocks are made in memory and written with plain file I/O, so
HDF5 never fails half-way through a block file).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import cv2
import h5py
import numpy as np

from .coco import CocoSplit, format_problem, keypoint_names, problem_summary
from .images import decode_image, image_problem
from .masks import ignore_mask, keypoints_array, select_main_people
from ..errors import DataError
from ..files import (OutputLock, atomic_path, atomic_write, check_output_file, fault_point, kill_point,
                     os_error_line, write_bytes_atomic)

BOX_SIZE = 368.0


@dataclass
class ImageRecord:
    """Everything the store keeps of one image (see module doc for units)."""

    image_id: int
    file_name: str
    height: int
    width: int
    jpeg: bytes
    mask_png: bytes
    keypoints: np.ndarray
    bbox: np.ndarray
    area: np.ndarray
    is_main: np.ndarray

    @property
    def centre(self) -> np.ndarray:
        return self.bbox[:, :2] + self.bbox[:, 2:] / 2

    @property
    def scale(self) -> np.ndarray:
        return self.bbox[:, 3] / BOX_SIZE


def encode_mask_png(mask: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", (mask > 0).astype(np.uint8) * 255, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    assert ok
    return buf.tobytes()


def decode_mask_png(data: bytes) -> np.ndarray:
    """PNG bytes -> ``uint8 (H, W)`` with 1 = loss used."""
    m = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    if m is None:
        raise DataError("store: corrupt mask PNG")
    return (m > 127).astype(np.uint8)


def make_record(split: CocoSplit, image_id: int, mask: np.ndarray | None = None) -> ImageRecord | dict | None:
    """Build the record of one image. Returns ``None`` when the image has no main person, or a
    problem ``{"file", "image", "reason"}`` when the image cannot be used (:func:`image_problem`:
    the same check as ``check_coco``)."""
    im = split.images[image_id]
    anns = split.anns_by_image[image_id]
    main = select_main_people(anns)
    if not main:
        return None
    path = split.image_path(image_id)
    try:
        data = path.read_bytes() if path.is_file() else None
    except OSError as e:
        return {"file": str(path), "image": int(image_id), "reason": e.strerror or "unreadable"}
    _, reason = image_problem(data, im["height"], im["width"])
    if reason:
        return {"file": str(path), "image": int(image_id), "reason": reason}
    people = [a for a in anns if not a.get("iscrowd") and a.get("num_keypoints", 0) > 0]
    main_ids = {anns[i]["id"] for i in main}
    if mask is None:
        mask = ignore_mask(anns, im["height"], im["width"])
    K = split.num_keypoints
    return ImageRecord(
        image_id=int(image_id), file_name=im["file_name"], height=im["height"], width=im["width"],
        jpeg=data, mask_png=encode_mask_png(mask),
        keypoints=keypoints_array(people, K).reshape(-1, K, 3),
        bbox=np.array([a["bbox"] for a in people], np.float32).reshape(-1, 4),
        area=np.array([a["area"] for a in people], np.float32),
        is_main=np.array([a["id"] in main_ids for a in people], bool))


_WORKER_SPLIT: CocoSplit | None = None
_WORKER_MASKS: Path | None = None


def _init_worker(root, split, ann_file, image_dir, mask_dir):
    """Pool initialiser. Forked workers inherit the parent's split (set just before the pool
    starts: one copy of the annotations, shared copy-on-write); spawned ones read the file."""
    global _WORKER_SPLIT, _WORKER_MASKS
    if _WORKER_SPLIT is None or _WORKER_SPLIT.annotation_file != Path(ann_file):
        _WORKER_SPLIT = CocoSplit(root, split, ann_file, image_dir)
    _WORKER_MASKS = Path(mask_dir) if mask_dir else None


def _worker(image_id):
    mask = None
    if _WORKER_MASKS is not None:
        p = _WORKER_MASKS / mask_file_name(image_id)
        if p.is_file():
            mask = decode_mask_png(p.read_bytes())
    return image_id, make_record(_WORKER_SPLIT, image_id, mask)


def mask_file_name(image_id: int) -> str:
    return f"mask_miss_{image_id:012d}.png"


def write_masks(split: CocoSplit, out_dir: str | Path, ids=None, progress: bool = True) -> int:
    """Write the ignore mask of every image (``mask_miss_<id>.png``, 255 = loss used) atomically;
    existing files are kept (resumable). Returns the number written."""
    from tqdm import tqdm
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n = 0
    for i in tqdm(split.image_ids if ids is None else ids, desc="masks", disable=not progress):
        dst = out_dir / mask_file_name(i)
        if dst.exists():
            continue
        im = split.images[i]
        write_bytes_atomic(encode_mask_png(ignore_mask(split.anns_by_image[i], im["height"], im["width"])), dst)
        n += 1
    return n


def _create(f: h5py.File, K: int):
    vl = h5py.vlen_dtype(np.uint8)
    g = f.create_group("images")
    g.create_dataset("jpeg", (0,), dtype=vl, maxshape=(None,), chunks=(64,))
    g.create_dataset("mask_png", (0,), dtype=vl, maxshape=(None,), chunks=(64,))
    g.create_dataset("image_id", (0,), dtype=np.int64, maxshape=(None,), chunks=(1024,))
    g.create_dataset("size", (0, 2), dtype=np.int32, maxshape=(None, 2), chunks=(1024, 2))
    g.create_dataset("people", (0, 2), dtype=np.int64, maxshape=(None, 2), chunks=(1024, 2))
    g.create_dataset("file_name", (0,), dtype=h5py.string_dtype(), maxshape=(None,), chunks=(1024,))
    p = f.create_group("people")
    p.create_dataset("keypoints", (0, K, 3), dtype=np.float32, maxshape=(None, K, 3), chunks=(1024, K, 3))
    p.create_dataset("bbox", (0, 4), dtype=np.float32, maxshape=(None, 4), chunks=(1024, 4))
    p.create_dataset("area", (0,), dtype=np.float32, maxshape=(None,), chunks=(1024,))
    p.create_dataset("centre", (0, 2), dtype=np.float32, maxshape=(None, 2), chunks=(1024, 2))
    p.create_dataset("scale", (0,), dtype=np.float32, maxshape=(None,), chunks=(1024,))
    p.create_dataset("is_main", (0,), dtype=bool, maxshape=(None,), chunks=(1024,))
    f.attrs["skipped"] = "[]"
    f.attrs["complete"] = False


def _append(f: h5py.File, recs: list[ImageRecord]):
    g, p = f["images"], f["people"]
    n0, m0 = g["image_id"].shape[0], p["area"].shape[0]
    n1 = n0 + len(recs)
    counts = [len(r.area) for r in recs]
    m1 = m0 + sum(counts)
    for name in g:
        g[name].resize(n1, axis=0)
    for name in p:
        p[name].resize(m1, axis=0)
    for k, r in enumerate(recs):
        g["jpeg"][n0 + k] = np.frombuffer(r.jpeg, np.uint8)
        g["mask_png"][n0 + k] = np.frombuffer(r.mask_png, np.uint8)
    g["image_id"][n0:n1] = [r.image_id for r in recs]
    g["size"][n0:n1] = [(r.height, r.width) for r in recs]
    g["file_name"][n0:n1] = [r.file_name for r in recs]
    g["people"][n0:n1] = np.stack([m0 + np.cumsum([0] + counts[:-1]), counts], 1) if recs else np.zeros((0, 2))
    if m1 > m0:
        p["keypoints"][m0:m1] = np.concatenate([r.keypoints for r in recs])
        p["bbox"][m0:m1] = np.concatenate([r.bbox for r in recs])
        p["area"][m0:m1] = np.concatenate([r.area for r in recs])
        p["centre"][m0:m1] = np.concatenate([r.centre for r in recs])
        p["scale"][m0:m1] = np.concatenate([r.scale for r in recs])
        p["is_main"][m0:m1] = np.concatenate([r.is_main for r in recs])


def _read_block(path: Path) -> tuple[list[ImageRecord], list[dict]]:
    """The records and skipped entries of a block file (the inverse of :func:`_write_block`)."""
    with h5py.File(path, "r") as f:
        g, p = f["images"], f["people"]
        people, kp, bbox, area, main = (g["people"][:], p["keypoints"][:], p["bbox"][:], p["area"][:],
                                        p["is_main"][:])
        out = []
        for i in range(g["image_id"].shape[0]):
            sl = slice(int(people[i, 0]), int(people[i, 0] + people[i, 1]))
            h, w = (int(v) for v in g["size"][i])
            name = g["file_name"][i]
            out.append(ImageRecord(int(g["image_id"][i]), name.decode() if isinstance(name, bytes) else str(name),
                                   h, w, g["jpeg"][i].tobytes(), g["mask_png"][i].tobytes(), kp[sl], bbox[sl],
                                   area[sl], main[sl]))
        return out, json.loads(f.attrs["skipped"])


def _write_block(path: Path, recs: list[ImageRecord], K: int, skipped: list[dict]) -> None:
    """One block file, atomically (temporary name, fsync, rename). The HDF5 file is made in memory
    and written with plain file I/O, so a full disk is one ``OSError`` (with its errno and path),
    never an HDF5 library left half-way through a write."""
    import io
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        _create(f, K)
        _append(f, recs)
        f.attrs["skipped"] = json.dumps(skipped)
    with atomic_write(path, "wb") as fh:
        fault_point("block_write", path)
        fh.write(buf.getbuffer())
        kill_point("block_written")


def build_store(split: CocoSplit, out: str | Path, exclude_ids=(), mask_dir: str | Path | None = None,
                workers: int | None = None, block: int = 64, progress: bool = True,
                stop_after: int | None = None) -> dict:
    """Build the store of ``split`` at ``out`` (see module doc), in parallel processes.

    Args:
        split: the COCO split to store.
        out: the ``.h5`` path; blocks go to ``out + '.parts/'`` until the store is assembled.
        exclude_ids: image ids never stored (a test list: training provably never sees them).
        mask_dir: masks written by :func:`write_masks` (computed on the fly when absent).
        workers: processes (default: all cores).
        block: images per block file; an interruption loses at most the unfinished blocks.
        stop_after: stop (leaving a resumable build) after this many ids; for tests.
    Returns:
        a report: ``{"images", "people", "main_people", "skipped": [...], "bytes", "jpeg_bytes",
        "path", "complete"}``.
    Raises:
        DataError: ``out`` cannot be written (checked before any work), or another build holds it.
    """
    out = Path(out)
    check_output_file(out, example=f"{split.split}.h5")
    with OutputLock(out):
        try:
            return _build(split, out, exclude_ids, mask_dir, workers, block, progress, stop_after)
        except (OSError, RuntimeError) as e:       # a full disk, a read-only or vanished folder
            line = os_error_line(e)
            if line is None:
                raise
            parts = out.with_name(out.name + ".parts")
            kept = len(list(parts.glob("block_*.h5"))) if parts.is_dir() else 0
            where, _, reason = line.rpartition(": ")
            raise DataError(f"{out}: {reason}" + (f" (writing {where})" if where else "") + f": the store build "
                            f"stopped; {kept} finished blocks are kept in {parts}: free space and run the same "
                            "command again to resume") from None


def _build(split, out, exclude_ids, mask_dir, workers, block, progress, stop_after):
    from tqdm import tqdm
    parts = out.with_name(out.name + ".parts")
    legacy = out.with_name(out.name + ".partial")
    if legacy.exists():
        print(f"{legacy}: a partial store of an earlier version; starting over", flush=True)
        legacy.unlink()
    exclude = set(int(i) for i in exclude_ids)
    order = [i for i in split.image_ids if i not in exclude]
    K = split.num_keypoints
    plan = {"split": split.split, "annotation_file": str(split.annotation_file), "images": len(order),
            "ids_sha1": hashlib.sha1(json.dumps(order).encode()).hexdigest(), "block": block, "keypoints": K,
            "masks": str(mask_dir) if mask_dir else None}
    plan_file = parts / "build.json"
    if parts.exists():
        try:
            old = json.loads(plan_file.read_text())
        except (OSError, ValueError):
            old = None
        if old != plan:
            print(f"{parts}: blocks of another build ({'unreadable plan' if old is None else 'other settings'}); "
                  "starting over", flush=True)
            shutil.rmtree(parts)
    parts.mkdir(parents=True, exist_ok=True)
    if not plan_file.exists():
        from ..files import write_json_atomic
        write_json_atomic(plan, plan_file)
    n_blocks = -(-len(order) // block) if order else 0
    block_path = [parts / f"block_{k:06d}.h5" for k in range(n_blocks)]
    limit = len(order) if stop_after is None else min(stop_after, len(order))
    todo_blocks = [k for k in range(n_blocks) if not block_path[k].exists() and k * block < limit]
    todo = [i for k in todo_blocks for i in order[k * block:min((k + 1) * block, limit)]]
    bar = tqdm(total=len(order), initial=len(order) - len(todo), desc=f"store {split.split}", disable=not progress)
    try:
        _store_blocks(split, todo, order, block, block_path, K, workers, mask_dir, bar)
    finally:
        bar.close()
    if not all(p.exists() for p in block_path):
        return {"path": str(parts), "complete": False}
    with atomic_path(out) as tmp:
        with h5py.File(tmp, "w") as f:
            _create(f, K)
            for key in ("split", "annotation_file"):
                f.attrs[key] = plan[key]
            f.attrs["excluded"] = len(exclude)
            f.attrs["keypoint_names"] = json.dumps(list(keypoint_names(split.data) or ()))
            f.attrs["categories"] = json.dumps([c for c in split.data["categories"] if c.get("keypoints")])
            skipped = list(split.problems)   # annotations the validation skipped, then images
            for bp in block_path:
                recs, block_skipped = _read_block(bp)
                _append(f, recs)
                skipped += block_skipped
                kill_point("assemble")
            n = f["images/image_id"].shape[0]
            ids = f["images/image_id"][:]
            if len(set(ids.tolist())) != n or (n and f["images/people"][:, 1].sum() != f["people/area"].shape[0]):
                raise DataError(f"{out}: integrity check of the assembled store failed")
            f.attrs["skipped"] = json.dumps(skipped)
            f.attrs["n_images"] = n
            f.attrs["n_skipped"] = len(skipped)
            f.attrs["complete"] = True
            fault_point("assemble_write", tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
    shutil.rmtree(parts)
    rep = store_report(out) | {"path": str(out)}
    from ..files import write_bytes_atomic
    write_bytes_atomic("".join(line + "\n" for line in rep["skipped"]).encode(), out.with_name(out.name + ".skipped.txt"))
    return rep


def _store_blocks(split, todo, order, block, block_path, K, workers, mask_dir, bar):
    """Make the records of the images ``todo`` in parallel processes and write each finished block."""
    if todo:
        n_workers = workers or os.cpu_count() or 1
        ctx = get_context("fork") if hasattr(os, "fork") else get_context()
        global _WORKER_SPLIT
        _WORKER_SPLIT = split                      # inherited by forked workers (see _init_worker)
        position = {image_id: n for n, image_id in enumerate(order)}
        current, buf, skipped = None, [], []
        with ctx.Pool(n_workers, _init_worker, (split.root, split.split, split.annotation_file,
                                                split.image_dir, mask_dir)) as pool:
            for image_id, rec in pool.imap(_worker, todo, chunksize=4):
                k = position[image_id] // block
                if k != current:
                    current, buf, skipped = k, [], []
                if isinstance(rec, dict):
                    skipped.append(rec)
                elif rec is not None:
                    buf.append(rec)
                bar.update(1)
                if position[image_id] == min((k + 1) * block, len(order)) - 1:   # the block's last image
                    _write_block(block_path[k], buf, K, skipped)
                    kill_point("block_renamed")


def store_report(path: str | Path) -> dict:
    """Counts and sizes of a store (see :func:`build_store`)."""
    with h5py.File(path, "r") as f:
        jpeg_bytes = int(sum(len(x) for x in f["images/jpeg"]))
        return {"images": int(f["images/image_id"].shape[0]), "people": int(f["people/area"].shape[0]),
                "main_people": int(f["people/is_main"][:].sum()),
                "skipped": [format_problem(p) for p in json.loads(f.attrs["skipped"])],
                "skipped_by_reason": problem_summary(json.loads(f.attrs["skipped"])),
                "complete": bool(f.attrs["complete"]),
                "bytes": os.path.getsize(path), "jpeg_bytes": jpeg_bytes}


class Store:
    """Read access to a complete store. Thread-safe reads (one lock around h5py).

    Args:
        path: the ``.h5`` file.
    Raises:
        DataError: missing, incomplete or not a store.
    """

    def __init__(self, path: str | Path):
        import threading
        self.path = Path(path)
        if not self.path.is_file():
            raise DataError(f"{self.path}: store not found (build it with training/generate_hdf5_coco2014.py)")
        try:
            self._f = h5py.File(self.path, "r")
        except OSError:
            raise DataError(f"{self.path}: not an HDF5 file") from None
        if "images" not in self._f or not self._f.attrs.get("complete", False):
            raise DataError(f"{self.path}: not a complete keras-openpose store")
        self._lock = threading.Lock()
        self.image_ids = self._f["images/image_id"][:]
        self.sizes = self._f["images/size"][:]
        self.people_index = self._f["images/people"][:]
        self.keypoints = self._f["people/keypoints"][:]
        self.bbox = self._f["people/bbox"][:]
        self.centre = self._f["people/centre"][:]
        self.scale = self._f["people/scale"][:]
        self.is_main = self._f["people/is_main"][:]
        self.keypoint_names = tuple(json.loads(self._f.attrs.get("keypoint_names", "[]")))
        self.categories = json.loads(self._f.attrs.get("categories", "[]"))

    def coco_data(self) -> dict:
        """A COCO-like dict of the store's people (``categories`` and ``annotations`` with
        ``keypoints`` and ``bbox``): what :func:`keras_openpose.config.resolve_skeleton` needs to
        derive the dataset's skeleton without the annotation file."""
        anns = [{"keypoints": k.reshape(-1).tolist(), "bbox": b.tolist()} for k, b in zip(self.keypoints, self.bbox)]
        return {"categories": self.categories, "annotations": anns}

    def __len__(self):
        return len(self.image_ids)

    def samples(self) -> np.ndarray:
        """``(S, 2)`` int64 rows ``(image row, person row)``: one training sample per main person."""
        rows = []
        for i, (start, count) in enumerate(self.people_index):
            for j in range(start, start + count):
                if self.is_main[j]:
                    rows.append((i, j))
        return np.array(rows, np.int64).reshape(-1, 2)

    def image(self, i: int) -> np.ndarray:
        with self._lock:
            data = self._f["images/jpeg"][i].tobytes()
        return decode_image(data, f"{self.path}[images/jpeg][{i}]")

    def mask(self, i: int) -> np.ndarray:
        with self._lock:
            data = self._f["images/mask_png"][i].tobytes()
        return decode_mask_png(data)

    def people(self, i: int) -> slice:
        start, count = self.people_index[i]
        return slice(int(start), int(start + count))

    def close(self):
        self._f.close()
