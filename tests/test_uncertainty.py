import numpy as np
import pytest

from keras_openpose.skeleton import OPENPOSE_COCO18 as S
from keras_openpose.ensemble.uncertainty import (disagreement_report, group_people, limb_disagreement,
                                                 sparsification, spearman)
from keras_openpose.evaluate.matching import oks_matrix


def _kp(seed=0):
    k = np.zeros((17, 3))
    k[:, :2] = np.random.default_rng(seed).uniform(50, 250, (17, 2))
    k[:, 2] = 2
    return k


def test_identical_experts_disagree_by_zero():
    k = _kp()
    t, r = limb_disagreement([k, k.copy(), k.copy()], scale=100.0)
    assert np.all(t == 0) and np.all(r == 0) and len(t) == S.num_limbs


def test_known_endpoint_displacement():
    k = _kp()
    moved = k.copy()
    moved[0, 0] += 30  # nose moves 30 px: limbs neck-nose, nose-Reye, nose-Leye have one endpoint off
    t, r = limb_disagreement([k, moved], scale=100.0)
    li = S.limbs.index((S.parts.index("neck"), S.parts.index("nose")))
    assert t[li] == pytest.approx(0.5 * 30 / 100)  # mean of the two endpoint distances / scale
    # three experts, one displaced: pairs (0,1)=15, (0,2)=0, (1,2)=15 px mean endpoint distance
    t3, _ = limb_disagreement([k, moved, k.copy()], scale=100.0)
    assert t3[li] == pytest.approx((15 + 0 + 15) / 3 / 100)
    untouched = S.limbs.index((S.parts.index("right_hip"), S.parts.index("right_knee")))
    assert t[untouched] == 0 and r[untouched] == 0


def test_angles_wrap_across_180():
    k = np.zeros((17, 3))
    k[6], k[8] = (100, 100, 2), (0, 101, 2)     # right shoulder -> right elbow at ~+179.4 deg
    k2 = k.copy()
    k2[8] = (0, 99, 2)                          # ~-179.4 deg: 1.15 deg apart, not 358.9
    _, r = limb_disagreement([k, k2], scale=10.0)
    li = S.limbs.index((S.parts.index("right_shoulder"), S.parts.index("right_elbow")))
    expected = 2 * np.degrees(np.arctan2(1, 100)) / 180
    assert r[li] == pytest.approx(expected, rel=1e-4)  # float32 keypoints


def test_missing_limbs_are_nan_not_zero():
    k = _kp()
    miss = k.copy()
    miss[10] = 0  # right wrist missing in one of two experts
    t, _ = limb_disagreement([k, miss], scale=50.0)
    li = S.limbs.index((S.parts.index("right_elbow"), S.parts.index("right_wrist")))
    assert np.isnan(t[li])
    t, _ = limb_disagreement([k, miss, k.copy()], scale=50.0)
    assert t[li] == 0  # the two experts that have it agree


def test_spearman_and_ause_hand_cases():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [40, 30, 20, 10]) == pytest.approx(-1.0)
    # perfect ranking: AUSE 0
    assert sparsification([0.1, 0.2, 0.3, 0.4], [1, 2, 3, 4], steps=4)["ause"] == pytest.approx(0.0)
    # reversed ranking with errors 1..4, fractions 0, .25, .5, .75:
    # curve (keep lowest-uncertainty = highest error): 2.5, 3, 3.5, 4; oracle: 2.5, 2, 1.5, 1
    sp = sparsification([0.4, 0.3, 0.2, 0.1], [1, 2, 3, 4], steps=4)
    assert sp["curve"] == pytest.approx([2.5, 3, 3.5, 4]) and sp["oracle"] == pytest.approx([2.5, 2, 1.5, 1])
    assert sp["ause"] == pytest.approx(0.25 * ((0 + 1) / 2 + (1 + 2) / 2 + (2 + 3) / 2))


def test_oks_pairing_without_ground_truth():
    a, b = _kp(1), _kp(2)
    a[:, :2] = a[:, :2] * 0.3 + 50     # person A small, left
    b[:, :2] = b[:, :2] * 0.3 + 400    # person B far right
    da, db = {"keypoints": a.reshape(-1).tolist()}, {"keypoints": b.reshape(-1).tolist()}
    oks = oks_matrix([da], [{"keypoints": da["keypoints"], "area": 60 * 60, "bbox": [50, 50, 60, 60]}])
    assert oks[0, 0] == pytest.approx(1.0)
    groups = group_people([[da, db], [db, da], [da]])
    assert len(groups) == 2
    for g in groups:
        assert len({str(p["keypoints"]) for p in g if p is not None}) == 1


def test_report_identical_experts(val_split):
    dets = [{"image_id": a["image_id"], "keypoints": a["keypoints"], "score": 1.0}
            for a in val_split.data["annotations"] if a["num_keypoints"] >= 5 and not a["iscrowd"]]
    rep = disagreement_report({"normal": dets, "dark": dets, "motion_blur": dets})
    assert rep["n_persons"] > 0 and rep["total_transl"] == 0 and rep["total_rot"] == 0
    assert "neck-nose" in rep["limbs"] and "right_shoulder-right_ear" in rep["limbs"]


