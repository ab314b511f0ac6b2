"""The data room: COCO annotations and their validation (:mod:`.coco`), the one image reader
(:mod:`.images`), ignore masks and main people (:mod:`.masks`), the HDF5 training store
(:mod:`.store`), image domains (:mod:`.domains`), augmentation (:mod:`.augment`), the tf.data
pipeline (:mod:`.pipeline`) and test sets (:mod:`.testsets`). It imports nothing above it.

Every public name of the room is importable from here (``from keras_openpose.data import X``);
the module behind it loads on first use, so importing the room is cheap.
"""
import importlib

#: public name -> the module of this room that defines it
_NAMES = {
    "BOX_SIZE": "store",
    "CocoSplit": "coco",
    "DARK_TRAIN_MIX": "domains",
    "DATA_ERROR": "pipeline",
    "DEFAULT_STRENGTH": "domains",
    "DOMAINS": "domains",
    "EXPERT_DOMAINS": "domains",
    "IMAGE_EXT": "images",
    "ImageRecord": "store",
    "OUTSIDE_MARGIN": "coco",
    "PHOTO_MAX_SIDE": "pipeline",
    "PHOTO_SUFFIXES": "pipeline",
    "REQUIRED_ANN_KEYS": "coco",
    "REQUIRED_IMAGE_KEYS": "coco",
    "SampleMaker": "pipeline",
    "Store": "store",
    "TRAIN_STRENGTH_RANGE": "domains",
    "WarpParams": "augment",
    "ann_to_mask": "masks",
    "annotation_path": "coco",
    "apply_effect": "domains",
    "augment_photo": "augment",
    "augment_sample": "augment",
    "build_store": "store",
    "check_experiment_data": "coco",
    "check_report": "coco",
    "check_root": "coco",
    "check_sources": "pipeline",
    "check_split": "coco",
    "cmu_val2014_1k": "testsets",
    "dark_training_effect": "domains",
    "darken": "domains",
    "decode_image": "images",
    "decode_mask_png": "store",
    "distribute": "pipeline",
    "domain_split_name": "testsets",
    "downscale": "domains",
    "draw_dark_effect": "domains",
    "draw_params": "augment",
    "effect_from_flag": "domains",
    "encode_mask_png": "store",
    "format_problem": "coco",
    "ignore_mask": "masks",
    "image_problem": "images",
    "keypoint_names": "coco",
    "keypoints_array": "masks",
    "list_photos": "pipeline",
    "load_annotations": "coco",
    "low_light": "domains",
    "make_dataset": "pipeline",
    "make_domain_test_set": "testsets",
    "make_record": "store",
    "mask_file_name": "store",
    "motion_blur": "domains",
    "motion_kernel": "domains",
    "open_split": "coco",
    "outside_folder": "coco",
    "per_replica_batch": "pipeline",
    "problem_summary": "coco",
    "random_effect": "domains",
    "random_test_list": "testsets",
    "read_id_list": "testsets",
    "read_image": "images",
    "replica_share": "pipeline",
    "rescale_annotations": "testsets",
    "resolve_test_list": "testsets",
    "sample_schedule": "pipeline",
    "scale_brightness": "domains",
    "select_main_people": "masks",
    "start_data_service": "pipeline",
    "store_report": "store",
    "subset_annotations": "testsets",
    "transform_points": "augment",
    "validate_annotations": "coco",
    "warp_matrix": "augment",
    "write_masks": "store",
}

__all__ = sorted(_NAMES)


def __getattr__(name):
    if name in _NAMES:
        return getattr(importlib.import_module(f".{_NAMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
