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


def load_annotations(path: str | Path) -> dict:
    """Read and validate a COCO keypoint annotation file.

    Fields that other COCO-format sets leave out are filled in, once, here: ``iscrowd`` (0),
    ``area`` (the bbox area), ``num_keypoints`` (labelled keypoints, ``v > 0``).

    Returns:
        the parsed dict (``images``, ``annotations``, ``categories``, ...).
    Raises:
        DataError: the file is missing, is not JSON, or lacks the COCO keypoint schema; the message
            names the file and the first problem.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: annotation file not found")
    try:
        with open(path, "rb") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not a JSON file ({e.msg if hasattr(e, 'msg') else e})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: not a COCO annotation file (top level is {type(data).__name__}, expected an object)")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise DataError(f"{path}: not a COCO annotation file (no '{key}' list)")
    for i, im in enumerate(data["images"]):
        missing = [k for k in REQUIRED_IMAGE_KEYS if k not in im]
        if missing:
            raise DataError(f"{path}: images[{i}] lacks {', '.join(missing)}")
    for i, a in enumerate(data["annotations"]):
        missing = [k for k in REQUIRED_ANN_KEYS if k not in a]
        if missing:
            raise DataError(f"{path}: annotations[{i}] lacks {', '.join(missing)} (not a keypoint file?)")
        if len(a["keypoints"]) % 3:
            raise DataError(f"{path}: annotations[{i}] has {len(a['keypoints'])} keypoint values (not x,y,v triples)")
        a.setdefault("iscrowd", 0)
        if "area" not in a:
            a["area"] = float(a["bbox"][2]) * float(a["bbox"][3])
        if "num_keypoints" not in a:
            a["num_keypoints"] = int(sum(1 for v in a["keypoints"][2::3] if v > 0))
    return data


def keypoint_names(data: dict) -> tuple[str, ...] | None:
    """The keypoint names of the first category that has them (``None`` if none does)."""
    cat = next((c for c in data.get("categories", []) if c.get("keypoints")), None)
    return tuple(cat["keypoints"]) if cat else None


def read_image(path: str | Path) -> np.ndarray:
    """Read an image as ``uint8 (H, W, 3)`` BGR; raises :class:`DataError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: image not found")
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise DataError(f"{path}: not a readable image")
    return img


def decode_image(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode JPEG/PNG bytes to ``uint8 (H, W, 3)`` BGR; raises :class:`DataError` naming ``name``."""
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise DataError(f"{name}: not a decodable image")
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
        self.data = load_annotations(self.annotation_file)
        self.images = {im["id"]: im for im in self.data["images"]}
        self.anns_by_image: dict[int, list] = {i: [] for i in self.images}
        for a in self.data["annotations"]:
            if a["image_id"] not in self.images:
                raise DataError(f"{self.annotation_file}: annotation {a['id']} refers to unknown image {a['image_id']}")
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
    """Check one COCO-format split and count problems instead of stopping at the first: the
    annotation file parses and has the keypoint schema, its image folder exists, every listed image
    is present and (with ``read_images``) decodes at the annotated size; annotations refer to known
    images.

    Returns:
        ``{"images", "annotations", "people_with_keypoints", "missing", "unreadable",
        "size_mismatch", "orphan_annotations", "errors": [first 20 messages]}``.
    """
    from tqdm import tqdm
    r = {"images": 0, "annotations": 0, "people_with_keypoints": 0, "missing": 0, "unreadable": 0,
         "size_mismatch": 0, "orphan_annotations": 0, "errors": []}

    def err(msg, key=None):
        if key:
            r[key] += 1
        if len(r["errors"]) < 20:
            r["errors"].append(msg)
    try:
        data = load_annotations(annotation_file)
    except DataError as e:
        err(str(e))
        return r
    images = {im["id"]: im for im in data["images"]}
    r["images"], r["annotations"] = len(images), len(data["annotations"])
    r["people_with_keypoints"] = sum(a.get("num_keypoints", 0) > 0 for a in data["annotations"])
    for a in data["annotations"]:
        if a["image_id"] not in images:
            err(f"annotation {a['id']}: unknown image {a['image_id']}", "orphan_annotations")
    folder = Path(image_dir)
    if not folder.is_dir():
        err(f"{folder}: image folder not found")
        r["missing"] = len(images)
        return r
    for im in tqdm(images.values(), desc=f"check {name or Path(annotation_file).stem}", disable=not progress, leave=False):
        path = folder / im["file_name"]
        if not path.is_file():
            err(f"{path}: image not found", "missing")
            continue
        if read_images:
            img = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if img is None:
                err(f"{path}: not a readable image", "unreadable")
            elif img.shape[:2] != (im["height"], im["width"]):
                err(f"{path}: {img.shape[1]}x{img.shape[0]}, annotated {im['width']}x{im['height']}",
                    "size_mismatch")
    return r
