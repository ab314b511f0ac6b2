"""Milliseconds per stage of single-image inference (read, resize, network, peaks, grouping, drawing)
for each network x runtime, one JSON line each. Untrained weights unless ``--weights`` (the
network's cost does not depend on them; the decoder's does, see bench/decode.py). Runtimes are timed
interleaved, image by image, so a slow phase of a shared machine hits them alike; ONNX Runtime's
threads do not spin between runs (they would take the CPU from the runtime after them:
bench/int8.py ``without_spinning``).

    python bench/predict.py                                  # lightweight at 256 on every runtime
    python bench/predict.py --networks lightweight:256,vgg19:368 --runtimes keras_bf16,openvino
    python bench/predict.py --networks vgg19:368 --runtimes keras_bf16,openvino,openvino_int8
    python bench/predict.py --weights models/pose_normal.keras --runtimes lwop_torch,keras_fp32,onnx_int8,openvino_int8

A runtime may end in ``_int8`` (``onnx_int8``, ``openvino_int8``, ``litert_int8``: post-training
quantisation calibrated on the sample's train2017 images; its accuracy on the trained network:
bench/int8.py). A network name may end in ``-bn`` or ``-gn`` (batch norm / group norm instead of the
config's own; ``lightweight`` is Lightweight OpenPose layer for layer, with biases and no norm layer,
as the trained network whose batch norm was folded). ``lwop_torch`` is Lightweight OpenPose's CPU
path rebuilt from its paper (bench/lwop_torch.py: the same architecture in PyTorch, batch norm
unfolded as its training code runs it), timed in the same loop.
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

sys.path.insert(0, str(REPO / "bench"))
from int8 import without_spinning  # noqa: E402

EXPORTS = {"onnx": ("onnx", ".onnx"), "litert": ("litert", ".tflite"), "openvino": ("openvino", ".xml")}
CALIBRATION = REPO / "dataset" / "sample" / "train2017"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--networks", default="lightweight:256")
    p.add_argument("--runtimes", default="keras_fp32,keras_bf16,onnx,litert,openvino,lwop_torch")
    p.add_argument("--images", type=int, default=12)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--weights", default=None,
                   help="a trained .keras network for every runtime instead of untrained weights (e.g. "
                        "models/pose_normal.keras with --networks lightweight:256): int8 then quantises a real "
                        "network, and peaks / grouping decode real maps")
    a = p.parse_args()
    import cv2

    import dataclasses

    from keras_openpose.codec import DEFAULT_CODEC, find_peaks
    from keras_openpose.data.coco import CocoSplit
    from keras_openpose.config import InferenceOptions
    from keras_openpose.errors import DataError
    from keras_openpose.export import export_model
    from keras_openpose.inference.estimator import PoseEstimator, preprocess
    from keras_openpose.model.networks import (PoseNetwork, build_model, get_config, load_network,
                                               save_model_atomic)

    def network(cfg, precision):
        if not a.weights:
            return build_model(cfg, precision=precision)
        trained = load_network(a.weights)
        m = PoseNetwork.from_config(dict(trained.get_config(), precision=precision))
        m.set_weights(trained.get_weights())
        return m
    from keras_openpose.visualize import draw_poses
    split = CocoSplit(REPO / "dataset" / "sample", "val2017")
    paths = [split.image_path(i) for i in split.image_ids[:a.images]]
    with tempfile.TemporaryDirectory() as d:
        for spec in a.networks.split(","):
            net, height = spec.split(":")
            cfg = get_config(net.removesuffix("-bn").removesuffix("-gn"))
            if net.endswith(("-bn", "-gn")):
                cfg = dataclasses.replace(cfg, norm="batch" if net.endswith("-bn") else "group")
            opts = InferenceOptions(box_size=int(height))
            ests = {}
            for rt in a.runtimes.split(","):
                if rt == "lwop_torch":
                    sys.path.insert(0, str(REPO / "bench"))
                    from lwop_torch import LwopPath
                    ests[rt] = LwopPath(DEFAULT_CODEC, int(height))
                elif rt.startswith("keras"):
                    precision = "float32" if rt == "keras_fp32" else "mixed_bfloat16"
                    f = save_model_atomic(network(cfg, precision), Path(d) / f"{net}_{rt}.keras")
                else:
                    src = Path(d) / f"{net}_fp32.keras"
                    if not src.exists():
                        save_model_atomic(network(cfg, "float32"), src)
                    fmt, suffix = EXPORTS[rt.removesuffix("_int8")]
                    f = Path(d) / f"{net}_{rt}{suffix}"
                    int8 = rt.endswith("_int8")
                    try:
                        export_model(src, fmt, f, precision="int8" if int8 else "fp32",
                                     calibration_images=CALIBRATION if int8 else None)
                    except DataError as e:   # e.g. OpenVINO int8 of a group-norm network
                        print(json.dumps({"network": net, "height": int(height), "runtime": rt, "error": str(e)}))
                        continue
                if rt != "lwop_torch":
                    ests[rt] = PoseEstimator.from_weights(f, opts)
                    if f.suffix == ".onnx":
                        without_spinning(ests[rt].runtime, f)
            t = {rt: {k: [] for k in ("read", "resize", "network", "peaks", "grouping", "drawing")} for rt in ests}
            order, rng = list(ests), np.random.default_rng(0)
            for rep in range(a.repeat + 1):
                for k, path in enumerate(paths):
                    for rt in [order[j] for j in rng.permutation(len(order))]:   # after a random other one
                        e = ests[rt]
                        t0 = time.perf_counter()
                        img = cv2.imread(str(path))
                        t1 = time.perf_counter()
                        if rt == "lwop_torch":
                            ms = e.stages(img)
                            t6 = time.perf_counter()
                            draw_poses(img, [], DEFAULT_CODEC.skeleton)
                            if rep:
                                ms.update(read=1000 * (t1 - t0), drawing=1000 * (time.perf_counter() - t6))
                                for key in t[rt]:
                                    t[rt][key].append(ms[key])
                            continue
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
