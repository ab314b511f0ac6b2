"""``python -m keras_openpose.predict``: poses in an image, folder, video or webcam (see ``--help``)."""
import sys

from ..cli import run
from ..cli.deploy import predict

run(predict, sys.argv[1:])
