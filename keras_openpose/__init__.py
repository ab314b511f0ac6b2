"""keras-openpose: OpenPose (Cao et al., CVPR 2017) in Keras 3, for any COCO-format skeleton, with
domain experts for dark and motion-blurred images, a PyTorch domain classifier, and
expert-disagreement uncertainty.

Importing the package is cheap (NumPy/SciPy/PyYAML only); TensorFlow and PyTorch load with the
modules that need them.
"""
from .codec import DEFAULT_CODEC, DecodeOptions, PafCodec, decode_poses
from .errors import DataError
from .skeleton import DEFAULT_SKELETON, OPENPOSE_COCO18, Skeleton, get_skeleton

__version__ = "0.2.0"

__all__ = ["PafCodec", "DEFAULT_CODEC", "decode_poses", "DecodeOptions", "Skeleton", "get_skeleton",
           "OPENPOSE_COCO18", "DEFAULT_SKELETON", "DataError", "PoseEstimator", "InferenceOptions",
           "__version__"]


def __getattr__(name):
    if name == "PoseEstimator":
        from .inference.estimator import PoseEstimator
        return PoseEstimator
    if name == "InferenceOptions":
        from .config import InferenceOptions
        return InferenceOptions
    raise AttributeError(name)
