"""Uncertainty from expert disagreement: per-limb translational and rotational disagreement,
people paired across experts with or without ground truth, and whether disagreement predicts error.

Definitions (for one person seen by experts ``e = 1..E``, a limb with endpoints ``a, b`` in
input-image pixels; the original project's formulas (ainu412 keras-openpose-reproduce, util_ainu.py) with
its defects fixed: real limb names, angles wrapped, the person's scale as the normaliser):

* translational: mean over expert pairs ``(i, j)`` of ``(|a_i - a_j| + |b_i - b_j|) / 2``, divided by
  the person's scale ``sqrt(area)``: the GT ``area`` (segmentation) when the person has ground truth,
  else the area of the bounding box of the union of the experts' keypoints;
* rotational: mean over expert pairs of the limb-angle difference wrapped to ``[0, 180]`` degrees,
  divided by 180 (so in ``[0, 1]``);
* an expert that misses either endpoint of a limb takes no part in that limb's pairs; a limb seen
  by fewer than two experts has no value (NaN, excluded from means; its coverage is reported).

Limbs and their names come from the skeleton (OpenPose COCO-18: 19 limbs, neck = shoulder midpoint).
"""
from __future__ import annotations

from collections import defaultdict
from itertools import combinations

import numpy as np

from ..skeleton import DEFAULT_SKELETON, Skeleton
from ..evaluate.matching import match_by_oks, oks_matrix
from ..evaluate.matching import oks_reference


def limb_disagreement(people: list, scale: float, skeleton: Skeleton = DEFAULT_SKELETON):
    """Per-limb disagreement of one person across experts.

    Args:
        people: per expert, ``(K, 3)`` COCO keypoints (``v > 0`` = predicted) or ``None`` (missed).
        scale: normaliser in pixels (see module doc); must be > 0.
    Returns:
        ``(transl (L,), rot (L,))`` float arrays, NaN where fewer than two experts have the limb.
    Raises:
        ValueError: non-positive scale.
    """
    if not scale > 0:
        raise ValueError(f"disagreement scale must be > 0, got {scale}")
    L = skeleton.num_limbs
    transl, rot = np.full(L, np.nan), np.full(L, np.nan)
    parts = [None if p is None else skeleton.keypoints_to_parts(np.asarray(p, np.float32).reshape(1, -1, 3))[0]
             for p in people]
    for li, (a, b) in enumerate(skeleton.limbs):
        have = [q for q in parts if q is not None and q[a, 2] > 0 and q[b, 2] > 0]
        if len(have) < 2:
            continue
        ts, rs = [], []
        for qi, qj in combinations(have, 2):
            ts.append(0.5 * (np.hypot(*(qi[a, :2] - qj[a, :2])) + np.hypot(*(qi[b, :2] - qj[b, :2]))))
            ti = np.degrees(np.arctan2(*(qi[b, :2] - qi[a, :2])[::-1]))
            tj = np.degrees(np.arctan2(*(qj[b, :2] - qj[a, :2])[::-1]))
            rs.append(abs((ti - tj + 180.0) % 360.0 - 180.0))
        transl[li] = np.mean(ts) / scale
        rot[li] = np.mean(rs) / 180.0
    return transl, rot


def group_people(per_expert: list[list[dict]], min_oks: float = 0.3, sigmas=None) -> list[list]:
    """Pair people across experts without ground truth, by OKS between their predictions.

    Greedy: experts are taken in order; each person joins the group whose first member it matches
    best (OKS >= ``min_oks``, one member per expert), else starts a group.

    Returns:
        groups: lists of length E with a person dict or ``None`` per expert.
    """
    E = len(per_expert)
    groups: list[list] = []
    for e, people in enumerate(per_expert):
        if not people:
            continue
        if groups:
            refs = [oks_reference(next(p for p in g if p is not None)) for g in groups]
            oks = oks_matrix(people, refs, sigmas)
        else:
            oks = np.zeros((len(people), 0))
        taken = set()
        for i in np.argsort(-oks.max(1) if oks.shape[1] else np.zeros(len(people)), kind="stable"):
            best, bj = min_oks, -1
            for j in range(oks.shape[1]):
                if j not in taken and groups[j][e] is None and oks[i, j] >= best:
                    best, bj = oks[i, j], j
            if bj >= 0:
                groups[bj][e] = people[i]
                taken.add(bj)
            else:
                g = [None] * E
                g[e] = people[i]
                groups.append(g)
    return groups


