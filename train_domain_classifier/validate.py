#!/usr/bin/env python
"""Run the domain classifier on a folder (thin wrapper: see keras_openpose.cli.validate_classifier; --help for usage)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from keras_openpose.cli import validate_classifier, run  # noqa: E402

if __name__ == "__main__":
    run(validate_classifier)
