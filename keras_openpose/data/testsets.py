"""Test sets: the reference's image lists (``dataset/lists``), random lists, and domain test sets
(a split with an image effect applied, or rescaled, with its annotations rescaled to match).

A domain test set is a COCO root of its own (``annotations/person_keypoints_<split>-<domain>.json``
plus its images), written atomically and resumable; its annotations are in its own pixel frame.
"""
from __future__ import annotations

import copy
from pathlib import Path

import cv2
import numpy as np

from ..errors import DataError
from ..files import copy_atomic, write_bytes_atomic, write_json_atomic
from .coco import CocoSplit, annotation_path
from ..config import PROJECT_ROOT

_LIST_DIR = PROJECT_ROOT / "dataset" / "lists"


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
        segmentation form (polygons scaled; RLE resampled with nearest) are rescaled.
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
    :func:`keras_openpose.data.domains.apply_effect` at ``strength`` (reference default when ``None``)
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


