"""Evaluation of any skeleton: COCO keypoint AP through pycocotools (never reimplemented) with the
skeleton's own OKS sigmas, match-to-ground-truth, and PCK normalised by the person's size with
missed keypoints counted; skeletons without OKS sigmas (hands) get PCK@0.2 (bbox), AUC and EPE.

Detections are COCO result dicts: ``{"image_id", "category_id", "keypoints": [3K floats],
"score"}`` in the pixel frame of the evaluated images.
"""
from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np

from .errors import DataError

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
            (the reference deflated AP by evaluating all ids, §13.1 item 6).
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
        from .coco import load_annotations
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
    "large" pass (§13.1 item 5).

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


# ---------------------------------------------------------------------------------------------
# PCK
# ---------------------------------------------------------------------------------------------

#: Keypoints whose names contain these are the "difficult" joints (hips, knees, ankles; the
#: reference's slice picked elbows and wrists by mistake, §13.1 item 4).
DIFFICULT_NAMES = ("hip", "knee", "ankle")


def difficult_keypoints(names) -> tuple[int, ...]:
    """Indices of the keypoints named like hips, knees or ankles (COCO-17: 11..16; none for hands)."""
    return tuple(i for i, n in enumerate(names) if any(d in n.lower() for d in DIFFICULT_NAMES))


def head_pairs(names) -> tuple[tuple[int, int], ...]:
    """Keypoint pairs whose distance is the head size, in order of preference: the ears, the eyes."""
    idx = {n.lower(): i for i, n in enumerate(names)}
    return tuple((idx[f"left_{p}"], idx[f"right_{p}"]) for p in ("ear", "eye")
                 if f"left_{p}" in idx and f"right_{p}" in idx)


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


# ---------------------------------------------------------------------------------------------
# A whole evaluation run
# ---------------------------------------------------------------------------------------------


def check_layout(split, codec) -> None:
    """Raise :class:`DataError` when the split's keypoints per annotation are not the skeleton's
    (``codec``: a :class:`~keras_openpose.codec.PafCodec` or a :class:`~keras_openpose.skeleton.Skeleton`)."""
    skeleton = getattr(codec, "skeleton", codec)
    if split.num_keypoints != skeleton.num_keypoints:
        raise DataError(f"{split.annotation_file}: {split.num_keypoints} keypoints per annotation, the model's "
                        f"skeleton {skeleton.name!r} has {skeleton.num_keypoints}")


def reference_subsets(split) -> dict:
    """The reference's deform / rare / crowded PCK subsets (COCO val2014 ids, ``dataset/lists``)
    that have images in ``split``: ``{label: [image ids]}``."""
    import pandas as pd

    from .config import PROJECT_ROOT
    df = pd.read_csv(PROJECT_ROOT / "dataset" / "lists" / "deform_rare_crowded_list.csv")
    out = {c: [int(v) for v in df[c].dropna() if int(v) in split.images] for c in df.columns}
    return {c: ids for c, ids in out.items() if ids}


def summary_line(s: dict, out) -> str:
    """One line per evaluation run: AP with its bootstrap interval when known (``AP 0.368 [0.30,
    0.43]``; or PCK when the skeleton has no OKS sigmas), timing."""
    split_ms = (f" (network {s['network_ms_per_image']:.0f} + decode {s['decode_ms_per_image']:.1f})"
                if "network_ms_per_image" in s else "")
    skipped = f"; {len(s['skipped_images'])} images skipped (see summary.json)" if s.get("skipped_images") else ""
    if s.get("stats") and s["stats"]["AP"] is None:
        return f"{out}: AP undefined: no annotated person in the {s['images']} images{skipped}"
    if s.get("stats"):
        st, iv = s["stats"], s.get("ap_interval")
        ci = f" [{iv[0]:.2f}, {iv[1]:.2f}]" if iv else ""
        return (f"{out}: AP {st['AP']:.3f}{ci}  AP50 {st['AP50']:.3f}  AP75 {st['AP75']:.3f}  AR {st['AR']:.3f}  "
                f"PCK@0.5 {s['pck']['all']:.3f}  {s['seconds_per_image'] * 1000:.0f} ms/image{split_ms} "
                f"({s['images']} images){skipped}")
    if "pck" in s:
        return (f"{out}: PCK@{s['pck_alpha']} {s['pck']['all']:.3f}  AUC {s['pck_auc']['all']:.3f}  "
                f"EPE {s['epe']['all']:.1f} px  (no OKS sigmas: AP undefined)  "
                f"{s['seconds_per_image'] * 1000:.0f} ms/image{split_ms} ({s['images']} images){skipped}")
    return f"{out}: {s['detections']} people in {s['images']} images{skipped}"


