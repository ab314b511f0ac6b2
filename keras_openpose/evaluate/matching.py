"""Matching people: OKS between detections and references (COCO's object keypoint similarity, the
formula of the COCO keypoint evaluation, vectorised for a matrix of pairs), greedy matching by OKS
and by distance. Shared by evaluation, tracking and the experts' disagreement.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np



def oks_matrix(dts: list[dict], gts: list[dict], sigmas=None) -> np.ndarray:
    """OKS between detections and reference people, computed by pycocotools' ``computeOks``.

    Args:
        dts: ``[{"keypoints": [3K], "score"}]``.
        gts: ``[{"keypoints": [3K], "area", "bbox"}]`` (``v > 0`` = labelled).
        sigmas: per-keypoint OKS sigmas (default COCO-17's, as pycocotools).
    Returns:
        ``(len(dts), len(gts))`` OKS (rows in the given order).
    """
    from pycocotools.cocoeval import COCOeval
    if not dts or not gts:
        return np.zeros((len(dts), len(gts)))
    ev = COCOeval(iouType="keypoints")
    if sigmas is not None:
        ev.params.kpt_oks_sigmas = np.asarray(sigmas, np.float64)
    ev.params.maxDets = [len(dts)]
    ev._gts = defaultdict(list)
    ev._dts = defaultdict(list)
    ev._gts[0, 1] = [{**g, "id": i, "iscrowd": 0, "ignore": 0} for i, g in enumerate(gts)]
    # computeOks sorts detections by score: give descending scores in the given order
    ev._dts[0, 1] = [{"keypoints": d["keypoints"], "score": float(len(dts) - i), "id": i} for i, d in enumerate(dts)]
    return np.asarray(ev.computeOks(0, 1)).reshape(len(dts), len(gts))


def match_by_oks(dets: list[dict], gts: list[dict], min_oks: float = 0.1, sigmas=None) -> list[int]:
    """Greedy one-to-one matching of detections (by descending score) to GT people by OKS.

    Returns:
        for each detection, the GT ``id`` it matched with OKS >= ``min_oks``, else 0. Unlike the
        COCO match at OKS 0.5, a poor detection of a person is still paired with that person, so
        weak experts' disagreement and error can be measured.
    """
    out = [0] * len(dets)
    gts = [g for g in gts if not g.get("iscrowd") and g.get("num_keypoints", 0) > 0]
    if not dets or not gts:
        return out
    oks = oks_matrix(dets, gts, sigmas)
    used = set()
    for i in np.argsort([-d.get("score", 0.0) for d in dets], kind="stable"):
        cand = [(oks[i, j], j) for j in range(len(gts)) if j not in used and oks[i, j] >= min_oks]
        if cand:
            _, j = max(cand)
            used.add(j)
            out[i] = gts[j]["id"]
    return out


def match_by_distance(gt_anns: list[dict], detections: list[dict]) -> dict[int, int]:
    """Match detections to GT people without OKS sigmas: per image, the assignment (Hungarian,
    :func:`scipy.optimize.linear_sum_assignment`) minimising the mean over each GT person's labelled
    keypoints of ``min(distance / size, 1)`` (a keypoint the detection lacks costs 1; ``size`` =
    ``max(w, h)`` of the GT bbox); pairs of cost 1 (nothing near) stay unmatched.

    Returns:
        ``{detection id: gt id}`` as :func:`match_to_gt` (detections need an ``id``).
    """
    from scipy.optimize import linear_sum_assignment
    out = {}
    gts_by_img, dts_by_img = {}, {}
    for a in gt_anns:
        if not a.get("iscrowd") and a.get("num_keypoints", 0) > 0:
            gts_by_img.setdefault(a["image_id"], []).append(a)
    for d in detections:
        dts_by_img.setdefault(d["image_id"], []).append(d)
    for img, gts in gts_by_img.items():
        dts = dts_by_img.get(img, [])
        if not dts:
            continue
        g = np.array([a["keypoints"] for a in gts], np.float64).reshape(len(gts), -1, 3)
        p = np.array([d["keypoints"] for d in dts], np.float64).reshape(len(dts), -1, 3)
        size = np.array([max(a["bbox"][2], a["bbox"][3], 1e-6) for a in gts])
        dist = np.hypot(g[:, None, :, 0] - p[None, :, :, 0], g[:, None, :, 1] - p[None, :, :, 1])
        cost = np.minimum(dist / size[:, None, None], 1.0)
        cost = np.where(p[None, :, :, 2] > 0, cost, 1.0)
        lab = g[..., 2] > 0
        cost = (cost * lab[:, None]).sum(-1) / np.maximum(lab.sum(-1), 1)[:, None]   # (G, D)
        for i, j in zip(*linear_sum_assignment(cost)):
            if cost[i, j] < 1.0:
                out[int(dts[j]["id"])] = int(gts[i]["id"])
    return out


def oks_reference(person: dict) -> dict:
    """A predicted person as an OKS reference: area/bbox of its keypoints' bounding box."""
    k = np.asarray(person["keypoints"], np.float64).reshape(-1, 3)
    vis = k[:, 2] > 0
    if vis.sum() == 0:
        return {"keypoints": person["keypoints"], "area": 1.0, "bbox": [0, 0, 1, 1]}
    x0, y0 = k[vis, :2].min(0)
    x1, y1 = k[vis, :2].max(0)
    w, h = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
    return {"keypoints": person["keypoints"], "area": float(w * h), "bbox": [x0, y0, w, h]}
