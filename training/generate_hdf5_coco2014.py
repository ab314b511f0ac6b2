#!/usr/bin/env python
"""Build the compact training store of a COCO split (thin wrapper: see keras_openpose.cli.generate_hdf5; --help for usage)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from keras_openpose.cli import generate_hdf5, run  # noqa: E402

if __name__ == "__main__":
    run(generate_hdf5)
