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
vector on the limb band) and eq. 9 (average over overlapping people). Decoding implements §3.3-3.4:
non-maximum suppression, PAF line integral (eq. 10, sampled), greedy bipartite matching per limb and
person assembly; all candidate pairs of a limb are scored at once (no per-pixel Python).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import ndimage

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
        min_parts: people with fewer parts are dropped (CMU: 4). The default 1 also keeps peaks
            that joined nobody as one-keypoint people: COCO AP counts them as recall (a person
            annotated with 1-2 keypoints) and they rank below every larger person (score ~ parts
            / P), so they cost no precision where it counts; on the sample's ground-truth maps
            AP 0.806 (3) -> 0.869 (1). Set 3 or 4 for displays without fragments.
        min_mean_score: people whose mean part+limb score is lower are dropped (CMU: 0.4).
        short_limb: candidate limbs shorter than this many map cells are judged by proximity
            (score ``1 - length / short_limb``) where their PAF gives no support: the PAF of
            eq. 8-9 is set only at cells inside the limb's rectangle, and a limb shorter than a
            cell (an eye next to the nose of a small person) often covers none (0 = off; AP
            0.826 -> 0.869 on the sample's ground-truth maps).
    """

    peak_threshold: float = 0.1
    smooth_sigma: float = 0.0
    refine: bool = True
    paf_samples: int = 10
    paf_threshold: float = 0.05
    paf_min_fraction: float = 0.8
    length_prior: bool = True
    min_parts: int = 1
    min_mean_score: float = 0.4
    short_limb: float = 1.0


#: At most this many one-keypoint people per image (``min_parts`` 1): COCO keypoint AP counts the
#: 20 best detections of an image (``maxDets``), so more only cost time.
MAX_LONE_PEAKS = 20


def find_peaks(heatmaps: np.ndarray, threshold: float = DecodeOptions.peak_threshold,
               smooth_sigma: float = DecodeOptions.smooth_sigma, refine: bool = DecodeOptions.refine):
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
    uf = UnionFind(P)
    starts = {i: uf.union(*skeleton.limbs[i]) for i in order}   # False: the limb closes a cycle
    tree = [i for i in order if starts[i]]
    return tree + [i for i in order if not starts[i]], starts


def _group(heatmaps: np.ndarray, pafs: np.ndarray, image_shape, sy: float, sx: float, skeleton: Skeleton,
           opt: DecodeOptions) -> list[dict]:
    """The grouping of :meth:`PafCodec.decode` (maps already checked; ``sy, sx`` image px per cell)."""
    P = skeleton.num_parts
    H = int(image_shape[0])
    ps, fx, fy, score = find_peaks(heatmaps[..., :P], opt.peak_threshold, opt.smooth_sigma, opt.refine)
    n = len(ps)
    if n == 0:
        return []
    # peak ids grouped by part
    by_part = [np.nonzero(ps == p)[0] for p in range(P)]
    img_x, img_y = cells_to_pixels(fx, sx), cells_to_pixels(fy, sy)

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
        if opt.short_limb > 0:
            # A limb shorter than ~one cell may cover no cell centre: its PAF is empty by construction
            # (eq. 8-9 set the field only at cells inside the limb's rectangle), so the pair is
            # judged by proximity: score 1 - length / short_limb.
            short = (norm < opt.short_limb) & ~ok
            mean = np.where(short, 1.0 - norm / opt.short_limb, mean)
            ok |= short
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
        """Group heatmap peaks into people with part affinity fields (Cao et al. 2017, §3.3-3.4).

        Args:
            heatmaps: float32 ``(h, w, P + 1)`` (or ``(h, w, P)``); ``(h, w, 19)`` for OpenPose COCO-18.
            pafs: float32 ``(h, w, 2L)``; ``(h, w, 38)`` for OpenPose COCO-18.
            image_shape: ``(H, W)`` of the image the poses are reported in.
            stride: image pixels per map cell, a number or ``(sy, sx)``; default the codec's stride
                (maps covering the image). Pass ``stride / s`` for an image resized by ``s`` before
                the network (as :class:`keras_openpose.inference.PoseEstimator` does).
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
