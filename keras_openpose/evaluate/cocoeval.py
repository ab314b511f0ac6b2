"""COCO keypoint AP through pycocotools' ``COCOeval`` (never reimplemented), with any skeleton's OKS
sigmas, the match of each detection to its ground truth, and a bootstrap interval of the AP
(images resampled with replacement; Efron & Tibshirani 1993, percentile interval).
"""
from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np

from ..errors import DataError

#: Names of COCOeval's 10 keypoint stats, in order.
#: Names of COCOeval's 10 keypoint stats, in order.
STAT_NAMES = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")


def _coco_from(gt: dict):
    from pycocotools.coco import COCO
    coco = COCO()
    coco.dataset = gt
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def _single_category(gt: dict) -> dict:
    """``gt`` with every keypoint category merged into the first one (AP-10K's 54 species share one
    skeleton; a pose estimator does not tell species apart, and pycocotools' OKS ignores
    ``useCats = 0``)."""
    cats = [c for c in gt.get("categories", []) if c.get("keypoints")] or gt.get("categories", [])[:1]
    if len(cats) <= 1:
        return gt
    cid = cats[0]["id"]
    return {**gt, "categories": [cats[0]], "annotations": [{**a, "category_id": cid} for a in gt["annotations"]]}


def coco_keypoint_eval(gt, detections: list[dict], image_ids=None, sigmas=None):
    """COCO keypoint evaluation (OKS AP, maxDets 20) with pycocotools.

    Args:
        gt: COCO annotation dict or path.
        detections: result dicts (see module doc); their ``category_id`` is replaced by the GT's
            keypoint category.
        image_ids: ids to evaluate (default: every image of ``gt``). Detections outside are ignored;
            every listed image counts, so a partial run must pass only the ids it processed
            (the reference deflated AP by evaluating all ids).
        sigmas: per-keypoint OKS sigmas (``COCOeval.params.kpt_oks_sigmas``); default COCO-17's.
    Returns:
        ``(stats, cocoeval)``: ``stats`` maps :data:`STAT_NAMES` to floats (all 0 when there is no
        detection, all ``None`` -- undefined -- when the images hold no annotated person);
        ``cocoeval`` is the evaluated ``COCOeval`` (``None`` without detections or people); its
        per-image ``evalImgs`` give the bootstrap interval of AP (:func:`bootstrap_ap`).
    Raises:
        DataError: unknown image ids, or sigmas whose length is not the keypoint count.
    """
    from pycocotools.cocoeval import COCOeval
    if isinstance(gt, (str, Path)):
        from ..data.coco import load_annotations
        gt = load_annotations(gt)
    gt = _single_category(gt)
    cid = gt["categories"][0]["id"] if gt.get("categories") else 1
    coco_gt = _coco_from(gt)
    ids = sorted(coco_gt.getImgIds() if image_ids is None else image_ids)
    unknown = set(ids) - set(coco_gt.getImgIds())
    if unknown:
        raise DataError(f"evaluation: {len(unknown)} image ids not in the ground truth (first {min(unknown)})")
    idset = set(ids)
    people = [a for a in gt["annotations"] if a["image_id"] in idset and not a.get("iscrowd")
              and a.get("num_keypoints", 0) > 0]
    if not people:   # pycocotools would answer -1: AP is undefined without people
        return {k: None for k in STAT_NAMES}, None
    dets = [d for d in detections if d["image_id"] in idset]
    if not dets:
        return {k: 0.0 for k in STAT_NAMES}, None
    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt = coco_gt.loadRes([{**d, "category_id": cid} for d in dets])
        ev = COCOeval(coco_gt, coco_dt, "keypoints")
        if sigmas is not None:
            K = len(dets[0]["keypoints"]) // 3
            if len(sigmas) != K:
                raise DataError(f"evaluation: {len(sigmas)} OKS sigmas for {K} keypoints")
            ev.params.kpt_oks_sigmas = np.asarray(sigmas, np.float64)
        ev.params.imgIds = ids
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {k: float(v) for k, v in zip(STAT_NAMES, ev.stats)}, ev


def match_to_gt(cocoeval, oks_threshold: float = 0.5) -> dict[int, int]:
    """For each detection id of an evaluated ``COCOeval``, the GT annotation id it matched at OKS
    ``oks_threshold`` over the **all** area range (0 when unmatched). The reference kept the
    "large" pass.

    Returns:
        ``{detection_id: gt_id}`` where detection ids are those pycocotools assigned (1-based, in
        the order the detections were loaded).
    """
    if cocoeval is None:
        return {}
    t = int(np.argmin(np.abs(cocoeval.params.iouThrs - oks_threshold)))
    all_rng = cocoeval.params.areaRng[cocoeval.params.areaRngLbl.index("all")]
    out = {}
    for e in cocoeval.evalImgs:
        if e is None or e["aRng"] != all_rng:
            continue
        for dt_id, gt_id in zip(e["dtIds"], e["dtMatches"][t]):
            out[int(dt_id)] = int(gt_id)
    return out


