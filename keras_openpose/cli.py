"""Command-line entry points. Every user-facing script is a thin wrapper around one function here:
parse arguments, call the package, print a short result. Bad input ends with one line
``error: <file>: <problem>`` and exit status 2, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from .errors import DataError  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def str2bool(v) -> bool:
    """Parse ``True/False/yes/no/1/0`` (case-insensitive); the reference's ``type=bool`` turned
    ``False`` into True (§13.1 item 7)."""
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in ("true", "t", "yes", "y", "1", "on"):
        return True
    if s in ("false", "f", "no", "n", "0", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (True/False), got {v!r}")


def _parser(prog, description, examples):
    return argparse.ArgumentParser(prog=prog, description=description,
                                   epilog="examples:\n" + "\n".join("  " + e for e in examples),
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def run(fn, argv=None):
    """Call ``fn(argv)``; turn :class:`DataError` into a one-line error and exit status 2."""
    try:
        return fn(argv)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted: completed work is saved; run the same command again to resume", file=sys.stderr)
        sys.exit(130)


# ------------------------------------------------------------------------------------------
# dataset / training data
# ------------------------------------------------------------------------------------------

def generate_masks(argv=None):
    p = _parser("generate_masks_coco2014.py",
                "Write the ignore mask of every image of a COCO split (mask_miss_<id>.png; 255 = loss "
                "used, 0 = crowd regions and people without keypoints). Resumable.",
                ["python training/generate_masks_coco2014.py --coco-root dataset/sample --split train2017 --out runs/masks_train2017",
                 "python training/generate_masks_coco2014.py --coco-root dataset --split train2014 --out dataset/trainmask2014"])
    p.add_argument("--coco-root", required=True, help="COCO root with annotations/ and <split>/")
    p.add_argument("--split", required=True, help="e.g. train2014, val2014, train2017")
    p.add_argument("--out", required=True, help="output folder of PNG masks")
    a = p.parse_args(argv)
    from .coco import CocoSplit
    from .store import write_masks
    split = CocoSplit(a.coco_root, a.split)
    n = write_masks(split, a.out, progress=True)
    print(f"{a.out}: {n} masks written ({len(split.image_ids)} images in {a.split})")


def generate_hdf5(argv=None):
    p = _parser("generate_hdf5_coco2014.py",
                "Build the compact training store of a COCO split: original JPEG bytes, ignore mask "
                "(PNG), people arrays and main people, once per image for every domain. Parallel, "
                "atomic, resumable (re-run the same command after an interruption).",
                ["python training/generate_hdf5_coco2014.py --coco-root dataset/sample --split train2017 --out runs/train2017.h5",
                 "python training/generate_hdf5_coco2014.py --coco-root dataset --split val2014 --out dataset/val2014_train.h5 --exclude-list cmu1k"])
    p.add_argument("--coco-root", required=True)
    p.add_argument("--split", required=True)
    p.add_argument("--out", required=True, help="output .h5")
    p.add_argument("--masks", help="folder from generate_masks_coco2014.py (else masks are computed here)")
    p.add_argument("--exclude-list", help="test list never stored: cmu1k, random1k, or an id file")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    a = p.parse_args(argv)
    from .coco import CocoSplit, cmu_val2014_1k, random_test_list, read_id_list
    from .store import build_store
    split = CocoSplit(a.coco_root, a.split)
    exclude = []
    if a.exclude_list == "cmu1k":
        exclude = cmu_val2014_1k()
    elif a.exclude_list == "random1k":
        exclude = random_test_list(split, 1000, 0)
    elif a.exclude_list:
        exclude = read_id_list(a.exclude_list)
    r = build_store(split, a.out, exclude_ids=exclude, mask_dir=a.masks, workers=a.workers)
    ratio = r["bytes"] / max(r["jpeg_bytes"], 1)
    print(f"{r['path']}: {r['images']} images, {r['people']} people, {r['main_people']} main people, "
          f"{r['bytes'] / 1e6:.1f} MB = {ratio:.2f}x the stored JPEG bytes; {len(r['skipped'])} skipped")
    for s in r["skipped"][:20]:
        print("  skipped:", s)


def make_test_domains(argv=None):
    p = _parser("make_test_domains.py",
                "Build test domains (normal, dark, motion_blur, resolution) of a COCO split as new "
                "splits with correct annotations (half resolution rescales keypoints, bbox, area, "
                "segmentation, width/height).",
                ["python dataset/make_test_domains.py --coco-root dataset/sample --split val2017 --out runs/test",
                 "python dataset/make_test_domains.py --coco-root dataset --split val2014 --test-list cmu1k --tag _cmu1k --out dataset"])
    p.add_argument("--coco-root", required=True)
    p.add_argument("--split", required=True)
    p.add_argument("--out", required=True, help="root to write <split><tag>_<domain>/ and annotations/")
    p.add_argument("--domains", default="normal,dark,motion_blur,resolution")
    p.add_argument("--test-list", default=None, help="all (default), cmu1k, random1k, or an id file")
    p.add_argument("--tag", default="", help="inserted after the split name, e.g. _random1k")
    p.add_argument("--seed", type=int, default=0, help="seed of the random1k list")
    p.add_argument("--dark-factor", type=float, default=None, help="brightness factor (default 0.5)")
    p.add_argument("--blur-length", type=float, default=None, help="motion blur length, source px (default 30)")
    p.add_argument("--resolution-factor", type=float, default=None, help="down-scaling factor (default 0.5)")
    a = p.parse_args(argv)
    from .coco import CocoSplit, make_domain_test_set, resolve_test_list
    split = CocoSplit(a.coco_root, a.split)
    ids = resolve_test_list(a.test_list, split, a.seed)
    strength = {"dark": a.dark_factor, "motion_blur": a.blur_length, "resolution": a.resolution_factor}
    for d in a.domains.split(","):
        d = d.strip()
        s = make_domain_test_set(split, d, a.out, ids, strength=strength.get(d), tag=a.tag, progress=True)
        print(f"{s.image_dir}: {len(s.images)} images, {len(s.data['annotations'])} annotations")


# ------------------------------------------------------------------------------------------
# training
# ------------------------------------------------------------------------------------------

def _publish(model_path: Path, models_dir: Path, domain: str, extra: dict):
    from .coco import write_json_atomic
    models_dir.mkdir(parents=True, exist_ok=True)
    dst = models_dir / f"pose_{domain}.keras"
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.copyfile(model_path, tmp)
    os.replace(tmp, dst)
    man_path = models_dir / "manifest.json"
    man = json.loads(man_path.read_text()) if man_path.exists() else {}
    man[f"pose_{domain}"] = {"file": dst.name, **extra}
    write_json_atomic(man, man_path)
    return dst


def train_pose(argv=None):
    p = _parser("train_pose.py",
                "Train one CPM/PAF expert. The domain effect is applied on the fly to the shared store. "
                "Checkpoints every epoch; re-running the same command resumes exactly.",
                ["python training/train_pose.py --effect _dark --store runs/train2017.h5 --config tiny --steps 300",
                 "python training/train_pose.py --effect '' --store dataset/train2017.h5 --config vgg19 --precision mixed_float16",
                 "python training/train_pose.py --effect _motion_blur --init-from models/pose_normal.keras --config tiny"])
    p.add_argument("--effect", default="", help="'' (normal), _dark or _motion_blur")
    p.add_argument("--store", required=True, help="training store(s) from generate_hdf5_coco2014.py, comma-separated")
    p.add_argument("--config", default=None, help="network: vgg19 (CMU), lightweight, tiny")
    p.add_argument("--experiment", default=None, help="YAML experiment file (configs/*.yaml); flags override it")
    p.add_argument("--out", default=None, help="run folder (default training/runs/weights<effect>)")
    p.add_argument("--models-dir", default=str(REPO / "models"), help="where the final model is published")
    p.add_argument("--steps", type=int)
    p.add_argument("--steps-per-epoch", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--optimizer", choices=["adam", "sgd", "sgd_cmu"], help="sgd_cmu: CMU lr multipliers")
    p.add_argument("--precision", help="mixed_bfloat16 (CPU default), mixed_float16 (GPU), float32")
    p.add_argument("--crop", type=int, help="training crop size (368 in the paper)")
    p.add_argument("--seed", type=int)
    p.add_argument("--init-from", help="a .keras model to fine-tune from (e.g. the normal expert)")
    p.add_argument("--distribute", choices=["none", "mirrored"],
                   help="tf.distribute strategy: mirrored = all local GPUs (multi-machine: see README)")
    p.add_argument("--init", help="ImageNet VGG-19 weights file (Keras applications notop .h5) for the "
                   "vgg19 backbone; default: random init N(0, 0.01)")
    p.add_argument("--xla", action="store_true", help="XLA-compile the train step (GPUs)")
    p.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint")
    a = p.parse_args(argv)
    from .config import TrainConfig, from_dict, load_yaml
    from .domains import effect_from_flag
    from .train import train_expert
    data = load_yaml(a.experiment).get("train", {}) if a.experiment else {}
    cfg = from_dict(TrainConfig, data, a.experiment or "config")
    cfg.effect = effect_from_flag(a.effect)
    for flag, field in (("config", "model"), ("steps", "steps"), ("steps_per_epoch", "steps_per_epoch"),
                        ("batch_size", "batch_size"), ("lr", "learning_rate"), ("optimizer", "optimizer"),
                        ("precision", "precision"), ("seed", "seed"), ("distribute", "distribute")):
        if getattr(a, flag) is not None:
            setattr(cfg, field, getattr(a, flag))
    if a.crop:
        cfg.augment.crop = a.crop
    if a.xla:
        cfg.xla = True
    out = Path(a.out or REPO / "training" / "runs" / f"weights{a.effect}")
    final = train_expert(cfg, a.store, out, resume=not a.no_resume, init_from=a.init_from, init_vgg19=a.init)
    dst = _publish(final, Path(a.models_dir), cfg.effect, {"config": cfg.model, "steps": cfg.steps, "run": str(out)})
    print(f"{final} -> {dst}")


def train_classifier(argv=None):
    p = _parser("train.py", "Train the domain classifier (normal / dark / motion_blur) from scratch on any "
                "image folder; effects at random strengths and directions. A seeded --val-fraction of the "
                "--train images chooses the CNN's best epoch and its weight; --test images are only scored.",
                ["python train_domain_classifier/train.py --train dataset/sample/train2017 --test dataset/sample/val2017 --out models/domain_classifier.pt",
                 "python train_domain_classifier/train.py --train dataset/train2014 --test dataset/val2014 --epochs 20 --max-images 5000",
                 "python train_domain_classifier/train.py --train dataset/train2014 --backbone resnet18 --backbone-weights ~/weights/resnet18-f37072fd.pth"])
    p.add_argument("--train", required=True, help="folder of training images")
    p.add_argument("--test", "--val", dest="test", default=None,
                   help="folder of held-out images, scored once at the end (never used for choices)")
    p.add_argument("--val-fraction", type=float, default=0.2,
                   help="share of --train images held out to choose the epoch and the CNN weight")
    p.add_argument("--out", default=str(REPO / "models" / "domain_classifier.pt"))
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--max-images", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dark-lights", type=float, default=0.0,
                   help="share of dark training images whose clipped pixels (lamps, windows) stay clipped; "
                        "0 = the reference's darkening only (see keras_openpose.classifier.train_classifier)")
    p.add_argument("--backbone", default=None,
                   help="optional torchvision network for the crop CNN (resnet18, resnet50, mobilenet_v3_small, ...); "
                        "needs torchvision")
    p.add_argument("--backbone-weights", default=None,
                   help="its ImageNet weights file as torchvision publishes it (you download it; nothing is fetched)")
    a = p.parse_args(argv)
    from .classifier import train_classifier as tc
    log = tc(a.train, a.test, a.out, epochs=a.epochs, seed=a.seed, max_images=a.max_images,
             val_fraction=a.val_fraction, backbone=a.backbone, backbone_weights=a.backbone_weights,
             dark_lights=a.dark_lights)
    print(f"{a.out}: validation accuracy {log['val_accuracy']:.4f} ({len(log['val_images'])} images of --train), "
          f"CNN weight {log['cnn_weight']} (epoch {log['best_epoch']})")
    if "test_accuracy" in log:
        print(f"held-out accuracy {log['test_accuracy']:.4f} on {a.test} ({log['test_images']} images x every effect "
              f"at {len(log['val_strengths'])} strengths); confusion (rows = truth, "
              f"{', '.join(log['confusion']['classes'])}): {log['confusion']['matrix']}")


def validate_classifier(argv=None):
    p = _parser("validate.py", "Classify the images of a folder; with labels, report accuracy and the "
                "confusion matrix.",
                ["python train_domain_classifier/validate.py --weights models/domain_classifier.pt --images dataset/sample/val2017 --labels synthesize --out val.json",
                 "python train_domain_classifier/validate.py --weights models/domain_classifier.pt --images dataset/sample/val2017 --labels low_light --out lowlight.json",
                 "python train_domain_classifier/validate.py --weights models/domain_classifier.pt --images my_night_frames --labels dark --out night.json"])
    p.add_argument("--weights", required=True)
    p.add_argument("--images", required=True)
    p.add_argument("--out", required=True, help="JSON: list of {image, probabilities} (+ accuracy)")
    p.add_argument("--labels", default=None,
                   help="none; a class name for the whole folder; synthesize (every class's effect at held-out "
                        "strengths); low_light (simulated low-light captures, sensor noise, lamps kept clipped: all dark)")
    a = p.parse_args(argv)
    from .classifier import validate
    from .coco import write_json_atomic
    r = validate(a.weights, a.images, a.labels, progress=True)
    write_json_atomic(r["predictions"] if "accuracy" not in r else r, a.out)
    if "accuracy" in r:
        print(f"accuracy {r['accuracy']:.4f} on {len(r['predictions'])} images; confusion (rows = truth, "
              f"{r['confusion']['classes']}): {r['confusion']['matrix']}")
        for v, acc in r.get("accuracy_by_variant", {}).items():
            print(f"  {v}: {acc:.4f}")
    print(f"{a.out}: {len(r['predictions'])} predictions")


# ------------------------------------------------------------------------------------------
# evaluation, ensemble, disagreement
# ------------------------------------------------------------------------------------------

def _model_tag(effect: str) -> str:
    return {"": "ours", "normal": "ours"}.get(effect.lstrip("_"), effect.lstrip("_"))


def _results_dir(base, dt, tag, n):
    return Path(base) / f"{dt}-{tag}-open-pose-single-scale-{n}"


def _eval_args(p):
    p.add_argument("--coco_dataType", "-dt", required=True, help="split name, e.g. val2017_dark, val2014")
    p.add_argument("--coco-root", default=str(REPO / "dataset"), help="root with annotations/ and <dataType>/")
    p.add_argument("--models-dir", default=str(REPO / "models"), help="pose_<domain>.keras + domain_classifier.pt")
    p.add_argument("--fir_img_num", type=int, default=-1, help="first N images of the list (-1 = all); "
                   "COCO eval then covers exactly those images")
    p.add_argument("--test-list", default=None, help="all (default), cmu1k, random1k, or an id file")
    p.add_argument("--compute_keypoint", type=str2bool, default=True, help="run the network (True/False)")
    p.add_argument("--eval_compute_keypoint", type=str2bool, default=True, help="COCO eval + PCK (True/False)")
    p.add_argument("--scales", default="1", help="comma-separated multiples of the 368 box, e.g. 0.5,1,1.5,2")
    p.add_argument("--flip", type=str2bool, default=False, help="average with the mirrored image")
    p.add_argument("--out", default=str(REPO / "eval" / "results"), help="results folder")
    p.add_argument("--overlays", type=str2bool, default=False, help="write per-image skeleton overlays")


def _setup_eval(a):
    from .coco import CocoSplit, resolve_test_list
    split = CocoSplit(a.coco_root, a.coco_dataType)
    ids = resolve_test_list(a.test_list, split)
    if a.fir_img_num is not None and a.fir_img_num >= 0:
        ids = ids[:a.fir_img_num]
    return split, ids


def _inference_options(a):
    from .inference import InferenceOptions
    try:
        scales = tuple(float(s) for s in str(a.scales).split(","))
    except ValueError:
        raise DataError(f"--scales {a.scales!r}: expected numbers like 0.5,1,1.5,2") from None
    return InferenceOptions(scales=scales, flip=a.flip)


def _subsets():
    import pandas as pd
    path = REPO / "dataset" / "lists" / "deform_rare_crowded_list.csv"
    df = pd.read_csv(path)
    return {c: [int(v) for v in df[c].dropna()] for c in df.columns}


def eval_single_scale(argv=None):
    p = _parser("eval_coco2014_single_scale.py",
                "Evaluate one expert on a COCO split: COCO keypoint AP (pycocotools), PCK, timing; "
                "writes results JSON, match-to-GT JSON and a CSV into one run folder. Resumable.",
                ["python eval/eval_coco2014_single_scale.py --effect _dark --coco_dataType val2017_dark --coco-root runs/quickstart/data/test --models-dir runs/quickstart/models",
                 "python eval/eval_coco2014_single_scale.py --effect '' --coco_dataType val2014 --test-list cmu1k --scales 0.5,1,1.5,2",
                 "python eval/eval_coco2014_single_scale.py --effect _dark --coco_dataType val2017_dark --compute_keypoint False --eval_compute_keypoint True"])
    p.add_argument("--effect", default="", help="expert: '' (normal), _dark, _motion_blur")
    p.add_argument("--weights", default=None, help="a .keras model (default <models-dir>/pose_<domain>.keras)")
    _eval_args(p)
    a = p.parse_args(argv)
    from .domains import effect_from_flag
    from .evaluate import evaluate_predictor
    from .inference import PoseEstimator
    split, ids = _setup_eval(a)
    domain = effect_from_flag(a.effect)
    weights = a.weights or Path(a.models_dir) / f"pose_{domain}.keras"
    est = PoseEstimator.from_weights(weights, _inference_options(a)) if a.compute_keypoint else None
    out = _results_dir(a.out, a.coco_dataType, _model_tag(a.effect), len(ids))
    s = evaluate_predictor(est.estimate if est else None, split, ids, out, f"{a.coco_dataType}-{_model_tag(a.effect)}",
                           compute=a.compute_keypoint, evaluate=a.eval_compute_keypoint,
                           overlays=a.overlays, subsets=_subsets(), timing=est.timing if est else None)
    _print_summary(s, out)


def _print_summary(s, out):
    if "stats" in s:
        st = s["stats"]
        split_ms = (f" (network {s['network_ms_per_image']:.0f} + decode {s['decode_ms_per_image']:.1f})"
                    if "network_ms_per_image" in s else "")
        print(f"{out}: AP {st['AP']:.3f}  AP50 {st['AP50']:.3f}  AP75 {st['AP75']:.3f}  AR {st['AR']:.3f}  "
              f"PCK@0.5 {s['pck']['all']:.3f}  {s['seconds_per_image'] * 1000:.0f} ms/image{split_ms} "
              f"({s['images']} images)")
    else:
        print(f"{out}: {s['detections']} people in {s['images']} images")


def ensemble(argv=None):
    p = _parser("ensemble.py", "Evaluate the domain ensemble: route (classifier picks one expert, only it "
                "runs), fuse (probability-weighted mean of the experts' maps), or all (every expert, "
                "for util_ainu.py).",
                ["python train_domain_classifier/ensemble.py --coco_dataType val2017_dark --mode route --coco-root runs/quickstart/data/test --models-dir runs/quickstart/models",
                 "python train_domain_classifier/ensemble.py --coco_dataType val2014 --test-list cmu1k --mode fuse",
                 "python train_domain_classifier/ensemble.py --coco_dataType val2017_dark --mode fuse --map-scores --coco-root runs/quickstart/data/test --models-dir runs/quickstart/models"])
    p.add_argument("--mode", choices=["route", "fuse", "all"], default="route")
    p.add_argument("--fuse-temperature", type=float, default=1.0,
                   help="fuse weights = softmax(log p / T): 1 = the classifier's probabilities, inf = plain mean")
    p.add_argument("--map-scores", action="store_true",
                   help="also score the maps before grouping (keypoint F1, heatmap/PAF MSE against the "
                        "training targets): tells weak experts apart where AP is 0")
    _eval_args(p)
    a = p.parse_args(argv)
    from .evaluate import evaluate_predictor
    split, ids = _setup_eval(a)
    ens = load_ensemble(a.models_dir, _inference_options(a), need_classifier=a.mode != "all",
                        fuse_temperature=a.fuse_temperature)
    if a.mode == "all":
        for d, est in ens.experts.items():
            tag = _model_tag(d)
            out = _results_dir(a.out, a.coco_dataType, tag, len(ids))
            _print_summary(evaluate_predictor(est.estimate, split, ids, out, f"{a.coco_dataType}-{tag}",
                                              compute=a.compute_keypoint, evaluate=a.eval_compute_keypoint), out)
        return
    out = _results_dir(a.out, a.coco_dataType, f"ensemble_{a.mode}", len(ids))
    s = evaluate_predictor(ens.predictor(a.mode), split, ids, out, f"{a.coco_dataType}-ensemble_{a.mode}",
                           compute=a.compute_keypoint, evaluate=a.eval_compute_keypoint, overlays=a.overlays)
    _print_summary(s, out)
    if a.map_scores:
        from .coco import write_json_atomic
        from .evaluate import map_scores
        ms = map_scores(ens.predictor(a.mode, maps=True), split, ids, peak_threshold=ens.decode_options().peak_threshold)
        write_json_atomic(ms, out / "map_scores.json")
        print(f"maps: keypoint F1 {ms['f1']:.3f} (recall {ms['recall']:.3f}, precision {ms['precision']:.3f}), "
              f"heatmap MSE {ms['heatmap_mse']:.2e}, PAF MSE {ms['paf_mse']:.2e} -> {out / 'map_scores.json'}")


def load_ensemble(models_dir, options=None, need_classifier=True, fuse_temperature: float = 1.0):
    """Experts ``<models_dir>/pose_<domain>.keras`` and ``domain_classifier.pt`` as an Ensemble."""
    from .classifier import DomainClassifier
    from .domains import EXPERT_DOMAINS
    from .ensemble import Ensemble
    from .inference import PoseEstimator, load_network
    models_dir = Path(models_dir)
    experts = {d: PoseEstimator(load_network(models_dir / f"pose_{d}.keras"), options) for d in EXPERT_DOMAINS}
    clf = DomainClassifier(models_dir / "domain_classifier.pt") if need_classifier else None
    return Ensemble(experts, clf, fuse_temperature=fuse_temperature)


def disagreement(argv=None):
    p = _parser("util_ainu.py", "Per-limb translational and rotational disagreement of the three experts "
                "(correct limb names, scale-normalised, angles wrapped), whether it predicts error "
                "(Spearman rho, sparsification, AUSE) and a plot.",
                ["python util_ainu.py --coco_dataType val2017_dark --coco-root runs/quickstart/data/test --results eval/results",
                 "python util_ainu.py --coco_dataType val2014 --no-gt   # pair people by OKS, no labels needed"])
    p.add_argument("--coco_dataType", "-dt", required=True)
    p.add_argument("--coco-root", default=str(REPO / "dataset"))
    p.add_argument("--results", default=str(REPO / "eval" / "results"), help="folder of the experts' eval runs")
    p.add_argument("--no-gt", action="store_true", help="pair people across experts by OKS, not GT ids")
    p.add_argument("--out", default=None, help="output folder (default: the results folder)")
    a = p.parse_args(argv)
    from .coco import CocoSplit
    split = CocoSplit(a.coco_root, a.coco_dataType)
    res = disagreement_for_split(split, a.coco_dataType, Path(a.results), Path(a.out or a.results), use_gt=not a.no_gt)
    print(f"{res['csv']}: total transl {res['total_transl']:.3f}, total rot {res['total_rot']:.3f}, "
          f"{res['n_persons']} people; Spearman rho(transl, error) {res.get('spearman_transl', float('nan')):.3f}, "
          f"AUSE {res.get('ause_transl', float('nan')):.3f}")


def disagreement_for_split(split, dt: str, results: Path, out: Path, use_gt: bool = True) -> dict:
    """Read the three experts' result JSONs of ``dt`` under ``results`` (people matched to GT by
    OKS >= 0.1, see :func:`keras_openpose.uncertainty.match_by_oks`, or across experts by OKS
    without ground truth) and write
    ``<dt>-three-model-disagreement.{csv,json,png}`` under ``out``; returns the report (+ paths)."""
    import pandas as pd

    from .coco import write_json_atomic
    from .domains import EXPERT_DOMAINS
    from .uncertainty import disagreement_report
    from .visualize import plot_sparsification
    dets = {}
    for d in EXPERT_DOMAINS:
        tag = _model_tag(d)
        runs = sorted(results.glob(f"{dt}-{tag}-open-pose-single-scale-*"))
        if not runs:
            raise DataError(f"{results}: no eval run of expert {tag!r} on {dt} (run eval_coco2014_single_scale.py first)")
        f = runs[-1] / f"{dt}-{tag}_result.json"
        if not f.is_file():
            raise DataError(f"{f}: results file missing (run eval_coco2014_single_scale.py first)")
        dets[d] = json.loads(f.read_text())
    rep = disagreement_report(dets, split.data if use_gt else None, None)
    names = {d: ("ours" if d == "normal" else d) for d in EXPERT_DOMAINS}
    rows = [(f"transl disagreement {k.replace('-', ' to ')}", v["transl"]) for k, v in rep["limbs"].items()]
    rows += [(f"rotate disagreement {k.replace('-', ' to ')}", v["rot"]) for k, v in rep["limbs"].items()]
    rows += [("total transl disagreement", rep["total_transl"]), ("total rotate disagreement", rep["total_rot"])]
    out.mkdir(parents=True, exist_ok=True)
    csv = out / f"{dt}-three-model-disagreement.csv"
    pd.DataFrame(rows, columns=["evaluation_metrics", "value"]).to_csv(csv, index=False, float_format="%.4f")
    rep["experts_tags"] = names
    write_json_atomic(rep, out / f"{dt}-three-model-disagreement.json")
    png = out / f"{dt}-three-model-sparsification.png"
    if "sparsification_transl" in rep:
        plot_sparsification({"translational": rep["sparsification_transl"], "rotational": rep["sparsification_rot"]},
                            png, f"{dt}: disagreement vs error")
    return {**rep, "csv": str(csv), "png": str(png)}


def quickstart(argv=None):
    p = _parser("quickstart", "The whole pipeline on the bundled COCO sample (see README).",
                ["python -m keras_openpose.quickstart", "python -m keras_openpose.quickstart --config configs/quickstart.yaml --out runs/quickstart"])
    p.add_argument("--config", default=str(REPO / "configs" / "quickstart.yaml"))
    p.add_argument("--out", default=str(REPO / "runs" / "quickstart"))
    a = p.parse_args(argv)
    from .quickstart import run_quickstart
    run_quickstart(a.config, a.out)


VIDEO_EXT = (".mp4", ".avi", ".mov", ".mkv", ".webm")
IMAGE_EXT = (".jpg", ".jpeg", ".png", ".bmp")


def _frames(source: str):
    """Yield ``(name, BGR frame)`` from an image, a folder of images, a video file or a webcam index."""
    import cv2

    from .coco import read_image
    if source.isdigit() or source.lower().endswith(VIDEO_EXT):
        cap = cv2.VideoCapture(int(source) if source.isdigit() else source)
        if not cap.isOpened():
            raise DataError(f"{source}: cannot open video source")
        k = 0
        try:
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                yield f"frame_{k:06d}", frame
                k += 1
        finally:
            cap.release()
        if k == 0:
            raise DataError(f"{source}: no frame could be read")
        return
    p = Path(source)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_EXT)
        if not files:
            raise DataError(f"{p}: no images in the folder")
        for f in files:
            yield f.stem, read_image(f)
    else:
        yield p.stem, read_image(p)


def predict(argv=None):
    p = _parser("python -m keras_openpose.predict",
                "Estimate poses in an image, a folder, a video file or a webcam; write overlays and a "
                "COCO-style JSON (image_id = frame or file name).",
                ["python -m keras_openpose.predict --weights runs/quickstart/models/pose_normal.keras --input dataset/sample/val2017/000000397133.jpg --out runs/predict",
                 "python -m keras_openpose.predict --weights models/pose_normal.keras --input clip.mp4 --out runs/clip --show-kpt-name --show-maps",
                 "python -m keras_openpose.predict --models-dir models --mode route --input 0 --out runs/webcam --max-frames 300"])
    p.add_argument("--input", required=True, help="image, folder, video file, or webcam index (0)")
    p.add_argument("--out", required=True, help="output folder (overlays + poses.json)")
    p.add_argument("--weights", help="one expert (.keras)")
    p.add_argument("--models-dir", help="experts + classifier, with --mode route or fuse")
    p.add_argument("--mode", choices=["route", "fuse"], default="route")
    p.add_argument("--scales", default="1")
    p.add_argument("--flip", type=str2bool, default=False)
    p.add_argument("--show-kpt-name", action="store_true", help="write part names on the overlay")
    p.add_argument("--show-maps", action="store_true", help="add heatmap and PAF panels to the overlay")
    p.add_argument("--max-frames", type=int, default=None)
    a = p.parse_args(argv)
    import cv2

    from .coco import write_json_atomic
    from .inference import PoseEstimator
    from .visualize import draw_poses, map_panel
    if not a.weights and not a.models_dir:
        raise DataError("give --weights (one expert) or --models-dir (ensemble)")
    opts = _inference_options(a)
    if a.weights:
        experts = [PoseEstimator.from_weights(a.weights, opts)]
        maps_fn = experts[0].maps
    else:
        ens = load_ensemble(a.models_dir, opts)
        experts = list(ens.experts.values())
        maps_fn = ens.predictor(a.mode, maps=True)
    decoder = experts[0]  # the experts share one decoder configuration
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    results, video, frames = [], None, 0
    is_video = a.input.isdigit() or a.input.lower().endswith(VIDEO_EXT)
    for k, (name, frame) in enumerate(_frames(a.input)):
        if a.max_frames is not None and k >= a.max_frames:
            break
        heat, paf, stride = maps_fn(frame)  # one network pass serves both the people and the panels
        people = decoder.decode(heat, paf, stride, frame.shape[:2])
        frames += 1
        vis = draw_poses(frame, people, show_names=a.show_kpt_name)
        if a.show_maps:
            vis = np.concatenate([vis, map_panel(frame, heat, paf)[:, frame.shape[1]:]], 1)
        results += [{"image_id": name, "category_id": 1, **q} for q in people]
        if is_video:
            if video is None:
                video = cv2.VideoWriter(str(out / "overlay.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 25,
                                        (vis.shape[1], vis.shape[0]))
            video.write(vis)
        else:
            cv2.imwrite(str(out / f"{name}_pose.jpg"), vis)
    if video is not None:
        video.release()
    write_json_atomic(results, out / "poses.json")
    n = max(frames, 1)
    network_s = sum(e.timing["network_s"] for e in experts)
    decode_s = sum(e.timing["decode_s"] for e in experts)
    print(f"{out}: {len(results)} people in {frames} frames; network {1000 * network_s / n:.0f} ms, "
          f"decode {1000 * decode_s / n:.1f} ms per frame")


def convert_weights(argv=None):
    p = _parser("convert_weights.py",
                "Turn weights users already have into a Keras 3 model file: the CMU Caffe model "
                "(pose_iter_440000.caffemodel; no Caffe needed) or the reference's Keras 2 weights.0100.h5.",
                ["python training/convert_weights.py --caffemodel pose_iter_440000.caffemodel --out models/pose_normal.keras",
                 "python training/convert_weights.py --reference-h5 training/weights/weights.0100.h5 --out models/pose_normal.keras"])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--caffemodel")
    src.add_argument("--reference-h5")
    p.add_argument("--out", required=True, help="the .keras file to write")
    a = p.parse_args(argv)
    from .model import build_model
    from .weights import load_caffe_weights, load_reference_h5
    model = build_model("vgg19")
    loaded = load_caffe_weights(model, a.caffemodel) if a.caffemodel else load_reference_h5(model, a.reference_h5)
    from .train import save_model_atomic
    out = save_model_atomic(model, a.out)
    print(f"{out}: {len(loaded)} layers loaded, {model.count_params():,} parameters")


def check_coco(argv=None):
    p = _parser("check_coco.py", "Check a COCO root: annotation schema, image files present and readable at "
                "the annotated size. Reports problems with counts (exit 1 if any).",
                ["python dataset/check_coco.py --coco-root dataset/sample",
                 "python dataset/check_coco.py --coco-root dataset --splits train2014,val2014 --no-read"])
    p.add_argument("--coco-root", required=True)
    p.add_argument("--splits", default=None, help="comma-separated (default: every annotation file)")
    p.add_argument("--no-read", action="store_true", help="only check that files exist (fast)")
    a = p.parse_args(argv)
    from .coco import check_root
    rep = check_root(a.coco_root, a.splits.split(",") if a.splits else None, read_images=not a.no_read)
    bad = 0
    for split, r in rep.items():
        problems = r["missing"] + r["unreadable"] + r["size_mismatch"] + r["orphan_annotations"] + (1 if r["errors"] and not r["images"] else 0)
        bad += problems
        print(f"{split}: {r['images']} images, {r['annotations']} annotations ({r['people_with_keypoints']} people "
              f"with keypoints); missing {r['missing']}, unreadable {r['unreadable']}, size mismatch "
              f"{r['size_mismatch']}, orphan annotations {r['orphan_annotations']}")
        for e in r["errors"]:
            print("  ", e)
    if bad:
        sys.exit(1)
