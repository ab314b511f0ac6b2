"""The model room: the CPM/PAF networks (:mod:`.networks`: VGG-19 CMU, Lightweight OpenPose, the
tiny family; self-describing :class:`PoseNetwork`), their losses (:mod:`.losses`, Cao et al. 2017
eq. 6), the weight importers (:mod:`.weights`: Caffe, the reference's HDF5, OpenVINO IR) and
the dtype policy each machine computes them in fastest (:mod:`.precision`).

Every public name of the room is importable from here (``from keras_openpose.model import X``);
the module behind it loads on first use, so importing the room is cheap.
"""
from ..rooms import lazy_exports

#: public name -> the module of this room that defines it
_NAMES = {
    "INPUT_CONVENTION": "networks",
    "LWOP_INPUT_OFFSET": "networks",
    "LWOP_INPUT_SCALE": "networks",
    "MODEL_CONFIGS": "networks",
    "LeanAdam": "losses",
    "MaskedL2": "losses",
    "ModelConfig": "networks",
    "MultiplierSGD": "losses",
    "NETWORK_STRIDE": "networks",
    "PRETRAINED_IR": "weights",
    "PRETRAINED_WEIGHTS": "weights",
    "PoseNetwork": "networks",
    "VGG19_IMAGENET_NAMES": "weights",
    "build_model": "networks",
    "convert_openvino_ir": "weights",
    "ensure_pretrained": "weights",
    "cpu_flags": "precision",
    "cpu_has_native_bfloat16": "precision",
    "expert_path": "networks",
    "for_this_machine": "networks",
    "get_config": "networks",
    "inference_model": "networks",
    "input_convention": "networks",
    "iter_fields": "weights",
    "load_caffe_weights": "weights",
    "load_network": "networks",
    "load_openvino_ir": "weights",
    "load_reference_h5": "weights",
    "load_vgg19_imagenet": "weights",
    "network_codec": "networks",
    "openvino_float_model": "weights",
    "publish_model": "networks",
    "read_caffemodel": "weights",
    "read_openvino_ir": "weights",
    "resolve_precision": "precision",
    "runnable_precision": "precision",
    "save_model_atomic": "networks",
    "with_precision": "networks",
}

__getattr__, __all__ = lazy_exports(__name__, _NAMES)
