#!/usr/bin/env python
"""Ensemble cost: seconds per image of one expert, of route (classifier + the chosen expert), of
fuse and of running all experts, on the sample's val2017 images. Needs trained models (default:
the quickstart's). Prints one JSON line with medians and the ratios to one expert.

    python bench/ensemble_cost.py --models-dir runs/quickstart/models
"""
import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models-dir", default=str(REPO / "runs" / "quickstart" / "models"))
    p.add_argument("--images", type=int, default=30)
    a = p.parse_args()
    from keras_openpose.cli import load_ensemble
    from keras_openpose.coco import CocoSplit
    from keras_openpose.ensemble import time_per_image
    split = CocoSplit(REPO / "dataset" / "sample", "val2017")
    images = [split.read(i) for i in split.image_ids[:a.images]]
    ens = load_ensemble(a.models_dir)
    one = time_per_image(ens.experts["normal"].estimate, images)
    route = time_per_image(ens.route, images)
    fuse = time_per_image(ens.fuse, images)
    allx = time_per_image(ens.all, images)
    clf = time_per_image(ens.classifier.probabilities, images)
    print(json.dumps({"expert_s": round(one, 4), "classifier_s": round(clf, 4), "route_s": round(route, 4),
                      "fuse_s": round(fuse, 4), "all_s": round(allx, 4), "route_over_expert": round(route / one, 3),
                      "fuse_over_expert": round(fuse / one, 3), "all_over_expert": round(allx / one, 3),
                      "images": len(images)}))


if __name__ == "__main__":
    main()