def model_tag(domain: str) -> str:
    """The reference's name of an expert in result folders: ``ours`` (normal), ``dark``, ``motion_blur``."""
    return {"": "ours", "normal": "ours"}.get(domain.lstrip("_"), domain.lstrip("_"))


def results_dir(base, split_name: str, tag: str, n_images: int) -> Path:
    """The run folder of one evaluation: ``<base>/<split>-<tag>-open-pose-single-scale-<n>``."""
    return Path(base) / f"{split_name}-{tag}-open-pose-single-scale-{n_images}"


def score_detections(split, image_ids, dets: list[dict], skeleton=None, subsets: dict | None = None,
                     ap_draws: int = 1000, seed: int = 0) -> dict:
    """Scores of detections on ``image_ids`` of ``split`` for ``skeleton`` (default OpenPose COCO-18).

    With OKS sigmas: COCO keypoint AP (pycocotools, the skeleton's sigmas), detections matched to GT
    at OKS 0.5 ("all" areas), PCK@0.5 (bbox) rows ``all``, ``difficult`` (hips/knees/ankles),
    ``head`` (head-size normaliser), ``crowded``, ``crowd_annotated``. Without sigmas: AP is
    undefined (``stats`` is ``None``), detections are matched by :func:`match_by_distance` and
    PCK is at 0.2 of the bbox size (the hand benchmarks' convention).

    Args:
        dets: result dicts; an ``id`` (1-based) is written into each.
        subsets: ``{label: [image ids]}`` for extra PCK rows.
        ap_draws: bootstrap draws of the AP interval (:func:`bootstrap_ap`, images resampled,
            ``seed``); 0 skips it.
    Returns:
        ``{"stats", "matches", "pck_alpha", "rows": {label: pck dict}, "ap_interval"}``:
        ``ap_interval`` = ``[low, high]``, the 95 % percentile-bootstrap interval of AP (``[0, 0]``
        without detections), ``None`` when AP is undefined or ``ap_draws`` is 0.
    """
    from .skeleton import DEFAULT_SKELETON
    skeleton = skeleton or DEFAULT_SKELETON
    for k, d in enumerate(dets, 1):
        d["id"] = k
    gts = [a for i in image_ids for a in split.anns_by_image[i]]
    names = skeleton.keypoints
    if skeleton.oks_sigmas is not None:
        stats, ev = coco_keypoint_eval(split.data, dets, image_ids, skeleton.oks_sigmas)
        matches, alpha = match_to_gt(ev), 0.5
    else:
        stats, ev, matches, alpha = None, None, match_by_distance(gts, dets), 0.2
    interval = None
    if ap_draws and stats and stats["AP"] is not None:
        if ev is None:        # no detection: AP 0 in every draw
            interval = [0.0, 0.0]
        else:
            b = bootstrap_ap(ev, ap_draws, seed)
            interval = None if b["low"] is None else [b["low"], b["high"]]
    crowd_imgs = {a["image_id"] for a in split.data["annotations"] if a.get("iscrowd")}
    crowded = {i for i in image_ids if crowd_index(split.anns_by_image[i]) >= CROWDED_INDEX}
    rows = {"all": pck(gts, dets, matches, alpha)}
    hard = difficult_keypoints(names)
    if hard:
        rows["difficult"] = pck(gts, dets, matches, alpha, keypoints=hard)
    if head_pairs(names):
        rows["head"] = pck(gts, dets, matches, alpha, normaliser="head", head=head_pairs(names))
    if crowded:
        rows["crowded"] = pck([a for a in gts if a["image_id"] in crowded], dets, matches, alpha)
    if crowd_imgs & set(image_ids):
        rows["crowd_annotated"] = pck([a for a in gts if a["image_id"] in crowd_imgs], dets, matches, alpha)
    for label, ids in (subsets or {}).items():
        ids = set(ids)
        rows[label] = pck([a for a in gts if a["image_id"] in ids], dets, matches, alpha)
    return {"stats": stats, "matches": matches, "pck_alpha": alpha, "rows": rows, "ap_interval": interval}


