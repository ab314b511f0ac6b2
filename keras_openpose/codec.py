"""Encode training targets (part heatmaps + PAFs) and decode them back into people.

Coordinate frames
-----------------
* *Input pixels*: the frame of the image the network sees (e.g. the 368x368 training crop), with
  pixel centres at integer coordinates (OpenCV's convention).
* *Map cells*: the network output grid at ``stride`` (8). Cell ``(i, j)`` is centred on input pixel
  ``(x, y) = (stride * j + (stride - 1) / 2, stride * i + (stride - 1) / 2)`` — heatmaps *and* PAFs
  are sampled at these same centres (the reference sampled PAFs at cell corners, §13.1 item 10).

Channel layout (CMU COCO model, reference-system.md §5.1): heatmaps ``(h, w, P + 1)`` = the
skeleton's parts in order, background last; PAFs ``(h, w, 2L)`` = limb ``i`` in channels
``2i`` (x) and ``2i + 1`` (y).

Encoding implements Cao et al. 2017, eq. 7 (Gaussian confidence maps, max over people), eq. 8 (unit
vector on the limb band) and eq. 9 (average over overlapping people). Decoding implements §3.3–3.4:
non-maximum suppression, PAF line integral (eq. 10, sampled), greedy bipartite matching per limb and
person assembly; all candidate pairs of a limb are scored at once (no per-pixel Python).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import ndimage

from .skeleton import DEFAULT_SKELETON, Skeleton

# --------------------------------------------------------------------------------------------
# Encode
# --------------------------------------------------------------------------------------------


def cell_centres(n: int, stride: int) -> np.ndarray:
    """Input-pixel coordinates of the centres of ``n`` cells at ``stride``, shape ``(n,)``."""
    return stride * np.arange(n, dtype=np.float32) + (stride - 1) / 2.0


def encode_heatmaps(parts: np.ndarray, map_shape: tuple[int, int], stride: int = 8,
                    sigma: float = 7.0) -> np.ndarray:
    """Part confidence maps with a background channel (Cao et al. 2017, eq. 7).

    Args:
        parts: ``(N, P, 3)`` people x parts x ``(x, y, v)`` in input pixels; a part counts when
            ``v > 0`` (labelled, visible or occluded).
        map_shape: ``(h, w)`` of the output grid.
        stride: input pixels per cell.
        sigma: Gaussian spread in input pixels (7 in the paper's code).
    Returns:
        float32 ``(h, w, P + 1)``: ``exp(-|p - x_k|^2 / (2 sigma^2))`` maxed over people ``k``,
        then the background ``1 - max_p``.
    """
    parts = np.asarray(parts, np.float32)
    if parts.ndim == 2:
        parts = parts[None]
    h, w = map_shape
    P = parts.shape[1]
    ys, xs = cell_centres(h, stride), cell_centres(w, stride)
    heat = np.zeros((P, h, w), np.float32)
    if parts.shape[0]:
        gx = np.exp(-(xs[None, None, :] - parts[:, :, 0:1]) ** 2 / (2 * sigma ** 2))  # (N,P,w)
        gy = np.exp(-(ys[None, None, :] - parts[:, :, 1:2]) ** 2 / (2 * sigma ** 2))  # (N,P,h)
        g = gy[:, :, :, None] * gx[:, :, None, :]                                      # (N,P,h,w)
        g *= (parts[:, :, 2] > 0)[:, :, None, None]
        heat = g.max(axis=0)
    out = np.empty((h, w, P + 1), np.float32)
    out[..., :P] = heat.transpose(1, 2, 0)
    out[..., P] = 1.0 - heat.max(axis=0) if P else 1.0
    return out


def encode_pafs(parts: np.ndarray, map_shape: tuple[int, int], limbs, stride: int = 8,
                limb_width: float = 8.0) -> np.ndarray:
    """Part affinity fields (Cao et al. 2017, eq. 8 and 9).

    A cell centre ``p`` lies on limb ``c`` of person ``k`` when
    ``0 <= v . (p - x_j1) <= l`` and ``|v_perp . (p - x_j1)| <= limb_width``, with ``v`` the unit
    vector from part ``j1`` to ``j2`` and ``l`` the limb length. The field there is ``v``, averaged over
    the people whose limb covers ``p`` (eq. 9); zero elsewhere.

    Args:
        parts: ``(N, P, 3)`` in input pixels (``v > 0`` = labelled).
        map_shape: ``(h, w)``.
        limbs: ``(L, 2)`` part index pairs.
        stride: input pixels per cell.
        limb_width: half-width ``sigma_l`` of the band, input pixels.
    Returns:
        float32 ``(h, w, 2L)``, limb ``i`` in channels ``2i`` (x) and ``2i + 1`` (y).
    """
    parts = np.asarray(parts, np.float32)
    limbs = np.asarray(limbs, np.int64).reshape(-1, 2)
    h, w = map_shape
    L = len(limbs)
    out = np.zeros((h, w, 2 * L), np.float32)
    if parts.size == 0 or L == 0:
        return out
    a, b = parts[:, limbs[:, 0]], parts[:, limbs[:, 1]]                  # (N,L,3)
    d = b[..., :2] - a[..., :2]
    length = np.linalg.norm(d, axis=-1)                                   # (N,L)
    valid = (a[..., 2] > 0) & (b[..., 2] > 0) & (length > 1e-3)
    u = d / np.maximum(length, 1e-6)[..., None]                           # (N,L,2)
    ys, xs = cell_centres(h, stride), cell_centres(w, stride)
    px = xs[None, None, None, :] - a[..., 0, None, None]                  # (N,L,1,w)
    py = ys[None, None, :, None] - a[..., 1, None, None]                  # (N,L,h,1)
    along = px * u[..., 0, None, None] + py * u[..., 1, None, None]       # (N,L,h,w)
    across = np.abs(px * u[..., 1, None, None] - py * u[..., 0, None, None])
    on = (along >= 0) & (along <= length[..., None, None]) & (across <= limb_width)
    on &= valid[..., None, None]
    count = on.sum(axis=0)                                                # (L,h,w)
    onf = on.astype(np.float32)
    vx = np.einsum("nlhw,nl->lhw", onf, u[..., 0])
    vy = np.einsum("nlhw,nl->lhw", onf, u[..., 1])
    nz = np.maximum(count, 1)
    out[..., 0::2] = (vx / nz).transpose(1, 2, 0)
    out[..., 1::2] = (vy / nz).transpose(1, 2, 0)
    return out


def encode_targets(parts: np.ndarray, map_shape: tuple[int, int], skeleton: Skeleton = DEFAULT_SKELETON,
                   stride: int = 8, sigma: float = 7.0, limb_width: float = 8.0):
    """Heatmaps ``(h, w, P + 1)`` and PAFs ``(h, w, 2L)`` for people ``(N, P, 3)`` in input pixels.

    See :func:`encode_heatmaps` and :func:`encode_pafs`; both are sampled at the same cell centres.
    """
    parts = np.asarray(parts, np.float32).reshape(-1, skeleton.num_parts, 3)
    return (encode_heatmaps(parts, map_shape, stride, sigma),
            encode_pafs(parts, map_shape, skeleton.limbs, stride, limb_width))


# --------------------------------------------------------------------------------------------
# Decode
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DecodeOptions:
    """Thresholds of the decoder (defaults: CMU's ``thre1``, ``thre2``, ``mid_num`` and person rules).

    Attributes:
        peak_threshold: minimum heatmap value of a keypoint candidate (CMU thre1 = 0.1).
        smooth_sigma: Gaussian smoothing of the heatmaps before NMS, in map cells (0 = none).
        refine: sub-pixel refinement of peaks (Taylor expansion of the log heatmap, as DARK,
            Zhang et al. CVPR 2020).
        paf_samples: points sampled along each candidate limb (CMU mid_num = 10).
        paf_threshold: a sample supports the limb when its PAF projection exceeds this (thre2 = 0.05).
        paf_min_fraction: fraction of supporting samples needed (0.8).
        length_prior: penalise limbs longer than half the image height (CMU's distance prior).
        min_parts: people with fewer parts are dropped (CMU: 4; 3 scores +3.8 AP on the sample's
            ground-truth maps: people seen only from the back or cut by the frame keep 3 parts).
        min_mean_score: people whose mean part+limb score is lower are dropped (CMU: 0.4).
    """

    peak_threshold: float = 0.1
    smooth_sigma: float = 0.0
    refine: bool = True
    paf_samples: int = 10
    paf_threshold: float = 0.05
    paf_min_fraction: float = 0.8
    length_prior: bool = True
    min_parts: int = 3
    min_mean_score: float = 0.4


def find_peaks(heatmaps: np.ndarray, threshold: float = 0.1, smooth_sigma: float = 0.0,
               refine: bool = True):
    """Local maxima of part heatmaps (3x3 non-maximum suppression) with sub-pixel refinement.

    Args:
        heatmaps: ``(h, w, P)`` part channels (no background).
    Returns:
        ``(part, x, y, score)``: arrays of length ``n``; ``x, y`` in map cells (float), ``score`` the
        heatmap value at the peak.
    """
    hm = np.asarray(heatmaps, np.float32)
    if smooth_sigma > 0:
        hm = ndimage.gaussian_filter(hm, sigma=(smooth_sigma, smooth_sigma, 0), mode="constant")
    mx = ndimage.maximum_filter(hm, size=(3, 3, 1), mode="constant", cval=-np.inf)
    ys, xs, ps = np.nonzero((hm >= mx) & (hm > threshold))
    score = hm[ys, xs, ps]
    fx, fy = xs.astype(np.float32), ys.astype(np.float32)
    if refine and len(ys):
        h, w = hm.shape[:2]
        lg = np.log(np.maximum(hm, 1e-10))

        def at(yy, xx):
            return lg[np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1), ps]

        c = at(ys, xs)
        l, r, u, d = at(ys, xs - 1), at(ys, xs + 1), at(ys - 1, xs), at(ys + 1, xs)
        dx, dy = 0.5 * (r - l), 0.5 * (d - u)
        dxx, dyy = r - 2 * c + l, d - 2 * c + u
        dxy = 0.25 * (at(ys + 1, xs + 1) - at(ys + 1, xs - 1) - at(ys - 1, xs + 1) + at(ys - 1, xs - 1))
        det = dxx * dyy - dxy ** 2
        inner = (xs > 0) & (xs < w - 1) & (ys > 0) & (ys < h - 1) & (det > 1e-6) & (dxx < 0) & (dyy < 0)
        ox = np.where(inner, -(dyy * dx - dxy * dy) / np.where(inner, det, 1), 0)
        oy = np.where(inner, -(dxx * dy - dxy * dx) / np.where(inner, det, 1), 0)
        fx += np.clip(ox, -1, 1)
        fy += np.clip(oy, -1, 1)
    return ps, fx, fy, score


def _bilinear(field: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Sample ``field (h, w, C)`` at float cell coordinates ``x, y`` (any equal shape) -> ``(..., C)``."""
    h, w = field.shape[:2]
    x = np.clip(x, 0, w - 1)
    y = np.clip(y, 0, h - 1)
    x0 = np.floor(x).astype(np.int64)
    y0 = np.floor(y).astype(np.int64)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    ax, ay = (x - x0)[..., None], (y - y0)[..., None]
    return ((1 - ay) * ((1 - ax) * field[y0, x0] + ax * field[y0, x1])
            + ay * ((1 - ax) * field[y1, x0] + ax * field[y1, x1]))


@lru_cache(maxsize=16)
def _limb_order(skeleton: Skeleton):
    """Limbs in breadth-first order from the most connected part (computed once per skeleton);
    ``starts[i]`` says whether limb ``i`` may start a new person (False for limbs that close a
    cycle, e.g. shoulder->ear in CMU's grouping, which only add parts to people found through the
    tree)."""
    P = skeleton.num_parts
    deg = np.zeros(P, int)
    for a, b in skeleton.limbs:
        deg[a] += 1
        deg[b] += 1
    root = int(np.argmax(deg))
    depth = {root: 0}
    frontier = [root]
    while frontier:
        nxt = []
        for p in frontier:
            for a, b in skeleton.limbs:
                for s, t in ((a, b), (b, a)):
                    if s == p and t not in depth:
                        depth[t] = depth[p] + 1
                        nxt.append(t)
        frontier = nxt
    order = sorted(range(skeleton.num_limbs),
                   key=lambda i: (min(depth.get(skeleton.limbs[i][0], P), depth.get(skeleton.limbs[i][1], P)), i))
    parent = list(range(P))

    def find(p):
        while parent[p] != p:
            parent[p] = parent[parent[p]]
            p = parent[p]
        return p

    starts = {}
    for i in order:
        a, b = skeleton.limbs[i]
        ra, rb = find(a), find(b)
        starts[i] = ra != rb
        parent[ra] = rb
    tree = [i for i in order if starts[i]]
    return tree + [i for i in order if not starts[i]], starts


def decode_poses(heatmaps: np.ndarray, pafs: np.ndarray, image_shape, *, stride=None,
                 skeleton: Skeleton = DEFAULT_SKELETON, options: DecodeOptions | None = None, **overrides):
    """Group heatmap peaks into people with part affinity fields (Cao et al. 2017, §3.3-3.4).

    Args:
        heatmaps: float32 ``(h, w, P + 1)`` at the network stride; for the default skeleton
            ``(h, w, 19)`` = OpenPose COCO-18 parts then background (CMU COCO channel layout).
        pafs: float32 ``(h, w, 2L)``; ``(h, w, 38)`` for the default skeleton.
        image_shape: ``(H, W)`` of the input image the poses are reported in.
        stride: input-image pixels per map cell, a number or ``(sy, sx)``. Default ``(H/h, W/w)``:
            the maps cover the image exactly. Pass ``8 / s`` when the image was resized by ``s``
            before the network (as :mod:`keras_openpose.inference` does).
        skeleton: part/limb layout of the channels.
        options: :class:`DecodeOptions`; keyword ``overrides`` replace single fields.
    Returns:
        list of ``{"keypoints": [3K floats: x, y, v in input-image pixels, COCO keypoint order],
        "score": float}``; ``v`` is 2 for a found keypoint and 0 (with ``x = y = 0``) otherwise; the
        score is the person's mean part+limb confidence times the fraction of parts found, in [0, 1].
    Raises:
        ValueError: when the map shapes do not match the skeleton or each other.
    """
    opt = options or DecodeOptions()
    if overrides:
        opt = DecodeOptions(**{**opt.__dict__, **overrides})
    heatmaps = np.asarray(heatmaps, np.float32)
    pafs = np.asarray(pafs, np.float32)
    P, L = skeleton.num_parts, skeleton.num_limbs
    if heatmaps.ndim != 3 or heatmaps.shape[2] not in (P, P + 1):
        raise ValueError(f"heatmaps must be (h, w, {P + 1}), got {heatmaps.shape}")
    if pafs.shape != heatmaps.shape[:2] + (2 * L,):
        raise ValueError(f"pafs must be {heatmaps.shape[:2] + (2 * L,)}, got {pafs.shape}")
    H, W = int(image_shape[0]), int(image_shape[1])
    h, w = heatmaps.shape[:2]
    if stride is None:
        sy, sx = H / h, W / w
    else:
        sy, sx = (stride, stride) if np.isscalar(stride) else stride

    ps, fx, fy, score = find_peaks(heatmaps[..., :P], opt.peak_threshold, opt.smooth_sigma, opt.refine)
    n = len(ps)
    if n == 0:
        return []
    # peak ids grouped by part
    by_part = [np.nonzero(ps == p)[0] for p in range(P)]
    img_x, img_y = (fx + 0.5) * sx - 0.5, (fy + 0.5) * sy - 0.5

    # --- score every candidate pair of every limb, vectorised over pairs and samples -------
    t = np.linspace(0.0, 1.0, opt.paf_samples, dtype=np.float32)
    conns = []  # per limb: (idx_a, idx_b, score) after greedy matching
    for li, (pa, pb) in enumerate(skeleton.limbs):
        ia, ib = by_part[pa], by_part[pb]
        if len(ia) == 0 or len(ib) == 0:
            conns.append(None)
            continue
        ax, ay = fx[ia][:, None], fy[ia][:, None]
        dx, dy = fx[ib][None, :] - ax, fy[ib][None, :] - ay                 # (nA,nB) cells
        norm = np.sqrt(dx ** 2 + dy ** 2)
        ux, uy = dx / np.maximum(norm, 1e-6), dy / np.maximum(norm, 1e-6)
        sxs = ax[..., None] + dx[..., None] * t                              # (nA,nB,S)
        sys_ = ay[..., None] + dy[..., None] * t
        vec = _bilinear(pafs[..., 2 * li:2 * li + 2], sxs, sys_)            # (nA,nB,S,2)
        proj = vec[..., 0] * ux[..., None] + vec[..., 1] * uy[..., None]
        mean = proj.mean(-1)
        if opt.length_prior:
            len_px = np.sqrt((dx * sx) ** 2 + (dy * sy) ** 2)
            mean = mean + np.minimum(0.5 * H / np.maximum(len_px, 1e-6) - 1.0, 0.0)
        ok = ((proj > opt.paf_threshold).mean(-1) >= opt.paf_min_fraction) & (mean > 0) & (norm > 1e-6)
        cand = np.argwhere(ok)
        if len(cand) == 0:
            conns.append(None)
            continue
        cs = mean[cand[:, 0], cand[:, 1]]
        order = np.argsort(-cs, kind="stable")
        used_a, used_b, sel = set(), set(), []
        for k in order:
            i, j = cand[k]
            if i in used_a or j in used_b:
                continue
            used_a.add(i)
            used_b.add(j)
            sel.append((ia[i], ib[j], cs[k]))
            if len(sel) >= min(len(ia), len(ib)):
                break
        conns.append(np.array(sel, dtype=np.float64))

    # --- assemble people (§3.4): merge connections that share parts ------------------------
    order, starts = _limb_order(skeleton)
    people = []          # each: [peak ids (P,), total score, n parts, conn score]
    owner = -np.ones(n, np.int64)
    for li in order:
        c = conns[li]
        if c is None:
            continue
        pa, pb = skeleton.limbs[li]
        for a_f, b_f, s in c:
            a, b = int(a_f), int(b_f)
            oa, ob = owner[a], owner[b]
            if oa >= 0 and ob >= 0:
                if oa == ob:
                    continue
                A, B = people[oa], people[ob]
                if np.any((A[0] >= 0) & (B[0] >= 0)):
                    continue  # conflicting parts: keep people apart
                merge = B[0] >= 0
                A[0][merge] = B[0][merge]
                A[1] += B[1] + s
                A[2] += B[2]
                A[3] += 1
                owner[B[0][merge]] = oa
                B[2] = 0  # dead
            elif oa >= 0 or ob >= 0:
                pid, new, slot = (oa, b, pb) if oa >= 0 else (ob, a, pa)
                person = people[pid]
                if person[0][slot] >= 0:
                    continue
                person[0][slot] = new
                person[1] += score[new] + s
                person[2] += 1
                person[3] += 1
                owner[new] = pid
            elif starts[li]:
                ids = -np.ones(P, np.int64)
                ids[pa], ids[pb] = a, b
                people.append([ids, score[a] + score[b] + s, 2, 1])
                owner[a] = owner[b] = len(people) - 1

    results = []
    k2p = skeleton.keypoint_to_part
    K = len(skeleton.keypoints)
    for ids, total, nparts, nconn in people:
        if nparts < opt.min_parts:
            continue
        mean_score = total / (nparts + nconn)
        if mean_score < opt.min_mean_score:
            continue
        kps = np.zeros((K, 3), np.float64)
        for k in range(K):
            p = k2p[k]
            if p >= 0 and ids[p] >= 0:
                kps[k] = (img_x[ids[p]], img_y[ids[p]], 2)
        results.append({"keypoints": kps.reshape(-1).tolist(),
                        "score": float(mean_score * nparts / P)})
    results.sort(key=lambda r: -r["score"])
    return results
