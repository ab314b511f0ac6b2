"""``python -m keras_openpose.predict``: poses in an image, folder, video or webcam (see ``--help``)."""
import sys

from .cli import predict, run

if __name__ == "__main__":
    run(predict, sys.argv[1:])
