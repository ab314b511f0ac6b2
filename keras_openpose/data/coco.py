"""COCO keypoint annotations: loading and validation with clear errors, :class:`CocoSplit` (one
split's annotations and images), and the checks of ``dataset/check_coco.py``.

Layout of a COCO root (2014 or 2017, as unpacked by ``dataset/step1_download_coco2014.sh``)::

    ROOT/annotations/person_keypoints_<split>.json
    ROOT/<split>/<file_name>            # e.g. val2014/COCO_val2014_000000000136.jpg

Coordinates in annotations are COCO's continuous image coordinates (pixels). A bad entry is skipped
and counted with its reason (``problems``), never silently taken.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from .images import image_problem, read_image
from ..config import PROJECT_ROOT

REQUIRED_IMAGE_KEYS = ("id", "file_name", "height", "width")
REQUIRED_ANN_KEYS = ("id", "image_id", "keypoints", "bbox")


def annotation_path(root: str | Path, split: str) -> Path:
    return Path(root) / "annotations" / f"person_keypoints_{split}.json"


def load_annotations(path: str | Path, problems: list | None = None) -> dict:
    """Read a COCO keypoint annotation file and validate every entry (:func:`validate_annotations`).

    Bad entries are skipped and recorded in ``problems`` (when given) instead of stopping the read.

    Returns:
        the parsed dict (``images``, ``annotations``, ``categories``, ...) holding the valid entries,
        with ``iscrowd``, ``area`` and ``num_keypoints`` filled in where a set leaves them out.
    Raises:
        DataError: the file is missing, is not JSON, or is not a COCO annotation file (the
            top-level lists are missing); the message names the file and the problem.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: annotation file not found")
    try:
        with open(path, "rb") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not a JSON file ({e.msg if hasattr(e, 'msg') else e})") from None
    except RecursionError:
        raise DataError(f"{path}: not a JSON file (nested too deeply)") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: not a COCO annotation file (top level is {type(data).__name__}, expected an object)")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise DataError(f"{path}: not a COCO annotation file (no '{key}' list)")
    data, found = validate_annotations(data, str(path))
    if problems is not None:
        problems.extend(found)
    return data


#: A labelled keypoint farther outside the image than this fraction of the image size is an error.
OUTSIDE_MARGIN = 0.5


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)


