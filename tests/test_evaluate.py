import numpy as np
import pytest

from keras_openpose.evaluate import coco_keypoint_eval, difficult_keypoints, match_to_gt, pck
from keras_openpose.skeleton import COCO17_KEYPOINTS

DIFFICULT_KEYPOINTS = difficult_keypoints(COCO17_KEYPOINTS)


def _gt_as_dets(split, ids):
    return [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
            for i in ids for a in split.anns_by_image[i] if a["num_keypoints"] > 0 and not a["iscrowd"]]


def test_ground_truth_as_predictions_scores_ap_1(val_split):
    ids = val_split.image_ids
    stats, ev = coco_keypoint_eval(val_split.data, _gt_as_dets(val_split, ids), ids)
    assert stats["AP"] == pytest.approx(1.0) and stats["AR"] == pytest.approx(1.0)
    m = match_to_gt(ev)
    assert len(m) > 0 and all(g > 0 for g in m.values())


def test_partial_runs_are_not_deflated(val_split):
    ids = val_split.ids_with_people()[:5]
    stats, _ = coco_keypoint_eval(val_split.data, _gt_as_dets(val_split, ids), ids)
    assert stats["AP"] == pytest.approx(1.0)


def test_no_detections_gives_zero(val_split):
    stats, ev = coco_keypoint_eval(val_split.data, [], val_split.image_ids)
    assert ev is None and stats["AP"] == 0.0


def _person(gid, pts, bbox=(0, 0, 100, 200)):
    kp = np.zeros((17, 3))
    for k, (x, y) in pts.items():
        kp[k] = (x, y, 2)
    return {"id": gid, "image_id": 1, "keypoints": kp.reshape(-1).tolist(), "bbox": list(bbox),
            "num_keypoints": len(pts), "iscrowd": 0, "area": bbox[2] * bbox[3]}


def test_pck_counts_misses_and_uses_bbox_size():
    gt = [_person(1, {0: (50, 10), 11: (40, 100), 13: (40, 150), 15: (40, 190)}),
          _person(2, {0: (250, 10), 11: (240, 100)})]          # never detected: 2 misses
    det = {"id": 7, "keypoints": np.zeros(51).tolist()}
    k = np.zeros((17, 3))
    k[0] = (50 + 99, 10, 2)      # 99 px off: within 0.5 * 200 = 100 -> correct
    k[11] = (40, 100 + 101, 2)   # 101 px off -> wrong
    k[13] = (40, 150, 2)         # exact
    det["keypoints"] = k.reshape(-1).tolist()  # keypoint 15 not predicted -> a miss
    r = pck(gt, [det], {7: 1})
    assert (r["correct"], r["total"]) == (2, 6) and r["pck"] == pytest.approx(2 / 6)
    r = pck(gt, [det], {7: 1}, keypoints=DIFFICULT_KEYPOINTS)
    assert (r["correct"], r["total"]) == (1, 4)


def test_pck_head_normaliser():
    gt = [_person(1, {3: (40, 10), 4: (60, 10), 0: (50, 12)})]   # ears 20 px apart
    k = np.zeros((17, 3))
    k[3], k[4], k[0] = (40, 19, 2), (60, 21, 2), (50, 12, 2)     # 9 px (ok), 11 px (miss), exact
    r = pck(gt, [{"id": 1, "keypoints": k.reshape(-1).tolist()}], {1: 1}, normaliser="head")
    assert (r["correct"], r["total"]) == (2, 3)


def test_pck_auc_nme_and_crowd_index():
    gt = [_person(1, {0: (50, 10), 11: (40, 100)})]   # bbox 100 x 200 -> size 200
    k = np.zeros((17, 3))
    k[0] = (50, 30, 2)       # 20 px = 0.1 size
    k[11] = (40, 160, 2)     # 60 px = 0.3 size
    r = pck(gt, [{"id": 1, "keypoints": k.reshape(-1).tolist()}], {1: 1})
    assert r["nme"] == pytest.approx(0.2) and r["n_predicted"] == 2
    # PCK(a) over a = 0..0.5 step .01: 0 for a < .1, 0.5 for .1 <= a < .3, 1 from .3: mean = (20*.5 + 21*1)/51
    assert r["auc"] == pytest.approx((20 * 0.5 + 21 * 1.0) / 51)
    from keras_openpose.evaluate import crowd_index
    a = _person(1, {0: (10, 10), 5: (20, 20)}, bbox=(0, 0, 50, 50))
    b = _person(2, {0: (30, 30), 5: (200, 200)}, bbox=(25, 25, 200, 200))
    # a's box holds 1 of b's keypoints (1/2); b's box holds 0 of a's (0/2): index = mean(0.5, 0) = 0.25
    assert crowd_index([a, b]) == pytest.approx(0.25) and crowd_index([a]) == 0.0


def test_map_scores_on_ground_truth_and_empty_maps(val_split):
    """Map-level scores: the training targets themselves score MSE 0 and keypoint F1 ~1; empty maps
    find nothing and score the targets' own energy as error."""
    from conftest import render_gt_maps

    from keras_openpose.evaluate import map_scores
    ids = [i for i in val_split.ids_with_people()][:12]
    by_shape = {}

    def gt(img):
        i = by_shape[img.shape[:2]]
        return render_gt_maps(val_split, i)
    for i in ids:
        by_shape.setdefault((val_split.images[i]["height"], val_split.images[i]["width"]), i)
    ids = list(by_shape.values())        # one image per size, so the stub can tell which it got
    r = map_scores(gt, val_split, ids, progress=False)
    assert r["heatmap_mse"] == pytest.approx(0.0, abs=1e-9) and r["paf_mse"] == pytest.approx(0.0, abs=1e-9)
    assert r["precision"] == 1.0 and r["recall"] > 0.98 and r["images"] == len(ids)

    def empty(img):
        h, w, s = *gt(img)[0].shape[:2], gt(img)[2]
        return np.zeros((h, w, 19), np.float32), np.zeros((h, w, 38), np.float32), s
    e = map_scores(empty, val_split, ids, progress=False)
    assert e["recall"] == 0.0 and e["f1"] == 0.0 and e["peaks_per_image"] == 0
    assert e["heatmap_mse"] > 1e-3 and e["paf_mse"] > 1e-4
