"""Command-line parsing. Every user-facing script is a thin wrapper around one function here: parse
arguments, call the package, print a short result. Bad input ends with one line
``error: <file>: <problem>`` and exit status 2, never a traceback.

Every command takes ``--experiment FILE`` (a YAML :class:`~keras_openpose.config.ExperimentConfig`)
whose values the flags override; every command that decodes takes the decoder options
(``--peak-threshold``, ``--min-parts``, ...), which otherwise come from the model file.
"""
from __future__ import annotations

from pathlib import Path
from .common import (POSITIVE, add_decode_args, decode_overrides, experiment_of, add_inference_args,
                     inference_options, command_parser, split_of, str2bool)
from ..config import PROJECT_ROOT
from ..errors import DataError
from .common import number_type

def add_eval_args(p):
    p.add_argument("--coco_dataType", "-dt", default=None,
                   help="split name, e.g. val2017_dark, val2014 (default: the experiment's test split)")
    p.add_argument("--coco-root", default=None, help="root with annotations/ and <dataType>/ (default dataset/)")
    p.add_argument("--annotations", default=None, help="any COCO-format keypoint JSON (instead of --coco_dataType)")
    p.add_argument("--images", default=None, help="its image folder (default: the annotation file's folder)")
    p.add_argument("--models-dir", default=str(PROJECT_ROOT / "models"), help="pose_<domain>.keras + domain_classifier.pt")
    p.add_argument("--fir_img_num", type=number_type(int, -1), default=-1, help="first N images of the list (-1 = all); "
                   "COCO eval then covers exactly those images")
    p.add_argument("--test-list", default=None, help="all (default), cmu1k, random1k, or an id file")
    p.add_argument("--compute_keypoint", type=str2bool, default=True, help="run the network (True/False)")
    p.add_argument("--eval_compute_keypoint", type=str2bool, default=True, help="COCO eval + PCK (True/False)")
    p.add_argument("--out", default=str(PROJECT_ROOT / "eval" / "results"), help="results folder")
    p.add_argument("--overlays", type=str2bool, default=False, help="write per-image skeleton overlays")
    p.add_argument("--any-keypoint-names", action="store_true",
                   help="score a model on data whose keypoint names differ from its own (same count; the user "
                        "vouches that keypoint k means the same in both); refused otherwise")
    add_inference_args(p)
    add_decode_args(p)


def check_names(a, skeleton, split):
    """A model meets annotations: the same keypoints by name, not only by count."""
    from ..data.coco import keypoint_names
    from ..skeleton import check_same_skeleton
    if not a.any_keypoint_names:
        check_same_skeleton(skeleton, keypoint_names(split.data), f"{split.annotation_file} (--any-keypoint-names "
                            "to score anyway)")


def setup_eval(a, exp):
    from ..data.testsets import resolve_test_list
    a.split = a.coco_dataType
    split = split_of(a, exp, "test")
    ids = resolve_test_list(a.test_list, split)
    if a.fir_img_num is not None and a.fir_img_num >= 0:
        ids = ids[:a.fir_img_num]
    return split, ids