def evaluate_predictor(predict, split, image_ids, out_dir, name: str = "run", progress: bool = True,
                       overlays: bool = False, compute: bool = True, evaluate: bool = True,
                       subsets: dict | None = None, timing: dict | None = None, skeleton=None,
                       ap_draws: int = 1000) -> dict:
    """Run ``predict(image) -> people`` over ``image_ids`` of ``split`` and write the report.

    Files in ``out_dir``: ``predictions.jsonl`` (per image, appended as it goes: an interrupted run
    resumes where it stopped), ``<name>_result.json`` (COCO results), ``<name>_result_matchGtId.json``
    (each detection with its matched GT id and the image's ``iscrowd`` flag), ``<name>_result.csv``
    (COCO stats when the skeleton has OKS sigmas, PCK rows, timing), ``summary.json``, and with
    ``overlays`` ``predictions/<file name>`` images.

    Args:
        compute: run the predictor (else reuse ``predictions.jsonl``).
        evaluate: compute COCO stats / PCK (needs ground truth), see :func:`score_detections`.
        subsets: ``{label: [image ids]}`` for extra PCK rows.
        timing: a predictor's running ``{"network_s", "decode_s", "images"}`` (as
            :class:`~keras_openpose.inference.PoseEstimator` keeps); adds the per-image split.
        skeleton: the keypoint layout (sigmas, names, limbs for overlays); default OpenPose COCO-18.
        ap_draws: bootstrap draws of the AP interval (:func:`bootstrap_ap`); 0 skips it.
    Returns:
        the summary dict (stats, ``ap_interval`` = ``[low, high]`` 95 % bootstrap interval of AP or
        ``None`` when AP is undefined, pck, seconds per image, counts). The CSV carries the interval
        as the rows ``ap_interval low`` / ``ap_interval high`` (empty when undefined). A skipped
        image (``DataError``) adds no time.
    Raises:
        DataError: images without cached predictions (``compute`` off), or an overlay that cannot
            be written (``<path>: <OS error>``, :func:`keras_openpose.files.write_image_atomic`).
    """
    import json
    import time

    import pandas as pd
    from tqdm import tqdm

    from .files import atomic_write, write_image_atomic, write_json_atomic
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cache = out_dir / "predictions.jsonl"
    done = {}
    if cache.exists():
        for line in cache.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                break  # a line cut by an interruption: redo from there
            done[rec["image_id"]] = rec
    seconds = sum(r["seconds"] for r in done.values())
    if compute:
        todo = [i for i in image_ids if i not in done]
        if overlays:
            from .visualize import draw_poses
            (out_dir / "predictions").mkdir(exist_ok=True)
        with open(cache, "a") as f:
            for i in tqdm(todo, desc=name, disable=not progress, leave=False):
                try:
                    img = split.read(i)
                    t0 = time.perf_counter()
                    people = predict(img)
                    dt = time.perf_counter() - t0
                    rec = {"image_id": int(i), "seconds": dt, "people": people}
                except DataError as e:    # a missing, unreadable or unusable image: skipped and listed
                    img, rec = None, {"image_id": int(i), "seconds": 0.0, "people": [], "error": str(e)}
                f.write(json.dumps(rec) + "\n")
                f.flush()
                done[i] = rec
                seconds += rec["seconds"]     # 0 for a skipped image (``dt`` is unset or stale there)
                if overlays and img is not None:   # a failed write (full disk) ends the run: one line, the path
                    write_image_atomic(draw_poses(img, people, skeleton) if skeleton else draw_poses(img, people),
                                       out_dir / "predictions" / split.images[i]["file_name"])
    missing = [i for i in image_ids if i not in done]
    if missing:
        raise DataError(f"{cache}: no predictions for {len(missing)} images (run with --compute_keypoint True)")
    bad = [done[i]["error"] for i in image_ids if "error" in done[i]]
    image_ids = [i for i in image_ids if "error" not in done[i]]
    dets = [{"image_id": int(i), "category_id": 1, **p} for i in image_ids for p in done[i]["people"]]
    write_json_atomic(dets, out_dir / f"{name}_result.json")
    summary = {"name": name, "images": len(image_ids), "detections": len(dets),
               "seconds_per_image": seconds / max(len(image_ids), 1), "skipped_images": bad}
    if timing and timing.get("images"):
        summary["network_ms_per_image"] = 1000 * timing["network_s"] / timing["images"]
        summary["decode_ms_per_image"] = 1000 * timing["decode_s"] / timing["images"]
    if evaluate:
        sc = score_detections(split, image_ids, dets, skeleton, subsets, ap_draws)
        stats, rows, alpha = sc["stats"], sc["rows"], sc["pck_alpha"]
        crowd_imgs = {a["image_id"] for a in split.data["annotations"] if a.get("iscrowd")}
        write_json_atomic([{**d, "gtId": sc["matches"].get(d["id"], 0), "iscrowd": int(d["image_id"] in crowd_imgs)}
                           for d in dets], out_dir / f"{name}_result_matchGtId.json")
        summary.update({"stats": stats, "ap_interval": sc["ap_interval"], "pck_alpha": alpha,
                        "pck": {k: v["pck"] for k, v in rows.items()},
                        "pck_auc": {k: v["auc"] for k, v in rows.items()},
                        "nme": {k: v["nme"] for k, v in rows.items()},
                        "epe": {k: v["epe"] for k, v in rows.items()},
                        "pck_counts": {k: [v["correct"], v["total"]] for k, v in rows.items()}})
        table = [(f"{k}", v) for k, v in (stats or {}).items()]
        if stats:     # two numeric rows, so the value column stays numeric; empty when undefined
            iv = sc["ap_interval"] or [None, None]
            table += [("ap_interval low", iv[0]), ("ap_interval high", iv[1])]
        table += [(f"PCK@{alpha} {k}", v["pck"]) for k, v in rows.items()]
        table += [("PCK AUC@0-0.5 all", rows["all"]["auc"]), ("NME all", rows["all"]["nme"]),
                  ("EPE px all", rows["all"]["epe"])]
        table.append(("seconds per image", summary["seconds_per_image"]))
        for k in ("network_ms_per_image", "decode_ms_per_image"):
            if k in summary:
                table.append((k.replace("_", " "), summary[k]))
        df = pd.DataFrame(table, columns=["evaluation_metrics", "value"])
        with atomic_write(out_dir / f"{name}_result.csv", "w") as f:
            df.to_csv(f, index=False)
    write_json_atomic(summary, out_dir / "summary.json")
    return summary


