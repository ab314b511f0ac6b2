"""The map codec: :class:`PafCodec`, the one owner of the stride, the cell <-> pixel mapping, the
target encoding and the decoding of one skeleton's part heatmaps and part affinity fields.

Coordinate frames
-----------------
* *Input pixels*: the frame of the image the network sees (e.g. the 368x368 training crop), with
  pixel centres at integer coordinates (OpenCV's convention).
* *Map cells*: the network output grid at ``stride`` (8). Cell ``(i, j)`` is centred on input pixel
  ``(x, y) = (stride * j + (stride - 1) / 2, stride * i + (stride - 1) / 2)`` -- heatmaps *and* PAFs
  are sampled at these same centres. An image resized by ``s`` before the network has
  ``stride / s`` image pixels per cell; the same formula holds with that (float) stride.

Channel layout (CMU COCO model): heatmaps ``(h, w, P + 1)`` = the skeleton's parts in order,
background last; PAFs ``(h, w, 2L)`` = limb ``i`` in channels ``2i`` (x) and ``2i + 1`` (y).

Encoding implements Cao et al. 2017, eq. 7 (Gaussian confidence maps, max over people), eq. 8 (unit
vector on the limb band) and eq. 9 (average over overlapping people). Decoding implements sec. 3.3-3.4:
non-maximum suppression, PAF line integral (eq. 10, sampled), greedy bipartite matching per limb and
person assembly; all candidate pairs of a limb are scored at once (no per-pixel Python).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from .errors import DataError
from .skeleton import DEFAULT_SKELETON, Skeleton, UnionFind

#: The network stride of both CPM/PAF families (three 2x down-samplings) and the paper's target
#: widths, in input pixels: the defaults of :class:`PafCodec`, declared nowhere else.
DEFAULT_STRIDE = 8
DEFAULT_SIGMA = 7.0
DEFAULT_LIMB_WIDTH = 8.0
#: Grey of the bottom/right padding of a network input to a multiple of the stride (CMU's
#: convention; the pad cells are cropped off the maps before decoding).
PAD_VALUE = 128

# --------------------------------------------------------------------------------------------
# Encode
# --------------------------------------------------------------------------------------------


def cells_to_pixels(c, stride: float):
    """Input-pixel coordinate of (float) cell coordinate ``c`` at ``stride`` pixels per cell:
    ``stride * (c + 1/2) - 1/2`` (cell centres, module doc)."""
    return (np.asarray(c, np.float64) + 0.5) * stride - 0.5


def pixels_to_cells(x, stride: float):
    """Inverse of :func:`cells_to_pixels`: ``(x + 1/2) / stride - 1/2``."""
    return (np.asarray(x, np.float64) + 0.5) / stride - 0.5


def cell_centres(n: int, stride: float) -> np.ndarray:
    """Input-pixel coordinates of the centres of ``n`` cells at ``stride``, float32 ``(n,)``."""
    return cells_to_pixels(np.arange(n), stride).astype(np.float32)


def encode_heatmaps(parts: np.ndarray, map_shape: tuple[int, int], stride: float = DEFAULT_STRIDE,
                    sigma: float = DEFAULT_SIGMA) -> np.ndarray:
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


def encode_pafs(parts: np.ndarray, map_shape: tuple[int, int], limbs, stride: float = DEFAULT_STRIDE,
                limb_width: float = DEFAULT_LIMB_WIDTH) -> np.ndarray:
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


# --------------------------------------------------------------------------------------------
# Decode
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DecodeOptions:
    """Thresholds of the decoder.

    The defaults were chosen on a real network's maps of *training* images (the shipped
    Lightweight OpenPose at input height 256 on the 28 images with people of the sample's
    train2017, each of the five test domains: normal, dark, low_light, motion_blur, resolution;
    ``bench/decode.py --split train2017 --people-only``), keeping the oracle AP (ground-truth maps)
    where it was: mean AP over the domains 0.199 with :data:`LEGACY_DECODE_OPTIONS` (CMU's thresholds)
    -> 0.222, 0.225 with ``merge_ratio``. The figures below are that mean with one field changed from
    the defaults (those of the fields before ``merge_ratio`` were measured without it).

    Attributes:
        peak_threshold: minimum heatmap value of a keypoint candidate (CMU thre1 = 0.1; 0.1 -> 0.215:
            degraded images give weak peaks).
        smooth_sigma: Gaussian smoothing of the heatmaps before NMS, in map cells, applied after
            the upsampling (where it also damps the bicubic overshoot); 0 = none (0 -> 0.217, 0.5 -> 0.218).
        refine: sub-pixel refinement of peaks (Taylor expansion of the log heatmap, as DARK,
            Zhang et al. CVPR 2020; off -> 0.201, and 0.79 -> 0.70 oracle AP: at height 256 a cell
            is ~15 image pixels).
        paf_samples: points sampled along each candidate limb (CMU mid_num = 10).
        paf_threshold: a sample supports the limb when its PAF projection exceeds this (CMU thre2 =
            0.05 -> 0.220).
        paf_min_fraction: fraction of supporting samples needed (CMU 0.8 -> 0.221).
        length_prior: penalise limbs longer than half the image height (CMU's distance prior).
        min_parts: people with fewer parts are dropped (CMU: 4). The default 1 also keeps peaks
            that joined nobody as one-keypoint people: COCO AP counts them as recall (a person
            annotated with 1-2 keypoints) and they rank below every larger person (score ~ parts
            / P), so they cost no precision where it counts; on the sample's ground-truth maps
            AP 0.806 (3) -> 0.869 (1). Set 3 or 4 for displays without fragments.
        min_mean_score: people whose mean part+limb score is lower are dropped (CMU 0.4 -> 0.206,
            0.2 -> 0.220: a weak person still ranks below the strong ones).
        short_limb: candidate limbs shorter than this many map cells are judged by proximity
            (score ``1 - length / short_limb``) where their PAF gives no support: the PAF of
            eq. 8-9 is set only at cells inside the limb's rectangle, and a limb shorter than a
            cell (an eye next to the nose of a small person) often covers none (0 = off; AP
            0.826 -> 0.869 on the sample's ground-truth maps).
        upsample: peaks are searched on the heatmaps resized by this integer factor (bicubic),
            where the 3x3 suppression spans 1.5 cells instead of 3: two people's parts a cell
            apart both survive (1 -> 0.214; 3 -> 0.225 on the training maps but oracle AP
            -0.011 on val2017's ground-truth maps, where it splits the overlapping Gaussians of
            close people).
        score_exponent: the person score is ``mean part+limb score x (parts / P) ** score_exponent``
            (the calibration of the score fit on the training maps: 1 -> 0.218, 0.5 -> 0.221; a
            logistic fit of the OKS on four person features ranked no better in 2-fold
            cross-validation). Lower trusts small but confident people more.
        paf_samples_per_cell: each candidate limb gets ``max(paf_samples, ceil(length x this))``
            PAF samples, length in cells (0 = ``paf_samples`` always; 2 -> 0.220, oracle AP +0.004,
            and the p90 decode time x7 in crowds, where far-apart candidate pairs get hundreds).
        merge_ratio: fragments of one person that no limb joins (a missing part cuts every limb
            through it: the neck of a person with one shoulder hidden) are joined when two of their
            parts lie within ``merge_ratio x limbs between them x mean limb length`` pixels
            (:func:`_merge_fragments`; 0 = off). On the training images: mean AP 0.2215 (off) ->
            0.2252 (1.0; 0.5 -> 0.2250, 1.5 -> 0.2252, 2 -> 0.2252), oracle AP 0.787 -> 0.877 (2 ->
            0.865: joins people).
    """

    peak_threshold: float = 0.05
    smooth_sigma: float = 0.3
    refine: bool = True
    paf_samples: int = 10
    paf_threshold: float = 0.02
    paf_min_fraction: float = 0.6
    length_prior: bool = True
    min_parts: int = 1
    min_mean_score: float = 0.0
    short_limb: float = 1.0
    upsample: int = 2
    score_exponent: float = 0.25
    paf_samples_per_cell: float = 0.0
    merge_ratio: float = 1.0

    # value ranges: keras_openpose.config.RULES ("DecodeOptions.*"), checked where a value is read


#: The decoder's defaults before they were chosen on a real network's maps (CMU's thresholds,
#: peaks on the map itself, score ``mean x parts / P``): ``codec.with_decode(LEGACY_DECODE_OPTIONS)``
#: decodes as before (but for merged people now counting all their limbs in the mean score, a fix:
#: AP +0.0005 on the training maps, the same on ground-truth maps).
LEGACY_DECODE_OPTIONS = DecodeOptions(peak_threshold=0.1, smooth_sigma=0.0, refine=True, paf_samples=10,
                                      paf_threshold=0.05, paf_min_fraction=0.8, length_prior=True, min_parts=1,
                                      min_mean_score=0.4, short_limb=1.0, upsample=1, score_exponent=1.0,
                                      paf_samples_per_cell=0.0, merge_ratio=0.0)


#: At most this many one-keypoint people per image (``min_parts`` 1): COCO keypoint AP counts the
#: 20 best detections of an image (``maxDets``), so more only cost time.
MAX_LONE_PEAKS = 20


def find_peaks(heatmaps: np.ndarray, threshold: float = DecodeOptions.peak_threshold,
               smooth_sigma: float = 0.0, refine: bool = True, upsample: int = 1):
    """Local maxima of part heatmaps (3x3 non-maximum suppression) with sub-pixel refinement.
    The defaults are the plain search on the map itself; the decoder passes its
    :class:`DecodeOptions` (``smooth_sigma``, ``refine``, ``upsample``).

    Args:
        heatmaps: ``(h, w, P)`` part channels (no background).
        threshold: minimum value of a peak.
        smooth_sigma: Gaussian smoothing before the search, in map cells (0 = none).
        refine: sub-pixel offset from the Taylor expansion of the log map at the peak (DARK).
        upsample: the search runs on the maps resized by this integer factor (bicubic, OpenCV's
            pixel-centre convention), so the 3x3 suppression spans ``3 / upsample`` cells: two
            peaks a cell apart (two people's wrists) both survive. 1 = the map itself.
    Returns:
        ``(part, x, y, score)``: arrays of length ``n``; ``x, y`` in map cells (float), ``score`` the
        (smoothed, resampled) heatmap value at the peak.
    """
    hm = np.asarray(heatmaps, np.float32)
    k = int(upsample)
    e = np.zeros(0, np.float32)
    if hm.size == 0:
        return np.zeros(0, np.int64), e, e, e
    y0 = x0 = 0       # origin of the searched box, cells
    if threshold > 0:
        # only the box around the cells above half the threshold (+3 cells) can hold a peak: the
        # resampling and smoothing below spread a cell's value less than 3 cells, and the box is
        # all of the map when people fill it; an empty map costs nothing
        rows = np.nonzero((hm > 0.5 * threshold).any(axis=(1, 2)))[0]
        if not len(rows):
            return np.zeros(0, np.int64), e, e, e
        cols = np.nonzero((hm[rows[0]:rows[-1] + 1] > 0.5 * threshold).any(axis=(0, 2)))[0]
        y0, x0 = max(int(rows[0]) - 3, 0), max(int(cols[0]) - 3, 0)
        hm = hm[y0:int(rows[-1]) + 4, x0:int(cols[-1]) + 4]
    hm = np.ascontiguousarray(hm)
    h0, w0, P = hm.shape
    if k > 1:   # OpenCV keeps a (.., .., 1) map 2-D: the reshapes restore the channel axis
        hm = cv2.resize(hm, (w0 * k, h0 * k), interpolation=cv2.INTER_CUBIC).reshape(h0 * k, w0 * k, P)
    if smooth_sigma > 0:   # after the resampling, in its pixels: it also damps the bicubic overshoot
        hm = cv2.GaussianBlur(hm, (0, 0), smooth_sigma * k, borderType=cv2.BORDER_CONSTANT).reshape(hm.shape)
    mx = cv2.dilate(hm, np.ones((3, 3), np.uint8)).reshape(hm.shape)   # 3x3 maximum (outside: -inf)
    ys, xs, ps = np.nonzero((hm >= mx) & (hm > threshold))
    score = hm[ys, xs, ps]
    if len(ys):
        # a plateau of equal maxima is one peak, its first pixel in row-major order (a peak on a
        # cell centre falls between two pixels of an evenly upsampled map: a tie)
        H_, W_ = hm.shape[:2]
        tie = np.zeros(len(ys), bool)
        for dy, dx in ((-1, -1), (-1, 0), (-1, 1), (0, -1)):
            yy, xx = ys + dy, xs + dx
            inside = (yy >= 0) & (xx >= 0) & (xx < W_)
            tie |= inside & (hm[np.maximum(yy, 0), np.clip(xx, 0, W_ - 1), ps] == score)
        ys, xs, ps, score = ys[~tie], xs[~tie], ps[~tie], score[~tie]
    fx, fy = xs.astype(np.float32), ys.astype(np.float32)
    if refine and len(ys):
        h, w = hm.shape[:2]

        def at(yy, xx):   # log of the map at the 3x3 neighbours of the peaks only
            return np.log(np.maximum(hm[np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1), ps], 1e-10))

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
    if k > 1:
        fx, fy = (fx + 0.5) / k - 0.5, (fy + 0.5) / k - 0.5
    return ps, fx + x0, fy + y0, score


def _paf_projection(flat: np.ndarray, h: int, w: int, cx, x, y, ux, uy):
    """``PAF . (ux, uy)`` with the PAF sampled bilinearly at float cell coordinates ``x, y``
    (clamped to the map), for many limbs at once. ``flat`` holds the PAF channels as rows
    ``(2L, h * w)``; ``cx`` (broadcast with ``x``) is each sample's x channel (its y channel is
    ``cx + 1``)."""
    x = np.clip(x, 0, w - 1)
    y = np.clip(y, 0, h - 1)
    x0 = np.minimum(x.astype(np.int64), w - 1)
    y0 = np.minimum(y.astype(np.int64), h - 1)
    ax, ay = x - x0, y - y0
    dx1 = (x0 < w - 1).astype(np.int64)
    i00 = y0 * w + x0
    i10 = i00 + w * (y0 < h - 1)
    w00, w01, w10, w11 = (1 - ay) * (1 - ax), (1 - ay) * ax, ay * (1 - ax), ay * ax

    def sample(c):
        return w00 * flat[c, i00] + w01 * flat[c, i00 + dx1] + w10 * flat[c, i10] + w11 * flat[c, i10 + dx1]
    return sample(cx) * ux + sample(cx + 1) * uy


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
    uf = UnionFind(P)
    starts = {i: uf.union(*skeleton.limbs[i]) for i in order}   # False: the limb closes a cycle
    tree = [i for i in order if starts[i]]
    return tree + [i for i in order if not starts[i]], starts


@lru_cache(maxsize=16)
def _part_hops(skeleton: Skeleton) -> np.ndarray:
    """``(P, P)`` number of limbs on the shortest skeleton path between two parts (Floyd-Warshall,
    once per skeleton; ``inf`` between parts no path joins). Read-only."""
    P = skeleton.num_parts
    d = np.full((P, P), np.inf)
    np.fill_diagonal(d, 0)
    for a, b in skeleton.limbs:
        d[a, b] = d[b, a] = 1
    for k in range(P):
        d = np.minimum(d, d[:, k:k + 1] + d[k:k + 1, :])
    d.flags.writeable = False
    return d


def _merge_fragments(people: list, x: np.ndarray, y: np.ndarray, skeleton: Skeleton, ratio: float) -> None:
    """Join the fragments of one person that no candidate limb links, in place.

    A person is cut in two wherever the limb between its parts is missing (a part the network did
    not find, e.g. the neck of a person whose one shoulder is hidden: every limb of the neck goes
    with it). Two fragments ``A``, ``B`` with no part in common are joined when some part ``a`` of
    ``A`` and ``b`` of ``B`` lie within ``ratio x hops(a, b) x L`` pixels of each other, with
    ``hops`` the number of limbs between the two parts in the skeleton and ``L`` the larger of the
    two fragments' mean limb lengths (fragments without a limb have none; two such are not
    joined). Closest pairs (relative to that bound) are joined first. Every pair of peaks of
    every pair of fragments is compared at once (no Python loop over pairs).

    Args:
        people: the grouping's ``[peak ids (P,), total score, n parts, n connections]`` (a dead
            entry has 0 parts).
        x, y: peak positions, image pixels.
    """
    alive = [i for i, q in enumerate(people) if q[2] > 0]
    if len(alive) < 2:
        return
    ids = np.stack([people[i][0] for i in alive])                      # (F, P) peak ids, -1 absent
    has = ids >= 0
    la, lb = np.array(skeleton.limbs, np.int64).reshape(-1, 2).T
    both = has[:, la] & has[:, lb]                                     # (F, limbs) limbs present
    a, b = np.maximum(ids[:, la], 0), np.maximum(ids[:, lb], 0)
    length = np.where(both, np.hypot(x[a] - x[b], y[a] - y[b]), 0.0)
    L = length.sum(1) / np.maximum(both.sum(1), 1)                    # (F,) mean limb length, 0 = none
    f, part = np.nonzero(has)                                          # every peak of every fragment
    peak = ids[f, part]
    i, j = np.nonzero(f[:, None] < f[None, :])                         # peak pairs across fragments
    fi, fj = f[i], f[j]
    scale = np.maximum(L[fi], L[fj])
    keep = (scale > 0) & ~np.any(has[fi] & has[fj], axis=1)            # disjoint fragments with a scale
    i, j, fi, fj = i[keep], j[keep], fi[keep], fj[keep]
    r = np.hypot(x[peak[i]] - x[peak[j]], y[peak[i]] - y[peak[j]]) / (_part_hops(skeleton)[part[i], part[j]] * scale[keep])
    best = np.full((len(alive), len(alive)), np.inf)
    np.minimum.at(best, (fi, fj), r)                                   # closest pair of each fragment pair
    ci, cj = np.nonzero(best <= ratio)
    for k in np.argsort(best[ci, cj], kind="stable"):
        A, B = people[alive[ci[k]]], people[alive[cj[k]]]
        if A[2] == 0 or B[2] == 0 or np.any((A[0] >= 0) & (B[0] >= 0)):
            continue
        kept, gone = (A, B) if A[2] >= B[2] else (B, A)
        m = gone[0] >= 0
        kept[0][m] = gone[0][m]
        kept[1] += gone[1]
        kept[2] += gone[2]
        kept[3] += gone[3]
        gone[2] = 0


def _group(heatmaps: np.ndarray, pafs: np.ndarray, image_shape, sy: float, sx: float, skeleton: Skeleton,
           opt: DecodeOptions) -> list[dict]:
    """The grouping of :meth:`PafCodec.decode` (maps already checked; ``sy, sx`` image px per cell)."""
    P = skeleton.num_parts
    H = int(image_shape[0])
    ps, fx, fy, score = find_peaks(heatmaps[..., :P], opt.peak_threshold, opt.smooth_sigma, opt.refine, opt.upsample)
    n = len(ps)
    if n == 0:
        return []
    # peak ids grouped by part
    by_part = [np.nonzero(ps == p)[0] for p in range(P)]
    img_x, img_y = cells_to_pixels(fx, sx), cells_to_pixels(fy, sy)

    # --- score every candidate pair of every limb at once, vectorised over pairs and samples ---
    pa_, pb_ = np.array(skeleton.limbs, np.int64).reshape(-1, 2).T
    count = np.bincount(ps, minlength=P)
    npairs = count[pa_] * count[pb_]
    conns = [None] * len(pa_)  # per limb: (idx_a, idx_b, score) after greedy matching
    if npairs.sum():
        lim = np.repeat(np.arange(len(pa_)), npairs)                  # limb of every pair
        ia = np.concatenate([np.repeat(by_part[a], len(by_part[b])) for a, b in zip(pa_, pb_)])   # its peaks
        ib = np.concatenate([np.tile(by_part[b], len(by_part[a])) for a, b in zip(pa_, pb_)])
        dx, dy = fx[ib] - fx[ia], fy[ib] - fy[ia]                      # (N,) cells
        norm = np.sqrt(dx ** 2 + dy ** 2)
        ux, uy = dx / np.maximum(norm, 1e-6), dy / np.maximum(norm, 1e-6)
        mh, mw = pafs.shape[:2]
        flat = np.ascontiguousarray(np.moveaxis(pafs, 2, 0)).reshape(pafs.shape[2], mh * mw)
        if opt.paf_samples_per_cell > 0:
            # long limbs: paf_samples_per_cell samples per cell of length, at least paf_samples;
            # pair i uses the first ns[i] of S columns, t = k / (ns[i] - 1)
            ns = np.maximum(opt.paf_samples, np.ceil(norm * opt.paf_samples_per_cell)).astype(np.int64)
            k = np.arange(int(ns.max()), dtype=np.float32)
            t = np.minimum(k[None, :] / np.maximum(ns - 1, 1)[:, None], 1.0)             # (N,S)
            used = k[None, :] < ns[:, None]
        else:
            t = np.linspace(0.0, 1.0, opt.paf_samples, dtype=np.float32)[None, :]
            used = None
        proj = _paf_projection(flat, mh, mw, 2 * lim[:, None], fx[ia][:, None] + dx[:, None] * t,
                               fy[ia][:, None] + dy[:, None] * t, ux[:, None], uy[:, None])   # (N,S)
        if used is not None:
            n_used = used.sum(-1)
            mean = np.where(used, proj, 0.0).sum(-1) / n_used
            support = np.where(used, proj > opt.paf_threshold, False).sum(-1) / n_used
        else:
            mean = proj.mean(-1)
            support = (proj > opt.paf_threshold).mean(-1)
        if opt.length_prior:
            len_px = np.sqrt((dx * sx) ** 2 + (dy * sy) ** 2)
            mean = mean + np.minimum(0.5 * H / np.maximum(len_px, 1e-6) - 1.0, 0.0)
        ok = (support >= opt.paf_min_fraction) & (mean > 0) & (norm > 1e-6)
        if opt.short_limb > 0:
            # A limb shorter than ~one cell may cover no cell centre: its PAF is empty by construction
            # (eq. 8-9 set the field only at cells inside the limb's rectangle), so the pair is
            # judged by proximity: score 1 - length / short_limb.
            short = (norm < opt.short_limb) & ~ok
            mean = np.where(short, 1.0 - norm / opt.short_limb, mean)
            ok |= short
        cand = np.nonzero(ok)[0]
        # greedy matching per limb (sec. 3.3): best pairs first, each peak once per limb, at most
        # min(nA, nB) connections; candidates sorted by limb, then by descending score (stable)
        cand = cand[np.lexsort((-mean[cand], lim[cand]))]
        sel, used_a, used_b, cur = [], set(), set(), -1
        for li, a, b, c in zip(lim[cand].tolist(), ia[cand].tolist(), ib[cand].tolist(), mean[cand].tolist()):
            if li != cur:
                if sel:
                    conns[cur] = np.array(sel, dtype=np.float64)
                sel, used_a, used_b, cur = [], set(), set(), li
                most = min(count[pa_[li]], count[pb_[li]])
            if a in used_a or b in used_b or len(sel) >= most:
                continue
            used_a.add(a)
            used_b.add(b)
            sel.append((a, b, c))
        if sel:
            conns[cur] = np.array(sel, dtype=np.float64)

    # --- assemble people (sec. 3.4): merge connections that share parts ------------------------
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
                A[3] += B[3] + 1      # B's connections and this one
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

    if opt.min_parts <= 1:   # peaks left alone: one-keypoint people, ranked below every larger person
        own = np.isin(ps, [p for p in skeleton.keypoint_to_part if p >= 0])   # not derived parts (neck)
        lone = np.nonzero((owner < 0) & own)[0]
        # the best MAX_LONE_PEAKS only: COCO keypoint AP counts 20 detections per image, and noisy
        # maps (an untrained network, a low peak threshold) have hundreds of lone peaks
        lone = lone[np.argsort(-score[lone], kind="stable")[:MAX_LONE_PEAKS]]
        for a in lone:
            ids = -np.ones(P, np.int64)
            ids[ps[a]] = a
            people.append([ids, score[a], 1, 0])

    if opt.merge_ratio > 0:
        _merge_fragments(people, img_x, img_y, skeleton, opt.merge_ratio)

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
                        "score": float(mean_score * (nparts / P) ** opt.score_exponent)})
    results.sort(key=lambda r: -r["score"])
    return results


# --------------------------------------------------------------------------------------------
# The codec
# --------------------------------------------------------------------------------------------


class PafCodec:
    """Heatmaps + PAFs of one skeleton at one stride: encoding, decoding and the cell <-> pixel map.

    Args:
        skeleton: the keypoint layout (channel order, limbs, flip pairs).
        stride: input pixels per map cell (8 for both network families).
        sigma: Gaussian spread of the part heatmaps, input pixels (eq. 7; 7 in the paper's code).
        limb_width: half-width of the PAF band, input pixels (eq. 8; 8 in the paper's code).
        decode: :class:`DecodeOptions` of :meth:`decode`.

    ``codec.encode(keypoints, image_shape)`` then ``codec.decode(heatmaps, pafs, image_shape)`` is
    the oracle round trip: it recovers the annotated people (up to the decoder's rules).
    """

    def __init__(self, skeleton: Skeleton = DEFAULT_SKELETON, stride: int = DEFAULT_STRIDE,
                 sigma: float = DEFAULT_SIGMA, limb_width: float = DEFAULT_LIMB_WIDTH,
                 decode: DecodeOptions | None = None):
        if not (isinstance(stride, (int, np.integer)) and stride > 0):
            raise DataError(f"codec: stride must be a positive integer, got {stride!r}")
        if not (sigma > 0 and limb_width > 0):
            raise DataError(f"codec: sigma ({sigma}) and limb_width ({limb_width}) must be > 0")
        self.skeleton = skeleton
        self.stride = int(stride)
        self.sigma = float(sigma)
        self.limb_width = float(limb_width)
        self.decode_options = decode or DecodeOptions()

    def __repr__(self):
        return (f"PafCodec({self.skeleton.name}: {self.num_heatmaps} heatmaps, {self.num_pafs} PAFs, "
                f"stride {self.stride}, sigma {self.sigma}, limb width {self.limb_width})")

    def __eq__(self, other):
        return isinstance(other, PafCodec) and self.to_dict() == other.to_dict()

    __hash__ = None

    # channel counts ---------------------------------------------------------------------------
    @property
    def num_heatmaps(self) -> int:
        """``P + 1``: the parts then the background."""
        return self.skeleton.num_heatmaps

    @property
    def num_pafs(self) -> int:
        """``2L``: x then y of each limb."""
        return self.skeleton.num_pafs

    # geometry -----------------------------------------------------------------------------------
    def map_shape(self, image_shape, stride: float | None = None) -> tuple[int, int]:
        """``(h, w)`` of the maps covering an image of ``image_shape`` (``ceil(H / stride)``)."""
        st = stride or self.stride
        return int(np.ceil(image_shape[0] / st - 1e-9)), int(np.ceil(image_shape[1] / st - 1e-9))

    def cell_centres(self, n: int, stride: float | None = None) -> np.ndarray:
        """Pixel coordinates of the centres of ``n`` cells (:func:`cell_centres`)."""
        return cell_centres(n, stride or self.stride)

    def to_pixels(self, cells, stride: float | None = None):
        """Cell coordinates -> input pixels (:func:`cells_to_pixels`)."""
        return cells_to_pixels(cells, stride or self.stride)

    def to_cells(self, pixels, stride: float | None = None):
        """Input pixels -> cell coordinates (:func:`pixels_to_cells`)."""
        return pixels_to_cells(pixels, stride or self.stride)

    # encode -------------------------------------------------------------------------------------
    def encode(self, keypoints: np.ndarray, image_shape, stride: float | None = None, map_shape=None):
        """Training targets of people in an image (Cao et al. 2017, eq. 7-9).

        Args:
            keypoints: ``(N, K, 3)`` ``x, y, v`` in the dataset's keypoint order and image pixels
                (derived parts such as OpenPose's neck are added here).
            image_shape: ``(H, W, ...)`` of the image.
            stride: image pixels per cell; default the codec's. An image the network sees resized
                by ``s`` has ``stride / s``; sigma and limb width scale with it.
            map_shape: ``(h, w)``; default :meth:`map_shape`.
        Returns:
            ``(heatmaps float32 (h, w, P + 1), pafs float32 (h, w, 2L))``.
        """
        kp = np.asarray(keypoints, np.float32).reshape(-1, self.skeleton.num_keypoints, 3)
        st = float(stride or self.stride)
        return self.encode_parts(self.skeleton.keypoints_to_parts(kp), map_shape or self.map_shape(image_shape, st), st)

    def encode_parts(self, parts: np.ndarray, map_shape, stride: float | None = None):
        """:meth:`encode` for people already converted to parts ``(N, P, 3)`` (the augmentation
        does that before warping)."""
        st = float(stride or self.stride)
        k = st / self.stride
        parts = np.asarray(parts, np.float32).reshape(-1, self.skeleton.num_parts, 3)
        return (encode_heatmaps(parts, map_shape, st, self.sigma * k),
                encode_pafs(parts, map_shape, self.skeleton.limbs, st, self.limb_width * k))

    # decode -------------------------------------------------------------------------------------
    def decode(self, heatmaps: np.ndarray, pafs: np.ndarray, image_shape, stride=None,
               options: DecodeOptions | None = None) -> list[dict]:
        """Group heatmap peaks into people with part affinity fields (Cao et al. 2017, sec. 3.3-3.4).

        Args:
            heatmaps: float32 ``(h, w, P + 1)`` (or ``(h, w, P)``); ``(h, w, 19)`` for OpenPose COCO-18.
            pafs: float32 ``(h, w, 2L)``; ``(h, w, 38)`` for OpenPose COCO-18.
            image_shape: ``(H, W)`` of the image the poses are reported in.
            stride: image pixels per map cell, a number or ``(sy, sx)``; default the codec's stride
                (maps covering the image). Pass ``stride / s`` for an image resized by ``s`` before
                the network (as :class:`keras_openpose.inference.estimator.PoseEstimator` does).
            options: override of the codec's :class:`DecodeOptions`.
        Returns:
            list of ``{"keypoints": [3K floats: x, y, v in image pixels, dataset keypoint order],
            "score": float}``; ``v`` is 2 for a found keypoint and 0 (with ``x = y = 0``) otherwise;
            the score is the person's mean part+limb confidence times the fraction of parts found,
            in [0, 1]. Sorted by score.
        Raises:
            DataError: when the map shapes do not match the skeleton or each other.
        """
        heatmaps = np.asarray(heatmaps, np.float32)
        pafs = np.asarray(pafs, np.float32)
        P, L = self.skeleton.num_parts, self.skeleton.num_limbs
        if heatmaps.ndim != 3 or heatmaps.shape[2] not in (P, P + 1):
            raise DataError(f"{self.skeleton.name}: heatmaps must be (h, w, {P + 1}), got {heatmaps.shape}")
        if pafs.shape != heatmaps.shape[:2] + (2 * L,):
            raise DataError(f"{self.skeleton.name}: pafs must be {heatmaps.shape[:2] + (2 * L,)}, got {pafs.shape}")
        st = self.stride if stride is None else stride
        sy, sx = (st, st) if np.isscalar(st) else st
        return _group(heatmaps, pafs, image_shape, float(sy), float(sx), self.skeleton,
                      options or self.decode_options)

    def flip_maps(self, heatmaps: np.ndarray, pafs: np.ndarray):
        """Maps of the mirrored image -> maps of the image: columns reversed, left/right parts
        swapped, each limb moved to its mirror limb with the PAF x component negated (a limb
        stored in the other direction gets its y component negated instead). Shapes unchanged."""
        return flip_maps(heatmaps, pafs, self.skeleton)

    # description --------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-able description (saved inside every model): skeleton, stride, sigma, limb width
        and decoder options; :meth:`from_dict` reads it back."""
        return {"skeleton": self.skeleton.to_dict(), "stride": self.stride, "sigma": self.sigma,
                "limb_width": self.limb_width, "decode": dataclasses.asdict(self.decode_options)}

    @classmethod
    def from_dict(cls, d: dict, source: str = "codec") -> "PafCodec":
        d = dict(d)
        sk = d.pop("skeleton", None)
        skeleton = DEFAULT_SKELETON if sk is None else (
            Skeleton.from_dict(sk, source) if isinstance(sk, dict) else _skeleton_by_name(sk))
        dec = d.pop("decode", None) or {}
        unknown = set(d) - {"stride", "sigma", "limb_width"}
        if unknown:
            raise DataError(f"{source}: unknown codec keys: {', '.join(sorted(unknown))}")
        return cls(skeleton, decode=decode_options(dec, source), **d)

    def with_decode(self, options: DecodeOptions | None = None, **overrides) -> "PafCodec":
        """The same codec with other decoder options (``overrides`` replace single fields)."""
        opt = options or self.decode_options
        if overrides:
            opt = dataclasses.replace(opt, **overrides)
        return PafCodec(self.skeleton, self.stride, self.sigma, self.limb_width, opt)


def _skeleton_by_name(name):
    from .skeleton import get_skeleton
    return get_skeleton(name)


def decode_options(d: dict | DecodeOptions | None, source: str = "decode") -> DecodeOptions:
    """:class:`DecodeOptions` from a mapping; unknown keys raise :class:`DataError` naming them."""
    if isinstance(d, DecodeOptions):
        return d
    names = {f.name for f in dataclasses.fields(DecodeOptions)}
    unknown = set(d or {}) - names
    if unknown:
        raise DataError(f"{source}: unknown decoder options: {', '.join(sorted(unknown))} "
                        f"(known: {', '.join(sorted(names))})")
    return DecodeOptions(**(d or {}))


def flip_maps(heatmaps: np.ndarray, pafs: np.ndarray, skeleton: Skeleton):
    """See :meth:`PafCodec.flip_maps`."""
    perm = skeleton.flip_permutation
    heat = heatmaps[:, ::-1]
    heat = np.concatenate([heat[..., perm], heat[..., skeleton.num_parts:]], -1)
    paf = pafs[:, ::-1]
    index = {tuple(l): i for i, l in enumerate(skeleton.limbs)}
    out = np.empty_like(paf)
    for i, (a, b) in enumerate(skeleton.limbs):
        j = index.get((perm[a], perm[b]))
        if j is None:
            j = index[(perm[b], perm[a])]
            out[..., 2 * j], out[..., 2 * j + 1] = paf[..., 2 * i], -paf[..., 2 * i + 1]
        else:
            out[..., 2 * j], out[..., 2 * j + 1] = -paf[..., 2 * i], paf[..., 2 * i + 1]
    return heat, out


#: The codec of the default skeleton (OpenPose COCO-18) with the paper's settings.
DEFAULT_CODEC = PafCodec()


def decode_poses(heatmaps: np.ndarray, pafs: np.ndarray, image_shape, *, stride=None,
                 skeleton: Skeleton = DEFAULT_SKELETON, options: DecodeOptions | None = None, **overrides):
    """Shortcut for ``PafCodec(skeleton).decode(...)`` (default: OpenPose COCO-18, CMU channel layout:
    heatmaps ``(h, w, 19)``, PAFs ``(h, w, 38)``); ``overrides`` replace single
    :class:`DecodeOptions` fields. See :meth:`PafCodec.decode`."""
    codec = DEFAULT_CODEC if skeleton is DEFAULT_SKELETON else PafCodec(skeleton)
    opt = options or codec.decode_options
    if overrides:
        opt = dataclasses.replace(opt, **overrides)
    return codec.decode(heatmaps, pafs, image_shape, stride=stride, options=opt)
