"""Round trips of everything the project serialises: ``Skeleton`` (dict, JSON, YAML), ``PafCodec``
(dict, JSON: what a model file holds), ``PoseNetwork`` (``get_config`` -> ``from_config``, and a
``.keras`` save/load: the same description and bit-identical maps), ``ExperimentConfig`` (YAML).
Each trip must give back the serialised form exactly, not only a similar object."""
import dataclasses
import json
import zipfile

import numpy as np
import pytest

from keras_openpose.codec import DecodeOptions, PafCodec
from keras_openpose.config import (AugmentConfig, ClassifierConfig, CodecConfig, DataConfig, ExperimentConfig,
                                   InferenceOptions, TrainConfig, to_dict)
from keras_openpose.skeleton import Skeleton, get_skeleton, shipped_skeletons


def _derived_skeleton():
    """A data-derived skeleton: user links that leave two keypoints apart, joined by added links;
    OKS sigmas and colours given (every optional field set)."""
    cat = {"name": "thing", "keypoints": ["left_a", "right_a", "b", "c"], "skeleton": [[1, 3]]}
    anns = [{"keypoints": [0, 0, 2, 10, 0, 2, 5, 3, 2, 5, 20, 2], "bbox": [0, 0, 10, 20]},
            {"keypoints": [1, 1, 2, 11, 1, 2, 6, 4, 2, 6, 21, 2], "bbox": [0, 0, 10, 20]}]
    s = Skeleton.from_coco(cat, sigmas=[0.025, 0.025, 0.05, 0.1], annotations=anns)
    return dataclasses.replace(s, colours=tuple((i * 40, 255 - i * 40, 7) for i in range(s.num_limbs)))


SKELETONS = [get_skeleton(n) for n in shipped_skeletons()] + [_derived_skeleton()]


@pytest.mark.parametrize("skeleton", SKELETONS, ids=lambda s: s.name)
def test_skeleton_round_trips(tmp_path, skeleton):
    d = skeleton.to_dict()
    assert Skeleton.from_dict(d) == skeleton
    assert Skeleton.from_dict(json.loads(json.dumps(d))).to_dict() == d            # as stored in a model file
    path = skeleton.to_yaml(tmp_path / "s.yaml")
    again = Skeleton.from_yaml(path)
    assert again == skeleton and again.to_dict() == d
    assert again.to_yaml(tmp_path / "t.yaml").read_text() == path.read_text()       # the YAML text is stable


def test_derived_skeleton_keeps_its_added_links():
    s = _derived_skeleton()
    assert s.limbs[0] == (0, 2) and len(s.added_links) == s.num_limbs - 1 == 2    # [1, 3] is 1-based: left_a-b
    assert s.flip_pairs == ((0, 1),) and Skeleton.from_dict(s.to_dict()).added_links == s.added_links


CODECS = [PafCodec(),
          PafCodec(get_skeleton("hand21"), stride=8, sigma=5.5, limb_width=3.25,
                   decode=DecodeOptions(peak_threshold=0.07, min_parts=5)),
          PafCodec(_derived_skeleton(), stride=4, sigma=2.0, limb_width=1.5)]


@pytest.mark.parametrize("codec", CODECS, ids=repr)
def test_codec_round_trips_and_encodes_the_same_maps(codec):
    d = codec.to_dict()
    back = PafCodec.from_dict(json.loads(json.dumps(d)))
    assert back == codec and back.to_dict() == d
    assert back.decode_options == codec.decode_options and back.skeleton == codec.skeleton
    K = codec.skeleton.num_keypoints
    rng = np.random.default_rng(0)
    kp = np.concatenate([rng.uniform(10, 90, (2, K, 2)), np.full((2, K, 1), 2.0)], -1).astype(np.float32)
    for a, b in zip(codec.encode(kp, (100, 120)), back.encode(kp, (100, 120))):
        np.testing.assert_array_equal(a, b)


def test_pose_network_config_and_file_round_trip(tmp_path):
    """A tiny network with a non-default skeleton, decoder options, domain and info: from_config
    gives the same config; the saved file holds it, and loads to the same config and the same maps."""
    import keras

    from keras_openpose.model.networks import PoseNetwork, build_model, load_network, save_model_atomic
    from keras_openpose.inference.runtimes import model_skeleton
    keras.utils.set_random_seed(3)
    codec = CODECS[1]
    m = build_model("tiny", codec, precision="float32", domain="dark")
    m.info.update({"steps": 3, "run": "runs/x"})
    cfg = m.get_config()
    assert cfg["codec"] == codec.to_dict() and cfg["domain"] == "dark" and cfg["info"]["steps"] == 3
    twin = PoseNetwork.from_config(json.loads(json.dumps(cfg)))
    assert twin.get_config() == cfg and twin.count_params() == m.count_params()
    path = save_model_atomic(m, tmp_path / "m.keras")
    with zipfile.ZipFile(path) as z:
        stored = json.loads(z.read("config.json"))
    assert stored["registered_name"] == "keras_openpose>PoseNetwork" and stored["config"]["codec"] == cfg["codec"]
    loaded = load_network(path)
    assert isinstance(loaded, PoseNetwork) and loaded.get_config() == cfg and loaded.codec == codec
    assert model_skeleton(path) == codec.skeleton
    x = np.random.default_rng(1).uniform(0, 255, (2, 64, 80, 3)).astype(np.float32)
    for a, b in zip(m.predict(x, verbose=0), loaded.predict(x, verbose=0)):
        np.testing.assert_array_equal(a, b)
    assert [o.shape[-1] for o in loaded.outputs[-2:]] == [codec.num_pafs, codec.num_heatmaps] == [40, 22]


def _experiment():
    """Every section away from its defaults."""
    return ExperimentConfig(
        data=DataConfig(coco_root="data/x", train_split="tr", test_split="te", train_annotations="a.json",
                        test_domains=["normal", "dark"]),
        skeleton="hand21", model="tiny", codec=CodecConfig(sigma=5.0, limb_width=4.0),
        decode=DecodeOptions(peak_threshold=0.2, min_parts=4),
        train=TrainConfig(effect="dark", batch_size=3, steps=17, steps_per_epoch=5, learning_rate=1e-3,
                          optimizer="sgd", precision="float32", seed=11, distill_weight=0.5,
                          augment=AugmentConfig(crop=128, max_rotation=10.0, enabled=False)),
        classifier=ClassifierConfig(epochs=2, val_fraction=0.25),
        inference=InferenceOptions(box_size=256, scales=(0.5, 1.0), flip=True, max_side=1024))


@pytest.mark.parametrize("make", [ExperimentConfig, _experiment], ids=["defaults", "every-section-set"])
def test_experiment_yaml_round_trip(tmp_path, make):
    cfg = make()
    path = cfg.to_yaml(tmp_path / "e.yaml")
    back = ExperimentConfig.from_yaml(path)
    assert to_dict(back) == to_dict(cfg)
    assert back.decode == cfg.decode and back.train == cfg.train and tuple(back.inference.scales) == cfg.inference.scales
    assert back.to_yaml(tmp_path / "f.yaml").read_text() == path.read_text()
    assert back.make_codec(get_skeleton("hand21")) == cfg.make_codec(get_skeleton("hand21"))


def test_shipped_experiment_round_trips(tmp_path):
    from conftest import REPO
    cfg = ExperimentConfig.from_yaml(REPO / "configs" / "quickstart.yaml")
    back = ExperimentConfig.from_yaml(cfg.to_yaml(tmp_path / "q.yaml"))
    assert to_dict(back) == to_dict(cfg)
