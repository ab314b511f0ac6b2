"""Domain classifier: features follow the effects, training writes a usable checkpoint, errors are clear."""
import numpy as np
import pytest

from keras_openpose.ensemble.classifier import (CNN_WEIGHTS, DomainClassifier, global_features,
                                                train_classifier, validate)
from keras_openpose.data.domains import darken, motion_blur
from keras_openpose.errors import DataError


def test_global_features_follow_the_effects(val_split):
    img = val_split.read(val_split.image_ids[0])
    f, fd, fb = global_features(img), global_features(darken(img, 0.5)), global_features(motion_blur(img, 30))
    assert f.shape == (31,)
    assert fd[7] == pytest.approx(f[7] * 0.5, abs=2 / 255)       # max luminance halves
    # horizontal blur: mean |dx| drops far more than mean |dy| (anisotropy grows)
    assert (fb[12] - f[12]) < (fb[13] - f[13]) - 0.5 and fb[20] > f[20]


def test_global_features_without_the_clipped_pixels():
    """Features 25-30: share of clipped pixels (>= 250), quantiles 10/50/90/99 % and mean of the others."""
    img = np.full((100, 100, 3), 60, np.uint8)
    img[50:] = 120                      # 5000 pixels at 120, 4900 at 60, a 100-pixel lamp at 255
    img[:10, :10] = 255
    f = global_features(img)
    assert f[7] == 1.0 and f[25] == pytest.approx(0.01)
    assert f[26:30] * 255 == pytest.approx([60, 120, 120, 120])
    assert f[30] * 255 == pytest.approx((4900 * 60 + 5000 * 120) / 9900, abs=1e-3)