def test_report_with_ground_truth_pairs_by_gt_and_measures_error(val_split):
    from keras_openpose.evaluate.matching import match_by_oks
    gts = [a for a in val_split.data["annotations"] if a["num_keypoints"] >= 5 and not a["iscrowd"]]
    exact = [{"image_id": a["image_id"], "keypoints": a["keypoints"], "score": 1.0} for a in gts]
    # a displaced copy: every keypoint 5 px to the right
    moved = []
    for a in gts:
        k = np.array(a["keypoints"], float).reshape(-1, 3)
        k[k[:, 2] > 0, 0] += 5
        moved.append({"image_id": a["image_id"], "keypoints": k.reshape(-1).tolist(), "score": 1.0})
    img = gts[0]["image_id"]
    same_img = [a for a in gts if a["image_id"] == img]
    assert match_by_oks([d for d in exact if d["image_id"] == img], same_img) == [a["id"] for a in same_img]
    rep = disagreement_report({"normal": exact, "dark": exact, "motion_blur": moved}, val_split.data)
    assert rep["n_persons"] == len(gts)
    for p in rep["persons"]:
        gt = next(a for a in gts if a["id"] == p["gt_id"])
        # pairs (exact, exact) = 0, (exact, moved) = 5 px twice: mean 10/3 px over sqrt(area)
        assert p["transl"] == pytest.approx(10 / 3 / np.sqrt(gt["area"]), rel=1e-4)
        # error = 1 - mean OKS of the experts: 1, 1 and the moved copy's COCO OKS, exp(-d^2 / (2 area (2 sigma)^2))
        # averaged over the labelled keypoints with d = 5 px
        lab = np.array(gt["keypoints"], float).reshape(-1, 3)[:, 2] > 0
        var = (2 * S.pairing_sigmas[lab]) ** 2          # the default skeleton (OpenPose COCO-18)
        oks_moved = np.mean(np.exp(-25.0 / var / (gt["area"] + np.spacing(1)) / 2))
        assert p["error"] == pytest.approx((1 - oks_moved) / 3, rel=1e-9)
    assert np.isfinite(rep["spearman_transl"]) and "sparsification_transl" in rep


def test_spearman_interval_known_answers():
    from keras_openpose.ensemble.uncertainty import spearman_interval
    x = np.arange(30, dtype=float)
    assert spearman_interval(x, x ** 3 + 5) == [1.0, 1.0]          # perfectly monotone: every resample rho 1
    assert spearman_interval(x, -np.exp(x / 10)) == [-1.0, -1.0]
    assert all(np.isnan(spearman_interval([1, 2], [1, 2])))       # rho undefined below 3 pairs
    # the vectorised ranks equal scipy's spearmanr on each resample (ties included)
    rng = np.random.default_rng(3)
    u = rng.normal(size=40)
    e = u + rng.normal(size=40)
    u[5:9], e[:5] = 1.0, 0.0
    idx = np.random.default_rng(0).integers(0, 40, (1000, 40))
    ref = np.array([spearman(u[i], e[i]) for i in idx])
    lo, hi = spearman_interval(u, e, draws=1000, seed=0)
    assert [lo, hi] == pytest.approx(np.quantile(ref[np.isfinite(ref)], [0.025, 0.975]).tolist(), abs=1e-12)
    assert lo < spearman(u, e) < hi
    with pytest.raises(ValueError):
        spearman_interval([1, 2, 3], [1, 2])


def test_report_carries_spearman_intervals(val_split):
    gts = [a for a in val_split.data["annotations"] if a["num_keypoints"] >= 5 and not a["iscrowd"]]
    exact = [{"image_id": a["image_id"], "keypoints": a["keypoints"], "score": 1.0} for a in gts]
    rng = np.random.default_rng(0)
    noisy = []
    for a in gts:                      # per person a different amount of noise: disagreement tracks error
        k = np.array(a["keypoints"], float).reshape(-1, 3)
        k[k[:, 2] > 0, :2] += rng.normal(0, rng.uniform(1, 20), (int((k[:, 2] > 0).sum()), 2))
        noisy.append({"image_id": a["image_id"], "keypoints": k.reshape(-1).tolist(), "score": 1.0})
    rep = disagreement_report({"normal": exact, "dark": exact, "motion_blur": noisy}, val_split.data)
    for key in ("transl", "rot"):
        lo, hi = rep[f"spearman_{key}_interval"]
        assert -1 <= lo <= hi <= 1 and np.isfinite(rep[f"spearman_{key}"])
    lo, hi = rep["spearman_transl_interval"]
    assert lo < rep["spearman_transl"] < hi and lo > 0
    sp = rep["sparsification_transl"]                               # the plot's per-person data as before
    assert len(sp["curve"]) == len(sp["oracle"]) == len(sp["fractions"]) == 20
    assert all("transl" in p and "error" in p for p in rep["persons"])
