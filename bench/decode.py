#!/usr/bin/env python
"""Decoder benchmark: COCO keypoint AP and decode time of :class:`keras_openpose.codec.PafCodec`
on ground-truth maps (the oracle) and on a real network's own maps, for every test domain.

* Oracle: maps rendered at stride 8 from the annotations as the network would see each image
  (height resized to 368), decoded back to image pixels.
* Network: the test domains of the split (:func:`keras_openpose.data.testsets.make_domain_test_set`:
  normal, dark, low_light, motion_blur 30 px, resolution half), each image through the network at
  ``--height`` (:class:`keras_openpose.inference.estimator.PoseEstimator`, one scale, no flip), its maps
  decoded by each decoder variant. The maps are computed once (``--cache`` keeps them between runs:
  the network is the slow part).
* ``--references``: the two reference decoders on the same maps, re-implemented here from their
  published rules: the seed system's (CMU's Python demo: maps resized to the image, Gaussian
  smoothing sigma 3 px, 4-neighbour peaks > 0.1, 10 rounded PAF samples, >= 4 parts, mean >= 0.4,
  score = the person's total) and Lightweight OpenPose's COCO evaluation (maps resized to the image,
  strict 4-neighbour peaks > 0.1 merged within 6 px, 10 rounded samples averaged over the
  supporting ones, >= 3 parts, total / parts >= 0.2, score = total x (parts - 1)). Slow (pure
  Python at image resolution, as theirs): for the comparison only.

Prints one JSON line: ``images``, ``images_with_people``, ``oracle_ap``, ``oracle_ap50``,
``median_ms``, ``p90_ms`` (oracle, default decoder), then ``network`` = ``{variant: {domain: {ap,
ap50, median_ms, p90_ms}}}``, ``references`` = ``{decoder: {domain: ap}}`` and ``network_ms`` (median
network time per image, normal domain).

    python bench/decode.py                                    # shipped network, val2017, defaults
    python bench/decode.py --weights models/pose_dark.keras --cache /tmp/maps --references
    python bench/decode.py --split train2017 --people-only --variant legacy=legacy --variant up1='{"upsample": 1}'
    python bench/decode.py --oracle-only
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import io
import json
import os
import pickle
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from conftest import render_gt_maps  # noqa: E402
from keras_openpose.codec import DEFAULT_CODEC, LEGACY_DECODE_OPTIONS, DecodeOptions  # noqa: E402
from keras_openpose.data.coco import CocoSplit  # noqa: E402
from keras_openpose.evaluate.cocoeval import coco_keypoint_eval  # noqa: E402

DOMAINS = ("normal", "dark", "low_light", "motion_blur", "resolution")


# ---------------------------------------------------------------------------------------------
# The reference decoders (for the comparison only), on maps resized to the image
# ---------------------------------------------------------------------------------------------

#: Both references group limbs in CMU's order (0-based OpenPose-18 parts); the last two (shoulder
#: -> ear) only add parts.
CMU_LIMB_ORDER = ((1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11), (11, 12),
                  (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17), (2, 16), (5, 17))


def image_maps(heat, paf, stride, image_shape):
    """Maps at image resolution as both references make them: cells x 8 bicubic (network input
    pixels), the padding cropped, then resized to the image (bicubic)."""
    import cv2
    H, W = image_shape
    h, w = heat.shape[:2]
    s = DEFAULT_CODEC.stride / stride                       # network input pixels per image pixel
    hr, wr = int(round(H * s)), int(round(W * s))
    k = DEFAULT_CODEC.stride

    def up(m):
        m = cv2.resize(np.ascontiguousarray(m), (w * k, h * k), interpolation=cv2.INTER_CUBIC)[:hr, :wr]
        return cv2.resize(m, (W, H), interpolation=cv2.INTER_CUBIC)
    return up(heat), up(paf)


def _limb_scores(A, B, paf2, H_prior, mean_of_passing):
    """Rounded 10-sample PAF integrals of every pair of peaks ``A (nA, >=2)``, ``B (nB, >=2)``
    (pixels): ``(score, passing fraction, length)``, each ``(nA, nB)``."""
    dx = B[None, :, 0] - A[:, None, 0]
    dy = B[None, :, 1] - A[:, None, 1]
    norm = np.sqrt(dx ** 2 + dy ** 2)
    nz = np.where(norm == 0, 1.0, norm)
    t = np.linspace(0.0, 1.0, 10)
    xs = np.rint(A[:, None, None, 0] + dx[..., None] * t).astype(int).clip(0, paf2.shape[1] - 1)
    ys = np.rint(A[:, None, None, 1] + dy[..., None] * t).astype(int).clip(0, paf2.shape[0] - 1)
    proj = paf2[ys, xs, 0] * (dx / nz)[..., None] + paf2[ys, xs, 1] * (dy / nz)[..., None]
    passing = proj > 0.05
    if mean_of_passing:
        npass = passing.sum(-1)
        mean = np.where(npass > 0, (proj * passing).sum(-1) / np.maximum(npass, 1), 0.0)
    else:
        mean = proj.mean(-1)
    return mean + np.minimum(H_prior / nz - 1, 0.0), passing.mean(-1), norm


def _greedy(score, ok, nA, nB):
    """CMU's greedy matching: pairs by descending score, each peak once, at most min(nA, nB)."""
    ii, jj = np.nonzero(ok)
    order = np.argsort(-score[ii, jj], kind="stable")
    ua, ub, out = set(), set(), []
    for o in order:
        if len(out) >= min(nA, nB):
            break
        i, j = int(ii[o]), int(jj[o])
        if i not in ua and j not in ub:
            ua.add(i)
            ub.add(j)
            out.append((i, j, float(score[i, j])))
    return out


