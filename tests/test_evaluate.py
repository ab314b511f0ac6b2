import numpy as np
import pytest

from keras_openpose.evaluate.cocoeval import coco_keypoint_eval, match_to_gt
from keras_openpose.evaluate.pck import difficult_keypoints, pck
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
    from keras_openpose.evaluate.pck import crowd_index
    a = _person(1, {0: (10, 10), 5: (20, 20)}, bbox=(0, 0, 50, 50))
    b = _person(2, {0: (30, 30), 5: (200, 200)}, bbox=(25, 25, 200, 200))
    # a's box holds 1 of b's keypoints (1/2); b's box holds 0 of a's (0/2): index = mean(0.5, 0) = 0.25
    assert crowd_index([a, b]) == pytest.approx(0.25) and crowd_index([a]) == 0.0


def test_map_scores_on_ground_truth_and_empty_maps(val_split):
    """Map-level scores: the training targets themselves score MSE 0 and keypoint F1 ~1; empty maps
    find nothing and score the targets' own energy as error."""
    from conftest import render_gt_maps

    from keras_openpose.evaluate.maps import map_scores
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


# ---------------------------------------------------------------------------------------------
# Bootstrap interval of AP; evaluate_predictor's interval and skipped images
# ---------------------------------------------------------------------------------------------

def _perturbed_dets(split, ids, seed=1):
    """Ground-truth people of ``ids`` as detections, each moved by Gaussian noise of its own size
    (0-15 px) and given a random score: an AP well inside (0, 1)."""
    rng = np.random.default_rng(seed)
    dets = []
    for d in _gt_as_dets(split, ids):
        k = np.array(d["keypoints"], float).reshape(-1, 3)
        k[:, :2] += rng.normal(0, rng.uniform(0, 15), (len(k), 2))
        dets.append({**d, "keypoints": k.reshape(-1).tolist(), "score": float(rng.uniform())})
    return dets


def test_bootstrap_identity_draw_is_pycocotools_ap(val_split):
    from keras_openpose.evaluate.cocoeval import bootstrap_ap
    ids = val_split.image_ids
    stats, ev = coco_keypoint_eval(val_split.data, _perturbed_dets(val_split, ids), ids)
    assert 0.1 < stats["AP"] < 0.9
    n_records = len(ev.evalImgs)
    b = bootstrap_ap(ev, draws=1000, seed=0)
    assert b["ap"] == stats["AP"]                 # exactly: pycocotools' accumulate on the same records
    assert b["draws"] == 1000 and b["low"] < b["ap"] < b["high"]
    assert 0 <= b["low"] and b["high"] <= 1
    assert bootstrap_ap(ev, draws=200, seed=0) == bootstrap_ap(ev, draws=200, seed=0)    # seeded
    assert len(ev.evalImgs) == n_records and ev.params.imgIds == sorted(ids)           # left unchanged
    assert len(ev.params.areaRng) == 3
    with pytest.raises(ValueError):
        bootstrap_ap(None)
    with pytest.raises(ValueError):
        bootstrap_ap(ev, level=1.0)


def test_bootstrap_of_identical_images_has_no_spread(val_split):
    """Every image a copy of one image (same people, same detections): every resample holds the
    same pooled precision-recall curve, so low == high == AP."""
    from keras_openpose.evaluate.cocoeval import bootstrap_ap
    src = 151938                                       # 4 people
    anns = [a for a in val_split.anns_by_image[src] if a["num_keypoints"] > 0 and not a["iscrowd"]]
    dets = _perturbed_dets(val_split, [src], seed=4)
    n = 12
    im = val_split.images[src]
    gt = {"images": [{**im, "id": i} for i in range(1, n + 1)],
          "annotations": [{**a, "id": 100 * i + j, "image_id": i} for i in range(1, n + 1) for j, a in enumerate(anns)],
          "categories": val_split.data["categories"]}
    copies = [{**d, "image_id": i} for i in range(1, n + 1) for d in dets]
    stats, ev = coco_keypoint_eval(gt, copies)
    assert 0 < stats["AP"] < 1
    b = bootstrap_ap(ev, draws=300, seed=0)
    assert b["ap"] == stats["AP"] and b["draws"] == 300
    assert b["low"] == pytest.approx(b["ap"], abs=1e-12) and b["high"] == pytest.approx(b["ap"], abs=1e-12)


def test_score_detections_interval_edge_cases(val_split):
    from keras_openpose.evaluate.runs import score_detections
    people = val_split.ids_with_people()[:3]
    assert score_detections(val_split, people, [], ap_draws=50)["ap_interval"] == [0.0, 0.0]   # AP 0 in every draw
    empty = [i for i in val_split.image_ids if i not in set(val_split.ids_with_people())][:3]
    assert score_detections(val_split, empty, [], ap_draws=50)["ap_interval"] is None          # AP undefined
    assert score_detections(val_split, people, _perturbed_dets(val_split, people), ap_draws=0)["ap_interval"] is None


