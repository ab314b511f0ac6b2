"""Per-image training labels from COCO annotations: the ignore mask (crowds and people without
keypoints, whose loss is masked as in Cao et al. 2017, sec. 3.1), the keypoint array and the main
people a training crop is centred on.

All coordinates are image pixels; masks are ``uint8 (H, W)``, 255 = loss used, 0 = ignored.
"""
from __future__ import annotations


import numpy as np


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
    """Where the training loss counts (Cao et al. 2017 sec. 4: unlabeled people are masked out).

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
    """Indices (into ``anns``) of the people a training sample is centred on (as the original project's data generator chooses them).

    A person is a main person when it is not a crowd, has ``>= min_keypoints`` labelled keypoints,
    a segmentation area ``>= min_area`` px², and its bbox centre is farther than
    ``min_spacing * max(w, h)`` **of the already accepted person** from every accepted centre (the
    reference used the size of the image's last annotation: a stale variable).
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
