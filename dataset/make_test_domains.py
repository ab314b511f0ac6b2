#!/usr/bin/env python
"""Build the dark / motion-blur / half-resolution test domains (thin wrapper: see keras_openpose.cli.make_test_domains; --help for usage)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from keras_openpose.cli import make_test_domains, run  # noqa: E402

if __name__ == "__main__":
    run(make_test_domains)