def person_scale(group: list, gt: dict | None = None) -> float:
    """``sqrt(GT area)`` when ``gt`` is given, else ``sqrt`` of the bbox area of the union of the
    group's predicted keypoints (at least 1 pixel)."""
    if gt is not None and gt.get("area", 0) > 0:
        return float(np.sqrt(gt["area"]))
    pts = np.concatenate([np.asarray(p["keypoints"]).reshape(-1, 3) for p in group if p is not None])
    pts = pts[pts[:, 2] > 0]
    if len(pts) == 0:
        return 1.0
    w, h = np.ptp(pts[:, 0]), np.ptp(pts[:, 1])
    return float(max(np.sqrt(max(w, 1.0) * max(h, 1.0)), 1.0))


def spearman(x, y) -> float:
    """Spearman rank correlation (scipy); NaN with fewer than 3 points or constant input."""
    from scipy.stats import spearmanr
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(spearmanr(x, y).statistic)


def spearman_interval(x, y, draws: int = 1000, seed: int = 0, level: float = 0.95) -> list:
    """Percentile-bootstrap interval of Spearman's rho (Efron & Tibshirani 1993, *An Introduction to
    the Bootstrap*, ch. 13): the ``(x, y)`` pairs are drawn with replacement ``draws`` times and
    :func:`spearman` is taken of each resample.

    Args:
        x, y: ``(n,)`` paired values (e.g. a person's disagreement and error).
        draws: number of bootstrap resamples.
        seed: seed of :func:`numpy.random.default_rng`; the same seed gives the same interval.
        level: coverage of the two-sided interval, in (0, 1).
    Returns:
        ``[low, high]``, the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the resamples'
        rho; resamples where rho is undefined (constant input, as when one pair is drawn ``n``
        times) are left out; ``[nan, nan]`` when rho of the data itself is undefined (fewer than 3
        pairs or constant input) or no resample has it.
    Raises:
        ValueError: ``x`` and ``y`` of different lengths, or ``level`` / ``draws`` out of range.
    """
    from scipy.stats import rankdata
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"spearman_interval needs two (n,) arrays, got {x.shape} and {y.shape}")
    if not 0 < level < 1:
        raise ValueError(f"bootstrap level must be in (0, 1), got {level}")
    if draws < 1:
        raise ValueError(f"bootstrap draws must be >= 1, got {draws}")
    if not np.isfinite(spearman(x, y)):
        return [float("nan"), float("nan")]
    idx = np.random.default_rng(seed).integers(0, len(x), (draws, len(x)))
    # Spearman's rho = Pearson's r of the ranks (average ranks for ties), as scipy's spearmanr
    rx, ry = rankdata(x[idx], axis=1), rankdata(y[idx], axis=1)
    rx -= rx.mean(1, keepdims=True)
    ry -= ry.mean(1, keepdims=True)
    den = np.sqrt((rx ** 2).sum(1) * (ry ** 2).sum(1))
    ok = den > 0
    if not ok.any():
        return [float("nan"), float("nan")]
    rho = np.clip((rx[ok] * ry[ok]).sum(1) / den[ok], -1.0, 1.0)
    low, high = np.quantile(rho, [(1 - level) / 2, (1 + level) / 2])
    return [float(low), float(high)]


def sparsification(uncertainty, error, steps: int = 20):
    """Sparsification curves and AUSE (Ilg et al. 2018; Lind et al. 2024).

    For fractions ``f = 0, 1/steps, ..., (steps-1)/steps``, the mean error of the samples left after
    removing the fraction ``f`` with the highest uncertainty (``curve``) and with the highest
    error (``oracle``). AUSE = trapezoidal area of ``curve - oracle`` over ``f`` in [0, (steps-1)/steps].

    Returns:
        ``{"fractions", "curve", "oracle", "ause"}``.
    """
    u, e = np.asarray(uncertainty, float), np.asarray(error, float)
    n = len(e)
    fr = np.arange(steps) / steps
    if n == 0:
        return {"fractions": fr.tolist(), "curve": [], "oracle": [], "ause": float("nan")}
    by_u = e[np.argsort(u, kind="stable")]            # ascending uncertainty
    by_e = np.sort(e)
    curve, oracle = [], []
    for f in fr:
        keep = max(1, int(round(n * (1 - f))))
        curve.append(by_u[:keep].mean())
        oracle.append(by_e[:keep].mean())
    curve, oracle = np.array(curve), np.array(oracle)
    d = curve - oracle
    ause = float(np.sum((d[1:] + d[:-1]) / 2 * np.diff(fr))) if n > 1 else 0.0
    return {"fractions": fr.tolist(), "curve": curve.tolist(), "oracle": oracle.tolist(), "ause": ause}


