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
    from keras_openpose.data.coco import CocoSplit
    return CocoSplit(SAMPLE, "train2017")


@pytest.fixture(scope="session")
def val_split():
    from keras_openpose.data.coco import CocoSplit
    return CocoSplit(SAMPLE, "val2017")


@pytest.fixture(scope="session")
def vgg19_network():
    """The 52 M-parameter CMU network, built once per test session (about 4 s and 200 MB each time).
    Tests read its structure or load weights into it; none may depend on its initial weights."""
    from keras_openpose.model.networks import build_model
    return build_model("vgg19")


@pytest.fixture(scope="session")
def train_store(tmp_path_factory, train_split):
    from keras_openpose.data.store import build_store
    path = tmp_path_factory.mktemp("store") / "train2017.h5"
    build_store(train_split, path, workers=2, progress=False)
    return path


def render_gt_maps(split, image_id, box=368, codec=None):
    """Ground-truth heatmaps/PAFs of an image as the network would see it (height resized to
    ``box``): ``(heatmaps, pafs, stride)`` with ``stride`` = image pixels per cell."""
    from keras_openpose.codec import DEFAULT_CODEC
    from keras_openpose.data.masks import keypoints_array
    codec = codec or DEFAULT_CODEC
    im = split.images[image_id]
    H, W = im["height"], im["width"]
    stride = codec.stride * H / box
    anns = [a for a in split.anns_by_image[image_id] if a["num_keypoints"] > 0 and not a["iscrowd"]]
    hr, wr = box, int(round(W * box / H))
    heat, paf = codec.encode(keypoints_array(anns, codec.skeleton.num_keypoints), (H, W), stride=stride,
                             map_shape=codec.map_shape((hr, wr)))
    return heat, paf, stride


#: Small real COCO-format sets with other skeletons (research-only images: read from ../shared, never copied).
SHARED_KEYPOINTS = REPO.parent / "shared" / "data" / "keypoints"


def shared_split(annotation: str):
    """The :class:`CocoSplit` of ``../shared/data/keypoints/<annotation>`` (images beside the JSON)."""
    from keras_openpose.data.coco import CocoSplit
    ann = SHARED_KEYPOINTS / annotation
    return CocoSplit(ann.parent, ann.stem, ann, ann.parent)
