"""COCO keypoint annotations: loading with clear errors, ignore masks, main people, test lists and
domain test sets with correctly rescaled annotations.

Layout of a COCO root (2014 or 2017, as unpacked by ``dataset/step1_download_coco2014.sh``)::

    ROOT/annotations/person_keypoints_<split>.json
    ROOT/<split>/<file_name>            # e.g. val2014/COCO_val2014_000000000136.jpg

Coordinates in annotations are COCO's continuous image coordinates (pixels).
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .errors import DataError
from .files import copy_atomic, write_bytes_atomic, write_json_atomic

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
    from .config import PROJECT_ROOT

    def resolve(p):
        p = Path(p)
        return p if p.is_absolute() or p.exists() else PROJECT_ROOT / p
    if annotations:
        ann = resolve(annotations)
        return CocoSplit(ann.parent, split or ann.stem, ann, resolve(images) if images else ann.parent)
    if coco_root is None or split is None:
        raise DataError("name the data: --coco-root and a split, or --annotations FILE")
    return CocoSplit(resolve(coco_root), split, None, resolve(images) if images else None)


# ---------------------------------------------------------------------------------------------
# Masks and people
# ---------------------------------------------------------------------------------------------


def ann_to_mask(ann: dict, height: int, width: int) -> np.ndarray:
    """Binary ``uint8 (H, W)`` mask of one annotation's segmentation (polygons or RLE), via pycocotools."""
    from pycocotools import mask as mask_utils
    segm = ann.get("segmentation")
    if not segm:
        # no segmentation: fall back to the bounding box
        x, y, w, h = ann["bbox"]
        m = np.zeros((height, width), np.uint8)
        m[int(max(0, y)):int(np.ceil(y + h)), int(max(0, x)):int(np.ceil(x + w))] = 1
        return m
    if isinstance(segm, list):
        rles = mask_utils.frPyObjects(segm, height, width)
        rle = mask_utils.merge(rles)
    elif isinstance(segm.get("counts"), list):
        rle = mask_utils.frPyObjects(segm, height, width)
    else:
        rle = segm
    return mask_utils.decode(rle).astype(np.uint8)


def ignore_mask(anns: list[dict], height: int, width: int) -> np.ndarray:
    """Where the training loss counts (Cao et al. 2017 §4: unlabeled people are masked out).

    Returns:
        ``uint8 (H, W)``: 1 where the loss is used, 0 over crowd regions (``iscrowd = 1``) and over
        people without any labelled keypoint. (The reference's ``mask_miss``; its crowd region minus
        the people already drawn is not copied: a crowd region is ignored whole.)
    """
    ignore = np.zeros((height, width), bool)
    for a in anns:
        if a.get("iscrowd") or a.get("num_keypoints", 0) == 0:
            ignore |= ann_to_mask(a, height, width).astype(bool)
    return (~ignore).astype(np.uint8)


def keypoints_array(anns: list[dict], num_keypoints: int | None = None) -> np.ndarray:
    """``(N, K, 3)`` float32 keypoints of annotations (dataset order, ``v`` as in COCO); ``K`` =
    ``num_keypoints`` (needed for an empty list; default 17)."""
    if not anns:
        return np.zeros((0, num_keypoints or 17, 3), np.float32)
    return np.array([a["keypoints"] for a in anns], np.float32).reshape(len(anns), -1, 3)


def select_main_people(anns: list[dict], min_keypoints: int = 5, min_area: float = 32 * 32,
                       min_spacing: float = 0.3) -> list[int]:
    """Indices (into ``anns``) of the people a training sample is centred on (reference §4.3).

    A person is a main person when it is not a crowd, has ``>= min_keypoints`` labelled keypoints,
    a segmentation area ``>= min_area`` px², and its bbox centre is farther than
    ``min_spacing * max(w, h)`` **of the already accepted person** from every accepted centre (the
    reference used the size of the image's last annotation: a stale variable, §13.1 item 11).
    """
    accepted: list[int] = []
    centres: list[tuple[float, float, float]] = []
    for i, a in enumerate(anns):
        if a.get("iscrowd") or a.get("num_keypoints", 0) < min_keypoints or a["area"] < min_area:
            continue
        x, y, w, h = a["bbox"]
        cx, cy = x + w / 2, y + h / 2
        if any(np.hypot(cx - px, cy - py) < min_spacing * size for px, py, size in centres):
            continue
        accepted.append(i)
        centres.append((cx, cy, max(w, h)))
    return accepted


