#!/usr/bin/env python
"""Decoder benchmark: oracle COCO AP and decode time on ground-truth maps of the sample's val2017.

Maps are rendered at stride 8 from the annotations as the network would see each image (height
resized to 368), then decoded back to image pixels. Prints one JSON line:
{"images", "oracle_ap", "oracle_ap50", "median_ms", "p90_ms"}. Run: python bench/decode.py
"""
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
os.environ.setdefault("OMP_NUM_THREADS", "1")

from conftest import render_gt_maps  # noqa: E402
from keras_openpose.codec import decode_poses  # noqa: E402
from keras_openpose.coco import CocoSplit  # noqa: E402
from keras_openpose.evaluate import coco_keypoint_eval  # noqa: E402


def main():
    split = CocoSplit(REPO / "dataset" / "sample", "val2017")
    ids = split.image_ids
    maps = {i: render_gt_maps(split, i) for i in ids}
    dets, times = [], []
    for rep in range(3):
        for i in ids:
            heat, paf, stride = maps[i]
            im = split.images[i]
            t0 = time.perf_counter()
            res = decode_poses(heat, paf, (im["height"], im["width"]), stride=stride)
            times.append(time.perf_counter() - t0)
            if rep == 0:
                dets += [{"image_id": i, "category_id": 1, **r} for r in res]
    stats, _ = coco_keypoint_eval(split.data, dets, ids)
    with_people = [i for i in ids if any(a["num_keypoints"] > 0 for a in split.anns_by_image[i])]
    print(json.dumps({"images": len(ids), "images_with_people": len(with_people), "oracle_ap": round(stats["AP"], 4),
                      "oracle_ap50": round(stats["AP50"], 4), "median_ms": round(1000 * float(np.median(times)), 3),
                      "p90_ms": round(1000 * float(np.percentile(times, 90)), 3)}))


if __name__ == "__main__":
    main()
