"""Ensemble modes on stub experts: route runs only the chosen expert, fuse weights the maps."""
import numpy as np
import pytest

from keras_openpose.codec import DEFAULT_CODEC
from keras_openpose.ensemble.routing import Ensemble
from keras_openpose.errors import DataError


class StubExpert:
    codec = DEFAULT_CODEC

    def __init__(self, value):
        self.value, self.calls = value, 0

    def maps(self, image):
        self.calls += 1
        return np.full((4, 5, 19), self.value, np.float32), np.full((4, 5, 38), -self.value, np.float32), 8.0

    def decode(self, heat, paf, stride, shape):
        return [{"heat": float(heat[0, 0, 0]), "paf": float(paf[0, 0, 0])}]

    def estimate(self, image):
        return self.decode(*self.maps(image), image.shape[:2])


class StubClassifier:
    classes = ("normal", "dark", "motion_blur")

    def __init__(self, p):
        self.p = p

    def probabilities(self, image):
        return dict(zip(self.classes, self.p))


def _ensemble(p, min_weight=0.02):
    experts = {"normal": StubExpert(1.0), "dark": StubExpert(2.0), "motion_blur": StubExpert(4.0)}
    return Ensemble(experts, StubClassifier(p), min_weight=min_weight), experts


def test_route_runs_only_the_chosen_expert():
    ens, ex = _ensemble((0.2, 0.7, 0.1))
    people = ens.route(np.zeros((32, 40, 3), np.uint8))
    assert people == [{"heat": 2.0, "paf": -2.0}]
    assert [e.calls for e in ex.values()] == [0, 1, 0] and ens.last["domain"] == "dark"


def test_fuse_weights_the_maps_and_skips_negligible_experts():
    ens, ex = _ensemble((0.25, 0.75, 0.0))
    heat, paf, stride = ens.fuse_maps(np.zeros((32, 40, 3), np.uint8))
    assert heat[0, 0, 0] == pytest.approx(0.25 * 1 + 0.75 * 2) and paf[0, 0, 0] == pytest.approx(-1.75)
    assert ex["motion_blur"].calls == 0 and ens.last["experts_run"] == ["dark", "normal"]
    assert ens.fuse(np.zeros((32, 40, 3), np.uint8)) == [{"heat": 1.75, "paf": -1.75}]
    with pytest.raises(DataError, match="--mode"):
        ens.predictor("all")


def test_fuse_temperature_flattens_the_weights():
    experts = {"normal": StubExpert(1.0), "dark": StubExpert(2.0), "motion_blur": StubExpert(4.0)}
    ens = Ensemble(experts, StubClassifier((0.8, 0.15, 0.05)), min_weight=0.0, fuse_temperature=float("inf"))
    heat, _, _ = ens.fuse_maps(np.zeros((8, 8, 3), np.uint8))
    assert heat[0, 0, 0] == pytest.approx((1 + 2 + 4) / 3)            # plain mean
    ens = Ensemble(experts, StubClassifier((0.8, 0.15, 0.05)), min_weight=0.0, fuse_temperature=2.0)
    heat, _, _ = ens.fuse_maps(np.zeros((8, 8, 3), np.uint8))
    w = np.sqrt([0.8, 0.15, 0.05])
    assert heat[0, 0, 0] == pytest.approx(float(w @ [1, 2, 4] / w.sum()))
    with pytest.raises(DataError, match="fuse-temperature"):
        Ensemble(experts, None, fuse_temperature=0)


def test_every_maps_runs_each_expert_once_and_matches_route_and_fuse():
    ens, ex = _ensemble((0.25, 0.75, 0.0))
    img = np.zeros((32, 40, 3), np.uint8)
    every = ens.every_maps(img)
    assert [e.calls for e in ex.values()] == [1, 1, 1]
    assert set(every) == {"normal", "dark", "motion_blur", "route", "fuse"}
    assert np.array_equal(every["route"][0], ens.route_maps(img)[0])
    assert np.allclose(every["fuse"][0], ens.fuse_maps(img)[0]) and every["fuse"][0][0, 0, 0] == pytest.approx(1.75)
