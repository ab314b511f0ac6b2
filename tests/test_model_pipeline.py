import numpy as np
import pytest

from keras_openpose.data.augment import WarpParams, transform_points, warp_matrix
from keras_openpose.codec import DEFAULT_CODEC
from keras_openpose.config import AugmentConfig
from keras_openpose.skeleton import OPENPOSE_COCO18 as S


def test_vgg19_is_the_cmu_network(vgg19_network):
    m = vgg19_network
    assert m.count_params() == 52_311_446
    names = {layer.name for layer in m.layers}
    for n in ("conv1_1", "conv4_2", "conv4_3_CPM", "conv4_4_CPM", "conv5_5_CPM_L1", "conv5_5_CPM_L2",
              "Mconv1_stage2_L1", "Mconv7_stage6_L1", "Mconv7_stage6_L2"):
        assert n in names
    assert [o.shape[-1] for o in m.outputs] == [38, 19] * 6
    assert m.get_layer("Mconv1_stage2_L1").kernel.shape == (7, 7, 185, 128)


def test_tiny_network_forward_shapes():
    from keras_openpose.model.networks import build_model, inference_model
    m = inference_model(build_model("tiny"))
    paf, heat = m(np.zeros((1, 96, 128, 3), np.float32))
    assert paf.shape == (1, 12, 16, 38) and heat.shape == (1, 12, 16, 19)


def test_flip_swaps_left_and_right_parts():
    cfg = AugmentConfig(crop=368)
    kp = np.zeros((1, 17, 3), np.float32)
    kp[0, 5] = (100, 100, 2)   # left shoulder
    kp[0, 6] = (140, 100, 2)   # right shoulder
    from keras_openpose.data.augment import augment_sample
    img = np.zeros((300, 300, 3), np.uint8)
    mask = np.ones((300, 300), np.uint8)

    class FlipRng:  # every draw at its midpoint, and a flip
        def uniform(self, lo=0.0, hi=1.0):
            return 0.0 if (lo, hi) == (0.0, 1.0) else (lo + hi) / 2
    _, _, parts = augment_sample(img, mask, kp, (120, 100), 200.0, FlipRng(), cfg, DEFAULT_CODEC)
    ls, rs = S.parts.index("left_shoulder"), S.parts.index("right_shoulder")
    # mirrored, the point labelled right shoulder (x=140) lands left of the crop centre and, being the
    # mirror image of a right shoulder, is labelled left shoulder: the labels keep their image order
    s = 0.6 * 368 / 200 * 0.8
    assert parts[0, ls, 0] == pytest.approx(183.5 - 20 * s, abs=1e-3)
    assert parts[0, rs, 0] == pytest.approx(183.5 + 20 * s, abs=1e-3)
    assert parts[0, ls, 2] == 2 and parts[0, rs, 2] == 2


def test_rotated_heatmap_peaks_at_warped_keypoint():
    from keras_openpose.codec import cell_centres, encode_heatmaps
    cfg = AugmentConfig(crop=368)
    p = WarpParams(scale=0.8, angle=30.0, dx=10, dy=-5, flip=False)
    m = warp_matrix((200, 150), 250.0, p, cfg)
    src = np.array([[260.0, 120.0]])
    dst = transform_points(src, m)[0]
    # the same point as a bright pixel, warped by OpenCV, lands where transform_points says
    import cv2
    img = np.zeros((400, 400), np.float32)
    img[120, 260] = 1.0
    warped = cv2.warpAffine(img, m, (368, 368), flags=cv2.INTER_LINEAR)
    yx = np.unravel_index(np.argmax(warped), warped.shape)
    assert abs(yx[1] - dst[0]) <= 1 and abs(yx[0] - dst[1]) <= 1
    parts = np.zeros((1, 18, 3), np.float32)
    parts[0, 0] = (dst[0], dst[1], 2)
    heat = encode_heatmaps(parts, (46, 46))
    i, j = np.unravel_index(np.argmax(heat[..., 0]), (46, 46))
    assert abs(cell_centres(46, 8)[j] - dst[0]) <= 4 and abs(cell_centres(46, 8)[i] - dst[1]) <= 4


def test_scale_augmentation_is_applied():
    cfg = AugmentConfig(crop=368)
    small = warp_matrix((0, 0), 200.0, WarpParams(0.5, 0, 0, 0, False), cfg)
    big = warp_matrix((0, 0), 200.0, WarpParams(1.1, 0, 0, 0, False), cfg)
    assert np.linalg.det(small[:, :2]) == pytest.approx((0.6 * 368 / 200 * 0.5) ** 2)
    assert np.linalg.det(big[:, :2]) / np.linalg.det(small[:, :2]) == pytest.approx((1.1 / 0.5) ** 2)


def test_pipeline_batches_are_deterministic(train_store):
    from keras_openpose.data.pipeline import SampleMaker, make_dataset
    from keras_openpose.data.store import Store
    maker = SampleMaker(Store(train_store), AugmentConfig(crop=128), DEFAULT_CODEC, "dark")
    b1 = next(iter(make_dataset(maker, 2, 3, stages=2, seed=5)))
    b2 = next(iter(make_dataset(maker, 2, 3, stages=2, seed=5)))
    img, targets = b1
    assert img.shape == (2, 128, 128, 3) and len(targets) == 4
    assert targets[0].shape == (2, 16, 16, 39) and targets[1].shape == (2, 16, 16, 20)
    assert np.array_equal(img.numpy(), b2[0].numpy())
    # resuming at step 1 yields the second batch of the full stream
    full = list(make_dataset(maker, 2, 3, stages=2, seed=5))
    resumed = next(iter(make_dataset(maker, 2, 3, stages=2, seed=5, start_step=1)))
    assert np.array_equal(full[1][0].numpy(), resumed[0].numpy())
    mask = targets[1].numpy()[..., -1]
    assert set(np.unique(mask)) <= {0.0, 1.0}


def test_tf_data_service_on_loopback(train_store):
    """The same pipeline, preprocessed by tf.data service workers (dispatcher + 2 workers on loopback)."""
    from keras_openpose.data.pipeline import SampleMaker, distribute, make_dataset, start_data_service
    from keras_openpose.data.store import Store
    maker = SampleMaker(Store(train_store), AugmentConfig(crop=64), DEFAULT_CODEC, "normal")
    local = [b[0].numpy() for b in make_dataset(maker, 1, 4, stages=1, seed=3)]
    dispatcher, workers = start_data_service(workers=2)
    remote = [b[0].numpy() for b in distribute(make_dataset(maker, 1, 4, stages=1, seed=3), dispatcher.target)]
    # the workers split the samples among them: each is made once, identical to the local one
    assert len(remote) == len(local) == 4
    for r in remote:
        assert sum(np.array_equal(r, l) for l in local) == 1