def disagreement_report(per_expert_dets: dict[str, list[dict]], gt_data: dict | None = None,
                        matches: dict[str, dict[int, int]] | None = None,
                        skeleton: Skeleton = DEFAULT_SKELETON, min_oks: float = 0.3,
                        gt_min_oks: float = 0.1) -> dict:
    """Per-limb and per-person disagreement of experts over a set of images.

    Args:
        per_expert_dets: ``{expert: [COCO result dicts with "image_id" (and "id" when matched)]}``.
        gt_data: COCO GT dict; when given, people are paired by GT id and each person's error is
            measured, else they are paired by OKS between the experts' predictions (``min_oks``).
        matches: ``{expert: {det id: gt id}}`` (e.g. the eval's match at OKS 0.5); when ``None``
            with ``gt_data``, each expert's detections are matched to GT with :func:`match_by_oks`
            at ``gt_min_oks``.
    Returns:
        ``{"experts", "limbs": {name: {"transl", "rot", "n"}}, "total_transl", "total_rot",
        "persons": [{"image_id", "gt_id", "transl", "rot", "error", "n_experts"}],
        "spearman_transl", "spearman_rot", "spearman_transl_interval", "spearman_rot_interval",
        "sparsification_transl", "ause_transl", ...}``; ``spearman_*_interval`` = ``[low, high]``,
        the 95 % bootstrap interval of rho over people (:func:`spearman_interval`, 1000 draws, seed 0);
        ``total_*`` are sums over limbs (as the reference), ``error`` = 1 - mean over experts of
        the OKS to the GT (a missing expert counts OKS 0).
    """
    experts = list(per_expert_dets)
    by_img = defaultdict(lambda: [[] for _ in experts])
    for e, name in enumerate(experts):
        for d in per_expert_dets[name]:
            by_img[d["image_id"]][e].append(d)
    gt_by_id = {a["id"]: a for a in gt_data["annotations"]} if gt_data else {}
    gt_anns_by_img = defaultdict(list)
    for a in (gt_data or {}).get("annotations", []):
        gt_anns_by_img[a["image_id"]].append(a)
    persons = []
    L = skeleton.num_limbs
    sigmas = skeleton.pairing_sigmas
    for img, lists in sorted(by_img.items()):
        if gt_data is not None:
            groups = defaultdict(lambda: [None] * len(experts))
            gts = gt_anns_by_img.get(img, [])
            for e, name in enumerate(experts):
                ids = ([matches[name].get(d.get("id"), 0) for d in lists[e]] if matches is not None
                       else match_by_oks(lists[e], gts, gt_min_oks, sigmas))
                for d, g in zip(lists[e], ids):
                    if g:
                        groups[g][e] = d
            items = list(groups.items())
        else:
            items = [(0, g) for g in group_people(lists, min_oks, sigmas)]
        for gid, group in items:
            if sum(p is not None for p in group) < 2:
                continue
            gt = gt_by_id.get(gid)
            scale = person_scale(group, gt)
            t, r = limb_disagreement([None if p is None else p["keypoints"] for p in group], scale, skeleton)
            rec = {"image_id": int(img), "gt_id": int(gid), "n_experts": int(sum(p is not None for p in group)),
                   "transl_limbs": t.tolist(), "rot_limbs": r.tolist(),
                   "transl": float(np.nanmean(t)) if np.isfinite(t).any() else float("nan"),
                   "rot": float(np.nanmean(r)) if np.isfinite(r).any() else float("nan")}
            if gt is not None:
                oks = [oks_matrix([p], [gt], sigmas)[0, 0] if p is not None else 0.0 for p in group]
                rec["error"] = float(1.0 - np.mean(oks))
            persons.append(rec)
    T = np.array([p["transl_limbs"] for p in persons]).reshape(-1, L)
    R = np.array([p["rot_limbs"] for p in persons]).reshape(-1, L)
    limbs = {}
    for li in range(L):
        n = int(np.isfinite(T[:, li]).sum())
        limbs[skeleton.limb_name(li)] = {"transl": float(np.nanmean(T[:, li])) if n else float("nan"),
                                         "rot": float(np.nanmean(R[:, li])) if n else float("nan"), "n": n}
    out = {"experts": experts, "limbs": limbs, "persons": persons, "n_persons": len(persons),
           "total_transl": float(np.nansum([v["transl"] for v in limbs.values()])),
           "total_rot": float(np.nansum([v["rot"] for v in limbs.values()]))}
    scored = [p for p in persons if "error" in p and np.isfinite(p["transl"])]
    if scored:
        err = [p["error"] for p in scored]
        for key in ("transl", "rot"):
            u = [p[key] for p in scored]
            out[f"spearman_{key}"] = spearman(u, err)
            out[f"spearman_{key}_interval"] = spearman_interval(u, err)
            sp = sparsification(u, err)
            out[f"sparsification_{key}"] = sp
            out[f"ause_{key}"] = sp["ause"]
    return out


