#!/usr/bin/env python
"""Evaluate the domain ensemble (route / fuse / all) (thin wrapper: see keras_openpose.cli.ensemble; --help for usage)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from keras_openpose.cli import ensemble, run  # noqa: E402

if __name__ == "__main__":
    run(ensemble)