class MapScorer:
    """Scores of a model's *maps*, before any grouping: what AP cannot tell apart for weak networks.

    Maps are ``(heatmaps (h, w, P+1), pafs (h, w, 2L), stride)`` as
    :meth:`keras_openpose.inference.PoseEstimator.maps` returns them (``stride`` image pixels per
    cell). They are compared with the targets the networks are trained on (eq. 7-9 of Cao et al.
    2017, :meth:`keras_openpose.codec.PafCodec.encode` at that stride, drawn from the non-crowd
    people with a labelled keypoint) where the ignore mask (crowds, unlabelled people) allows.

    * ``heatmap_mse``, ``paf_mse``: mean squared error per unmasked cell and channel (the training
      loss, per element), over all images;
    * keypoint ``recall``: share of labelled parts (``v > 0``) with a heatmap peak of the same part
      (3x3 NMS, ``peak_threshold``) within ``alpha * max(w, h)`` of the person's bbox, input pixels;
    * keypoint ``precision``: share of peaks (outside ignored regions) within that distance of a
      labelled part of the same channel; ``f1``; ``peaks_per_image``.

    Usage: ``t = scorer.targets(anns, image_shape, maps)`` once per image (it depends only on the
    annotations and the map grid, so several models of the same image share it), then
    ``scorer.add(maps, t)`` per model; :meth:`result` gives the scores.
    """

    def __init__(self, codec=None, peak_threshold: float | None = None, alpha: float = 0.1):
        from .codec import DEFAULT_CODEC
        self.codec = codec or DEFAULT_CODEC
        self.skeleton = self.codec.skeleton
        self.peak_threshold = self.codec.decode_options.peak_threshold if peak_threshold is None else peak_threshold
        self.alpha = alpha
        self.se_h = self.se_p = self.n_h = self.n_p = 0.0
        self.hits = self.parts_total = self.good_peaks = self.peaks_total = self.images = 0

    def targets(self, anns: list[dict], image_shape, maps) -> dict:
        """Targets of one image: heatmaps, PAFs and the ignore mask at the cells of ``maps``, the
        ignore mask in image pixels, the parts ``(N, P, 3)`` (image px) and the match radii ``(N,)``."""
        from .coco import ignore_mask, keypoints_array
        heat, _, stride = maps
        H, W = image_shape[:2]
        h, w = heat.shape[:2]
        people = [a for a in anns if not a.get("iscrowd") and a.get("num_keypoints", 0) > 0]
        kp = keypoints_array(people, self.skeleton.num_keypoints)
        parts = self.skeleton.keypoints_to_parts(kp)
        th, tp = self.codec.encode(kp, image_shape, stride=stride, map_shape=(h, w))
        m = ignore_mask(anns, H, W)
        ys = np.clip(np.rint(self.codec.cell_centres(h, stride)), 0, H - 1).astype(int)
        xs = np.clip(np.rint(self.codec.cell_centres(w, stride)), 0, W - 1).astype(int)
        radius = np.array([self.alpha * max(a["bbox"][2], a["bbox"][3]) for a in people], np.float64)
        return {"heat": th, "paf": tp, "mask_cells": m[np.ix_(ys, xs)].astype(np.float64)[..., None],
                "mask": m, "parts": parts, "radius": radius}

    def add(self, maps, t: dict) -> None:
        """Accumulate one model's maps of one image against that image's :meth:`targets`."""
        from .codec import find_peaks
        heat, paf, stride = maps
        mc = t["mask_cells"]
        self.se_h += float((mc * (heat - t["heat"]) ** 2).sum())
        self.se_p += float((mc * (paf - t["paf"]) ** 2).sum())
        self.n_h += float(mc.sum()) * heat.shape[2]
        self.n_p += float(mc.sum()) * paf.shape[2]
        # keypoint detection, before grouping: every peak against every labelled part of its channel
        P = self.skeleton.num_parts
        ps, fx, fy, _ = find_peaks(heat[..., :P], self.peak_threshold)
        px, py = self.codec.to_pixels(fx, stride), self.codec.to_pixels(fy, stride)
        m = t["mask"]
        H, W = m.shape
        keep = m[np.clip(np.rint(py).astype(int), 0, H - 1), np.clip(np.rint(px).astype(int), 0, W - 1)] > 0
        parts = t["parts"]                                                   # (N, P, 3)
        labelled = parts[..., 2] > 0
        g = parts[:, ps]                                                     # (N, n, 3): the peak's part
        near = (np.hypot(px - g[..., 0], py - g[..., 1]) <= t["radius"][:, None]) & (g[..., 2] > 0)  # (N, n)
        found = np.zeros_like(labelled)
        np.logical_or.at(found, (slice(None), ps), near)
        self.hits += int((found & labelled).sum())
        self.parts_total += int(labelled.sum())
        self.peaks_total += int(keep.sum())
        self.good_peaks += int((near.any(0) & keep).sum())
        self.images += 1

    def result(self) -> dict:
        """``{"heatmap_mse", "paf_mse", "recall", "precision", "f1", "peaks_per_image", "images"}``."""
        rec = self.hits / self.parts_total if self.parts_total else float("nan")
        prec = self.good_peaks / self.peaks_total if self.peaks_total else 0.0
        f1 = 2 * rec * prec / (rec + prec) if (rec + prec) > 0 else 0.0
        return {"heatmap_mse": self.se_h / max(self.n_h, 1), "paf_mse": self.se_p / max(self.n_p, 1),
                "recall": rec, "precision": prec, "f1": f1,
                "peaks_per_image": self.peaks_total / max(self.images, 1), "images": self.images}


def map_scores(maps_fn, split, image_ids, codec=None, peak_threshold: float | None = None, alpha: float = 0.1,
               progress: bool = True, name: str = "maps") -> dict:
    """:class:`MapScorer` scores of ``maps_fn(image) -> (heatmaps, pafs, stride)`` over ``image_ids``
    of ``split``; returns :meth:`MapScorer.result`."""
    from tqdm import tqdm
    scorer = MapScorer(codec, peak_threshold, alpha)
    for i in tqdm(image_ids, desc=name, disable=not progress, leave=False):
        img = split.read(i)
        maps = maps_fn(img)
        scorer.add(maps, scorer.targets(split.anns_by_image.get(i, []), img.shape, maps))
    return scorer.result()
