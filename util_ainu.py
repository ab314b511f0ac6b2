#!/usr/bin/env python
"""Expert disagreement per limb and whether it predicts error (thin wrapper: see keras_openpose.cli.disagreement; --help for usage)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[0]))
from keras_openpose.cli import disagreement, run  # noqa: E402

if __name__ == "__main__":
    run(disagreement)
