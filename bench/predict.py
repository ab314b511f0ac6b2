"""Milliseconds per stage of single-image inference (read, resize, network, peaks, grouping, drawing)
for each network x runtime, one JSON line each. Untrained weights (the network's cost does not
depend on them; the decoder's does, see bench/decode.py). Runtimes are timed interleaved, image by
image, so a slow phase of a shared machine hits them alike.

    python bench/predict.py                                  # lightweight at 256 on every runtime
    python bench/predict.py --networks lightweight:256,vgg19:368 --runtimes keras_bf16,openvino
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

EXPORTS = {"onnx": ("onnx", ".onnx"), "litert": ("litert", ".tflite"), "openvino": ("openvino", ".xml")}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--networks", default="lightweight:256")
    p.add_argument("--runtimes", default="keras_fp32,keras_bf16,onnx,litert,openvino")
    p.add_argument("--images", type=int, default=12)
    p.add_argument("--repeat", type=int, default=2)
    a = p.parse_args()
    import cv2

    from keras_openpose.codec import find_peaks
    from keras_openpose.coco import CocoSplit
    from keras_openpose.config import InferenceOptions
    from keras_openpose.export import export_model
    from keras_openpose.inference import PoseEstimator, preprocess
    from keras_openpose.model import build_model, save_model_atomic
    from keras_openpose.visualize import draw_poses
    split = CocoSplit(REPO / "dataset" / "sample", "val2017")
    paths = [split.image_path(i) for i in split.image_ids[:a.images]]
    with tempfile.TemporaryDirectory() as d:
        for spec in a.networks.split(","):
            net, height = spec.split(":")
            opts = InferenceOptions(box_size=int(height))
            ests = {}
            for rt in a.runtimes.split(","):
                if rt.startswith("keras"):
                    precision = "float32" if rt == "keras_fp32" else "mixed_bfloat16"
                    f = save_model_atomic(build_model(net, precision=precision), Path(d) / f"{net}_{rt}.keras")
                else:
                    src = Path(d) / f"{net}_fp32.keras"
                    if not src.exists():
                        save_model_atomic(build_model(net, precision="float32"), src)
                    fmt, suffix = EXPORTS[rt]
                    f = Path(d) / f"{net}{suffix}"
                    export_model(src, fmt, f)
                ests[rt] = PoseEstimator.from_weights(f, opts)
            t = {rt: {k: [] for k in ("read", "resize", "network", "peaks", "grouping", "drawing")} for rt in ests}
            order = list(ests)
            for rep in range(a.repeat + 1):
                for k, path in enumerate(paths):
                    for rt in order[k % len(order):] + order[:k % len(order)]:
                        e = ests[rt]
                        t0 = time.perf_counter()
                        img = cv2.imread(str(path))
                        t1 = time.perf_counter()
                        x, s, (hr, wr) = preprocess(img, opts.box_size, 1.0, e.codec.stride, opts.max_side)
                        t2 = time.perf_counter()
                        paf, heat = e.runtime(x[None])
                        h, w = -(-hr // e.codec.stride), -(-wr // e.codec.stride)
                        heat, paf = heat[0, :h, :w], paf[0, :h, :w]
                        t3 = time.perf_counter()
                        find_peaks(heat[..., :-1], e.codec.decode_options.peak_threshold)
                        t4 = time.perf_counter()
                        people = e.codec.decode(heat, paf, img.shape[:2], stride=e.codec.stride / s)
                        t5 = time.perf_counter()
                        draw_poses(img, people, e.skeleton)
                        t6 = time.perf_counter()
                        if rep:   # the first pass warms up (tracing, allocation)
                            for key, v in zip(t[rt], (t1 - t0, t2 - t1, t3 - t2, t4 - t3, max(0.0, (t5 - t4) - (t4 - t3)), t6 - t5)):
                                t[rt][key].append(1000 * v)
            for rt, stages in t.items():
                med = {k: round(float(np.median(v)), 2) for k, v in stages.items()}
                total = sum(med.values())
                print(json.dumps({"network": net, "height": int(height), "runtime": rt, "ms": med,
                                  "total_ms": round(total, 1), "fps": round(1000 / total, 1)}), flush=True)


if __name__ == "__main__":
    main()
