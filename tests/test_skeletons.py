"""Skeletons as data: shipped definitions, YAML round trips, COCO categories made connected,
flip pairs, the experiment config, and the oracle round trip (encode -> decode) per shipped skeleton
on real data."""
import json

import numpy as np
import pytest

from conftest import REPO, SHARED_KEYPOINTS, render_gt_maps, shared_split
from keras_openpose.codec import PafCodec
from keras_openpose.errors import DataError
from keras_openpose.skeleton import (OPENPOSE_COCO18, Skeleton, find_shipped, get_skeleton, infer_flip_pairs,
                                     shipped_skeletons, unreachable)


def test_shipped_skeletons_round_trip_through_yaml(tmp_path):
    assert shipped_skeletons() == ["aic14", "ap10k17", "coco17", "hand21", "openpose_coco18"]
    for name in shipped_skeletons():
        s = get_skeleton(name)
        back = Skeleton.from_yaml(s.to_yaml(tmp_path / f"{name}.yaml"))
        assert back == s
        assert not unreachable(s.num_parts, s.limbs)
    op = OPENPOSE_COCO18
    assert (op.num_heatmaps, op.num_pafs) == (19, 38) and op.parts[1] == "neck"
    assert op.part_sources[1] == (5, 6)                      # neck = midpoint of the shoulders
    assert get_skeleton("onehand10k") is get_skeleton("hand21")
    with pytest.raises(DataError, match="unknown skeleton 'hand42'"):
        get_skeleton("hand42")


@pytest.mark.skipif(not SHARED_KEYPOINTS.is_dir(), reason="../shared/data/keypoints (research-only images) is absent")
def test_shipped_skeletons_match_the_facts_file():
    facts = json.loads((SHARED_KEYPOINTS / "skeletons.json").read_text())
    for key, name in (("onehand10k", "hand21"), ("aic", "aic14"), ("ap10k", "ap10k17"), ("coco", "coco17")):
        f, s = facts[key], get_skeleton(name)
        assert len(s.keypoints) == len(f["keypoints"])
        assert sorted(map(sorted, s.limbs)) == sorted(map(sorted, f["links_0based"]))
        assert sorted(map(sorted, s.flip_pairs)) == sorted(map(sorted, f["flip_pairs_0based"]))
        assert (s.oks_sigmas is None) == (f["oks_sigmas"] is None)
        if s.oks_sigmas is not None:
            np.testing.assert_allclose(s.oks_sigmas, f["oks_sigmas"])


def _hand_category():
    names = get_skeleton("hand21").keypoints
    links = [[a + 1, b + 1] for a, b in get_skeleton("hand21").limbs]
    return {"id": 1, "name": "hand", "keypoints": list(names), "skeleton": links}


def _hand_annotations(n=6, seed=0):
    """Hands drawn from the shipped skeleton's geometry: a wrist and five straight fingers."""
    rng = np.random.default_rng(seed)
    anns = []
    for k in range(n):
        kp = np.zeros((21, 3))
        kp[0] = (100, 200, 2)
        for f, base in enumerate((35, 25, 30, 32, 34)):       # knuckle distance from the wrist, px
            angle = np.deg2rad(-150 + 30 * f + rng.normal(0, 3))
            for j in range(4):
                r = base + 20 * j
                kp[1 + 4 * f + j] = (100 + r * np.cos(angle), 200 + r * np.sin(angle), 2)
        anns.append({"id": k + 1, "image_id": 1, "keypoints": kp.ravel().tolist(), "bbox": [0, 50, 200, 160]})
    return anns


def test_disconnected_user_skeleton_gets_the_fewest_data_derived_links():
    cat = _hand_category()
    # the user drew the fingers but not how they attach to the wrist: 6 components
    cat["skeleton"] = [l for l in cat["skeleton"] if 1 not in l]
    s = Skeleton.from_coco(cat, annotations=_hand_annotations())
    assert len(s.added_links) == 5 and not unreachable(21, s.limbs)
    added = {s.limb_name(i) for i in s.added_links}
    # minimum spanning forest: neighbouring knuckles are closer to each other (~16 px) than to the
    # wrist (25-35 px), so the knuckles are chained and the nearest knuckle joins the wrist
    assert added == {"thumb1-forefinger1", "forefinger1-middle_finger1", "middle_finger1-ring_finger1",
                     "ring_finger1-pinky_finger1", "wrist-forefinger1"}
    assert s.to_dict()["added_links"] == [s.limb_name(i) for i in s.added_links]


def test_cyclic_skeleton_keeps_its_extra_links_and_unreachable_keypoints_are_named():
    ap10k = get_skeleton("ap10k17")
    cat = {"name": "animal", "keypoints": list(ap10k.keypoints),
           "skeleton": [[a + 1, b + 1] for a, b in ap10k.limbs]}
    s = Skeleton.from_coco(cat)                  # eye-eye-nose is a triangle: kept as drawn, nothing added
    assert s.limbs == ap10k.limbs and s.added_links == ()
    assert sorted(s.flip_pairs) == sorted(ap10k.flip_pairs)   # left_x/right_x pairs read from the names
    cat2 = {**cat, "skeleton": [l for l in cat["skeleton"] if 5 not in l]}  # root_of_tail (index 4) cut off
    with pytest.raises(DataError, match="cannot connect keypoints root_of_tail, left_hip, left_knee"):
        Skeleton.from_coco(cat2)                 # no annotations to derive links from
    anns = [{"keypoints": [0.0] * 51, "bbox": [0, 0, 10, 10]}]
    with pytest.raises(DataError, match="never labelled together"):
        Skeleton.from_coco(cat2, annotations=anns)