def _int_id(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def validate_annotations(data: dict, source: str = "annotations") -> tuple[dict, list[dict]]:
    """The one validation of COCO keypoint annotations, shared by ``check_coco``, the masks and the
    store: every image and annotation that cannot be used is skipped and reported with its reason.

    Images are skipped for: not an object, missing ``id``/``file_name``/``height``/``width``, a
    non-integer or duplicate id, a non-positive size, a ``file_name`` outside the image folder
    (absolute, or climbing out with ``..``: :func:`outside_folder`). Annotations are skipped for: not
    an object, missing ``id``/``image_id``/``keypoints``/``bbox``, a duplicate id, an image id
    without image, a ``category_id`` that is not a keypoint category of the file,
    keypoints that are not ``3K`` numbers (``K`` from the category's names, else the most common
    count), non-finite numbers, a negative visibility, a bbox that is not 4 finite numbers with
    positive width and height, a labelled keypoint more than :data:`OUTSIDE_MARGIN` x the image size
    outside the image, a malformed ``segmentation``, ``iscrowd`` or ``area``.

    Returns:
        ``(clean data, problems)``: the data with only valid entries (``iscrowd`` default 0,
        ``area`` default the bbox area, ``num_keypoints`` = labelled keypoints), and one
        ``{"file", "image" or "annotation", "reason"}`` per skipped entry.
    """
    problems: list[dict] = []

    def skip(kind, ident, reason):
        problems.append({"file": source, kind: ident, "reason": reason})
    images: dict = {}
    for n, im in enumerate(data["images"]):
        where = _entry_name(im, "images", n)
        if not isinstance(im, dict):
            skip("image", where, "not an object")
            continue
        missing = [k for k in REQUIRED_IMAGE_KEYS if k not in im]
        if missing:
            skip("image", where, f"lacks {', '.join(missing)}")
        elif not _int_id(im["id"]):
            skip("image", where, "id is not an integer")
        elif im["id"] in images:
            skip("image", where, "duplicate image id")
        elif not (_int_id(im["height"]) and _int_id(im["width"]) and im["height"] > 0 and im["width"] > 0):
            skip("image", where, f"bad size {im.get('width')!r}x{im.get('height')!r}")
        elif not isinstance(im["file_name"], str) or not im["file_name"] or "\0" in im["file_name"]:
            skip("image", where, "bad file_name")
        elif outside_folder(im["file_name"]):
            skip("image", where, "file_name outside the image folder")
        else:
            images[im["id"]] = im
    names = next((c["keypoints"] for c in data["categories"]
                  if isinstance(c, dict) and isinstance(c.get("keypoints"), list) and c["keypoints"]), None)
    if names is not None:
        K = len(names)
    else:
        counts = [len(a["keypoints"]) // 3 for a in data["annotations"]
                  if isinstance(a, dict) and isinstance(a.get("keypoints"), list) and len(a["keypoints"]) >= 3]
        K = max(set(counts), key=counts.count) if counts else 17
    cats = [c for c in data["categories"] if isinstance(c, dict) and _int_id(c.get("id"))]
    category_ids = {c["id"] for c in cats if isinstance(c.get("keypoints"), list) and c["keypoints"]} \
        or {c["id"] for c in cats}
    anns, seen = [], set()
    for n, a in enumerate(data["annotations"]):
        where = _entry_name(a, "annotations", n)
        if not isinstance(a, dict):
            skip("annotation", where, "not an object")
            continue
        missing = [k for k in REQUIRED_ANN_KEYS if k not in a]
        if missing:
            skip("annotation", where, f"lacks {', '.join(missing)}")
            continue
        if not _int_id(a["id"]) or a["id"] in seen:
            skip("annotation", where, "id is not a unique integer")
            continue
        if not _int_id(a["image_id"]) or a["image_id"] not in images:
            skip("annotation", where, f"image id {a['image_id']!r} has no image")
            continue
        if "category_id" in a and not (_int_id(a["category_id"]) and a["category_id"] in category_ids):
            skip("annotation", where, f"category_id {a['category_id']!r} is not a keypoint category of the file")
            continue
        kp, bbox = a["keypoints"], a["bbox"]
        if not isinstance(kp, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in kp):
            skip("annotation", where, "keypoints are not numbers")
            continue
        if len(kp) != 3 * K:
            skip("annotation", where, f"{len(kp) / 3:g} keypoints, the category has {K}")
            continue
        k = np.asarray(kp, np.float64).reshape(K, 3)
        if not np.isfinite(k).all():
            skip("annotation", where, "non-finite keypoint values")
            continue
        if (k[:, 2] < 0).any():
            skip("annotation", where, "negative keypoint visibility")
            continue
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(_number(v) for v in bbox)):
            skip("annotation", where, "bbox is not 4 finite numbers")
            continue
        if bbox[2] <= 0 or bbox[3] <= 0:
            skip("annotation", where, f"bbox width/height {bbox[2]}x{bbox[3]} not positive")
            continue
        im = images[a["image_id"]]
        W, H = im["width"], im["height"]
        lab = k[:, 2] > 0
        if (lab & ((k[:, 0] < -OUTSIDE_MARGIN * W) | (k[:, 0] > (1 + OUTSIDE_MARGIN) * W)
                   | (k[:, 1] < -OUTSIDE_MARGIN * H) | (k[:, 1] > (1 + OUTSIDE_MARGIN) * H))).any():
            skip("annotation", where, "labelled keypoints far outside the image")
            continue
        if a.get("iscrowd", 0) not in (0, 1, True, False):
            skip("annotation", where, f"iscrowd {a.get('iscrowd')!r} is not 0 or 1")
            continue
        if "area" in a and not (_number(a["area"]) and a["area"] >= 0):
            skip("annotation", where, "area is not a finite number >= 0")
            continue
        segm = a.get("segmentation")
        if segm and not _valid_segmentation(segm, H, W):
            skip("annotation", where, "malformed segmentation")
            continue
        a = {**a, "iscrowd": int(a.get("iscrowd", 0)), "num_keypoints": int(lab.sum())}
        a.setdefault("area", float(bbox[2]) * float(bbox[3]))
        seen.add(a["id"])
        anns.append(a)
    return {**data, "images": list(images.values()), "annotations": anns}, problems


