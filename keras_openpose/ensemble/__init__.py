"""The ensemble room: the PyTorch domain classifier (:mod:`.classifier`), routing and fusion of the
experts (:mod:`.routing`) and the experts' disagreement as an uncertainty signal
(:mod:`.uncertainty`).

Every public name of the room is importable from here (``from keras_openpose.ensemble import X``);
the module behind it loads on first use, so importing the room is cheap.
"""
from ..rooms import lazy_exports

#: public name -> the module of this room that defines it
_NAMES = {
    "CLASSES": "classifier",
    "CNN_WEIGHTS": "classifier",
    "DomainClassifier": "classifier",
    "Ensemble": "routing",
    "LOW_LIGHT_TRAIN_RANGE": "classifier",
    "LOW_LIGHT_VARIANTS": "classifier",
    "MEAN": "classifier",
    "MODES": "routing",
    "NORMAL_EXPOSURE_RANGE": "classifier",
    "STD": "classifier",
    "TRAIN_CROP_RANGE": "classifier",
    "VAL_STRENGTHS": "classifier",
    "build_backbone_net": "classifier",
    "build_feature_net": "classifier",
    "build_net": "classifier",
    "disagreement_for_split": "uncertainty",
    "disagreement_report": "uncertainty",
    "global_features": "classifier",
    "grid_crops": "classifier",
    "group_people": "uncertainty",
    "limb_disagreement": "uncertainty",
    "list_images": "classifier",
    "make_set": "classifier",
    "normalise": "classifier",
    "person_scale": "uncertainty",
    "random_low_light": "classifier",
    "sparsification": "uncertainty",
    "spearman": "uncertainty",
    "spearman_interval": "uncertainty",
    "train_classifier": "classifier",
    "evaluate_ensemble": "routing",
    "validate": "classifier",
}

__getattr__, __all__ = lazy_exports(__name__, _NAMES)
