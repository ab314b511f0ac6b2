#!/usr/bin/env python
"""Check a COCO root (thin wrapper: see keras_openpose.cli.check_coco; --help for usage)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from keras_openpose.cli import check_coco, run  # noqa: E402

if __name__ == "__main__":
    run(check_coco)