def outside_folder(file_name: str) -> bool:
    """Whether an image's ``file_name`` leaves the image folder: an absolute path (``/etc/x.jpg``,
    ``C:\\x.jpg``) or one whose ``..`` climb above it. Such images are skipped: an annotation file
    reads (and an overlay writes) inside its image folder only."""
    import ntpath
    import posixpath
    if posixpath.isabs(file_name) or ntpath.isabs(file_name) or ntpath.splitdrive(file_name)[0]:
        return True
    norm = posixpath.normpath(file_name.replace("\\", "/"))
    return norm == ".." or norm.startswith("../")


def _entry_name(entry, section: str, n: int):
    """How the report names an entry: its id when it has a usable one, else ``section[n]``."""
    ident = entry.get("id") if isinstance(entry, dict) else None
    return ident if isinstance(ident, (int, str)) and not isinstance(ident, bool) else f"{section}[{n}]"


def _valid_segmentation(segm, height: int, width: int) -> bool:
    """Polygons of finite coordinates within the image (with :data:`OUTSIDE_MARGIN`; pycocotools
    walks a polygon's perimeter, so a coordinate of 1e12 would hang it), or an RLE of the image's
    size whose counts sum to its area."""
    if isinstance(segm, list):
        m = OUTSIDE_MARGIN
        return all(isinstance(poly, list) and len(poly) >= 6 and len(poly) % 2 == 0 and all(_number(v) for v in poly)
                   and all(-m * width <= x <= (1 + m) * width for x in poly[0::2])
                   and all(-m * height <= y <= (1 + m) * height for y in poly[1::2]) for poly in segm)
    if isinstance(segm, dict):
        size, counts = segm.get("size"), segm.get("counts")
        if size != [height, width]:
            return False
        if isinstance(counts, list):
            return all(_int_id(v) and v >= 0 for v in counts) and sum(counts) == height * width
        return isinstance(counts, str) and len(counts) <= 4 * height * width + 16
    return False


def format_problem(p: dict) -> str:
    """One line for a skipped entry: ``<file>: <reason> (<image|annotation> <id>)``."""
    kind = "image" if "image" in p else "annotation"
    return f"{p['file']}: {p['reason']} ({kind} {p.get(kind)})"


