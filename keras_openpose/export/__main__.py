"""``python -m keras_openpose.export``: export a trained network (see ``--help``)."""
import sys

from ..cli import export, run

if __name__ == "__main__":
    run(export, sys.argv[1:])
