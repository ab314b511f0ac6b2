"""PCK (percentage of correct keypoints; Andriluka et al. 2014) normalised by the person's size,
with missed keypoints counted as wrong; the reference's difficult keypoints and head pairs; the
crowd index of an image (Li et al. 2019, CrowdPose).
"""
from __future__ import annotations


import numpy as np


#: Names of COCOeval's 10 keypoint stats, in order.
#: Keypoints whose names contain these are the "difficult" joints (hips, knees, ankles; the
#: reference's slice picked elbows and wrists by mistake).
DIFFICULT_NAMES = ("hip", "knee", "ankle")


def difficult_keypoints(names) -> tuple[int, ...]:
    """Indices of the keypoints named like hips, knees or ankles (COCO-17: 11..16; none for hands)."""
    return tuple(i for i, n in enumerate(names) if any(d in n.lower() for d in DIFFICULT_NAMES))


def head_pairs(names) -> tuple[tuple[int, int], ...]:
    """Keypoint pairs whose distance is the head size, in order of preference: the ears, the eyes."""
    idx = {n.lower(): i for i, n in enumerate(names)}
    return tuple((idx[f"left_{p}"], idx[f"right_{p}"]) for p in ("ear", "eye")
                 if f"left_{p}" in idx and f"right_{p}" in idx)


def pck(gt_anns: list[dict], detections: list[dict], matches: dict[int, int], alpha: float = 0.5,
        normaliser: str = "bbox", keypoints=None, head=((3, 4), (1, 2))) -> dict:
    """PCK@alpha over ground-truth people, missed people and keypoints counted as misses.

    Every labelled keypoint (``v > 0``) of every non-crowd GT person with a labelled keypoint
    counts once in the denominator. It is correct when the detection matched to that person
    (see :func:`match_to_gt`) predicts it (``v > 0``) within ``alpha * size`` pixels, where
    ``size`` is ``max(w, h)`` of the GT bbox (``normaliser="bbox"``, as MMPose's bbox PCK) or the
    head size = distance between the ears, else the eyes (``"head"``; people without both are
    skipped).

    Args:
        gt_anns: GT annotations of the evaluated images.
        detections: result dicts, each with the ``id`` pycocotools assigned.
        matches: ``{detection_id: gt_id}``.
        keypoints: optional subset of keypoint indices (e.g. :func:`difficult_keypoints`).
    Returns:
        ``{"pck", "correct", "total", "auc", "nme", "epe", "n_predicted"}``: ``pck`` at ``alpha``
        (NaN when ``total`` is 0); ``auc`` = mean PCK over ``alpha' = 0, 0.01, ..., 0.5`` (area under
        the PCK curve normalised to [0, 1], misses count as errors); ``nme`` = mean of
        ``distance / size`` and ``epe`` the mean distance in pixels (end-point error) over the
        predicted keypoints of matched people (``n_predicted`` of them).
    """
    by_gt = {}
    for d in detections:
        g = matches.get(d.get("id"), 0)
        if g:
            by_gt[g] = d
    correct = total = 0
    norm_dists, px_dists = [], []  # of predicted keypoints of matched people
    for a in gt_anns:
        if a.get("iscrowd") or a.get("num_keypoints", 0) == 0:
            continue
        g = np.asarray(a["keypoints"], np.float64).reshape(-1, 3)
        sel = np.arange(len(g)) if keypoints is None else np.asarray(keypoints, np.int64)
        if normaliser == "bbox":
            size = max(a["bbox"][2], a["bbox"][3])
        elif normaliser == "head":
            pair = next(((i, j) for i, j in head if g[i, 2] > 0 and g[j, 2] > 0), None)
            if pair is None:
                continue
            size = np.hypot(*(g[pair[0], :2] - g[pair[1], :2]))
        else:
            raise ValueError(f"unknown PCK normaliser {normaliser!r}")
        lab = sel[g[sel, 2] > 0]
        total += len(lab)
        d = by_gt.get(a["id"])
        if d is None or size <= 0:
            continue
        p = np.asarray(d["keypoints"], np.float64).reshape(-1, 3)
        pred = p[lab, 2] > 0
        px = np.hypot(p[lab, 0] - g[lab, 0], p[lab, 1] - g[lab, 1])
        dist = px / size
        correct += int((pred & (dist <= alpha)).sum())
        norm_dists += dist[pred].tolist()
        px_dists += px[pred].tolist()
    nd = np.asarray(norm_dists)
    alphas = np.linspace(0, 0.5, 51)
    auc = float(np.mean([(nd <= a).sum() / total for a in alphas])) if total else float("nan")
    return {"pck": correct / total if total else float("nan"), "correct": correct, "total": total,
            "auc": auc, "nme": float(nd.mean()) if len(nd) else float("nan"),
            "epe": float(np.mean(px_dists)) if px_dists else float("nan"), "n_predicted": int(len(nd))}


def crowd_index(anns: list[dict]) -> float:
    """CrowdPose's crowd index of one image (Li et al. 2019): mean over people of (keypoints of
    *other* people inside the person's bbox) / (the person's own labelled keypoints); 0 for fewer
    than two people."""
    people = [a for a in anns if not a.get("iscrowd") and a.get("num_keypoints", 0) > 0]
    if len(people) < 2:
        return 0.0
    kps = [np.asarray(a["keypoints"], np.float64).reshape(-1, 3) for a in people]
    ratios = []
    for i, a in enumerate(people):
        x, y, w, h = a["bbox"]
        inside = 0
        for j, k in enumerate(kps):
            if j == i:
                continue
            lab = k[:, 2] > 0
            inside += int(((k[lab, 0] >= x) & (k[lab, 0] <= x + w) & (k[lab, 1] >= y) & (k[lab, 1] <= y + h)).sum())
        ratios.append(inside / max(int((kps[i][:, 2] > 0).sum()), 1))
    return float(np.mean(ratios))


#: Images with a crowd index at or above this are "crowded" (CrowdPose's medium+hard range).
CROWDED_INDEX = 0.1
