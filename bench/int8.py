#!/usr/bin/env python
"""AP and network milliseconds of the COCO-trained Lightweight OpenPose (``models/pose_normal.keras``,
made from the shipped IR when missing) on every runtime and precision, measured in one process.

Exports (``keras_openpose.export``, each with its parity check; int8 calibrated on the sample's
``train2017`` images, never on ``val2017``): ONNX fp32 / int8, OpenVINO fp32 (run in f32 and at the
plugin's default precision, bf16 on AMX CPUs) / int8, LiteRT fp32 / int8. Then every ``val2017``
image at input height ``--height`` goes through every runtime, interleaved (in a new random order image by
image, so a slow phase of a shared machine hits them alike; ONNX Runtime's threads do not spin
between runs, see ``without_spinning``): the maps of the first run are decoded for
the AP (COCO keypoint AP, this project's decoder), a second run on the same input is timed (the
network alone, without the shape set-up of a new input size, as in a video). An export that fails its
parity check is reported with its error and skipped.

Prints one JSON line: ``{"height", "images", "calibration", "runtimes": {name: {"ap", "ap_ratio",
"ms", "ms_new_size", "export": {...}}}}``, ``ap_ratio`` = AP / Keras fp32 AP, ``ms`` the median
network time at the input size of the run before, ``ms_new_size`` that of the first run of an image.

    python bench/int8.py [--height 256] [--images 0] [--runtimes keras_fp32,onnx_int8,...]
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

#: name -> (export format, export precision, OpenVINO in f32); keras_fp32 is the .keras file itself
RUNTIMES = {"keras_fp32": (None, None, False), "onnx_fp32": ("onnx", "fp32", False),
            "onnx_int8": ("onnx", "int8", False), "openvino_fp32": ("openvino", "fp32", True),
            "openvino_bf16": ("openvino", "fp32", False), "openvino_int8": ("openvino", "int8", False),
            "litert_fp32": ("litert", "fp32", False), "litert_int8": ("litert", "int8", False)}
SUFFIX = {"onnx": ".onnx", "openvino": ".xml", "litert": ".tflite"}


def without_spinning(runtime, path):
    """ONNX Runtime's threads spin after each run: in one process with other runtimes they take the
    CPU from the next one (on 2 cores OpenVINO int8 after it 35 ms instead of 19); off here, which
    leaves ONNX Runtime's own time unchanged within noise (23 ms int8)."""
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    runtime.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return runtime


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--height", type=int, default=256)
    p.add_argument("--images", type=int, default=0, help="first N val2017 images (0 = all)")
    p.add_argument("--runtimes", default=",".join(RUNTIMES))
    p.add_argument("--weights", default=None, help="a .keras network (default: the shipped Lightweight OpenPose)")
    a = p.parse_args()
    from keras_openpose.data.coco import CocoSplit
    from keras_openpose.config import InferenceOptions
    from keras_openpose.errors import DataError
    from keras_openpose.evaluate.runs import score_detections
    from keras_openpose.export import export_model
    from keras_openpose.inference.runtimes import OpenVINORuntime
    from keras_openpose.inference.estimator import PoseEstimator, preprocess
    from keras_openpose.model.weights import ensure_pretrained
    weights = Path(a.weights) if a.weights else ensure_pretrained()
    calibration = REPO / "dataset" / "sample" / "train2017"
    split = CocoSplit(REPO / "dataset" / "sample", "val2017")
    ids = split.image_ids[:a.images or None]
    opts = InferenceOptions(box_size=a.height)
    names = a.runtimes.split(",")
    ests, info = {}, {}
    with tempfile.TemporaryDirectory() as d:
        files = {}
        for name in names:
            fmt, precision, exact = RUNTIMES[name]
            if fmt is None:
                ests[name] = PoseEstimator.from_weights(weights, opts)
                continue
            f = files.get((fmt, precision))
            if f is None:
                f = Path(d) / f"{fmt}_{precision}" / f"pose{SUFFIX[fmt]}"
                t0 = time.perf_counter()
                try:
                    rep = export_model(weights, fmt, f, precision,
                                       calibration_images=calibration if precision == "int8" else None)
                except DataError as e:
                    info[name] = {"error": str(e)}
                    continue
                files[(fmt, precision)] = f
                info[name] = {"parity_max_abs_diff": float(f"{rep['max_abs_diff']:.3g}"), "tolerance": rep["tolerance"],
                              "export_s": round(time.perf_counter() - t0, 1)}
            elif name not in info:
                info[name] = {"same_file_as": next(k for k in names if RUNTIMES[k][:2] == (fmt, precision))}
            est = PoseEstimator.from_weights(f, opts)
            if fmt == "onnx":
                without_spinning(est.runtime, f)
            if fmt == "openvino" and exact:
                est = PoseEstimator(OpenVINORuntime(f, exact=True), opts)
            ests[name] = est
        order, rng = list(ests), np.random.default_rng(0)
        dets = {k: [] for k in order}
        ms = {k: [] for k in order}
        first = {k: [] for k in order}
        for n, i in enumerate(ids):
            img = split.read(i)
            for name in [order[j] for j in rng.permutation(len(order))]:   # after a random other one
                e = ests[name]
                st = e.codec.stride
                x, s, (hr, wr) = preprocess(img, opts.box_size, 1.0, st, opts.max_side)
                t0 = time.perf_counter()
                paf, heat = e.runtime(x[None])
                t1 = time.perf_counter()
                e.runtime(x[None])
                ms[name].append(1000 * (time.perf_counter() - t1))
                first[name].append(1000 * (t1 - t0))
                h, w = -(-hr // st), -(-wr // st)
                people = e.decode(heat[0, :h, :w], paf[0, :h, :w], st / s, img.shape[:2])
                dets[name] += [{"image_id": int(i), "category_id": 1, **q} for q in people]
    out = {}
    for name in names:
        if name in ests:
            out[name] = {"ap": round(score_detections(split, ids, dets[name])["stats"]["AP"], 4),
                         "ms": round(float(np.median(ms[name])), 2),
                         "ms_new_size": round(float(np.median(first[name])), 2)}
        if name in info:
            out.setdefault(name, {})["export"] = info[name]
    ref = out.get("keras_fp32", {}).get("ap")
    for v in out.values():
        if ref and "ap" in v:
            v["ap_ratio"] = round(v["ap"] / ref, 3)
    print(json.dumps({"weights": str(weights), "height": a.height, "images": len(ids),
                      "calibration": str(calibration.relative_to(REPO)), "runtimes": out}))


if __name__ == "__main__":
    main()