def disagreement_for_split(split, results, out, use_gt: bool = True, skeleton: Skeleton = DEFAULT_SKELETON,
                           experts=None) -> dict:
    """The experts' disagreement on one evaluated split, from their evaluation runs.

    Reads each expert's ``<split>-<tag>_result.json`` from its latest run folder under ``results``
    (:func:`keras_openpose.evaluate.runs.results_dir`), pairs people by GT (OKS >= 0.1,
    :func:`match_by_oks`) or, without ground truth, across experts by OKS, and writes
    ``<split>-three-model-disagreement.{csv,json,png}`` under ``out``.

    Returns:
        :func:`disagreement_report` plus ``csv`` and ``png`` paths.
    Raises:
        DataError: an expert's evaluation run or results file is missing.
    """
    import json
    from pathlib import Path

    import pandas as pd

    from ..data.domains import EXPERT_DOMAINS
    from ..errors import DataError
    from ..evaluate.runs import model_tag
    from ..files import atomic_write, write_json_atomic
    from ..visualize import plot_sparsification
    dt, results, out = split.split, Path(results), Path(out)
    dets = {}
    for d in experts or EXPERT_DOMAINS:
        tag = model_tag(d)
        runs = sorted(results.glob(f"{dt}-{tag}-open-pose-single-scale-*"))
        if not runs:
            raise DataError(f"{results}: no eval run of expert {tag!r} on {dt} (run eval_coco2014_single_scale.py first)")
        f = runs[-1] / f"{dt}-{tag}_result.json"
        if not f.is_file():
            raise DataError(f"{f}: results file missing (run eval_coco2014_single_scale.py first)")
        dets[d] = json.loads(f.read_text())
    rep = disagreement_report(dets, split.data if use_gt else None, None, skeleton)
    rows = [(f"transl disagreement {k.replace('-', ' to ')}", v["transl"]) for k, v in rep["limbs"].items()]
    rows += [(f"rotate disagreement {k.replace('-', ' to ')}", v["rot"]) for k, v in rep["limbs"].items()]
    rows += [("total transl disagreement", rep["total_transl"]), ("total rotate disagreement", rep["total_rot"])]
    csv = out / f"{dt}-three-model-disagreement.csv"
    with atomic_write(csv, "w") as f:
        pd.DataFrame(rows, columns=["evaluation_metrics", "value"]).to_csv(f, index=False, float_format="%.4f")
    rep["experts_tags"] = {d: model_tag(d) for d in dets}
    write_json_atomic(rep, out / f"{dt}-three-model-disagreement.json")
    png = out / f"{dt}-three-model-sparsification.png"
    if "sparsification_transl" in rep:
        plot_sparsification({"translational": rep["sparsification_transl"], "rotational": rep["sparsification_rot"]},
                            png, f"{dt}: disagreement vs error")
    return {**rep, "csv": str(csv), "png": str(png)}
