#!/usr/bin/env python
"""Ensemble cost: seconds per image of one expert, of route (classifier + the chosen expert), of
fuse and of running all experts, on the sample's val2017 images. Needs trained models (default:
the quickstart's). Prints one JSON line with medians and the ratios to one expert; the functions are timed interleaved
(each image through every function in a rotating order, ``--repeat`` times) so that a shared
machine's slow phases do not favour one of them.

    python bench/ensemble_cost.py --models-dir runs/quickstart/models
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models-dir", default=str(REPO / "runs" / "quickstart" / "models"))
    p.add_argument("--images", type=int, default=30)
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args()
    import numpy as np

    from keras_openpose.ensemble.routing import Ensemble
    from keras_openpose.data.coco import CocoSplit
    split = CocoSplit(REPO / "dataset" / "sample", "val2017")
    images = [split.read(i) for i in split.image_ids[:a.images]]
    ens = Ensemble.from_models_dir(a.models_dir)
    fns = {"expert": ens.experts["normal"].estimate, "classifier": ens.classifier.probabilities,
           "route": ens.route, "fuse": ens.fuse, "all": ens.all}
    for fn in fns.values():          # warm-up
        fn(images[0])
    # interleaved: every function runs on an image before the next image, in a rotating order, so
    # that slow phases of a shared machine hit them all alike
    ts = {k: [] for k in fns}
    names = list(fns)
    for r in range(a.repeat):
        for j, im in enumerate(images):
            k0 = (r + j) % len(names)
            for k in names[k0:] + names[:k0]:
                t0 = time.perf_counter()
                fns[k](im)
                ts[k].append(time.perf_counter() - t0)
    med = {k: float(np.median(v)) for k, v in ts.items()}
    one = med["expert"]
    print(json.dumps({**{f"{k}_s": round(v, 4) for k, v in med.items()},
                      **{f"{k}_over_expert": round(med[k] / one, 3) for k in ("route", "fuse", "all")},
                      "route_minus_expert_ms": round(1000 * (med["route"] - one), 2),
                      "images": len(images), "repeat": a.repeat}))


if __name__ == "__main__":
    main()
