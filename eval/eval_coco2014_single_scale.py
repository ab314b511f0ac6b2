#!/usr/bin/env python
"""Evaluate one expert on a COCO split (thin wrapper: see keras_openpose.cli.eval_single_scale; --help for usage)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from keras_openpose.cli import eval_single_scale, run  # noqa: E402

if __name__ == "__main__":
    run(eval_single_scale)