def test_evaluate_predictor_reports_ap_interval(tmp_path, val_split):
    import json
    import re

    import pandas as pd

    from keras_openpose.evaluate.runs import evaluate_predictor, summary_line
    ids = val_split.image_ids
    dets = _perturbed_dets(val_split, ids)
    out = tmp_path / "ev"
    out.mkdir()
    with open(out / "predictions.jsonl", "w") as f:
        for i in ids:
            people = [{"keypoints": d["keypoints"], "score": d["score"]} for d in dets if d["image_id"] == i]
            f.write(json.dumps({"image_id": i, "seconds": 0.01, "people": people}) + "\n")
    s = evaluate_predictor(None, val_split, ids, out, "run", progress=False, compute=False, ap_draws=200)
    lo, hi = s["ap_interval"]
    assert lo < s["stats"]["AP"] < hi
    assert json.loads((out / "summary.json").read_text())["ap_interval"] == [lo, hi]
    csv = pd.read_csv(out / "run_result.csv").set_index("evaluation_metrics")["value"]
    assert csv["ap_interval low"] == pytest.approx(lo) and csv["ap_interval high"] == pytest.approx(hi)
    assert csv["AP"] == pytest.approx(s["stats"]["AP"])                  # the value column stays numeric
    line = summary_line(s, "x")
    assert f"AP {s['stats']['AP']:.3f} [{lo:.2f}, {hi:.2f}]" in line
    assert re.search(r"AP \d\.\d{3} \[\d\.\d\d, \d\.\d\d\]  AP50", line)


def test_evaluate_predictor_skips_missing_first_image_and_adds_no_time(tmp_path, val_split):
    """A DataError on the first image left ``dt`` unset (UnboundLocalError); on a later image it
    added the previous image's time."""
    import json
    import time

    from conftest import SAMPLE

    from keras_openpose.data.coco import CocoSplit
    from keras_openpose.evaluate.runs import evaluate_predictor
    ids = val_split.ids_with_people()[:4]
    img_dir = tmp_path / "images"
    img_dir.mkdir()
    for i in (ids[1], ids[3]):                       # ids[0] and ids[2]: files missing
        (img_dir / val_split.images[i]["file_name"]).symlink_to(val_split.image_path(i))
    split = CocoSplit(SAMPLE, "val2017", image_dir=img_dir)

    def slow(img):
        time.sleep(0.05)
        return []
    s = evaluate_predictor(slow, split, ids, tmp_path / "ev", "run", progress=False, ap_draws=10)
    assert s["images"] == 2 and len(s["skipped_images"]) == 2
    assert "image not found" in s["skipped_images"][0]
    recs = [json.loads(line) for line in (tmp_path / "ev" / "predictions.jsonl").read_text().splitlines()]
    assert [r["image_id"] for r in recs] == ids and [r["seconds"] for r in recs][::2] == [0.0, 0.0]
    assert s["seconds_per_image"] == pytest.approx((recs[1]["seconds"] + recs[3]["seconds"]) / 2)
    assert s["stats"]["AP"] == 0.0 and s["ap_interval"] == [0.0, 0.0]


def test_bootstrap_draw_equals_pycocotools_on_physically_duplicated_images(val_split):
    """One draw (``draws=1``: low == high == that draw's AP) against pycocotools' full evaluation of
    a ground truth in which the drawn images really are copied as often as drawn."""
    from keras_openpose.evaluate.cocoeval import bootstrap_ap
    ids = val_split.image_ids
    dets = _perturbed_dets(val_split, ids)
    _, ev = coco_keypoint_eval(val_split.data, dets, ids)
    for seed in (0, 1):
        b = bootstrap_ap(ev, draws=1, seed=seed)
        draw = [ids[k] for k in np.random.default_rng(seed).integers(0, len(ids), (1, len(ids)))[0]]
        assert len(set(draw)) < len(draw)                    # duplicates present
        gt = {"images": [{**val_split.images[i], "id": j} for j, i in enumerate(draw, 1)],
              "annotations": [{**a, "id": 1000 * j + n, "image_id": j} for j, i in enumerate(draw, 1)
                              for n, a in enumerate(val_split.anns_by_image[i])],
              "categories": val_split.data["categories"]}
        copies = [{**d, "image_id": j} for j, i in enumerate(draw, 1) for d in dets if d["image_id"] == i]
        stats, _ = coco_keypoint_eval(gt, copies)
        assert b["low"] == b["high"] == pytest.approx(stats["AP"], abs=1e-12)