def test_flip_pairs_from_names_and_flip_augmentation_swaps_the_skeletons_own_pairs():
    assert infer_flip_pairs(["L_Eye", "R_Eye", "leg", "Left Paw", "Right Paw", "nose"]) == [(0, 1), (3, 4)]
    from keras_openpose.data.augment import augment_sample
    from keras_openpose.config import AugmentConfig
    s = get_skeleton("ap10k17")
    codec = PafCodec(s)
    kp = np.zeros((1, 17, 3), np.float32)
    le, re_, nose = s.keypoints.index("left_eye"), s.keypoints.index("right_eye"), s.keypoints.index("nose")
    kp[0, le], kp[0, re_], kp[0, nose] = (90, 100, 2), (130, 100, 2), (110, 120, 2)

    class FlipRng:  # every draw at its midpoint, and a flip
        def uniform(self, lo=0.0, hi=1.0):
            return 0.0 if (lo, hi) == (0.0, 1.0) else (lo + hi) / 2
    _, _, parts = augment_sample(np.zeros((300, 300, 3), np.uint8), np.ones((300, 300), np.uint8), kp,
                                 (110, 100), 200.0, FlipRng(), AugmentConfig(crop=256), codec)
    # mirrored, the right eye (x=130) lands left of the nose and is now the animal's left eye
    assert parts[0, le, 0] < parts[0, nose, 0] < parts[0, re_, 0]
    assert parts[0, le, 2] == parts[0, re_, 2] == 2


def test_experiment_config_round_trip_and_unknown_keys(tmp_path):
    from keras_openpose.config import ExperimentConfig
    cfg = ExperimentConfig.from_yaml(REPO / "configs" / "quickstart.yaml")
    assert cfg.model == "lightweight" and cfg.decode.peak_threshold == 0.05 and cfg.train.augment.crop == 256
    again = ExperimentConfig.from_yaml(cfg.to_yaml(tmp_path / "e.yaml"))
    assert again == cfg
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  stepz: 3\n")
    with pytest.raises(DataError, match=r"bad.yaml:train: unknown TrainConfig keys: stepz"):
        ExperimentConfig.from_yaml(bad)
    bad.write_text("decode:\n  peak_treshold: 0.2\n")
    with pytest.raises(DataError, match="peak_treshold"):
        ExperimentConfig.from_yaml(bad)


def test_auto_skeleton_resolution():
    from keras_openpose.config import resolve_skeleton
    coco = {"categories": [{"id": 1, "name": "person", "keypoints": list(get_skeleton("coco17").keypoints)}]}
    assert resolve_skeleton("auto", coco) is OPENPOSE_COCO18
    aic = {"categories": [{"id": 1, "name": "person", "keypoints": [n.replace("_", " ").title() for n in get_skeleton("aic14").keypoints]}]}
    assert resolve_skeleton("auto", aic).name == "aic14"    # "Right Shoulder" matches right_shoulder
    assert find_shipped(["a", "b"]) is None
    with pytest.raises(DataError, match="skeleton 'hand21' has 21 keypoints, the data 14"):
        resolve_skeleton("hand21", aic)


ORACLE = [  # (set, skeleton, minimum AP or PCK of the decoded ground-truth maps)
    ("onehand10k/test_onehand10k.json", "hand21", 0.55),   # 2 of 4 hands miss their wrist or a knuckle: the tree splits
    ("freihand/test_freihand.json", "hand21", 0.99),
    ("aic/test_aic.json", "aic14", 0.99),
    ("ap10k/test_ap10k.json", "ap10k17", 0.99),
]


def _oracle(split, codec):
    from keras_openpose.evaluate.runs import score_detections
    dets = []
    for i in split.image_ids:
        heat, paf, stride = render_gt_maps(split, i, codec=codec)
        im = split.images[i]
        for r in codec.decode(heat, paf, (im["height"], im["width"]), stride=stride):
            assert len(r["keypoints"]) == 3 * codec.skeleton.num_keypoints
            dets.append({"image_id": i, "category_id": 1, **r})
    return score_detections(split, split.image_ids, dets, codec.skeleton)


def test_oracle_round_trip_coco17_skeleton(val_split):
    r = _oracle(val_split, PafCodec(get_skeleton("coco17")))
    assert r["stats"]["AP"] >= 0.7, r["stats"]


@pytest.mark.skipif(not SHARED_KEYPOINTS.is_dir(), reason="../shared/data/keypoints (research-only images) is absent")
@pytest.mark.parametrize("ann,skeleton,minimum", ORACLE)
def test_oracle_round_trip_per_shipped_skeleton(ann, skeleton, minimum):
    split = shared_split(ann)
    r = _oracle(split, PafCodec(get_skeleton(skeleton)))
    score = r["stats"]["AP"] if r["stats"] is not None else r["rows"]["all"]["pck"]
    assert (r["stats"] is None) == (get_skeleton(skeleton).oks_sigmas is None)
    assert score >= minimum, r