def _to_coco(peaks, ids, offset, v):
    """OpenPose-18 peak ids of one person -> 51 COCO keypoint values."""
    kp = [0.0] * 51
    k2p = DEFAULT_CODEC.skeleton.keypoint_to_part
    for k, p in enumerate(k2p):
        if ids[p] >= 0:
            x, y = peaks[int(ids[p]), :2]
            kp[3 * k:3 * k + 3] = [float(x) + offset, float(y) + offset, v]
    return kp


def seed_decode(heat, paf, stride, image_shape):
    """The seed system's decoder (reference-system.md 9.3, CMU's Python demo rules)."""
    from scipy import ndimage
    hm, pm = image_maps(heat, paf, stride, image_shape)
    limb = {tuple(l): i for i, l in enumerate(DEFAULT_CODEC.skeleton.limbs)}
    by_part, n = [], 0
    for p in range(18):
        m = ndimage.gaussian_filter(hm[..., p], sigma=3)
        pad = np.pad(m, 1, constant_values=0)
        c = pad[1:-1, 1:-1]
        pk = (c >= pad[:-2, 1:-1]) & (c >= pad[2:, 1:-1]) & (c >= pad[1:-1, :-2]) & (c >= pad[1:-1, 2:]) & (c > 0.1)
        ys, xs = np.nonzero(pk)
        by_part.append(np.stack([xs, ys, hm[ys, xs, p], n + np.arange(len(xs))], 1).astype(np.float64))
        n += len(xs)
    peaks = np.concatenate(by_part) if n else np.zeros((0, 4))
    people = []                                            # rows: 18 peak ids, total score, parts
    for k, (a, b) in enumerate(CMU_LIMB_ORDER):
        A, B = by_part[a], by_part[b]
        if not len(A) or not len(B):
            continue
        li = limb[(a, b)]
        sc, frac, norm = _limb_scores(A, B, pm[..., 2 * li:2 * li + 2], 0.5 * image_shape[0], False)
        for i, j, s in _greedy(sc, (frac > 0.8) & (sc > 0) & (norm > 0), len(A), len(B)):
            pa, pb = A[i, 3], B[j, 3]
            found = [r for r in people if r[a] == pa or r[b] == pb]
            if len(found) == 1 and found[0][b] != pb:
                r = found[0]
                r[b] = pb
                r[19] += 1
                r[18] += peaks[int(pb), 2] + s
            elif len(found) == 2 and ((found[0][:18] >= 0) & (found[1][:18] >= 0)).any():
                r = found[0]                               # two people sharing a part: extend the first
                r[b] = pb
                r[19] += 1
                r[18] += peaks[int(pb), 2] + s
            elif len(found) == 2:                          # two people sharing no part: merge
                r1, r2 = found
                r1[:18] += r2[:18] + 1
                r1[18:] += r2[18:]
                r1[18] += s
                people = [r for r in people if r is not r2]
            elif not found and k < 17:
                r = -np.ones(20)
                r[a], r[b], r[18], r[19] = pa, pb, peaks[int(pa), 2] + peaks[int(pb), 2] + s, 2
                people.append(r)
    return [{"keypoints": _to_coco(peaks, r, 0.0, 2), "score": float(r[18])}
            for r in people if r[19] >= 4 and r[18] / r[19] >= 0.4]


