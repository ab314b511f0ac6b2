#!/usr/bin/env python
"""Input-pipeline benchmark: samples per second, store read + JPEG decode + effect + augmentation +
targets, on one core and on all cores (tf.data parallel map). Prints one JSON line:
{"samples_per_s_1core": ..., "samples_per_s_all": ..., "cores": n}. Run: python bench/data_pipeline.py
"""
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(n=400):
    from keras_openpose.data.coco import CocoSplit
    from keras_openpose.codec import DEFAULT_CODEC
    from keras_openpose.config import AugmentConfig
    from keras_openpose.data.pipeline import SampleMaker, make_dataset
    from keras_openpose.data.store import Store, build_store
    split = CocoSplit(REPO / "dataset" / "sample", "train2017")
    with tempfile.TemporaryDirectory() as d:
        build_store(split, Path(d) / "s.h5", progress=False)
        maker = SampleMaker(Store(Path(d) / "s.h5"), AugmentConfig(), DEFAULT_CODEC, "normal")
        import cv2
        threads = cv2.getNumThreads()
        cv2.setNumThreads(1)  # one core: no OpenCV worker threads either
        maker.make(0, 0)
        t0 = time.perf_counter()
        for i in range(n // 4):
            maker.make(i, i)
        one = (n // 4) / (time.perf_counter() - t0)
        cv2.setNumThreads(threads)
        ds = make_dataset(maker, 10, n // 10, stages=6, seed=0)
        it = iter(ds)
        next(it)
        t0 = time.perf_counter()
        k = sum(1 for _ in it)
        allc = k * 10 / (time.perf_counter() - t0)
    print(json.dumps({"samples_per_s_1core": round(one, 1), "samples_per_s_all": round(allc, 1),
                      "cores": os.cpu_count(), "crop": 368}))


if __name__ == "__main__":
    main()