def bootstrap_ap(cocoeval, draws: int = 1000, seed: int = 0, level: float = 0.95) -> dict:
    """Percentile-bootstrap interval of COCO keypoint AP over images (Efron & Tibshirani 1993,
    *An Introduction to the Bootstrap*, ch. 13).

    The evaluated images (``params.imgIds``, those without people included: their detections are
    false positives) are drawn ``draws`` times with replacement. OKS and AP are never recomputed
    here: each draw reuses the per-image records ``evalImgs`` of the one ``evaluate()`` already run,
    as many times as the image was drawn (each copy under a fresh image id, in ``evalImgs`` and in
    ``params.imgIds`` of a shallow copy of ``cocoeval`` restricted to area "all"), and calls
    pycocotools' own ``accumulate()``. A draw's AP is what ``summarize`` reports as ``stats[0]``:
    the mean of ``eval["precision"]`` over OKS thresholds, recall thresholds and categories at area
    "all", maxDets 20, entries ``-1`` excluded. The draw with every image once gives exactly
    pycocotools' AP.

    Args:
        cocoeval: an evaluated ``COCOeval`` (``iouType="keypoints"``), e.g. the second value of
            :func:`coco_keypoint_eval`; it is left unchanged.
        draws: number of bootstrap resamples.
        seed: seed of :func:`numpy.random.default_rng`; the same seed gives the same interval.
        level: coverage of the two-sided interval, in (0, 1).
    Returns:
        ``{"ap", "low", "high", "draws"}``: ``ap`` = AP of all images (= ``stats[0]``), ``low`` /
        ``high`` the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the draws' APs,
        ``draws`` the number of draws used (a draw holding no annotated person has no AP and is
        left out); ``ap``, ``low``, ``high`` are ``None`` when AP is undefined.
    Raises:
        ValueError: ``cocoeval`` is ``None`` or not evaluated, maxDets lacks 20, or ``level`` /
            ``draws`` out of range.
    """
    import copy
    if cocoeval is None or not getattr(cocoeval, "evalImgs", None) or not hasattr(cocoeval, "_paramsEval"):
        raise ValueError("bootstrap_ap needs a COCOeval on which evaluate() has run")
    if not 0 < level < 1:
        raise ValueError(f"bootstrap level must be in (0, 1), got {level}")
    if draws < 1:
        raise ValueError(f"bootstrap draws must be >= 1, got {draws}")
    pe = cocoeval._paramsEval
    n_img, n_area = len(pe.imgIds), len(pe.areaRng)
    n_cat = len(pe.catIds) if pe.useCats else 1
    if 20 not in pe.maxDets:
        raise ValueError(f"bootstrap_ap: maxDets {pe.maxDets} lacks 20 (COCO keypoint AP)")
    a_all = list(pe.areaRngLbl).index("all")
    m20 = sorted(pe.maxDets).index(20)
    # the per-image records of area "all", per category: evalImgs is laid out category x area x image
    recs = [cocoeval.evalImgs[k * n_area * n_img + a_all * n_img:k * n_area * n_img + (a_all + 1) * n_img]
            for k in range(n_cat)]
    p = copy.copy(pe)
    p.areaRng, p.areaRngLbl, p.maxDets = [pe.areaRng[a_all]], ["all"], sorted(pe.maxDets)
    ev = copy.copy(cocoeval)                     # shares cocoGt / cocoDt; own params and evalImgs
    ev.params = ev._paramsEval = p

    def ap_of(idx) -> float | None:
        p.imgIds = list(range(len(idx)))         # fresh ids: a duplicated image counts once per draw
        ev.evalImgs = [None if (e := recs[k][i]) is None else {**e, "image_id": j}
                       for k in range(n_cat) for j, i in enumerate(idx)]
        ev.accumulate()
        s = ev.eval["precision"][:, :, :, 0, m20]
        s = s[s > -1]
        return float(np.mean(s)) if s.size else None

    rng = np.random.default_rng(seed)
    with contextlib.redirect_stdout(io.StringIO()):
        ap = ap_of(np.arange(n_img))
        if ap is None:
            return {"ap": None, "low": None, "high": None, "draws": 0}
        aps = [ap_of(idx) for idx in rng.integers(0, n_img, (draws, n_img))]
    aps = np.array([a for a in aps if a is not None], np.float64)
    if not len(aps):
        return {"ap": ap, "low": None, "high": None, "draws": 0}
    low, high = np.quantile(aps, [(1 - level) / 2, (1 + level) / 2])
    return {"ap": ap, "low": float(low), "high": float(high), "draws": int(len(aps))}
