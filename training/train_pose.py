#!/usr/bin/env python
"""Train one CPM/PAF expert (thin wrapper: see keras_openpose.cli.train_pose; --help for usage)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from keras_openpose.cli import train_pose, run  # noqa: E402

if __name__ == "__main__":
    run(train_pose)
