import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_OPENPOSE_TENSORBOARD", "0")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SAMPLE = REPO / "dataset" / "sample"


@pytest.fixture(scope="session")
def train_split():
    from keras_openpose.coco import CocoSplit
    return CocoSplit(SAMPLE, "train2017")


@pytest.fixture(scope="session")
def val_split():
    from keras_openpose.coco import CocoSplit
    return CocoSplit(SAMPLE, "val2017")


@pytest.fixture(scope="session")
def train_store(tmp_path_factory, train_split):
    from keras_openpose.store import build_store
    path = tmp_path_factory.mktemp("store") / "train2017.h5"
    build_store(train_split, path, workers=2, progress=False)
    return path


def render_gt_maps(split, image_id, box=368, stride=8):
    """Ground-truth heatmaps/PAFs of an image as the network would see it (height resized to box)."""
    import numpy as np

    from keras_openpose.codec import encode_targets
    from keras_openpose.coco import keypoints_array
    from keras_openpose.skeleton import OPENPOSE_COCO18 as S
    im = split.images[image_id]
    H, W = im["height"], im["width"]
    s = box / H
    anns = [a for a in split.anns_by_image[image_id] if a["num_keypoints"] > 0 and not a["iscrowd"]]
    parts = S.keypoints_to_parts(keypoints_array(anns))
    parts[..., :2] = (parts[..., :2] + 0.5) * s - 0.5
    h, w = int(np.ceil(H * s / stride)), int(np.ceil(W * s / stride))
    heat, paf = encode_targets(parts, (h, w))
    return heat, paf, stride / s
