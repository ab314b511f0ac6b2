import numpy as np
import pytest

from keras_openpose.codec import (DEFAULT_CODEC, LEGACY_DECODE_OPTIONS, MAX_LONE_PEAKS, DecodeOptions,
                                  PafCodec, cell_centres, cells_to_pixels, decode_poses, encode_heatmaps,
                                  encode_pafs, find_peaks, pixels_to_cells)
from keras_openpose.errors import DataError
from keras_openpose.evaluate.cocoeval import coco_keypoint_eval
from keras_openpose.skeleton import COCO17, OPENPOSE_COCO18 as S

from conftest import render_gt_maps


def test_heatmap_peaks_at_annotated_keypoint(train_split):
    iid = train_split.ids_with_people()[0]
    ann = next(a for a in train_split.anns_by_image[iid] if a["num_keypoints"] > 0)
    kp = np.array(ann["keypoints"], np.float32).reshape(1, 17, 3)
    parts = S.keypoints_to_parts(kp)
    p = int(np.nonzero(parts[0, :, 2] > 0)[0][0])
    x, y = parts[0, p, :2]
    H, W = train_split.images[iid]["height"], train_split.images[iid]["width"]
    heat = encode_heatmaps(parts, (H // 8 + 1, W // 8 + 1), stride=8, sigma=7.0)
    i, j = np.unravel_index(np.argmax(heat[..., p]), heat.shape[:2])
    # the maximum cell is the one whose centre (8 j + 3.5) is nearest to the keypoint
    assert (i, j) == (int(np.floor((y + 0.5) / 8)), int(np.floor((x + 0.5) / 8)))
    # value is exactly the Gaussian of the distance (eq. 7)
    d2 = (cell_centres(W // 8 + 1, 8)[j] - x) ** 2 + (cell_centres(H // 8 + 1, 8)[i] - y) ** 2
    assert heat[i, j, p] == pytest.approx(np.exp(-d2 / (2 * 49)), rel=1e-5)
    assert heat[..., -1].min() >= 0 and heat[i, j, -1] == pytest.approx(1 - heat[i, j, :-1].max())


def test_paf_points_along_limb_and_averages_overlaps():
    # one horizontal limb (neck -> right hip chosen arbitrarily: limb 0) from x=20 to x=100 at y=43.5
    parts = np.zeros((2, 18, 3), np.float32)
    a, b = S.limbs[0]
    parts[0, a] = (19.5, 43.5, 2)
    parts[0, b] = (99.5, 43.5, 2)
    paf = encode_pafs(parts[:1], (12, 16), S.limbs, stride=8, limb_width=8)
    on = paf[5, 5]  # cell centre (43.5, 43.5): on the limb
    assert on[0] == pytest.approx(1.0) and on[1] == pytest.approx(0.0)
    assert np.all(paf[0, :, 0:2] == 0)  # 40 px away: off the band
    assert np.all(paf[..., 2:] == 0)
    # a second person's vertical limb crossing the first: the field there is the mean (eq. 9)
    parts[1, a] = (43.5, 3.5, 2)
    parts[1, b] = (43.5, 83.5, 2)
    paf2 = encode_pafs(parts, (12, 16), S.limbs, stride=8, limb_width=8)
    assert paf2[5, 5, 0] == pytest.approx(0.5) and paf2[5, 5, 1] == pytest.approx(0.5)
    assert paf2[1, 5, 1] == pytest.approx(1.0)  # only the vertical limb


def test_targets_follow_skeleton_definition():
    kp = np.zeros((1, 17, 3), np.float32)
    kp[0, :, :2] = np.random.default_rng(0).uniform(0, 100, (17, 2))
    kp[0, :, 2] = 2
    heat, paf = PafCodec(COCO17).encode(kp, (100, 97))        # maps cover the image: ceil(100/8), ceil(97/8)
    assert heat.shape == (13, 13, 18) and paf.shape == (13, 13, 38)
    heat18, _ = DEFAULT_CODEC.encode(kp, (100, 97))            # OpenPose adds the neck itself
    assert heat18.shape == (13, 13, 19)
    neck = S.parts.index("neck")
    mid = 0.5 * (kp[0, 5, :2] + kp[0, 6, :2])
    i, j = np.unravel_index(np.argmax(heat18[..., neck]), heat18.shape[:2])
    assert (i, j) == (int(np.floor((mid[1] + 0.5) / 8)), int(np.floor((mid[0] + 0.5) / 8)))   # nearest centre


def test_decode_gt_maps_recovers_people(val_split):
    ids = val_split.image_ids
    dets = []
    for i in ids:
        heat, paf, stride = render_gt_maps(val_split, i)
        im = val_split.images[i]
        res = decode_poses(heat, paf, (im["height"], im["width"]), stride=stride)
        assert [r["score"] for r in res] == sorted((r["score"] for r in res), reverse=True)
        for r in res:
            kp = np.array(r["keypoints"]).reshape(17, 3)
            assert set(kp[:, 2]) <= {0.0, 2.0} and not kp[kp[:, 2] == 0, :2].any()   # missing = (0, 0, 0)
            dets.append({"image_id": i, "category_id": 1, **r})
    stats, _ = coco_keypoint_eval(val_split.data, dets, ids)
    # 0.901 with today's defaults (0.869 without merge_ratio, and with LEGACY_DECODE_OPTIONS; 0.772
    # before short limbs and lone peaks)
    assert stats["AP"] == pytest.approx(0.901, abs=0.002), stats


def test_a_person_cut_at_a_missing_neck_is_joined_again():
    """Left arm, head and both legs labelled, the right shoulder not: the neck (the shoulders' mean)
    is absent, so every limb through it is; the decoder joins the fragments into the one person."""
    kp = np.zeros((1, 17, 3), np.float32)
    pts = {0: (100, 50), 1: (104, 46), 2: (96, 46), 5: (112, 80), 7: (118, 115), 9: (122, 150),
           11: (108, 150), 12: (92, 150), 13: (108, 200), 14: (92, 200), 15: (108, 250), 16: (92, 250)}
    for k, (x, y) in pts.items():
        kp[0, k] = (x, y, 2)
    heat, paf = DEFAULT_CODEC.encode(kp, (300, 200))
    apart = DEFAULT_CODEC.with_decode(merge_ratio=0).decode(heat, paf, (300, 200))
    assert len(apart) >= 3                                   # head, arm, each leg (the hips are not linked)
    joined = DEFAULT_CODEC.decode(heat, paf, (300, 200))
    assert len(joined) == 1, joined
    got = np.array(joined[0]["keypoints"]).reshape(17, 3)
    lab = list(pts)
    assert (got[lab, 2] > 0).all() and not got[[k for k in range(17) if k not in pts], 2].any()
    np.testing.assert_allclose(got[lab, :2], kp[0, lab, :2], atol=1.5)


def test_fragments_are_joined_within_the_bound_only():
    """_merge_fragments on two one-limb fragments: left hip-knee and right hip-knee, 40 px limbs,
    side by side ``dx`` apart. The knees are 4 limbs apart (knee-hip-neck-hip-knee), the closest
    pair relative to the bound, so at ratio 1 they join while ``dx <= 4 x 40 = 160`` px."""
    from keras_openpose.codec import _merge_fragments
    sk = DEFAULT_CODEC.skeleton
    lhip, lknee, rhip, rknee = (sk.parts.index(n) for n in ("left_hip", "left_knee", "right_hip", "right_knee"))
    for dx, joined in ((150.0, True), (159.0, True), (161.0, False), (170.0, False)):
        x = np.array([0.0, 0.0, dx, dx])
        y = np.array([0.0, 40.0, 0.0, 40.0])
        a, b = -np.ones(sk.num_parts, np.int64), -np.ones(sk.num_parts, np.int64)
        a[[lhip, lknee]] = [0, 1]
        b[[rhip, rknee]] = [2, 3]
        people = [[a, 2.5, 2, 1], [b, 2.0, 2, 1]]
        _merge_fragments(people, x, y, sk, 1.0)
        assert [q[2] for q in people] == ([4, 0] if joined else [2, 2]), dx
        if joined:
            assert people[0][0][[lhip, lknee, rhip, rknee]].tolist() == [0, 1, 2, 3] and people[0][1] == 4.5


def test_short_limbs_without_paf_are_joined_by_proximity():
    """An eye half a cell from the nose covers no cell centre: its PAF is empty, yet it belongs to
    the person (short_limb); with short_limb 0 (and CMU's PAF thresholds, which the bilinear
    samples of a sub-cell limb fail) it is a person of its own or lost."""
    kp = np.zeros((1, 17, 3), np.float32)
    pts = {0: (100, 60), 1: (104, 57), 2: (96, 57), 5: (85, 90), 6: (115, 90), 11: (90, 150), 12: (110, 150)}
    for k, (x, y) in pts.items():
        kp[0, k] = (x, y, 2)
    heat, paf = DEFAULT_CODEC.encode(kp, (200, 200))
    full = DEFAULT_CODEC.decode(heat, paf, (200, 200))
    assert len(full) == 1
    got = np.array(full[0]["keypoints"]).reshape(17, 3)
    assert (got[[0, 1, 2, 5, 6, 11, 12], 2] > 0).all()
    np.testing.assert_allclose(got[[1, 2], :2], kp[0, [1, 2], :2], atol=1.0)
    legacy = DEFAULT_CODEC.with_decode(LEGACY_DECODE_OPTIONS)
    on = legacy.decode(heat, paf, (200, 200))
    assert len(on) == 1 and (np.array(on[0]["keypoints"]).reshape(17, 3)[[1, 2], 2] > 0).all()
    off = legacy.with_decode(short_limb=0).decode(heat, paf, (200, 200))
    assert not (np.array(off[0]["keypoints"]).reshape(17, 3)[[1, 2], 2] > 0).all()


def test_decode_single_person_exact():
    # a synthetic upright person in a 368x368 image: decoding its own maps returns it within 1 px
    kp = np.zeros((1, 17, 3), np.float32)
    pts = {0: (180, 60), 5: (150, 110), 6: (210, 110), 7: (140, 170), 8: (220, 170), 9: (135, 225),
           10: (225, 225), 11: (160, 220), 12: (200, 220), 13: (158, 285), 14: (202, 285), 15: (156, 340),
           16: (204, 340), 1: (172, 52), 2: (188, 52), 3: (162, 58), 4: (198, 58)}
    for k, (x, y) in pts.items():
        kp[0, k] = (x, y, 2)
    heat, paf = DEFAULT_CODEC.encode(kp, (368, 368))
    assert heat.shape == (46, 46, 19)
    res = DEFAULT_CODEC.decode(heat, paf, (368, 368))
    assert len(res) == 1
    got = np.array(res[0]["keypoints"]).reshape(17, 3)
    assert np.all(got[:, 2] == 2)
    assert np.abs(got[:, :2] - kp[0, :, :2]).max() < 1.0


def test_decode_rejects_bad_shapes():
    with pytest.raises(DataError, match="heatmaps"):
        decode_poses(np.zeros((4, 4, 5)), np.zeros((4, 4, 38)), (32, 32))
    with pytest.raises(DataError, match="pafs"):
        decode_poses(np.zeros((4, 4, 19)), np.zeros((4, 5, 38)), (32, 32))
    assert decode_poses(np.zeros((4, 4, 19), np.float32), np.zeros((4, 4, 38), np.float32), (32, 32)) == []


def test_flip_maps_undo_a_mirror(val_split):
    from keras_openpose.data.masks import keypoints_array
    iid = val_split.ids_with_people()[0]
    anns = [a for a in val_split.anns_by_image[iid] if a["num_keypoints"] > 0 and not a["iscrowd"]]
    parts = S.keypoints_to_parts(keypoints_array(anns) * [0.5, 0.5, 1])
    h, w = 30, 40
    heat, paf = DEFAULT_CODEC.encode_parts(parts, (h, w))
    mirrored = parts.copy()
    mirrored[..., 0] = np.where(parts[..., 2] > 0, (8 * w - 1) - parts[..., 0], 0)
    mirrored = mirrored[:, S.flip_permutation]          # a mirrored person's left is its right
    mheat, mpaf = DEFAULT_CODEC.encode_parts(mirrored, (h, w))
    fheat, fpaf = DEFAULT_CODEC.flip_maps(mheat, mpaf)
    np.testing.assert_allclose(fheat, heat, atol=1e-5)
    np.testing.assert_allclose(fpaf, paf, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# Known answers: geometry, refinement, flips, and every decoder threshold from just either side
# ---------------------------------------------------------------------------------------------


def test_cells_to_pixels_exact():
    np.testing.assert_array_equal(cells_to_pixels([0, 1, -0.5, 45.5], 8), [3.5, 11.5, -0.5, 367.5])
    np.testing.assert_array_equal(pixels_to_cells([3.5, 11.5, -0.5, 367.5], 8), [0, 1, -0.5, 45.5])
    # a 480-high image seen at height 256: 15 image pixels per cell; cell 0 covers pixels -0.5..14.5
    np.testing.assert_array_equal(cells_to_pixels([0, 1, -0.5], 15.0), [7.0, 22.0, -0.5])
    np.testing.assert_array_equal(pixels_to_cells([7.0, 22.0, 14.5], 15.0), [0, 1, 0.5])
    np.testing.assert_array_equal(cell_centres(3, 8), np.array([3.5, 11.5, 19.5], np.float32))
    x = np.array([-0.5, 0.0, 3.25, 100.0])
    np.testing.assert_allclose(cells_to_pixels(pixels_to_cells(x, 16 / 3), 16 / 3), x, rtol=0, atol=1e-12)


def _gaussian(h, w, x0, y0, sigma, peak=1.0):
    yy, xx = np.mgrid[0:h, 0:w]
    return (peak * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * sigma ** 2))).astype(np.float32)[..., None]


def test_subpixel_refinement_on_an_analytic_gaussian():
    g = _gaussian(16, 20, 10.3, 7.8, 0.875)                       # the training sigma 7 px at stride 8
    _, x, y, s = find_peaks(g, 0.1, smooth_sigma=0.0, refine=True, upsample=1)
    # the log of a Gaussian is a quadratic: its Taylor expansion at the peak cell is exact (up to
    # float32 differences of the log)
    assert (float(x[0]), float(y[0])) == (pytest.approx(10.3, abs=5e-4), pytest.approx(7.8, abs=5e-4))
    assert s[0] == pytest.approx(np.exp(-(0.3 ** 2 + 0.2 ** 2) / (2 * 0.875 ** 2)), rel=1e-6)   # value at cell (10, 8)
    _, x, y, _ = find_peaks(g, 0.1, smooth_sigma=0.0, refine=False, upsample=1)
    assert (float(x[0]), float(y[0])) == (10.0, 8.0)
    # smoothing a Gaussian with a (sampled) Gaussian keeps its centre
    _, x, y, _ = find_peaks(g, 0.1, smooth_sigma=0.5, refine=True, upsample=1)
    assert (float(x[0]), float(y[0])) == (pytest.approx(10.3, abs=5e-3), pytest.approx(7.8, abs=5e-3))
    # on the x2 bicubic map the log is no longer exactly quadratic: 0.03 cells off
    _, x, y, _ = find_peaks(g, 0.1, smooth_sigma=0.0, refine=True, upsample=2)
    assert abs(float(x[0]) - 10.3) < 0.05 and abs(float(y[0]) - 7.8) < 0.05
    # a peak on a cell centre falls between two pixels of the x2 map: one peak, not two
    ps, x, y, _ = find_peaks(_gaussian(12, 16, 5.0, 6.0, 0.875), 0.1, smooth_sigma=0.0, upsample=2)
    assert len(ps) == 1 and (float(x[0]), float(y[0])) == (pytest.approx(5.0, abs=1e-3), pytest.approx(6.0, abs=1e-3))


def test_upsampled_search_separates_peaks_a_cell_apart():
    """Two wrists 1.5 cells apart diagonally: the 3x3 suppression on the map keeps one, on the
    x2 map both (its window spans 1.5 cells)."""
    g = np.maximum(_gaussian(14, 14, 5.3, 6.1, 0.6), _gaussian(14, 14, 6.4, 7.1, 0.6))
    assert len(find_peaks(g, 0.1, smooth_sigma=0.0, upsample=1)[0]) == 1
    ps, x, y, _ = find_peaks(g, 0.1, smooth_sigma=0.3, upsample=2)
    assert len(ps) == 2     # each near its own centre (the crease between them pulls the weaker one)
    np.testing.assert_allclose(sorted(zip(x.tolist(), y.tolist())), [(5.3, 6.1), (6.4, 7.1)], atol=0.35)


def test_flip_maps_on_hand_built_maps():
    heat = np.zeros((2, 3, 19), np.float32)
    paf = np.zeros((2, 3, 38), np.float32)
    rw, lw = S.parts.index("right_wrist"), S.parts.index("left_wrist")
    heat[0, 0, rw] = 0.9
    heat[1, 0, 18] = 0.5                                         # background: only mirrored
    r_hip, l_hip = S.limbs.index((1, 8)), S.limbs.index((1, 11))   # neck -> right / left hip
    nose = S.limbs.index((1, 0))                                 # neck -> nose: its own mirror
    paf[1, 0, 2 * r_hip:2 * r_hip + 2] = (0.6, 0.8)
    paf[0, 1, 2 * nose:2 * nose + 2] = (0.6, 0.8)
    fh, fp = DEFAULT_CODEC.flip_maps(heat, paf)
    want_h = np.zeros_like(heat)
    want_h[0, 2, lw] = 0.9
    want_h[1, 2, 18] = 0.5
    want_p = np.zeros_like(paf)
    want_p[1, 2, 2 * l_hip:2 * l_hip + 2] = (-0.6, 0.8)
    want_p[0, 1, 2 * nose:2 * nose + 2] = (-0.6, 0.8)
    np.testing.assert_array_equal(fh, want_h)
    np.testing.assert_array_equal(fp, want_p)
    # a mirror limb stored in the other direction: its y component is negated instead
    from keras_openpose.skeleton import Skeleton
    sk = Skeleton.from_dict({"name": "t", "keypoints": ["c", "l", "r"], "limbs": [["c", "l"], ["r", "c"]],
                             "flip_pairs": [["l", "r"]]})
    h3, p3 = np.zeros((1, 3, 4), np.float32), np.zeros((1, 3, 4), np.float32)
    p3[0, 0, 0:2] = (0.6, 0.8)                                   # c -> l at column 0
    _, fp3 = PafCodec(sk).flip_maps(h3, p3)
    want = np.zeros_like(p3)
    want[0, 2, 2:4] = (0.6, -0.8)                                # r -> c at column 2
    np.testing.assert_array_equal(fp3, want)


#: Exact maps for the threshold cases: peaks on cell centres, no smoothing or resampling.
EXACT = DecodeOptions(upsample=1, smooth_sigma=0.0, refine=False)
RS, RE, RW = S.parts.index("right_shoulder"), S.parts.index("right_elbow"), S.parts.index("right_wrist")
UPPER_ARM = S.limbs.index((RS, RE))


def _arm(field, p_s=0.5, p_e=0.5, h=20, w=12):
    """Right shoulder at cell (2, 1), right elbow at cell (2, 10) (a limb of 9 cells = 72 px at stride
    8: its 10 PAF samples fall on cells 1..10 of row 2 exactly); the PAF x component of those 10
    cells is ``field``. Image 160 px high: no length penalty (72 <= 0.5 x 160)."""
    heat = np.zeros((h, w, 19), np.float32)
    paf = np.zeros((h, w, 38), np.float32)
    heat[2, 1, RS], heat[2, 10, RE] = p_s, p_e
    paf[2, 1:11, 2 * UPPER_ARM] = field
    return heat, paf, (8 * h, 8 * w)


def _joined(res):
    """Whether the decoder made one person of shoulder and elbow."""
    return len(res) == 1 and (np.array(res[0]["keypoints"]).reshape(17, 3)[[6, 8], 2] == 2).all()


@pytest.mark.parametrize("delta,joined", [(+1e-3, True), (-1e-3, False)])
def test_peak_threshold_either_side(delta, joined):
    heat = np.zeros((8, 8, 19), np.float32)
    heat[4, 5, 0] = 0.3 + delta                                  # a nose alone: a one-keypoint person
    res = decode_poses(heat, np.zeros((8, 8, 38), np.float32), (64, 64),
                       options=DecodeOptions(**{**EXACT.__dict__, "peak_threshold": 0.3}))
    if joined:
        assert len(res) == 1
        assert res[0]["keypoints"][:3] == [cells_to_pixels(5, 8), cells_to_pixels(4, 8), 2]   # (43.5, 35.5)
        assert res[0]["score"] == pytest.approx((0.3 + delta) * (1 / 18) ** EXACT.score_exponent, rel=1e-6)
    else:
        assert res == []


@pytest.mark.parametrize("delta,joined", [(+1e-3, True), (-1e-3, False)])
def test_paf_threshold_either_side(delta, joined):
    heat, paf, shape = _arm(0.3 + delta)
    res = decode_poses(heat, paf, shape, options=DecodeOptions(**{**EXACT.__dict__, "paf_threshold": 0.3}))
    assert _joined(res) == joined
    if joined:   # mean of the two peaks and the limb, times (2 parts / 18) ** exponent
        assert res[0]["score"] == pytest.approx((0.5 + 0.5 + 0.3 + delta) / 3 * (2 / 18) ** 0.25, rel=1e-6)
    else:        # two one-keypoint people
        assert [r["score"] for r in res] == [pytest.approx(0.5 * (1 / 18) ** 0.25)] * 2


@pytest.mark.parametrize("supporting,joined", [(8, True), (7, False)])
def test_paf_min_fraction_either_side(supporting, joined):
    field = np.zeros(10, np.float32)
    field[:supporting] = 1.0                                     # 8 / 10 = 0.8 passes >= 0.8; 7 / 10 does not
    heat, paf, shape = _arm(field)
    assert _joined(decode_poses(heat, paf, shape, options=DecodeOptions(**{**EXACT.__dict__, "paf_min_fraction": 0.8}))) == joined


@pytest.mark.parametrize("delta,kept", [(+3e-3, True), (-3e-3, False)])
def test_min_mean_score_either_side(delta, kept):
    heat, paf, shape = _arm(0.2 + delta)                         # mean (0.5 + 0.5 + 0.2 + delta) / 3 = 0.4 + delta / 3
    res = decode_poses(heat, paf, shape, options=DecodeOptions(**{**EXACT.__dict__, "min_mean_score": 0.4}))
    assert _joined(res) if kept else res == []                   # a dropped person's peaks are not lone peaks


@pytest.mark.parametrize("min_parts,kept", [(3, True), (4, False)])
def test_min_parts_either_side(min_parts, kept):
    heat, paf, shape = _arm(1.0)
    fore = S.limbs.index((RE, RW))
    heat[2, 10, RE], heat[8, 10, RW] = 0.5, 0.5                  # forearm straight down, 6 cells
    paf[2:9, 10, 2 * fore + 1] = 1.0
    res = decode_poses(heat, paf, shape, options=DecodeOptions(**{**EXACT.__dict__, "min_parts": min_parts}))
    assert len(res) == int(kept)
    if kept:
        assert (np.array(res[0]["keypoints"]).reshape(17, 3)[[6, 8, 10], 2] == 2).all()


@pytest.mark.parametrize("short_limb,joined", [(1.001, True), (0.999, False)])
def test_short_limb_either_side(short_limb, joined):
    """Nose and right eye one cell apart, no PAF at all: joined by proximity below ``short_limb``
    with the score 1 - length / short_limb."""
    heat = np.zeros((8, 8, 19), np.float32)
    heat[4, 3, 0], heat[4, 4, S.parts.index("right_eye")] = 0.6, 0.6
    res = decode_poses(heat, np.zeros((8, 8, 38), np.float32), (64, 64),
                       options=DecodeOptions(**{**EXACT.__dict__, "short_limb": short_limb}))
    if joined:
        assert len(res) == 1
        assert res[0]["score"] == pytest.approx((1.2 + 1 - 1 / short_limb) / 3 * (2 / 18) ** 0.25, rel=1e-6)
    else:
        assert len(res) == 2


@pytest.mark.parametrize("height,limb_score", [(144, 1.0), (142, 0.5 * 142 / 72), (100, 0.5 * 100 / 72)])
def test_length_prior_exact(height, limb_score):
    """A 72 px limb with a perfect field scores 1 + min(0.5 H / 72 - 1, 0): no penalty from H = 144 up."""
    heat, paf, _ = _arm(1.0)
    res = decode_poses(heat, paf, (height, 96), options=EXACT)
    assert res[0]["score"] == pytest.approx((1.0 + limb_score) / 3 * (2 / 18) ** 0.25, rel=1e-6)
    off = decode_poses(heat, paf, (height, 96), options=DecodeOptions(**{**EXACT.__dict__, "length_prior": False}))
    assert off[0]["score"] == pytest.approx(2.0 / 3 * (2 / 18) ** 0.25, rel=1e-6)


@pytest.mark.parametrize("exponent", [1.0, 0.25])
def test_person_score_exact(exponent):
    heat, paf, shape = _arm(0.5, p_s=0.9, p_e=0.7)
    res = decode_poses(heat, paf, shape, options=DecodeOptions(**{**EXACT.__dict__, "score_exponent": exponent}))
    assert res[0]["score"] == pytest.approx((0.9 + 0.7 + 0.5) / 3 * (2 / 18) ** exponent, rel=1e-6)
    kp = np.array(res[0]["keypoints"]).reshape(17, 3)
    np.testing.assert_array_equal(kp[6], [11.5, 19.5, 2])        # cell (2, 1) -> pixel (11.5, 19.5)
    np.testing.assert_array_equal(kp[8], [83.5, 19.5, 2])        # cell (2, 10)


@pytest.mark.parametrize("per_cell,joined", [(0.0, True), (2.0, False)])
def test_paf_samples_per_cell(per_cell, joined):
    """An 18-cell limb whose field alternates +1 / -1 cell by cell: the 10 default samples land on
    the even cells only (+1 everywhere), 2 samples per cell see the gaps."""
    heat = np.zeros((40, 22, 19), np.float32)
    paf = np.zeros((40, 22, 38), np.float32)
    hip, knee = S.parts.index("right_hip"), S.parts.index("right_knee")
    thigh = S.limbs.index((hip, knee))
    heat[5, 2, hip], heat[5, 20, knee] = 0.9, 0.9
    paf[5, 2:21, 2 * thigh] = np.where(np.arange(2, 21) % 2 == 0, 1.0, -1.0)
    res = decode_poses(heat, paf, (320, 176), options=DecodeOptions(**{**EXACT.__dict__, "paf_samples_per_cell": per_cell}))
    assert len(res) == (1 if joined else 2)


def test_lone_peaks_at_most_max_lone_peaks():
    heat = np.zeros((30, 30, 19), np.float32)
    vals = np.linspace(0.2, 0.9, 25, dtype=np.float32)
    for k, v in enumerate(vals):
        heat[2 + 5 * (k // 5), 2 + 5 * (k % 5), 0] = v          # 25 noses, 5 cells apart
    res = decode_poses(heat, np.zeros((30, 30, 38), np.float32), (240, 240), options=EXACT)
    assert len(res) == MAX_LONE_PEAKS == 20
    np.testing.assert_allclose([r["score"] for r in res], vals[::-1][:20] * (1 / 18) ** 0.25, rtol=1e-6)


def test_legacy_options_are_the_old_defaults():
    """LEGACY_DECODE_OPTIONS reproduces the decoder before its defaults were chosen on real maps
    (a model saved with them decodes as before)."""
    old = dict(peak_threshold=0.1, smooth_sigma=0.0, refine=True, paf_samples=10, paf_threshold=0.05,
               paf_min_fraction=0.8, length_prior=True, min_parts=1, min_mean_score=0.4, short_limb=1.0,
               upsample=1, score_exponent=1.0, paf_samples_per_cell=0.0, merge_ratio=0.0)
    import dataclasses
    assert dataclasses.asdict(LEGACY_DECODE_OPTIONS) == old
    codec = PafCodec.from_dict({**DEFAULT_CODEC.to_dict(), "decode": old})
    assert codec.decode_options == LEGACY_DECODE_OPTIONS
    from keras_openpose.config import check_values
    with pytest.raises(DataError, match="upsample"):
        check_values(DecodeOptions(upsample=0))


def test_multiscale_flip_maps_align_scales(val_split):
    """PoseEstimator.maps on a runtime that returns the exact maps of one person at every scale
    and mirror: averaged onto the finest scale's grid, the decoded keypoints are the person's."""
    from keras_openpose.config import InferenceOptions
    from keras_openpose.inference.runtimes import KerasRuntime
    from keras_openpose.inference.estimator import PoseEstimator
    kp = np.zeros((1, 17, 3), np.float32)
    pts = {0: (180, 60), 5: (150, 110), 6: (210, 110), 7: (140, 170), 8: (220, 170), 9: (135, 225),
           10: (225, 225), 11: (160, 220), 12: (200, 220), 13: (158, 285), 14: (202, 285), 15: (156, 340),
           16: (204, 340), 1: (172, 52), 2: (188, 52), 3: (162, 58), 4: (198, 58)}
    for k, (x, y) in pts.items():
        kp[0, k] = (x, y, 2)
    H, W = 400, 330

    class Exact(KerasRuntime):
        def __init__(self):
            self.codec, self.model = DEFAULT_CODEC, None

        def __call__(self, x):
            s = self.s.pop(0)                                     # the scales in call order
            hp, wp = x.shape[1:3]
            out = []
            for b in range(len(x)):
                k = kp.copy()
                k[..., :2] = (kp[..., :2] + 0.5) * s - 0.5            # network input pixels
                if b:                                                 # the mirrored, right-padded input
                    k[..., 0] = (wp - 1) - k[..., 0]
                    k = k[:, [S.keypoints.index(n.replace("left", "@").replace("right", "left").replace("@", "right"))
                              for n in S.keypoints]]
                out.append(DEFAULT_CODEC.encode(k, (hp, wp)))
            return np.stack([o[1] for o in out]), np.stack([o[0] for o in out])

    for scales, flip in (((1.0,), True), ((0.5, 1.0, 1.5), False), ((0.5, 1.0, 1.5), True)):
        rt = Exact()
        opts = InferenceOptions(box_size=256, scales=scales, flip=flip)
        rt.s = [min(256 * sc / H, opts.max_side / max(H, W)) for sc in scales]
        est = PoseEstimator(rt, opts)
        heat, paf, stride = est.maps(np.zeros((H, W, 3), np.uint8))
        assert stride == pytest.approx(8 * H / (256 * max(scales)))   # the finest grid
        res = est.decode(heat, paf, stride, (H, W))
        got = np.array(res[0]["keypoints"]).reshape(17, 3)
        assert (got[:, 2] == 2).all()
        np.testing.assert_allclose(got[:, :2], kp[0, :, :2], atol=1.5)