def problem_summary(problems: list[dict]) -> dict[str, int]:
    """``{reason: count}`` of skipped entries, most frequent first (numbers in reasons folded to N)."""
    import re
    counts: dict[str, int] = {}
    for p in problems:
        r = re.sub(r"-?\d+(\.\d+)?", "N", p["reason"])
        counts[r] = counts.get(r, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def keypoint_names(data: dict) -> tuple[str, ...] | None:
    """The keypoint names of the first category that has them (``None`` if none does)."""
    cat = next((c for c in data.get("categories", []) if c.get("keypoints")), None)
    return tuple(cat["keypoints"]) if cat else None


@dataclass
class CocoSplit:
    """One split of a COCO root: its images, annotations grouped by image, and paths.

    Args:
        root: COCO root folder.
        split: split name, e.g. ``train2017`` or ``val2014``.
        annotation_file: override of ``root/annotations/person_keypoints_<split>.json``.
        image_dir: override of ``root/<split>``.
    """

    root: Path
    split: str
    annotation_file: Path | None = None
    image_dir: Path | None = None

    def __post_init__(self):
        self.root = Path(self.root)
        self.annotation_file = Path(self.annotation_file or annotation_path(self.root, self.split))
        self.image_dir = Path(self.image_dir or self.root / self.split)
        if not self.image_dir.is_dir():
            raise DataError(f"{self.image_dir}: image folder not found (split {self.split!r} of {self.root})")
        #: entries skipped by :func:`validate_annotations`: ``[{"file", "image"|"annotation", "reason"}]``
        self.problems: list[dict] = []
        self.data = load_annotations(self.annotation_file, self.problems)
        self.images = {im["id"]: im for im in self.data["images"]}
        self.anns_by_image: dict[int, list] = {i: [] for i in self.images}
        for a in self.data["annotations"]:
            self.anns_by_image[a["image_id"]].append(a)

    @property
    def image_ids(self) -> list[int]:
        return sorted(self.images)

    @property
    def num_keypoints(self) -> int:
        """K: keypoints per annotation (the category's names, else the first annotation's; 17 when
        the file has neither)."""
        names = keypoint_names(self.data)
        if names:
            return len(names)
        return len(self.data["annotations"][0]["keypoints"]) // 3 if self.data["annotations"] else 17

    def image_path(self, image_id: int) -> Path:
        return self.image_dir / self.images[image_id]["file_name"]

    def read(self, image_id: int) -> np.ndarray:
        return read_image(self.image_path(image_id))

    def ids_with_people(self) -> list[int]:
        """Images with at least one non-crowd person with a labelled keypoint."""
        return [i for i in self.image_ids
                if any(a["num_keypoints"] > 0 and not a["iscrowd"] for a in self.anns_by_image[i])]


def open_split(coco_root=None, split: str | None = None, annotations=None, images=None) -> CocoSplit:
    """A split from a COCO root (``coco_root`` + ``split``) or from any COCO-format file
    (``annotations``, images in ``images`` or beside the file; the split is named after the file).
    Relative paths that do not exist from the working directory are taken from the project root.

    Raises:
        DataError: a missing file or folder, or neither a root nor a file.
    """
    from ..config import PROJECT_ROOT

    def resolve(p):
        p = Path(p)
        return p if p.is_absolute() or p.exists() else PROJECT_ROOT / p
    if annotations:
        ann = resolve(annotations)
        return CocoSplit(ann.parent, split or ann.stem, ann, resolve(images) if images else ann.parent)
    if coco_root is None or split is None:
        raise DataError("name the data: --coco-root and a split, or --annotations FILE")
    return CocoSplit(resolve(coco_root), split, None, resolve(images) if images else None)


def check_root(root: str | Path, splits=None, read_images: bool = True, progress: bool = True) -> dict:
    """Check a COCO root: :func:`check_split` of every split (default: every
    ``annotations/person_keypoints_*.json``).

    Returns:
        ``{split: report}``.
    Raises:
        DataError: no annotation file in the root.
    """
    root = Path(root)
    if splits is None:
        splits = sorted(p.stem.replace("person_keypoints_", "") for p in (root / "annotations").glob("person_keypoints_*.json"))
    if not splits:
        raise DataError(f"{root}: no annotations/person_keypoints_*.json")
    return {s: check_split(annotation_path(root, s), root / s, read_images, progress, s) for s in splits}


def check_split(annotation_file: str | Path, image_dir: str | Path, read_images: bool = True,
                progress: bool = True, name: str | None = None) -> dict:
    """Check one COCO-format split and count problems instead of stopping at the first, with the
    checks the store build uses (:func:`validate_annotations`, :func:`image_problem`), so it reports
    what a build would skip.

    Returns:
        ``{"images", "annotations", "people_with_keypoints", "missing", "unreadable",
        "size_mismatch", "orphan_annotations", "skipped_annotations", "skipped_images",
        "by_reason": {reason: count}, "problems": [all, as lines], "errors": [first 20 lines]}``.
    """
    from tqdm import tqdm
    r = {"images": 0, "annotations": 0, "people_with_keypoints": 0, "missing": 0, "unreadable": 0,
         "size_mismatch": 0, "orphan_annotations": 0, "skipped_annotations": 0, "skipped_images": 0,
         "by_reason": {}, "problems": [], "errors": []}
    problems: list[dict] = []
    try:
        data = load_annotations(annotation_file, problems)
    except DataError as e:
        r["errors"].append(str(e))
        return r
    images = {im["id"]: im for im in data["images"]}
    r["images"], r["annotations"] = len(images), len(data["annotations"])
    r["people_with_keypoints"] = sum(a["num_keypoints"] > 0 for a in data["annotations"])
    folder = Path(image_dir)
    if not folder.is_dir():
        r["errors"].append(f"{folder}: image folder not found")
        r["missing"] = len(images)
        return r
    for im in tqdm(images.values(), desc=f"check {name or Path(annotation_file).stem}", disable=not progress, leave=False):
        path = folder / im["file_name"]
        if not path.is_file():
            reason = "image not found"
        elif read_images:
            reason = image_problem(path.read_bytes(), im["height"], im["width"])[1]
        else:
            continue
        if reason:
            problems.append({"file": str(path), "image": im["id"], "reason": reason})
    for p in problems:
        reason = p["reason"]
        if "annotation" in p:
            r["skipped_annotations"] += 1
            r["orphan_annotations"] += "has no image" in reason
        else:
            r["skipped_images"] += "image" in p
            key = ("missing" if reason == "image not found" else "size_mismatch" if reason.startswith("size ")
                   else "unreadable" if "image" in p and p["file"] != str(annotation_file) else None)
            if key:
                r[key] += 1
    r["by_reason"] = problem_summary(problems)
    r["problems"] = [format_problem(p) for p in problems]
    r["errors"] = r["problems"][:20]
    return r


def check_experiment_data(data, splits=None, read_images: bool = True) -> dict:
    """:func:`check_split` of an experiment's train and test splits (its
    :class:`~keras_openpose.config.DataConfig` ``data``; relative paths: to the working folder when
    they exist there, else to the project root); ``splits``: only these split names."""
    def resolve(p):
        p = Path(p)
        return p if p.is_absolute() or p.exists() else PROJECT_ROOT / p
    root = resolve(data.coco_root)
    rep = {}
    for which in ("train", "test"):
        split = getattr(data, f"{which}_split")
        if splits and split not in splits:
            continue
        given = getattr(data, f"{which}_annotations")
        ann = resolve(given) if given else annotation_path(root, split)
        images = getattr(data, f"{which}_images")
        images = resolve(images) if images else (ann.parent if given else root / split)
        rep[split] = check_split(ann, images, read_images, name=split)
    return rep


def check_report(rep: dict) -> tuple[list[str], int]:
    """The lines a user reads for the reports of :func:`check_root` / :func:`check_split`
    (``{split: report}``), and the number of problems (skipped entries, errors) they hold."""
    lines, bad = [], 0
    for split, r in rep.items():
        bad += len(r["problems"]) + (1 if r["errors"] and not r["images"] else 0)
        lines.append(f"{split}: {r['images']} images, {r['annotations']} annotations ({r['people_with_keypoints']} "
                     f"people with keypoints); missing {r['missing']}, unreadable {r['unreadable']}, size mismatch "
                     f"{r['size_mismatch']}, orphan annotations {r['orphan_annotations']}; skipped "
                     f"{r['skipped_annotations']} annotations, {r['skipped_images']} images")
        lines += [f"  {n} x {reason}" for reason, n in r["by_reason"].items()]
        lines += [f"   {e}" for e in r["errors"]]
    return lines, bad