def test_train_and_validate_small(tmp_path, train_split, val_split):
    out = tmp_path / "clf.pt"
    log = train_classifier(train_split.image_dir, val_split.image_dir, out, epochs=1, max_images=4,
                           progress=False, feature_reps=1)
    assert out.exists() and out.with_suffix(".json").exists()
    # the validation images (choices) come from the training folder and are not trained on
    assert len(log["val_images"]) == 1 and len(log["train_images"]) == 3
    assert not set(log["val_images"]) & set(log["train_images"])
    assert set(log["cnn_weight_selection"]) == {str(w) for w in CNN_WEIGHTS}
    # every class of the 4 test images once per strength set (3 sets), rows = true class
    assert np.asarray(log["confusion"]["matrix"]).sum(1).tolist() == [12, 12, 12] and log["test_images"] == 4
    r = validate(out, val_split.image_dir, "synthesize", max_images=2, strengths=[{"dark": 0.5, "motion_blur": 30.0}])
    assert len(r["predictions"]) == 6
    for p in r["predictions"]:
        assert sum(p["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    assert np.sum(r["confusion"]["matrix"]) == 6
    # a folder with a bad file: skipped and listed, the others classified
    import shutil
    d = tmp_path / "imgs"
    d.mkdir()
    for im in val_split.data["images"][:2]:
        shutil.copy(val_split.image_path(im["id"]), d / im["file_name"])
    (d / "broken.jpg").write_bytes(b"not a jpeg")
    r = validate(out, d, None)
    assert len(r["predictions"]) == 2 and r["skipped"] == [f"{d / 'broken.jpg'}: not a readable image"]
    with pytest.raises(DataError, match="classifier weights not found"):
        DomainClassifier(tmp_path / "none.pt")
    with pytest.raises(DataError, match="--labels"):
        validate(out, val_split.image_dir, "foggy")


def test_cnn_weight_zero_skips_the_cnn_and_weights_the_product(tmp_path, train_split):
    torch = pytest.importorskip("torch")
    out = tmp_path / "clf.pt"
    train_classifier(train_split.image_dir, None, out, epochs=1, max_images=4, progress=False, feature_reps=1)
    clf = DomainClassifier(out)
    img = train_split.read(train_split.image_ids[0])
    lc, lf = clf.log_probabilities([img])
    for w in (0.0, 0.5, 1.0):
        clf.cnn_weight = w
        expected = torch.softmax(torch.from_numpy(w * lc + lf), 1).numpy()[0]
        assert clf.probabilities_batch([img])[0] == pytest.approx(expected, abs=1e-5)

    class Boom(torch.nn.Module):
        def forward(self, x):
            raise AssertionError("the CNN ran with weight 0")
    clf.net, clf.cnn_weight = Boom(), 0.0
    assert sum(clf.probabilities(img).values()) == pytest.approx(1.0, abs=1e-5)


def test_optional_torchvision_backbone(tmp_path, train_split, monkeypatch):
    """The backbone path: user weights loaded strictly, ImageNet head replaced, checkpoint round trip.
    torchvision itself is optional (not installed by requirements.txt), so a stand-in module with
    torchvision's ``models.get_model`` interface is used."""
    import sys
    import types

    import torch

    from keras_openpose.ensemble.classifier import build_backbone_net

    def get_model(name, weights=None):
        if name != "tinynet":
            raise ValueError(f"Unknown model {name}")
        torch.manual_seed(1)
        return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, 2, 1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                   torch.nn.Flatten(), torch.nn.Linear(8, 1000))
    monkeypatch.delitem(sys.modules, "torchvision", raising=False)
    with pytest.raises(DataError, match="torchvision does not import"):
        build_backbone_net("resnet18")
    fake = types.ModuleType("torchvision")
    fake.models = types.SimpleNamespace(get_model=get_model)
    monkeypatch.setitem(sys.modules, "torchvision", fake)
    pretrained = get_model("tinynet")
    with torch.no_grad():
        pretrained[0].weight.fill_(0.5)
    wfile = tmp_path / "tinynet-imagenet.pth"
    torch.save(pretrained.state_dict(), wfile)
    net = build_backbone_net("tinynet", weights=wfile)
    assert torch.all(net[0].weight == 0.5) and net[4].out_features == 3      # loaded, head replaced
    assert net(torch.zeros(2, 3, 96, 96)).shape == (2, 3)
    with pytest.raises(DataError, match="not a torchvision model"):
        build_backbone_net("nonet")
    torch.save({"other": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(DataError, match="bad.pth: not tinynet weights"):
        build_backbone_net("tinynet", weights=tmp_path / "bad.pth")
    out = tmp_path / "clf.pt"
    log = train_classifier(train_split.image_dir, None, out, epochs=1, max_images=4, progress=False,
                           feature_reps=1, backbone="tinynet", backbone_weights=wfile)
    clf = DomainClassifier(out)
    assert log["best_epoch"] == 1 and clf.net[4].out_features == 3
    img = train_split.read(train_split.image_ids[0])
    clf.cnn_weight = 1.0
    assert sum(clf.probabilities(img).values()) == pytest.approx(1.0, abs=1e-5)


def test_low_light_simulation_and_validation(tmp_path, val_split, train_split):
    """low_light: darker in linear light, noisy, lamps kept clipped; validate(labels="low_light")
    labels every variant dark and reports accuracy per variant."""
    from keras_openpose.data.domains import low_light
    img = val_split.read(val_split.image_ids[0])
    rng = np.random.default_rng(0)
    lo = low_light(img, 0.1, rng, keep_highlights=False)
    assert lo.shape == img.shape and lo.dtype == np.uint8
    # sRGB of 10 % light is ~35 % of the value (gamma), not 10 %
    assert 0.25 < lo.mean() / img.mean() < 0.5
    lamp = np.full((32, 32, 3), 255, np.uint8)
    assert low_light(lamp, 0.05, rng, keep_highlights=True).min() >= 250
    assert low_light(lamp, 0.05, rng, keep_highlights=False).max() < 100
    with pytest.raises(ValueError, match="exposure"):
        low_light(img, 0.0)
    out = tmp_path / "clf.pt"
    train_classifier(train_split.image_dir, None, out, epochs=1, max_images=4, progress=False, feature_reps=1)
    r = validate(out, val_split.image_dir, "low_light", max_images=2)
    assert len(r["predictions"]) == 8 and {p["label"] for p in r["predictions"]} == {"dark"}
    assert set(r["accuracy_by_variant"]) == {"low_light@0.05", "low_light@0.2", "low_light@0.05+lights", "low_light@0.2+lights"}
    cm = np.asarray(r["confusion"]["matrix"])       # every capture counted in the dark row
    assert cm.sum(1).tolist() == [0, 8, 0]


def test_low_light_is_its_formula_byte_for_byte(val_split):
    """The in-place low_light gives the bytes of its docstring's formula written out plainly:
    sRGB -> linear, x exposure, + N(0, 1) x sqrt(shot x y + read^2), lamps, clip, -> sRGB, round, JPEG."""
    import cv2
    from keras_openpose.data.domains import _linear_to_srgb, _srgb_to_linear, low_light

    def formula(img, exposure, rng, keep_highlights, shot=0.01, read=0.002, quality=85):
        y = _srgb_to_linear(img.astype(np.float32) / 255.0) * exposure
        y = y + rng.standard_normal(y.shape, dtype=np.float32) * np.sqrt(shot * y + read ** 2)
        if keep_highlights:
            y = np.where(img >= 250, 1.0, y)
        out = np.clip(np.rint(_linear_to_srgb(np.clip(y, 0.0, 1.0)) * 255), 0, 255).astype(np.uint8)
        return cv2.imdecode(cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, quality])[1], cv2.IMREAD_COLOR)
    for k, i in enumerate(val_split.image_ids[:4]):
        img = val_split.read(i)
        for exposure, lamps in ((0.03, True), (0.2, False), (1.0, True)):
            np.testing.assert_array_equal(low_light(img, exposure, np.random.default_rng(k), keep_highlights=lamps),
                                          formula(img, exposure, np.random.default_rng(k), lamps))


def test_dark_lights_are_low_light_captures():
    """dark_lights = 0: the reference's darkening; 1: every dark image a low-light capture at a
    random exposure (0.03-0.5), noise and JPEG quality, lamps kept clipped in about half."""
    from keras_openpose.ensemble.classifier import CLASSES, _effect_sample
    img = np.full((32, 32, 3), 120, np.uint8)
    img[8:24, 8:24] = 255
    rng = np.random.default_rng(0)
    d = CLASSES.index("dark")
    plain = _effect_sample(img, d, rng, {"dark": 0.5})
    assert plain.max() == 128 and plain[0, 0, 0] == 60
    lit = [_effect_sample(img, d, rng, dark_lights=1.0) for _ in range(40)]
    lamps = [int(x[16, 16].min()) >= 250 for x in lit]
    assert 10 <= sum(lamps) <= 30                            # kept in about half of the draws
    # sRGB 120 is 18.8 % linear light: x 0.03-0.5 -> sRGB ~16-87 (+ noise), never the source's 120
    background = np.array([x[:4].mean() for x in lit])
    assert background.min() > 8 and background.max() < 100 and background.std() > 10
    assert all(x[:4].std() > 0 for x in lit)                 # sensor noise


@pytest.mark.slow
def test_quickstart_classifier_routes_low_light_to_dark(tmp_path, train_split, val_split):
    """The real figures: trained on train2017 with configs/quickstart.yaml's classifier settings
    (one CNN epoch instead of the file's 8, to keep the test short: the crop CNN gets weight 0 on
    the sample, so the statistics MLP alone decides either way), scored on every val2017 image.
    Measured here: effects at VAL_STRENGTHS (1431 images) 0.9930, low-light captures called dark
    0.962 / 0.943 with lamps (exposures 0.05 / 0.2), 1.0 / 1.0 without (8 epochs as the file says:
    0.9958, 0.937 / 0.937, 1.0 / 1.0; before dark_lights and the crops: 1.0, 0.21 / 0.10, 1.0 / 1.0).
    About 2 minutes of training on 2 busy CPU cores."""
    from keras_openpose.config import PROJECT_ROOT, ExperimentConfig
    c = ExperimentConfig.from_yaml(PROJECT_ROOT / "configs" / "quickstart.yaml").classifier
    assert c.dark_lights == 0.3
    out = tmp_path / "clf.pt"
    log = train_classifier(train_split.image_dir, val_split.image_dir, out, epochs=1, seed=c.seed,
                           val_fraction=c.val_fraction, dark_lights=c.dark_lights, progress=False)
    assert log["cnn_weight"] == 0.0 and len(log["val_images"]) == 16
    cm = np.asarray(log["confusion"]["matrix"])
    assert cm.sum(1).tolist() == [477, 477, 477] and log["test_accuracy"] >= 0.99
    r = validate(out, val_split.image_dir, "low_light")
    assert r["confusion"]["matrix"][1][2] == 0                  # a capture is never called motion blur
    acc = r["accuracy_by_variant"]
    assert acc["low_light@0.05"] == 1.0 and acc["low_light@0.2"] == 1.0
    assert acc["low_light@0.05+lights"] >= 0.9 and acc["low_light@0.2+lights"] >= 0.9