# ---------------------------------------------------------------------------------------------
# Test lists
# ---------------------------------------------------------------------------------------------

_LIST_DIR = Path(__file__).resolve().parent.parent / "dataset" / "lists"


def read_id_list(path: str | Path) -> list[int]:
    """Image ids from a list file: one id per line, or the CMU list format (index, id, file name,
    height, width; tab- or space-separated). Blank lines and ``#`` comments are skipped.

    Raises:
        DataError: missing file or a line without an integer id.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: id list not found")
    ids = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.replace(",", " ").split()
        try:
            ids.append(int(fields[1] if len(fields) >= 3 else fields[0]))
        except ValueError:
            raise DataError(f"{path}:{n}: no integer image id in {line!r}") from None
    return ids


def cmu_val2014_1k() -> list[int]:
    """The 1,160 image ids of CMU's "COCO2014-Val-1k" list (the paper's 58.4 AP subset)."""
    return read_id_list(_LIST_DIR / "cmu_val2014_1k.txt")


def random_test_list(split: CocoSplit, n: int = 1000, seed: int = 0, people_only: bool = True) -> list[int]:
    """A seeded random list of ``n`` image ids of ``split`` (sorted). With ``people_only`` only
    images with an annotated person are drawn (images without people add no AP information)."""
    pool = split.ids_with_people() if people_only else split.image_ids
    rng = np.random.default_rng(seed)
    n = min(n, len(pool))
    return sorted(int(i) for i in rng.choice(pool, size=n, replace=False))


def resolve_test_list(spec: str | None, split: CocoSplit, seed: int = 0) -> list[int]:
    """``None``/``all`` = every image of the split; ``cmu1k``; ``random1k``; or a list file path."""
    if spec in (None, "", "all"):
        return split.image_ids
    if spec == "cmu1k":
        return [i for i in cmu_val2014_1k() if i in split.images]
    if spec == "random1k":
        return random_test_list(split, 1000, seed)
    ids = read_id_list(spec)
    unknown = [i for i in ids if i not in split.images]
    if unknown:
        raise DataError(f"{spec}: {len(unknown)} ids not in {split.annotation_file} (first: {unknown[0]})")
    return ids


# ---------------------------------------------------------------------------------------------
# Domain test sets
# ---------------------------------------------------------------------------------------------


def _scale_segmentation(segm, sx: float, sy: float, height: int, width: int, new_h: int, new_w: int):
    from pycocotools import mask as mask_utils
    if isinstance(segm, list):  # polygons
        out = []
        for poly in segm:
            p = np.asarray(poly, np.float64).reshape(-1, 2) * (sx, sy)
            out.append(p.reshape(-1).tolist())
        return out
    # RLE (uncompressed list counts or compressed string): resample the mask
    rle = mask_utils.frPyObjects(segm, height, width) if isinstance(segm.get("counts"), list) else segm
    m = mask_utils.decode(rle)
    m = cv2.resize(m, (new_w, new_h), interpolation=cv2.INTER_NEAREST)
    enc = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
    enc["counts"] = enc["counts"].decode("ascii")
    return enc


def rescale_annotations(data: dict, new_sizes: dict[int, tuple[int, int]]) -> dict:
    """Rescale a COCO annotation dict to new image sizes (the half-resolution test domain).

    Args:
        data: COCO dict.
        new_sizes: ``{image_id: (new_height, new_width)}``; images not listed are dropped.
    Returns:
        a new dict where, per image with scale ``sx = W'/W``, ``sy = H'/H``: ``width``/``height``,
        keypoints ``x, y`` (unlabelled ``0, 0, 0`` kept), ``bbox``, ``area`` (``x sx sy``) and every
        segmentation form (polygons scaled; RLE resampled with nearest) are rescaled (§13.1 item 12).
    """
    out = copy.deepcopy({k: v for k, v in data.items() if k not in ("images", "annotations")})
    out["images"], out["annotations"] = [], []
    scales = {}
    for im in data["images"]:
        if im["id"] not in new_sizes:
            continue
        nh, nw = new_sizes[im["id"]]
        sx, sy = nw / im["width"], nh / im["height"]
        scales[im["id"]] = (sx, sy, im["height"], im["width"], nh, nw)
        out["images"].append({**im, "height": nh, "width": nw})
    for a in data["annotations"]:
        if a["image_id"] not in scales:
            continue
        sx, sy, h, w, nh, nw = scales[a["image_id"]]
        b = copy.deepcopy(a)
        kp = np.asarray(a["keypoints"], np.float64).reshape(-1, 3)
        lab = kp[:, 2] > 0
        kp[lab, 0] *= sx
        kp[lab, 1] *= sy
        b["keypoints"] = [float(v) if i % 3 < 2 else int(v) for i, v in enumerate(kp.reshape(-1))]
        x, y, bw, bh = a["bbox"]
        b["bbox"] = [x * sx, y * sy, bw * sx, bh * sy]
        b["area"] = a["area"] * sx * sy
        if a.get("segmentation"):
            b["segmentation"] = _scale_segmentation(a["segmentation"], sx, sy, h, w, nh, nw)
        out["annotations"].append(b)
    return out


def subset_annotations(data: dict, ids) -> dict:
    """The COCO dict restricted to image ``ids`` (same order as ``data['images']``)."""
    ids = set(ids)
    out = {k: v for k, v in data.items() if k not in ("images", "annotations")}
    out["images"] = [im for im in data["images"] if im["id"] in ids]
    out["annotations"] = [a for a in data["annotations"] if a["image_id"] in ids]
    return out


def domain_split_name(split: str, domain: str, tag: str = "") -> str:
    """Name of a derived test split: ``val2017`` + ``_dark`` -> ``val2017_dark`` (``tag`` e.g. ``_random1k``)."""
    return f"{split}{tag}" + ("" if domain == "normal" else f"_{domain}")


def make_domain_test_set(split: CocoSplit, domain: str, out_root: str | Path, ids=None,
                         strength: float | None = None, tag: str = "", jpeg_quality: int = 95,
                         progress: bool = False) -> CocoSplit:
    """Write a test domain as a COCO split under ``out_root``: images + annotation file.

    Images of ``normal`` are copied byte for byte; the others are made with
    :func:`keras_openpose.domains.apply_effect` at ``strength`` (reference default when ``None``)
    and written as JPEG (quality ``jpeg_quality``, the same for every domain). Annotations of
    ``resolution`` are rescaled with :func:`rescale_annotations`. Existing complete outputs are
    reused (resumable); the annotation file is written last and atomically.

    Returns:
        the new :class:`CocoSplit`.
    """
    from tqdm import tqdm

    from .domains import apply_effect

    ids = list(split.image_ids if ids is None else ids)
    name = domain_split_name(split.split, domain, tag)
    out_root = Path(out_root)
    img_dir = out_root / name
    img_dir.mkdir(parents=True, exist_ok=True)
    ann_file = annotation_path(out_root, name)
    sizes = {}
    for i in tqdm(ids, desc=f"test domain {name}", disable=not progress, leave=False):
        im = split.images[i]
        dst = img_dir / im["file_name"]
        if domain == "normal":
            if not dst.exists():
                copy_atomic(split.image_path(i), dst)
            sizes[i] = (im["height"], im["width"])
            continue
        if dst.exists():
            h, w = cv2.imread(str(dst), cv2.IMREAD_UNCHANGED).shape[:2]
        else:
            out = apply_effect(split.read(i), domain, strength)
            ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
            if not ok:
                raise DataError(f"{dst}: JPEG encoding failed")
            write_bytes_atomic(buf.tobytes(), dst)
            h, w = out.shape[:2]
        sizes[i] = (h, w)
    data = split.data
    if domain == "resolution":
        new = rescale_annotations(data, sizes)
    else:
        new = subset_annotations(data, ids)
    new.setdefault("info", {})
    new["info"] = {**new["info"], "keras_openpose_domain": domain,
                   "keras_openpose_strength": strength if strength is not None else _default_strength(domain),
                   "keras_openpose_source": str(split.annotation_file)}
    write_json_atomic(new, ann_file)
    return CocoSplit(out_root, name)


def _default_strength(domain):
    from .domains import DEFAULT_STRENGTH
    return DEFAULT_STRENGTH[domain]


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
