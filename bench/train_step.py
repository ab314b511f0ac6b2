#!/usr/bin/env python
"""Training-step benchmark: seconds per step of the project's training loop
(:class:`keras_openpose.train.loop.TrainLoop`) and of Keras ``model.fit``, side by side in the same
process, interleaved (same network, batch, crop, precision, synthetic batches; the input pipeline
is benchmarked apart by bench/data_pipeline.py), and the loop on N loopback workers
(MultiWorkerMirroredStrategy, the same global batch). Each combination runs in fresh processes.
Prints one JSON line per result, then {"results": [...]}.

    python bench/train_step.py                                   # tiny + lightweight, batch 8, bf16
    python bench/train_step.py --configs vgg19 --batches 2 --precisions float32 --workers 0
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
import numpy as np
from keras_openpose.train.loop import TrainLoop, compile_model, get_strategy, set_precision
strategy = get_strategy("multiworker" if os.environ.get("TF_CONFIG") else "none")   # first
import tensorflow as tf
from keras_openpose.config import TrainConfig
from keras_openpose.model.networks import build_model
set_precision({precision!r})
with strategy.scope():
    m = compile_model(build_model({config!r}), TrainConfig(learning_rate=1e-7, optimizer="sgd"))
b, c = {batch}, {crop}
g = c // m.codec.stride
rng = np.random.default_rng(0)
x = rng.uniform(0, 255, (b, c, c, 3)).astype(np.float32)
ys = tuple(np.concatenate([rng.uniform(0, 1, (b, g, g, o.shape[-1])), np.ones((b, g, g, 1))], -1).astype(np.float32)
           for o in m.outputs)
loop = TrainLoop(m, strategy, "/nonexistent", verbose=0, tensorboard=False)

def data(start, replicas):
    first, count, total = replicas
    per = b // total
    return tf.data.Dataset.from_tensors((x[:per], tuple(y[:per] for y in ys))).repeat()
it = loop.iterator(data)
fit_ds = tf.data.Dataset.from_tensors((x, ys)).repeat()
k, rounds = {steps}, {rounds}
loop.step(it)                                    # trace + warm-up
fit = os.environ.get("TF_CONFIG") is None
if fit:
    m.fit(fit_ds, epochs=1, steps_per_epoch=1, verbose=0)
import keras

class BatchEnds(keras.callbacks.Callback):
    # fit's step time: the gaps between consecutive batch ends inside one fit call (the epoch's
    # start-up is not a step: fit ran once over the whole schedule in training)
    def on_train_batch_end(self, batch, logs=None):
        ends.append(time.perf_counter())
t_loop, t_fit = [], []
for _ in range(rounds):
    stamps = [time.perf_counter()]
    for _ in range(k):
        loop.step(it)
        stamps.append(time.perf_counter())
    t_loop += list(np.diff(stamps))
    if fit:
        ends = []
        m.fit(fit_ds, epochs=1, steps_per_epoch=k + 1, verbose=0, callbacks=[BatchEnds()])
        t_fit += list(np.diff(ends))
print(json.dumps({{"loop_s": float(np.median(t_loop)), "fit_s": float(np.median(t_fit)) if t_fit else None,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def _child(code, env=None, workers=0):
    if not workers:
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
        return r.returncode, r.stdout, r.stderr
    sys.path.insert(0, str(REPO))
    from keras_openpose.train.launch import tf_configs
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=dict(os.environ, TF_CONFIG=cfg)) for cfg in tf_configs(workers)]
    outs = [p.communicate() for p in procs]
    bad = [(p.returncode, o, e) for p, (o, e) in zip(procs, outs) if p.returncode]
    return bad[0] if bad else (0, outs[0][0], outs[0][1])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", default="tiny,lightweight")
    p.add_argument("--batches", default="8")
    p.add_argument("--precisions", default="mixed_bfloat16")
    p.add_argument("--crop", type=int, default=368)
    p.add_argument("--steps", type=int, default=3, help="timed steps per round (median over all rounds)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (the median is reported)")
    p.add_argument("--workers", type=int, default=2, help="also time the loop on N loopback workers (0: no)")
    a = p.parse_args()
    results = []
    for config in a.configs.split(","):
        for batch in map(int, a.batches.split(",")):
            for precision in a.precisions.split(","):
                code = CHILD.format(repo=str(REPO), precision=precision, config=config, batch=batch, crop=a.crop,
                                    steps=a.steps, rounds=a.rounds)
                for workers in ([1, a.workers] if a.workers > 1 else [1]):
                    row = {"config": config, "batch": batch, "crop": a.crop, "precision": precision,
                           "workers": workers}
                    rc, out, err = _child(code, workers=workers if workers > 1 else 0)
                    if rc:
                        row["error"] = (err.strip().splitlines() or ["?"])[-1][:200]
                    else:
                        r = json.loads(out.strip().splitlines()[-1])
                        row["loop_step_s"] = round(r["loop_s"], 3)
                        if r["fit_s"] is not None:
                            row["fit_step_s"] = round(r["fit_s"], 3)
                            row["loop_vs_fit"] = round(r["fit_s"] / r["loop_s"], 2)
                        row["images_per_hour"] = round(batch * 3600 / r["loop_s"])
                        row["peak_rss_mb"] = round(r["peak_rss_mb"])
                    results.append(row)
                    print(json.dumps(row), flush=True)
    print(json.dumps({"results": results, "cpu_count": os.cpu_count()}))


if __name__ == "__main__":
    main()
