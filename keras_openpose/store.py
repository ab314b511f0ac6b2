"""One compact HDF5 store per training split, shared by every domain.

Each image is stored **once**: its original JPEG bytes, its ignore mask as PNG bytes, and its people
as arrays. Domain effects and augmentation happen on the fly in :mod:`keras_openpose.pipeline`, so
there is no per-domain copy (the reference kept three ~182 GB HDF5 files, §4, §13.3).

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
           keypoints), n_images, n_skipped, skipped (JSON list), complete

Building writes ``OUT.partial`` and renames it to ``OUT`` after an integrity check; an interrupted
build resumes from the rows already in ``OUT.partial`` (images are processed in a fixed order and
rows are committed in blocks, so none is lost or duplicated).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import cv2
import h5py
import numpy as np

from .coco import CocoSplit, decode_image, ignore_mask, keypoint_names, keypoints_array, select_main_people
from .errors import DataError
from .files import write_bytes_atomic

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


def make_record(split: CocoSplit, image_id: int, mask: np.ndarray | None = None) -> ImageRecord | str | None:
    """Build the record of one image. Returns ``None`` when the image has no main person, or an
    error string (``"file: problem"``) when the image is missing or corrupt."""
    im = split.images[image_id]
    anns = split.anns_by_image[image_id]
    main = select_main_people(anns)
    if not main:
        return None
    path = split.image_path(image_id)
    if not path.is_file():
        return f"{path}: image not found"
    try:
        data = path.read_bytes()
    except OSError as e:
        return f"{path}: {e.strerror or 'unreadable'}"
    try:
        img = decode_image(data, str(path))
    except DataError as e:
        return str(e)
    if img.shape[:2] != (im["height"], im["width"]):
        return f"{path}: size {img.shape[1]}x{img.shape[0]} differs from the annotation ({im['width']}x{im['height']})"
    people = [a for a in anns if not a.get("iscrowd") and a.get("num_keypoints", 0) > 0]
    main_ids = {anns[i]["id"] for i in main}
    if mask is None:
        mask = ignore_mask(anns, im["height"], im["width"])
    return ImageRecord(
        image_id=int(image_id), file_name=im["file_name"], height=im["height"], width=im["width"],
        jpeg=data, mask_png=encode_mask_png(mask),
        keypoints=keypoints_array(people, split.num_keypoints).reshape(-1, split.num_keypoints, 3),
        bbox=np.array([a["bbox"] for a in people], np.float32).reshape(-1, 4),
        area=np.array([a["area"] for a in people], np.float32),
        is_main=np.array([a["id"] in main_ids for a in people], bool))


_WORKER_SPLIT: CocoSplit | None = None
_WORKER_MASKS: Path | None = None


def _init_worker(root, split, ann_file, image_dir, mask_dir):
    global _WORKER_SPLIT, _WORKER_MASKS
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
    f.attrs["processed"] = 0          # how many ids of the build order are committed
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


def build_store(split: CocoSplit, out: str | Path, exclude_ids=(), mask_dir: str | Path | None = None,
                workers: int | None = None, block: int = 64, progress: bool = True,
                stop_after: int | None = None) -> dict:
    """Build the store of ``split`` at ``out`` (see module doc), in parallel processes.

    Args:
        split: the COCO split to store.
        out: the ``.h5`` path; the build goes to ``out + '.partial'`` and is renamed when complete.
        exclude_ids: image ids never stored (a test list: training provably never sees them).
        mask_dir: masks written by :func:`write_masks` (computed on the fly when absent).
        workers: processes (default: all cores).
        block: images committed per write; an interruption loses at most the uncommitted block,
            which the resumed build redoes.
        stop_after: stop (leaving a resumable partial file) after this many ids; for tests.
    Returns:
        a report: ``{"images", "people", "main_people", "skipped": [...], "no_main_person",
        "excluded", "bytes", "jpeg_bytes", "path"}``.
    Raises:
        DataError: when an existing partial file belongs to another split.
    """
    out = Path(out)
    partial = out.with_name(out.name + ".partial")
    exclude = set(int(i) for i in exclude_ids)
    order = [i for i in split.image_ids if i not in exclude]
    out.parent.mkdir(parents=True, exist_ok=True)
    mode = "a" if partial.exists() else "w"
    with h5py.File(partial, mode) as f:
        if mode == "w":
            _create(f, split.num_keypoints)
            f.attrs["keypoint_names"] = json.dumps(list(keypoint_names(split.data) or ()))
            f.attrs["categories"] = json.dumps([c for c in split.data["categories"] if c.get("keypoints")])
            f.attrs["split"] = split.split
            f.attrs["annotation_file"] = str(split.annotation_file)
            f.attrs["excluded"] = len(exclude)
        elif f.attrs.get("split") != split.split:
            raise DataError(f"{partial}: partial store of split {f.attrs.get('split')!r}, not {split.split!r}; delete it")
        done = int(f.attrs["processed"])
        # a crash between the resize and the attrs update leaves extra rows: drop them
        committed = set(f["images/image_id"][:].tolist())
        skipped = json.loads(f.attrs["skipped"])
        todo = order[done:] if stop_after is None else order[done:stop_after]
        from tqdm import tqdm
        bar = tqdm(total=len(order), initial=done, desc=f"store {split.split}", disable=not progress)
        n_workers = workers or os.cpu_count() or 1
        ctx = get_context("fork") if hasattr(os, "fork") else get_context()
        buf, pos = [], done
        with ctx.Pool(n_workers, _init_worker, (split.root, split.split, split.annotation_file,
                                                split.image_dir, mask_dir)) as pool:
            for image_id, rec in pool.imap(_worker, todo, chunksize=4):
                pos += 1
                if isinstance(rec, str):
                    skipped.append(rec)
                elif rec is not None and rec.image_id not in committed:
                    buf.append(rec)
                if len(buf) >= block or pos == done + len(todo):
                    _append(f, buf)
                    committed.update(r.image_id for r in buf)
                    buf = []
                    f.attrs["skipped"] = json.dumps(skipped)
                    f.attrs["processed"] = pos
                    f.flush()
                bar.update(1)
        bar.close()
        finished = int(f.attrs["processed"]) >= len(order)
        if finished:
            n = f["images/image_id"].shape[0]
            ids = f["images/image_id"][:]
            if len(set(ids.tolist())) != n:
                raise DataError(f"{partial}: integrity check failed (duplicate images)")
            pe = f["images/people"][:]
            if n and pe[:, 1].sum() != f["people/area"].shape[0]:
                raise DataError(f"{partial}: integrity check failed (people rows)")
            f.attrs["complete"] = True
            f.attrs["n_images"] = n
            f.attrs["n_skipped"] = len(skipped)
    if not finished:
        return {"path": str(partial), "complete": False}
    os.replace(partial, out)
    return store_report(out) | {"path": str(out)}


def store_report(path: str | Path) -> dict:
    """Counts and sizes of a store (see :func:`build_store`)."""
    with h5py.File(path, "r") as f:
        jpeg_bytes = int(sum(len(x) for x in f["images/jpeg"]))
        return {"images": int(f["images/image_id"].shape[0]), "people": int(f["people/area"].shape[0]),
                "main_people": int(f["people/is_main"][:].sum()),
                "skipped": json.loads(f.attrs["skipped"]), "complete": bool(f.attrs["complete"]),
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