def eval_single_scale(argv=None):
    p = command_parser("eval_coco2014_single_scale.py",
                "Evaluate one expert on a COCO-format split: COCO keypoint AP (pycocotools, the skeleton's OKS "
                "sigmas) or PCK@0.2 / AUC / EPE for skeletons without sigmas, PCK, timing; writes results JSON, "
                "match-to-GT JSON and a CSV into one run folder. Resumable.",
                ["python eval/eval_coco2014_single_scale.py --effect _dark --coco_dataType val2017_dark --coco-root runs/quickstart/data/test --models-dir runs/quickstart/models",
                 "python eval/eval_coco2014_single_scale.py --effect '' --coco_dataType val2014 --test-list cmu1k --scales 0.5,1,1.5,2",
                 "python eval/eval_coco2014_single_scale.py --weights runs/hand_models/pose_normal.keras --annotations ../shared/data/keypoints/freihand/test_freihand.json",
                 "python eval/eval_coco2014_single_scale.py --effect _dark --coco_dataType val2017_dark --compute_keypoint False --eval_compute_keypoint True"])
    p.add_argument("--effect", default="", help="expert: '' (normal), _dark, _motion_blur")
    p.add_argument("--weights", default=None, help="a .keras model (default <models-dir>/pose_<domain>.keras)")
    add_eval_args(p)
    a = p.parse_args(argv)
    from ..files import check_output_dir
    check_output_dir(a.out)                   # before TensorFlow and the network
    from ..data.domains import effect_from_flag
    from ..evaluate.runs import (check_layout, evaluate_predictor, model_tag, reference_subsets, results_dir,
                                 summary_line)
    from ..inference.estimator import PoseEstimator
    from ..model.networks import expert_path
    exp = experiment_of(a)
    split, ids = setup_eval(a, exp)
    domain = effect_from_flag(a.effect)
    weights = a.weights or expert_path(a.models_dir, domain)
    if a.compute_keypoint:
        est = PoseEstimator.from_weights(weights, inference_options(a, exp), **decode_overrides(a))
        skeleton = est.skeleton
    else:  # scoring cached predictions: the model file's skeleton (read without building the network)
        from ..inference.runtimes import model_skeleton
        est, skeleton = None, model_skeleton(weights)
    check_layout(split, skeleton)
    check_names(a, skeleton, split)
    tag = model_tag(a.effect)
    out = results_dir(a.out, split.split, tag, len(ids))
    s = evaluate_predictor(est.estimate if est else None, split, ids, out, f"{split.split}-{tag}",
                           compute=a.compute_keypoint, evaluate=a.eval_compute_keypoint, overlays=a.overlays,
                           subsets=reference_subsets(split), timing=est.timing if est else None, skeleton=skeleton)
    print(summary_line(s, out))


def ensemble(argv=None):
    p = command_parser("ensemble.py", "Evaluate the domain ensemble: route (classifier picks one expert, only it "
                "runs), fuse (probability-weighted mean of the experts' maps), or all (every expert, "
                "for util_ainu.py).",
                ["python train_domain_classifier/ensemble.py --coco_dataType val2017_dark --mode route --coco-root runs/quickstart/data/test --models-dir runs/quickstart/models",
                 "python train_domain_classifier/ensemble.py --coco_dataType val2014 --test-list cmu1k --mode fuse",
                 "python train_domain_classifier/ensemble.py --coco_dataType val2017_dark --mode fuse --map-scores --coco-root runs/quickstart/data/test --models-dir runs/quickstart/models"])
    p.add_argument("--mode", choices=["route", "fuse", "all"], default="route")
    p.add_argument("--fuse-temperature", type=POSITIVE, default=1.0,
                   help="fuse weights = softmax(log p / T): 1 = the classifier's probabilities, inf = plain mean")
    p.add_argument("--map-scores", action="store_true",
                   help="also score the maps before grouping (keypoint F1, heatmap/PAF MSE against the "
                        "training targets): tells weak experts apart where AP is 0")
    add_eval_args(p)
    a = p.parse_args(argv)
    from ..files import check_output_dir
    check_output_dir(a.out)
    from ..ensemble.routing import evaluate_ensemble
    from ..evaluate.runs import check_layout, summary_line
    exp = experiment_of(a)
    split, ids = setup_eval(a, exp)
    skeleton = experts_skeleton(a.models_dir, None, split, check_data=False)   # the experts' files; one skeleton
    check_layout(split, skeleton)
    check_names(a, skeleton, split)
    runs = evaluate_ensemble(a.models_dir, split, ids, a.out, a.mode, inference_options(a, exp), decode_overrides(a),
                             a.fuse_temperature, a.compute_keypoint, a.eval_compute_keypoint, a.overlays,
                             a.map_scores, skeleton)
    for s, out, ms in runs:
        print(summary_line(s, out))
        if ms:
            print(f"maps: keypoint F1 {ms['f1']:.3f} (recall {ms['recall']:.3f}, precision {ms['precision']:.3f}), "
                  f"heatmap MSE {ms['heatmap_mse']:.2e}, PAF MSE {ms['paf_mse']:.2e} -> {out / 'map_scores.json'}")

