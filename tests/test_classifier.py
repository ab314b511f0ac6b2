"""Domain classifier: features follow the effects, training writes a usable checkpoint, errors are clear."""
import numpy as np
import pytest

from keras_openpose.classifier import DomainClassifier, global_features, train_classifier, validate
from keras_openpose.domains import darken, motion_blur
from keras_openpose.errors import DataError


def test_global_features_follow_the_effects(val_split):
    img = val_split.read(val_split.image_ids[0])
    f, fd, fb = global_features(img), global_features(darken(img, 0.5)), global_features(motion_blur(img, 30))
    assert f.shape == (25,)
    assert fd[7] == pytest.approx(f[7] * 0.5, abs=2 / 255)       # max luminance halves
    # horizontal blur: mean |dx| drops far more than mean |dy| (anisotropy grows)
    assert (fb[12] - f[12]) < (fb[13] - f[13]) - 0.5 and fb[20] > f[20]


def test_train_and_validate_small(tmp_path, train_split, val_split):
    out = tmp_path / "clf.pt"
    log = train_classifier(train_split.image_dir, val_split.image_dir, out, epochs=1, max_images=4,
                           progress=False, feature_reps=1)
    assert out.exists() and out.with_suffix(".json").exists()
    assert 0 <= log["val_accuracy"] <= 1 and len(log["confusion"]["matrix"]) == 3
    r = validate(out, val_split.image_dir, "synthesize", max_images=2, strengths=[{"dark": 0.5, "motion_blur": 30.0}])
    assert len(r["predictions"]) == 6
    for p in r["predictions"]:
        assert sum(p["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    assert np.sum(r["confusion"]["matrix"]) == 6
    with pytest.raises(DataError, match="classifier weights not found"):
        DomainClassifier(tmp_path / "none.pt")
    with pytest.raises(DataError, match="--labels"):
        validate(out, val_split.image_dir, "foggy")
