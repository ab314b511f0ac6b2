"""The evaluation room: COCO keypoint AP through pycocotools with bootstrap intervals
(:mod:`.cocoeval`), PCK (:mod:`.pck`), matching people by OKS or distance, shared by evaluation,
tracking and uncertainty (:mod:`.matching`), evaluation runs (:mod:`.runs`) and scores of the maps
themselves (:mod:`.maps`).

Every public name of the room is importable from here (``from keras_openpose.evaluate import X``);
the module behind it loads on first use, so importing the room is cheap.
"""
from ..rooms import lazy_exports

#: public name -> the module of this room that defines it
_NAMES = {
    "CROWDED_INDEX": "pck",
    "DIFFICULT_NAMES": "pck",
    "MapScorer": "maps",
    "STAT_NAMES": "cocoeval",
    "bootstrap_ap": "cocoeval",
    "check_layout": "runs",
    "coco_keypoint_eval": "cocoeval",
    "crowd_index": "pck",
    "difficult_keypoints": "pck",
    "evaluate_predictor": "runs",
    "head_pairs": "pck",
    "map_scores": "maps",
    "match_by_distance": "matching",
    "match_by_oks": "matching",
    "match_to_gt": "cocoeval",
    "model_tag": "runs",
    "oks_matrix": "matching",
    "oks_reference": "matching",
    "pck": "pck",
    "reference_subsets": "runs",
    "results_dir": "runs",
    "score_detections": "runs",
    "summary_line": "runs",
}

__getattr__, __all__ = lazy_exports(__name__, _NAMES)