def experts_skeleton(models_dir, spec, split, check_data: bool = True):
    """The skeleton of the experts ``<models_dir>/pose_<domain>.keras`` (read from their files,
    never re-derived from the test annotations: a data-derived skeleton's spanning links depend on
    the annotations they were derived from); experts with different skeletons are refused. Without
    the files, the layout the user names with ``spec`` (``--skeleton``).

    Raises:
        DataError: the files missing and no ``spec``; experts that differ; ``spec`` not the
            experts'; (``check_data``) keypoint names that are not the annotations'.
    """
    from ..data.coco import keypoint_names
    from ..data.domains import EXPERT_DOMAINS
    from ..skeleton import check_same_layout, check_same_skeleton
    from ..inference.runtimes import models_skeleton
    paths = [Path(models_dir) / f"pose_{d}.keras" for d in EXPERT_DOMAINS]   # keras_openpose.model.networks.expert_path
    missing = [p for p in paths if not p.is_file()]
    given = None
    if spec:
        from ..config import resolve_skeleton
        given = resolve_skeleton(spec, split.data, str(split.annotation_file))
    if missing and given is None:
        raise DataError(f"{missing[0]}: model file not found; the limbs are the experts' own: give --models-dir "
                        "(or --skeleton to name the layout of the results)")
    skeleton = given if missing else models_skeleton(paths, [p.name for p in paths])
    if given is not None and not missing:
        check_same_layout(skeleton, given, f"--skeleton {spec}", ("the expert", "--skeleton"))
    if check_data:
        check_same_skeleton(skeleton, keypoint_names(split.data), str(split.annotation_file),
                            ("the expert" if not missing else "--skeleton", "the annotations"))
    return skeleton


def disagreement(argv=None):
    p = command_parser("util_ainu.py", "Per-limb translational and rotational disagreement of the three experts "
                "(the skeleton's limb names, scale-normalised, angles wrapped), whether it predicts error "
                "(Spearman rho, sparsification, AUSE) and a plot.",
                ["python util_ainu.py --coco_dataType val2017_dark --coco-root runs/quickstart/data/test --results eval/results",
                 "python util_ainu.py --coco_dataType val2014 --no-gt   # pair people by OKS, no labels needed",
                 "python util_ainu.py --annotations ../shared/data/keypoints/aic/test_aic.json --results eval/results"])
    p.add_argument("--coco_dataType", "-dt", default=None)
    p.add_argument("--coco-root", default=None)
    p.add_argument("--annotations", default=None, help="any COCO-format keypoint JSON (instead of --coco_dataType)")
    p.add_argument("--images", default=None, help="its image folder (default: the annotation file's folder)")
    p.add_argument("--models-dir", default=str(PROJECT_ROOT / "models"),
                   help="the experts pose_<domain>.keras whose results these are: their skeleton gives the limbs")
    p.add_argument("--skeleton", default=None, help="limb layout of the results when the experts' files are not at "
                   "hand (a shipped name, a YAML file, auto or dataset); with them it must be theirs")
    p.add_argument("--results", default=str(PROJECT_ROOT / "eval" / "results"), help="folder of the experts' eval runs")
    p.add_argument("--no-gt", action="store_true", help="pair people across experts by OKS, not GT ids")
    p.add_argument("--out", default=None, help="output folder (default: the results folder)")
    a = p.parse_args(argv)
    from ..ensemble.uncertainty import disagreement_for_split
    a.split = a.coco_dataType
    split = split_of(a, experiment_of(a), "test")
    skeleton = experts_skeleton(a.models_dir, a.skeleton, split, check_data=not a.no_gt)
    res = disagreement_for_split(split, Path(a.results), Path(a.out or a.results), use_gt=not a.no_gt,
                                 skeleton=skeleton)
    print(f"{res['csv']}: total transl {res['total_transl']:.3f}, total rot {res['total_rot']:.3f}, "
          f"{res['n_persons']} people; Spearman rho(transl, error) {res.get('spearman_transl', float('nan')):.3f}, "
          f"AUSE {res.get('ause_transl', float('nan')):.3f}")


