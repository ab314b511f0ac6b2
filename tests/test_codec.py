import numpy as np
import pytest

from keras_openpose.codec import DEFAULT_CODEC, PafCodec, cell_centres, decode_poses, encode_heatmaps, encode_pafs
from keras_openpose.errors import DataError
from keras_openpose.evaluate import coco_keypoint_eval
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
    # the maximum cell is the one whose centre is nearest to the keypoint
    assert abs(cell_centres(W // 8 + 1, 8)[j] - x) <= 4 and abs(cell_centres(H // 8 + 1, 8)[i] - y) <= 4
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
    assert abs(cell_centres(13, 8)[j] - mid[0]) <= 4 and abs(cell_centres(13, 8)[i] - mid[1]) <= 4


def test_decode_gt_maps_recovers_people(val_split):
    ids = val_split.image_ids
    dets = []
    for i in ids:
        heat, paf, stride = render_gt_maps(val_split, i)
        im = val_split.images[i]
        for r in decode_poses(heat, paf, (im["height"], im["width"]), stride=stride):
            assert len(r["keypoints"]) == 51 and 0 <= r["score"] <= 1
            dets.append({"image_id": i, "category_id": 1, **r})
    stats, _ = coco_keypoint_eval(val_split.data, dets, ids)
    assert stats["AP"] >= 0.85, stats          # 0.869 (0.772 before short limbs and lone peaks)


def test_short_limbs_without_paf_are_joined_by_proximity():
    """An eye half a cell from the nose covers no cell centre: its PAF is empty, yet it belongs to
    the person (short_limb); with short_limb 0 it is a person of its own or lost."""
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
    off = DEFAULT_CODEC.with_decode(short_limb=0).decode(heat, paf, (200, 200))
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
    from keras_openpose.coco import keypoints_array
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
