"""keras-openpose: OpenPose (Cao et al., CVPR 2017) in Keras 3, with domain experts for dark and
motion-blurred images, a PyTorch domain classifier, and expert-disagreement uncertainty.

Importing the package is cheap (NumPy/SciPy only); TensorFlow and PyTorch load with the modules
that need them.
"""
from .codec import DecodeOptions, decode_poses, encode_targets
from .skeleton import DEFAULT_SKELETON, OPENPOSE_COCO18, Skeleton

__version__ = "0.1.0"

__all__ = ["decode_poses", "encode_targets", "DecodeOptions", "Skeleton", "OPENPOSE_COCO18",
           "DEFAULT_SKELETON", "PoseEstimator", "__version__"]


def __getattr__(name):
    if name == "PoseEstimator":
        from .inference import PoseEstimator
        return PoseEstimator
    raise AttributeError(name)
