#!/usr/bin/env python
"""Convert CMU Caffe or reference Keras 2 weights (thin wrapper: see keras_openpose.cli.convert_weights; --help for usage)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from keras_openpose.cli import convert_weights, run  # noqa: E402

if __name__ == "__main__":
    run(convert_weights)