def lwop_decode(heat, paf, stride, image_shape):
    """Lightweight OpenPose's COCO evaluation decoder (its val.py rules)."""
    hm, pm = image_maps(heat, paf, stride, image_shape)
    limb = {tuple(l): i for i, l in enumerate(DEFAULT_CODEC.skeleton.limbs)}
    by_part, n = [], 0
    for p in range(18):
        m = np.where(hm[..., p] < 0.1, 0.0, hm[..., p])
        pad = np.pad(m, 1)
        c = pad[1:-1, 1:-1]
        ys, xs = np.nonzero((c > pad[:-2, 1:-1]) & (c > pad[2:, 1:-1]) & (c > pad[1:-1, :-2]) & (c > pad[1:-1, 2:]))
        order = np.argsort(xs, kind="stable")
        xs, ys = xs[order], ys[order]
        keep = np.ones(len(xs), bool)
        for i in range(len(xs)):                           # suppress later peaks within 6 px
            if keep[i]:
                keep[i + 1:] &= np.hypot(xs[i + 1:] - xs[i], ys[i + 1:] - ys[i]) >= 6
        xs, ys = xs[keep], ys[keep]
        by_part.append(np.stack([xs, ys, m[ys, xs], n + np.arange(len(xs))], 1).astype(np.float64))
        n += len(xs)
    peaks = np.concatenate(by_part) if n else np.zeros((0, 4))
    people = []
    for k, (a, b) in enumerate(CMU_LIMB_ORDER):
        A, B = by_part[a], by_part[b]
        if not len(A) and not len(B):
            continue
        if not len(A) or not len(B):                       # one side only: its peaks start people
            side, part = (B, b) if not len(A) else (A, a)
            for q in side:
                if not any(r[part] == q[3] for r in people):
                    r = -np.ones(20)
                    r[part], r[18], r[19] = q[3], q[2], 1
                    people.append(r)
            continue
        li = limb[(a, b)]
        sc, frac, norm = _limb_scores(A, B, pm[..., 2 * li:2 * li + 2], pm.shape[0] // 2, True)
        conns = [(A[i, 3], B[j, 3], s) for i, j, s in _greedy(sc, (sc > 0) & (frac > 0.8) & (norm > 0), len(A), len(B))]
        if not conns:
            continue
        if k == 0:
            people = []
            for pa, pb, s in conns:
                r = -np.ones(20)
                r[a], r[b], r[18], r[19] = pa, pb, peaks[int(pa), 2] + peaks[int(pb), 2] + s, 2
                people.append(r)
        elif k >= 17:
            for pa, pb, s in conns:
                for r in people:
                    if r[a] == pa and r[b] == -1:
                        r[b] = pb
                    elif r[b] == pb and r[a] == -1:
                        r[a] = pa
        else:
            for pa, pb, s in conns:
                hit = [r for r in people if r[a] == pa]
                for r in hit:
                    r[b] = pb
                    r[19] += 1
                    r[18] += peaks[int(pb), 2] + s
                if not hit:
                    r = -np.ones(20)
                    r[a], r[b], r[18], r[19] = pa, pb, peaks[int(pa), 2] + peaks[int(pb), 2] + s, 2
                    people.append(r)
    return [{"keypoints": _to_coco(peaks, r, 0.5, 1), "score": float(r[18] * max(0, r[19] - 1))}
            for r in people if r[19] >= 3 and r[18] / r[19] >= 0.2]


REFERENCES = {"seed": seed_decode, "lightweight_openpose": lwop_decode}


# ---------------------------------------------------------------------------------------------
# The benchmark
# ---------------------------------------------------------------------------------------------


def variant_options(spec: str) -> DecodeOptions:
    """``legacy`` (the decoder's defaults before it was tuned on real maps) or a JSON object of
    :class:`DecodeOptions` fields over today's defaults."""
    if spec == "legacy":
        return LEGACY_DECODE_OPTIONS
    return dataclasses.replace(DecodeOptions(), **json.loads(spec))


def score(split, ids, dets):
    with contextlib.redirect_stdout(io.StringIO()):
        stats, _ = coco_keypoint_eval(split.data, dets, ids)
    return stats


def network_maps(weights, height, split, domain, root, cache):
    """``{image id: (heatmaps, pafs, stride, (H, W), network seconds)}`` of one test domain and the
    domain's split; cached under ``cache`` by the weights file's content, height and domain."""
    from keras_openpose.data.testsets import make_domain_test_set
    dsplit = make_domain_test_set(split, domain, root)
    w = Path(weights)
    key = hashlib.sha1((w.read_bytes() if w.is_file() else str(w.resolve()).encode()) + str(height).encode()).hexdigest()[:12]
    f = Path(cache) / f"maps_{key}_{dsplit.split}.pkl" if cache else None
    if f is not None and f.exists():
        return dsplit, pickle.loads(f.read_bytes())
    est = network_maps.estimators.get((weights, height))
    if est is None:
        from keras_openpose.config import InferenceOptions
        from keras_openpose.inference.estimator import PoseEstimator
        est = network_maps.estimators[(weights, height)] = PoseEstimator.from_weights(weights, InferenceOptions(box_size=height))
        est.maps(dsplit.read(dsplit.image_ids[0]))          # warm-up (the trace), not timed
    maps = {}
    for i in dsplit.image_ids:
        img = dsplit.read(i)
        t0 = time.perf_counter()
        heat, paf, stride = est.maps(img)
        maps[i] = (heat, paf, stride, img.shape[:2], time.perf_counter() - t0)
    if f is not None:
        f.parent.mkdir(parents=True, exist_ok=True)
        tmp = f.with_suffix(".tmp")
        tmp.write_bytes(pickle.dumps(maps))
        os.replace(tmp, f)
    return dsplit, maps


network_maps.estimators = {}


def run_decoder(decode, maps, ids, repeat):
    """Detections of ``decode(heat, paf, stride, image_shape)`` over ``ids`` and its decode times."""
    dets, times = [], []
    for rep in range(repeat):
        for i in ids:
            heat, paf, stride, shape = maps[i][:4]
            t0 = time.perf_counter()
            res = decode(heat, paf, stride, shape)
            times.append(time.perf_counter() - t0)
            if rep == 0:
                dets += [{"image_id": int(i), "category_id": 1, **r} for r in res]
    return dets, times


def ms(times):
    return {"median_ms": round(1000 * float(np.median(times)), 3), "p90_ms": round(1000 * float(np.percentile(times, 90)), 3)}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default=None, help="network (default: the shipped models/pose_normal.keras)")
    p.add_argument("--height", type=int, default=256, help="network input height (256: Lightweight OpenPose's)")
    p.add_argument("--split", default="val2017", help="split of dataset/sample (train2017: where defaults are chosen)")
    p.add_argument("--people-only", action="store_true", help="only the images with annotated people")
    p.add_argument("--domains", default=",".join(DOMAINS))
    p.add_argument("--variant", action="append", default=[], metavar="NAME=SPEC",
                   help="decoder variant: legacy, or a JSON object of DecodeOptions fields over the defaults "
                        "(repeatable; default: default={})")
    p.add_argument("--references", action="store_true", help="also the two reference decoders (slow)")
    p.add_argument("--oracle-only", action="store_true", help="ground-truth maps only (no network)")
    p.add_argument("--cache", default=None, help="folder keeping the test domains and the network's maps")
    p.add_argument("--repeat", type=int, default=3, help="decodes per image for the timing")
    a = p.parse_args()
    variants = {"default": DecodeOptions()}
    for v in a.variant:
        name, _, spec = v.partition("=")
        variants[name] = variant_options(spec or "{}")
    split = CocoSplit(REPO / "dataset" / "sample", a.split)
    with_people = split.ids_with_people()
    ids = with_people if a.people_only else split.image_ids

    def ours(opt):
        return lambda heat, paf, stride, shape: DEFAULT_CODEC.decode(heat, paf, shape, stride=stride, options=opt)

    gt = {i: render_gt_maps(split, i) for i in ids}
    gt = {i: (h, pf, st, (split.images[i]["height"], split.images[i]["width"])) for i, (h, pf, st) in gt.items()}
    dets, times = run_decoder(ours(variants["default"]), gt, ids, a.repeat)
    stats = score(split, ids, dets)
    out = {"images": len(ids), "images_with_people": len([i for i in ids if i in set(with_people)]),
           "oracle_ap": round(stats["AP"], 4), "oracle_ap50": round(stats["AP50"], 4), **ms(times)}
    if len(variants) > 1:
        out["oracle"] = {}
        for name, opt in variants.items():
            d, t = run_decoder(ours(opt), gt, ids, 1)
            out["oracle"][name] = round(score(split, ids, d)["AP"], 4)
    if not a.oracle_only:
        from keras_openpose.model.weights import ensure_pretrained
        weights = str(ensure_pretrained(a.weights) if a.weights else ensure_pretrained())
        out.update(weights=weights, height=a.height, split=a.split, network={}, network_ms=None)
        if a.references:
            out["references"] = {r: {} for r in REFERENCES}
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(a.cache) / "domains" if a.cache else Path(tmp)
            for dom in a.domains.split(","):
                dsplit, maps = network_maps(weights, a.height, split, dom, root, a.cache)
                dids = [i for i in ids if i in maps]
                if dom == "normal":
                    out["network_ms"] = round(1000 * float(np.median([maps[i][4] for i in dids])), 1)
                for name, opt in variants.items():
                    d, t = run_decoder(ours(opt), maps, dids, a.repeat)
                    st = score(dsplit, dids, d)
                    out["network"].setdefault(name, {})[dom] = {"ap": round(st["AP"], 4), "ap50": round(st["AP50"], 4), **ms(t)}
                for r, fn in REFERENCES.items() if a.references else ():
                    d, t = run_decoder(fn, maps, dids, 1)
                    out["references"][r][dom] = {"ap": round(score(dsplit, dids, d)["AP"], 4), **ms(t)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
