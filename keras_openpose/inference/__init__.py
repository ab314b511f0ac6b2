"""The inference room: runtimes for every saved or exported network (:mod:`.runtimes`), the
:class:`PoseEstimator` from image to people (:mod:`.estimator`), frame sources and sinks
(:mod:`.sources`) and pose tracking with One-Euro smoothing (:mod:`.tracking`).

Every public name of the room is importable from here (``from keras_openpose.inference import X``);
the module behind it loads on first use, so importing the room is cheap.
"""
from ..rooms import lazy_exports

#: public name -> the module of this room that defines it
_NAMES = {
    "KerasRuntime": "runtimes",
    "LiteRTRuntime": "runtimes",
    "OneEuroFilter": "tracking",
    "OnnxRuntime": "runtimes",
    "OpenVINORuntime": "runtimes",
    "PoseEstimator": "estimator",
    "PoseTracker": "tracking",
    "RUNTIMES": "runtimes",
    "RUNTIME_TYPES": "runtimes",
    "VIDEO_EXT": "sources",
    "VideoWriter": "sources",
    "check_source": "sources",
    "frames": "sources",
    "is_video": "sources",
    "load_runtime": "runtimes",
    "model_skeleton": "runtimes",
    "models_skeleton": "runtimes",
    "preprocess": "estimator",
}

__getattr__, __all__ = lazy_exports(__name__, _NAMES)
