#!/usr/bin/env python
"""Train the domain classifier (thin wrapper: see keras_openpose.cli.train_classifier; --help for usage)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from keras_openpose.cli import train_classifier, run  # noqa: E402

if __name__ == "__main__":
    run(train_classifier)
