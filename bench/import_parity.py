#!/usr/bin/env python
"""The shipped Lightweight OpenPose, imported into Keras, against its OpenVINO IR on the sample.

For every val2017 image at input height 256 it runs the Keras import (float32) and the IR three
ways on OpenVINO's CPU plugin: float32 with float activations (what the import reproduces: the
int8 weights dequantised, activations not quantised), float32 as shipped (int8 fake-quantised
activations too) and the plugin's default precision (bf16 on AMX CPUs). Prints one JSON line:
``{"max_abs_diff": {..}, "map_scale", "ap": {runtime: AP}, "ms": {runtime: ms per image}}``; the
differences are against the Keras maps over all images, ``map_scale`` the largest |map value|.

    python bench/import_parity.py [--height 256] [--images 79]
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from keras_openpose.data.coco import CocoSplit  # noqa: E402
from keras_openpose.config import InferenceOptions  # noqa: E402
from keras_openpose.evaluate.runs import score_detections  # noqa: E402
from keras_openpose.inference.runtimes import OpenVINORuntime
from keras_openpose.inference.estimator import PoseEstimator  # noqa: E402
from keras_openpose.model.weights import PRETRAINED_IR, ensure_pretrained, openvino_float_model  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--height", type=int, default=256)
    p.add_argument("--images", type=int, default=0, help="first N images (0 = all)")
    p.add_argument("--ir", default=str(PRETRAINED_IR))
    a = p.parse_args()
    split = CocoSplit(REPO / "dataset" / "sample", "val2017")
    ids = split.image_ids[:a.images or None]
    opts = InferenceOptions(box_size=a.height)
    runs = {"keras_fp32": PoseEstimator.from_weights(ensure_pretrained(), opts),
            "ir_fp32_float_activations": PoseEstimator(OpenVINORuntime(a.ir, exact=True, model=openvino_float_model(a.ir)), opts),
            "ir_fp32_as_shipped": PoseEstimator(OpenVINORuntime(a.ir, exact=True, model=openvino_float_model(a.ir, True)), opts),
            "ir_default_precision": PoseEstimator(OpenVINORuntime(a.ir), opts)}
    dets = {k: [] for k in runs}
    ms = {k: [] for k in runs}
    diff = {k: 0.0 for k in runs if k != "keras_fp32"}
    scale = 0.0
    for i in ids:
        img = split.read(i)
        ref = None
        for k, est in runs.items():
            t0 = time.perf_counter()
            heat, paf, stride = est.maps(img)
            people = est.decode(heat, paf, stride, img.shape[:2])
            ms[k].append(1000 * (time.perf_counter() - t0))
            dets[k] += [{"image_id": int(i), "category_id": 1, **q} for q in people]
            if ref is None:
                ref = (heat, paf)
                scale = max(scale, float(np.abs(heat).max()), float(np.abs(paf).max()))
            else:
                diff[k] = max(diff[k], float(np.abs(heat - ref[0]).max()), float(np.abs(paf - ref[1]).max()))
    ap = {k: score_detections(split, ids, d)["stats"]["AP"] for k, d in dets.items()}
    print(json.dumps({"images": len(ids), "height": a.height, "max_abs_diff": diff, "map_scale": scale,
                      "ap": ap, "ms": {k: float(np.median(v)) for k, v in ms.items()}}))


if __name__ == "__main__":
    main()
