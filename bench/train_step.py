#!/usr/bin/env python
"""Training-step benchmark: seconds per step and peak memory per network config, batch size and
precision, on this machine (synthetic 368x368 batches; the input pipeline is benchmarked apart).
Each combination runs in a fresh process so its peak RSS is its own. Prints one JSON line:
{"results": [{"config", "batch", "precision", "step_s", "images_per_hour", "peak_rss_mb"}, ...]}.

    python bench/train_step.py                          # vgg19 + lightweight, batch 1 and 8, fp32 + bf16
    python bench/train_step.py --configs tiny --batches 8 --steps 5
"""
import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CHILD = r"""
import os, resource, sys, time, json
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
sys.path.insert(0, {repo!r})
import numpy as np, tensorflow as tf
from keras_openpose.config import TrainConfig
from keras_openpose.model import build_model
from keras_openpose.train import compile_model, set_precision
set_precision({precision!r})
m = compile_model(build_model({config!r}), TrainConfig(learning_rate=1e-5))
b, c = {batch}, 368
x = np.random.default_rng(0).uniform(0, 255, (b, c, c, 3)).astype(np.float32)
g = c // m.codec.stride
ys = [np.zeros((b, g, g, o.shape[-1] + 1), np.float32) for o in m.outputs]
m.train_on_batch(x, ys)  # trace + warm-up
t0 = time.perf_counter()
for _ in range({steps}):
    m.train_on_batch(x, ys)
dt = (time.perf_counter() - t0) / {steps}
print(json.dumps({{"step_s": dt, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", default="vgg19,lightweight")
    p.add_argument("--batches", default="1,8")
    p.add_argument("--precisions", default="float32,mixed_bfloat16")
    p.add_argument("--steps", type=int, default=3)
    a = p.parse_args()
    results = []
    for config in a.configs.split(","):
        for batch in map(int, a.batches.split(",")):
            for precision in a.precisions.split(","):
                code = CHILD.format(repo=str(REPO), precision=precision, config=config, batch=batch, steps=a.steps)
                r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
                if r.returncode:
                    results.append({"config": config, "batch": batch, "precision": precision,
                                    "error": r.stderr.strip().splitlines()[-1][:200]})
                    continue
                out = json.loads(r.stdout.strip().splitlines()[-1])
                results.append({"config": config, "batch": batch, "precision": precision,
                                "step_s": round(out["step_s"], 3),
                                "images_per_hour": round(batch * 3600 / out["step_s"]),
                                "peak_rss_mb": round(out["peak_rss_mb"])})
                print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    print(json.dumps({"results": results, "cpu_count": os.cpu_count()}))


if __name__ == "__main__":
    main()
