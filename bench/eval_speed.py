#!/usr/bin/env python
"""The evaluation path against the bench, in one process: milliseconds per image of the ``eval``
command's loop (:func:`keras_openpose.evaluate.runs.evaluate_predictor` with a
:class:`~keras_openpose.inference.estimator.PoseEstimator`: resize, pad, network, crop, decode, the
per-image record) and of the bench's bare network call (``bench/predict.py``: the runtime on the
already padded input), for the same network, runtime and images, in alternating rounds so that a
slow phase of a shared machine hits both alike.

Prints one JSON line: ``eval_ms`` (mean over images of the eval loop's own per-image seconds, as
its ``summary.json`` reports them), ``network_ms`` (mean of the bare runtime calls), ``ratio`` =
eval / network (the eval loop also resizes, pads and decodes), and the per-round figures.

    python bench/eval_speed.py                                          # shipped network, Keras fp32
    python bench/eval_speed.py --weights /tmp/lwop.xml --rounds 3       # an export, on its runtime
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default=None, help="network file (default: the shipped models/pose_normal.keras)")
    p.add_argument("--height", type=int, default=256, help="network input height")
    p.add_argument("--split", default="val2017")
    p.add_argument("--rounds", type=int, default=2, help="rounds of (eval loop, bare network), alternating")
    a = p.parse_args()
    from keras_openpose.config import InferenceOptions
    from keras_openpose.data.coco import CocoSplit
    from keras_openpose.evaluate.runs import evaluate_predictor
    from keras_openpose.inference.estimator import PoseEstimator, preprocess
    from keras_openpose.model.weights import ensure_pretrained

    weights = str(ensure_pretrained(a.weights) if a.weights else ensure_pretrained())
    split = CocoSplit(REPO / "dataset" / "sample", a.split)
    ids = split.image_ids
    est = PoseEstimator.from_weights(weights, InferenceOptions(box_size=a.height))
    images = {i: split.read(i) for i in ids}
    inputs = {i: preprocess(images[i], a.height, 1.0, est.codec.stride, est.options.max_side)[0][None] for i in ids}
    for i in ids[:3]:                                   # warm-up of both paths, not timed
        est.runtime(inputs[i])
        est.estimate(images[i])
    rounds = []
    for r in range(a.rounds):
        with tempfile.TemporaryDirectory() as tmp:
            s = evaluate_predictor(est.estimate, split, ids, tmp, "eval", progress=False, evaluate=False)
        bare = []
        for i in ids:
            t0 = time.perf_counter()
            est.runtime(inputs[i])
            bare.append(time.perf_counter() - t0)
        rounds.append({"eval_ms": round(1000 * s["seconds_per_image"], 2), "network_ms": round(1000 * float(np.mean(bare)), 2)})
    ev = float(np.mean([x["eval_ms"] for x in rounds]))
    nw = float(np.mean([x["network_ms"] for x in rounds]))
    print(json.dumps({"weights": weights, "runtime": est.runtime.name, "height": a.height, "images": len(ids),
                      "eval_ms": round(ev, 2), "network_ms": round(nw, 2), "ratio": round(ev / nw, 3), "rounds": rounds}))


if __name__ == "__main__":
    main()
