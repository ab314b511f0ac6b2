"""Command-line parsing. Every user-facing script is a thin wrapper around one function here: parse
arguments, call the package, print a short result. Bad input ends with one line
``error: <file>: <problem>`` and exit status 2, never a traceback.

Every command takes ``--experiment FILE`` (a YAML :class:`~keras_openpose.config.ExperimentConfig`)
whose values the flags override; every command that decodes takes the decoder options
(``--peak-threshold``, ``--min-parts``, ...), which otherwise come from the model file.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from .errors import PREEMPTED_EXIT_CODE, ClusterError, DataError, Preempted  # noqa: E402

from .config import PROJECT_ROOT  # noqa: E402  (script defaults: dataset/, models/, eval/results)


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


def _number(kind, low=None, high=None, low_open=False):
    """An argparse type: a ``kind`` number in ``[low, high]`` (``(low, high]`` with ``low_open``),
    checked by the :class:`~keras_openpose.config.Rule` that checks the experiment YAML."""
    from .config import Rule
    return Rule(kind, low, high, low_open).flag()


POSITIVE_INT, POSITIVE = _number(int, 1), _number(float, 0, low_open=True)
FRACTION = _number(float, 0, 1)


def _scales(v):
    """``--scales``: comma-separated multiples of the box, each in (0, 8]."""
    try:
        scales = tuple(float(s) for s in str(v).split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{v!r}: expected numbers like 0.5,1,1.5,2") from None
    if not all(0 < s <= 8 for s in scales):
        raise argparse.ArgumentTypeError(f"{v}: each scale must be in (0, 8]")
    return scales


def _parser(prog, description, examples):
    p = argparse.ArgumentParser(prog=prog, description=description,
                                epilog="examples:\n" + "\n".join("  " + e for e in examples),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--experiment", default=None,
                   help="YAML experiment file (configs/*.yaml: data, skeleton, model, codec, decode, train, "
                        "finetune, classifier, inference); flags override it")
    return p


def run(fn, argv=None):
    """Call ``fn(argv)``; turn the project's errors into one line and an exit status
    (:mod:`keras_openpose.errors`: 2 bad input, 3 a lost worker, 42 preempted after a checkpoint)."""
    try:
        return fn(argv)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except ClusterError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(3)
    except Preempted as e:
        print(f"preempted: {e}", file=sys.stderr)
        sys.exit(PREEMPTED_EXIT_CODE)
    except (OSError, RuntimeError) as e:   # a read or write the OS refused: a full disk, a read-only file system
        from .files import os_error_line
        line = os_error_line(e)
        if line is None or os.environ.get("KERAS_OPENPOSE_TRACEBACK"):
            raise
        print(f"error: {line}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted: completed work is saved; run the same command again to resume", file=sys.stderr)
        sys.exit(130)


# ------------------------------------------------------------------------------------------
# shared arguments
# ------------------------------------------------------------------------------------------

def _experiment(a):
    from .config import ExperimentConfig
    return ExperimentConfig.from_yaml(a.experiment)


def _check_model_file(path):
    """"not found" for a missing model file, before TensorFlow is imported (the shipped pretrained
    network is made on first use: it may be missing)."""
    from .weights import PRETRAINED_IR, PRETRAINED_WEIGHTS
    p = Path(path)
    if not p.exists() and not (p.resolve() == PRETRAINED_WEIGHTS.resolve() and PRETRAINED_IR.is_file()):
        raise DataError(f"{p}: model file not found")


def _data_args(p, split_flag="--split", required_split=False):
    p.add_argument("--coco-root", default=None, help="COCO root with annotations/ and <split>/ (default: the "
                   "experiment's data.coco_root, else dataset/)")
    p.add_argument(split_flag, dest="split", default=None, required=required_split,
                   help="split name, e.g. train2017, val2014" + ("" if required_split else " (default: the experiment's)"))
    p.add_argument("--annotations", default=None, help="any COCO-format keypoint JSON (instead of the COCO root layout)")
    p.add_argument("--images", default=None, help="its image folder (default: the annotation file's folder)")


def _split(a, exp, which: str = "train"):
    """The split named by the data flags, else by the experiment's ``data`` section."""
    from .coco import open_split
    d = exp.data
    if a.annotations:   # a file named on the command line: the split is named after it
        return open_split(split=a.split, annotations=a.annotations, images=a.images)
    return open_split(a.coco_root or d.coco_root, a.split or getattr(d, f"{which}_split"),
                      getattr(d, f"{which}_annotations"), a.images or getattr(d, f"{which}_images"))


def _decode_args(p):
    """The decoder flags: one per :class:`~keras_openpose.codec.DecodeOptions` field, each with the
    type, range and help of its :data:`keras_openpose.config.RULES` entry (the rule of the YAML)."""
    from .codec import DecodeOptions
    from .config import field_rule
    g = p.add_argument_group("decoder (default: the model's own options, then the experiment's decode section)")
    for f in dataclasses.fields(DecodeOptions):
        rule = field_rule(DecodeOptions, f.name)
        g.add_argument("--" + f.name.replace("_", "-"), dest="decode_" + f.name, type=rule.flag(), default=None,
                       help=f"{rule.help}: {rule.describe()} (default {f.default})")


def _decode_overrides(a) -> dict:
    """Decoder options set explicitly: the experiment file's ``decode`` keys, then the flags (both
    checked by the same rules)."""
    out = {}
    if a.experiment:
        from .config import ExperimentConfig, load_yaml
        decode = ExperimentConfig.from_yaml(a.experiment).decode    # unknown keys, bad values -> DataError
        out.update({k: getattr(decode, k) for k in load_yaml(a.experiment).get("decode") or {}})
    out.update({k[len("decode_"):]: v for k, v in vars(a).items() if k.startswith("decode_") and v is not None})
    return out


def _inference_args(p):
    p.add_argument("--scales", type=_scales, default=None, help="comma-separated multiples of the box, e.g. 0.5,1,1.5,2 (default 1)")
    p.add_argument("--flip", type=str2bool, default=None, help="average with the mirrored image (True/False)")
    p.add_argument("--box-size", type=_number(int, 16, 4096), default=None, help="input height in pixels before scales (default 368)")
    p.add_argument("--max-side", type=_number(int, 64, 16384), default=None,
                   help="longest side of the network input; larger images are resized to fit (default 2048)")


def _inference_options(a, exp):
    from .config import InferenceOptions
    o = exp.inference
    return InferenceOptions(box_size=a.box_size or o.box_size, scales=a.scales or o.scales,
                            flip=o.flip if a.flip is None else a.flip, max_side=a.max_side or o.max_side)


# ------------------------------------------------------------------------------------------
# dataset / training data
# ------------------------------------------------------------------------------------------

def generate_masks(argv=None):
    p = _parser("generate_masks_coco2014.py",
                "Write the ignore mask of every image of a COCO split (mask_miss_<id>.png; 255 = loss "
                "used, 0 = crowd regions and people without keypoints). Resumable.",
                ["python training/generate_masks_coco2014.py --coco-root dataset/sample --split train2017 --out runs/masks_train2017",
                 "python training/generate_masks_coco2014.py --annotations ../shared/data/keypoints/aic/test_aic.json --out runs/masks_aic"])
    _data_args(p)
    p.add_argument("--out", required=True, help="output folder of PNG masks")
    a = p.parse_args(argv)
    from .files import check_output_dir
    from .store import write_masks
    split = _split(a, _experiment(a))
    check_output_dir(a.out)
    n = write_masks(split, a.out, progress=True)
    print(f"{a.out}: {n} masks written ({len(split.image_ids)} images in {split.split})")


def generate_hdf5(argv=None):
    p = _parser("generate_hdf5_coco2014.py",
                "Build the compact training store of a COCO-format split (any skeleton): original JPEG "
                "bytes, ignore mask (PNG), people arrays and main people, once per image for every domain. "
                "Parallel, atomic, resumable (re-run the same command after an interruption).",
                ["python training/generate_hdf5_coco2014.py --coco-root dataset/sample --split train2017 --out runs/train2017.h5",
                 "python training/generate_hdf5_coco2014.py --coco-root dataset --split val2014 --out dataset/val2014_train.h5 --exclude-list cmu1k",
                 "python training/generate_hdf5_coco2014.py --annotations ../shared/data/keypoints/onehand10k/test_onehand10k.json --out runs/hands.h5"])
    _data_args(p)
    p.add_argument("--out", required=True, help="output .h5")
    p.add_argument("--masks", help="folder from generate_masks_coco2014.py (else masks are computed here)")
    p.add_argument("--exclude-list", help="test list never stored: cmu1k, random1k, or an id file")
    p.add_argument("--workers", type=POSITIVE_INT, default=None, help="processes (default: all cores)")
    a = p.parse_args(argv)
    from .coco import resolve_test_list
    from .store import build_store
    split = _split(a, _experiment(a))
    exclude = resolve_test_list(a.exclude_list, split) if a.exclude_list else []
    r = build_store(split, a.out, exclude_ids=exclude, mask_dir=a.masks, workers=a.workers)
    size = (f"{r['bytes'] / 1e6:.1f} MB = {r['bytes'] / r['jpeg_bytes']:.2f}x the stored JPEG bytes"
            if r["jpeg_bytes"] else "no image stored")
    print(f"{r['path']}: {r['images']} images, {r['people']} people, {r['main_people']} main people, {size}; "
          f"{len(r['skipped'])} skipped" + (f" (list: {r['path']}.skipped.txt)" if r["skipped"] else ""))
    for reason, n in r["skipped_by_reason"].items():
        print(f"  {n} x {reason}")
    for s in r["skipped"][:20]:
        print("  skipped:", s)


def make_test_domains(argv=None):
    p = _parser("make_test_domains.py",
                "Build test domains (normal, dark, motion_blur, resolution) of a COCO split as new "
                "splits with correct annotations (half resolution rescales keypoints, bbox, area, "
                "segmentation, width/height).",
                ["python dataset/make_test_domains.py --coco-root dataset/sample --split val2017 --out runs/test",
                 "python dataset/make_test_domains.py --coco-root dataset --split val2014 --test-list cmu1k --tag _cmu1k --out dataset",
                 "python dataset/make_test_domains.py --annotations ../shared/data/keypoints/aic/test_aic.json --domains dark --out runs/aic_test"])
    _data_args(p)
    p.add_argument("--out", required=True, help="root to write <split><tag>_<domain>/ and annotations/")
    p.add_argument("--domains", default=None, help="comma-separated (default: the experiment's, normal,dark,motion_blur,resolution)")
    p.add_argument("--test-list", default=None, help="all (default), cmu1k, random1k, or an id file")
    p.add_argument("--tag", default="", help="inserted after the split name, e.g. _random1k")
    p.add_argument("--seed", type=int, default=0, help="seed of the random1k list")
    p.add_argument("--dark-factor", type=_number(float, 0, 1, low_open=True), default=None, help="brightness factor (default 0.5)")
    p.add_argument("--blur-length", type=_number(float, 1, 500), default=None, help="motion blur length, source px (default 30)")
    p.add_argument("--resolution-factor", type=_number(float, 0, 1, low_open=True), default=None, help="down-scaling factor (default 0.5)")
    a = p.parse_args(argv)
    from .coco import make_domain_test_set, resolve_test_list
    from .files import check_output_dir
    exp = _experiment(a)
    check_output_dir(a.out)
    split = _split(a, exp, "test")
    ids = resolve_test_list(a.test_list, split, a.seed)
    strength = {"dark": a.dark_factor, "motion_blur": a.blur_length, "resolution": a.resolution_factor}
    for d in (a.domains.split(",") if a.domains else exp.data.test_domains):
        d = d.strip()
        s = make_domain_test_set(split, d, a.out, ids, strength=strength.get(d), tag=a.tag, progress=True)
        print(f"{s.image_dir}: {len(s.images)} images, {len(s.data['annotations'])} annotations")


def check_coco(argv=None):
    p = _parser("check_coco.py", "Check a COCO root (or one COCO-format annotation file): schema, image files "
                "present and readable at the annotated size. Reports problems with counts (exit 1 if any).",
                ["python dataset/check_coco.py --coco-root dataset/sample",
                 "python dataset/check_coco.py --coco-root dataset --splits train2014,val2014 --no-read",
                 "python dataset/check_coco.py --annotations ../shared/data/keypoints/ap10k/test_ap10k.json"])
    p.add_argument("--coco-root", default=None)
    p.add_argument("--splits", default=None, help="comma-separated (default: every annotation file)")
    p.add_argument("--annotations", default=None, help="one COCO-format JSON instead of a root")
    p.add_argument("--images", default=None, help="its image folder (default: the annotation file's folder)")
    p.add_argument("--no-read", action="store_true", help="only check that files exist (fast)")
    a = p.parse_args(argv)
    from .coco import annotation_path, check_root, check_split
    exp = _experiment(a)        # a missing or bad --experiment is an error, never ignored
    if a.annotations:
        ann = Path(a.annotations)
        rep = {ann.stem: check_split(ann, Path(a.images) if a.images else ann.parent, not a.no_read)}
    elif a.coco_root:
        rep = check_root(a.coco_root, a.splits.split(",") if a.splits else None, read_images=not a.no_read)
    elif a.experiment:          # the experiment's data section: its train and test splits
        d = exp.data

        def resolve(p):
            p = Path(p)
            return p if p.is_absolute() or p.exists() else PROJECT_ROOT / p
        root = resolve(d.coco_root)
        rep = {}
        for which in ("train", "test"):
            split = getattr(d, f"{which}_split")
            if a.splits and split not in a.splits.split(","):
                continue
            ann = getattr(d, f"{which}_annotations")
            ann = resolve(ann) if ann else annotation_path(root, split)
            images = getattr(d, f"{which}_images")
            images = resolve(images) if images else (ann.parent if getattr(d, f"{which}_annotations") else root / split)
            rep[split] = check_split(ann, images, not a.no_read, name=split)
    else:
        raise DataError("give --coco-root, --annotations or --experiment")
    bad = 0
    for split, r in rep.items():
        problems = len(r["problems"]) + (1 if r["errors"] and not r["images"] else 0)
        bad += problems
        print(f"{split}: {r['images']} images, {r['annotations']} annotations ({r['people_with_keypoints']} people "
              f"with keypoints); missing {r['missing']}, unreadable {r['unreadable']}, size mismatch "
              f"{r['size_mismatch']}, orphan annotations {r['orphan_annotations']}; skipped "
              f"{r['skipped_annotations']} annotations, {r['skipped_images']} images")
        for reason, n in r["by_reason"].items():
            print(f"  {n} x {reason}")
        for e in r["errors"]:
            print("  ", e)
    if bad:
        sys.exit(1)


# ------------------------------------------------------------------------------------------
# training
# ------------------------------------------------------------------------------------------

def train_pose(argv=None):
    p = _parser("train_pose.py",
                "Train one CPM/PAF expert on any COCO-format skeleton. The domain effect is applied on the fly "
                "to the shared store. Checkpoints every epoch and on SIGTERM (exit 42); re-running the same "
                "command resumes exactly. --batch-size is the global batch of all replicas and workers. "
                "The published model describes itself (network, skeleton, stride, decoder options).",
                ["python training/train_pose.py --effect _dark --store runs/train2017.h5 --config tiny --steps 300",
                 "python training/train_pose.py --effect '' --store dataset/train2017.h5 --config vgg19 --precision mixed_float16",
                 "python training/train_pose.py --experiment configs/quickstart.yaml --store runs/hands.h5 --skeleton auto --models-dir runs/hand_models",
                 "python training/train_pose.py --effect _motion_blur --init-from models/pose_normal.keras --config tiny",
                 "python training/train_pose.py --effect _motion_blur --init-from models/pose_normal.keras --distill-from models/pose_normal.keras --images my_photos --config lightweight",
                 "python -m keras_openpose.launch --workers 2 -- python training/train_pose.py --store runs/train2017.h5 --config tiny --batch-size 8 --distribute multiworker",
                 "TF_CONFIG='{\"cluster\": {\"worker\": [\"host0:23456\", \"host1:23456\"]}, \"task\": {\"type\": \"worker\", \"index\": 0}}' python training/train_pose.py ... --distribute multiworker"])
    p.add_argument("--effect", default=None, help="'' (normal), _dark or _motion_blur (default: the experiment's)")
    p.add_argument("--store", default=None, help="training store(s) from generate_hdf5_coco2014.py, comma-separated "
                   "(this and/or --images)")
    p.add_argument("--images", default=None, help="folder of unlabelled photos: random views, trained against the "
                   "--distill-from teacher only (besides the --store samples, or instead of them)")
    p.add_argument("--distill-from", default=None, help="teacher .keras model (e.g. models/pose_normal.keras): it sees "
                   "the clean crop, the expert the degraded one; adds the masked L2 to its last-stage maps")
    p.add_argument("--distill-weight", type=_number(float, 0), default=None,
                   help="weight of the teacher term (default 1.0)")
    p.add_argument("--config", default=None, help="network: vgg19 (CMU), lightweight, tiny")
    p.add_argument("--skeleton", default=None, help="auto (default: OpenPose COCO-18 for COCO persons, else the "
                   "dataset's), dataset, a shipped name (coco17, hand21, aic14, ap10k17) or a YAML file")
    p.add_argument("--out", default=None, help="run folder (default training/runs/weights<effect>)")
    p.add_argument("--models-dir", default=str(PROJECT_ROOT / "models"), help="where the final model is published")
    p.add_argument("--steps", type=POSITIVE_INT)
    p.add_argument("--steps-per-epoch", type=POSITIVE_INT)
    p.add_argument("--batch-size", type=POSITIVE_INT)
    p.add_argument("--lr", type=POSITIVE)
    p.add_argument("--optimizer", choices=["adam", "sgd", "sgd_cmu"], help="sgd_cmu: CMU lr multipliers")
    p.add_argument("--precision", help="mixed_bfloat16 (CPU default), mixed_float16 (GPU), float32")
    p.add_argument("--crop", type=_number(int, 32, 2048), help="training crop size (368 in the paper)")
    p.add_argument("--seed", type=int)
    p.add_argument("--init-from", help="a .keras model to fine-tune from (e.g. the normal expert)")
    p.add_argument("--distribute", choices=["none", "mirrored", "multiworker"],
                   help="tf.distribute strategy: mirrored = all local GPUs; multiworker = the machines in "
                        "TF_CONFIG (--batch-size is then the global batch; see README 'Scaling out')")
    p.add_argument("--worker-timeout", type=POSITIVE, help="seconds to wait for a peer worker before failing "
                   "with its name (default 300)")
    p.add_argument("--init", help="ImageNet VGG-19 weights file (Keras applications notop .h5) for the "
                   "vgg19 backbone; default: random init N(0, 0.01)")
    p.add_argument("--xla", action="store_true", help="XLA-compile the train step (GPUs)")
    p.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint")
    _decode_args(p)
    a = p.parse_args(argv)
    from .domains import effect_from_flag
    cfg = _experiment(a)
    if a.effect is not None:
        cfg.train.effect = effect_from_flag(a.effect)
    for flag, obj, field in (("config", cfg, "model"), ("skeleton", cfg, "skeleton"),
                             ("steps", cfg.train, "steps"), ("steps_per_epoch", cfg.train, "steps_per_epoch"),
                             ("batch_size", cfg.train, "batch_size"), ("lr", cfg.train, "learning_rate"),
                             ("optimizer", cfg.train, "optimizer"), ("precision", cfg.train, "precision"),
                             ("seed", cfg.train, "seed"), ("distribute", cfg.train, "distribute"),
                             ("worker_timeout", cfg.train, "worker_timeout"),
                             ("images", cfg.train, "images"), ("distill_from", cfg.train, "distill_from"),
                             ("distill_weight", cfg.train, "distill_weight"),
                             ("crop", cfg.train.augment, "crop")):
        if getattr(a, flag) is not None:
            setattr(obj, field, getattr(a, flag))
    if a.xla:
        cfg.train.xla = True
    cfg.decode = dataclasses.replace(cfg.decode, **_decode_overrides(a))
    effect_tag = "" if cfg.train.effect == "normal" else "_" + cfg.train.effect
    out = Path(a.out or PROJECT_ROOT / "training" / "runs" / f"weights{effect_tag}")
    from .pipeline import check_sources
    check_sources(cfg.train, a.store)                 # --store / --images / --distill-from, before any work
    if a.init_from:                                   # cheap checks first, before TensorFlow is imported
        _check_model_file(a.init_from)
    if cfg.train.distribute != "multiworker":        # (other workers of a cluster share the chief's folder)
        from .files import OutputLock
        with OutputLock(out / "run"):                 # "in use by another run" in a second, not after 13 s
            pass
    from .model import publish_model
    from .train import train_expert
    final = train_expert(cfg, a.store, out, resume=not a.no_resume, init_from=a.init_from, init_vgg19=a.init)
    from .train import get_strategy, worker_info
    if not worker_info(get_strategy(cfg.train.distribute))[2]:
        return   # only the chief publishes
    extra = {"config": cfg.model, "steps": cfg.train.steps, "run": str(out)}
    if cfg.train.distill_from:
        extra["distill_from"] = cfg.train.distill_from
    dst = publish_model(final, a.models_dir, cfg.train.effect, extra)
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
    p.add_argument("--val-fraction", type=_number(float, 0, 0.9, low_open=True), default=None,
                   help="share of --train images held out to choose the epoch and the CNN weight (default 0.2)")
    p.add_argument("--out", default=str(PROJECT_ROOT / "models" / "domain_classifier.pt"))
    p.add_argument("--epochs", type=POSITIVE_INT, default=None, help="default: the experiment's classifier.epochs (10)")
    p.add_argument("--max-images", type=POSITIVE_INT, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--dark-lights", type=FRACTION, default=None,
                   help="share of dark training images whose clipped pixels (lamps, windows) stay clipped; "
                        "0 = the reference's darkening only (see keras_openpose.classifier.train_classifier)")
    p.add_argument("--backbone", default=None,
                   help="optional torchvision network for the crop CNN (resnet18, resnet50, mobilenet_v3_small, ...); "
                        "needs torchvision")
    p.add_argument("--backbone-weights", default=None,
                   help="its ImageNet weights file as torchvision publishes it (you download it; nothing is fetched)")
    a = p.parse_args(argv)
    from .classifier import train_classifier as tc
    c = _experiment(a).classifier

    def pick(flag, default):
        return default if flag is None else flag
    log = tc(a.train, a.test, a.out, epochs=pick(a.epochs, c.epochs), seed=pick(a.seed, c.seed),
             max_images=a.max_images, val_fraction=pick(a.val_fraction, c.val_fraction), backbone=a.backbone,
             backbone_weights=a.backbone_weights, dark_lights=pick(a.dark_lights, c.dark_lights))
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
    from .files import write_json_atomic
    r = validate(a.weights, a.images, a.labels, progress=True)
    write_json_atomic(r["predictions"] if "accuracy" not in r else r, a.out)
    if "accuracy" in r:
        print(f"accuracy {r['accuracy']:.4f} on {len(r['predictions'])} images; confusion (rows = truth, "
              f"{r['confusion']['classes']}): {r['confusion']['matrix']}")
        for v, acc in r.get("accuracy_by_variant", {}).items():
            print(f"  {v}: {acc:.4f}")
    for line in r["skipped"]:
        print("  skipped:", line)
    print(f"{a.out}: {len(r['predictions'])} predictions" + (f", {len(r['skipped'])} images skipped" if r["skipped"] else ""))


def convert_weights(argv=None):
    p = _parser("convert_weights.py",
                "Turn weights users already have into a Keras 3 model file: Lightweight OpenPose as an "
                "OpenVINO IR (the shipped models/lightweight_openpose, int8 weights dequantised exactly), "
                "the CMU Caffe model (pose_iter_440000.caffemodel; no Caffe needed) or the reference's "
                "Keras 2 weights.0100.h5.",
                ["python training/convert_weights.py --openvino-ir models/lightweight_openpose/human-pose-estimation-0001.xml --out models/pose_normal.keras",
                 "python training/convert_weights.py --caffemodel pose_iter_440000.caffemodel --out models/pose_normal.keras",
                 "python training/convert_weights.py --reference-h5 training/weights/weights.0100.h5 --out models/pose_normal.keras"])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--openvino-ir", help="an OpenVINO IR .xml (its .bin beside it) of Lightweight OpenPose")
    src.add_argument("--caffemodel")
    src.add_argument("--reference-h5")
    p.add_argument("--out", required=True, help="the .keras file to write")
    a = p.parse_args(argv)
    from .model import build_model, save_model_atomic
    from .weights import convert_openvino_ir, load_caffe_weights, load_reference_h5
    if a.openvino_ir:
        r = convert_openvino_ir(a.openvino_ir, a.out)
        print(f"{r['path']}: {r['layers']} layers loaded, {r['parameters']:,} parameters (lightweight), "
              f"input x * {r['input_scale']:.7g} + {r['input_offset']:.7g} on BGR 0..255")
        return
    model = build_model("vgg19", precision="float32")
    loaded = load_caffe_weights(model, a.caffemodel) if a.caffemodel else load_reference_h5(model, a.reference_h5)
    out = save_model_atomic(model, a.out)
    print(f"{out}: {len(loaded)} layers loaded, {model.count_params():,} parameters")


# ------------------------------------------------------------------------------------------
# evaluation, ensemble, disagreement
# ------------------------------------------------------------------------------------------

def _eval_args(p):
    p.add_argument("--coco_dataType", "-dt", default=None,
                   help="split name, e.g. val2017_dark, val2014 (default: the experiment's test split)")
    p.add_argument("--coco-root", default=None, help="root with annotations/ and <dataType>/ (default dataset/)")
    p.add_argument("--annotations", default=None, help="any COCO-format keypoint JSON (instead of --coco_dataType)")
    p.add_argument("--images", default=None, help="its image folder (default: the annotation file's folder)")
    p.add_argument("--models-dir", default=str(PROJECT_ROOT / "models"), help="pose_<domain>.keras + domain_classifier.pt")
    p.add_argument("--fir_img_num", type=_number(int, -1), default=-1, help="first N images of the list (-1 = all); "
                   "COCO eval then covers exactly those images")
    p.add_argument("--test-list", default=None, help="all (default), cmu1k, random1k, or an id file")
    p.add_argument("--compute_keypoint", type=str2bool, default=True, help="run the network (True/False)")
    p.add_argument("--eval_compute_keypoint", type=str2bool, default=True, help="COCO eval + PCK (True/False)")
    p.add_argument("--out", default=str(PROJECT_ROOT / "eval" / "results"), help="results folder")
    p.add_argument("--overlays", type=str2bool, default=False, help="write per-image skeleton overlays")
    p.add_argument("--any-keypoint-names", action="store_true",
                   help="score a model on data whose keypoint names differ from its own (same count; the user "
                        "vouches that keypoint k means the same in both); refused otherwise")
    _inference_args(p)
    _decode_args(p)


def _check_names(a, skeleton, split):
    """A model meets annotations: the same keypoints by name, not only by count."""
    from .coco import keypoint_names
    from .skeleton import check_same_skeleton
    if not a.any_keypoint_names:
        check_same_skeleton(skeleton, keypoint_names(split.data), f"{split.annotation_file} (--any-keypoint-names "
                            "to score anyway)")


def _setup_eval(a, exp):
    from .coco import resolve_test_list
    a.split = a.coco_dataType
    split = _split(a, exp, "test")
    ids = resolve_test_list(a.test_list, split)
    if a.fir_img_num is not None and a.fir_img_num >= 0:
        ids = ids[:a.fir_img_num]
    return split, ids


def eval_single_scale(argv=None):
    p = _parser("eval_coco2014_single_scale.py",
                "Evaluate one expert on a COCO-format split: COCO keypoint AP (pycocotools, the skeleton's OKS "
                "sigmas) or PCK@0.2 / AUC / EPE for skeletons without sigmas, PCK, timing; writes results JSON, "
                "match-to-GT JSON and a CSV into one run folder. Resumable.",
                ["python eval/eval_coco2014_single_scale.py --effect _dark --coco_dataType val2017_dark --coco-root runs/quickstart/data/test --models-dir runs/quickstart/models",
                 "python eval/eval_coco2014_single_scale.py --effect '' --coco_dataType val2014 --test-list cmu1k --scales 0.5,1,1.5,2",
                 "python eval/eval_coco2014_single_scale.py --weights runs/hand_models/pose_normal.keras --annotations ../shared/data/keypoints/freihand/test_freihand.json",
                 "python eval/eval_coco2014_single_scale.py --effect _dark --coco_dataType val2017_dark --compute_keypoint False --eval_compute_keypoint True"])
    p.add_argument("--effect", default="", help="expert: '' (normal), _dark, _motion_blur")
    p.add_argument("--weights", default=None, help="a .keras model (default <models-dir>/pose_<domain>.keras)")
    _eval_args(p)
    a = p.parse_args(argv)
    from .files import check_output_dir
    check_output_dir(a.out)                   # before TensorFlow and the network
    from .domains import effect_from_flag
    from .evaluate import check_layout, evaluate_predictor, model_tag, reference_subsets, results_dir, summary_line
    from .inference import PoseEstimator
    from .model import expert_path
    exp = _experiment(a)
    split, ids = _setup_eval(a, exp)
    domain = effect_from_flag(a.effect)
    weights = a.weights or expert_path(a.models_dir, domain)
    if a.compute_keypoint:
        est = PoseEstimator.from_weights(weights, _inference_options(a, exp), **_decode_overrides(a))
        skeleton = est.skeleton
    else:  # scoring cached predictions: the model file's skeleton (read without building the network)
        from .skeleton import model_skeleton
        est, skeleton = None, model_skeleton(weights)
    check_layout(split, skeleton)
    _check_names(a, skeleton, split)
    tag = model_tag(a.effect)
    out = results_dir(a.out, split.split, tag, len(ids))
    s = evaluate_predictor(est.estimate if est else None, split, ids, out, f"{split.split}-{tag}",
                           compute=a.compute_keypoint, evaluate=a.eval_compute_keypoint, overlays=a.overlays,
                           subsets=reference_subsets(split), timing=est.timing if est else None, skeleton=skeleton)
    print(summary_line(s, out))


def ensemble(argv=None):
    p = _parser("ensemble.py", "Evaluate the domain ensemble: route (classifier picks one expert, only it "
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
    _eval_args(p)
    a = p.parse_args(argv)
    from .files import check_output_dir
    check_output_dir(a.out)
    from .ensemble import Ensemble
    from .evaluate import check_layout, evaluate_predictor, map_scores, model_tag, results_dir, summary_line
    from .files import write_json_atomic
    exp = _experiment(a)
    split, ids = _setup_eval(a, exp)
    skeleton = _experts_skeleton(a.models_dir, None, split, check_data=False)   # the experts' files; one skeleton
    check_layout(split, skeleton)
    _check_names(a, skeleton, split)
    ens = None                                # scoring cached predictions needs no network
    if a.compute_keypoint or a.map_scores:
        ens = Ensemble.from_models_dir(a.models_dir, _inference_options(a, exp), need_classifier=a.mode != "all",
                                       fuse_temperature=a.fuse_temperature, **_decode_overrides(a))
    if a.mode == "all":
        from .domains import EXPERT_DOMAINS
        for d, est in (ens.experts if ens else dict.fromkeys(EXPERT_DOMAINS)).items():
            out = results_dir(a.out, split.split, model_tag(d), len(ids))
            print(summary_line(evaluate_predictor(est.estimate if est else None, split, ids, out, f"{split.split}-{model_tag(d)}",
                                                  compute=a.compute_keypoint, evaluate=a.eval_compute_keypoint,
                                                  skeleton=skeleton), out))
        return
    out = results_dir(a.out, split.split, f"ensemble_{a.mode}", len(ids))
    s = evaluate_predictor(ens.predictor(a.mode) if ens else None, split, ids, out, f"{split.split}-ensemble_{a.mode}",
                           compute=a.compute_keypoint, evaluate=a.eval_compute_keypoint, overlays=a.overlays,
                           skeleton=skeleton)
    print(summary_line(s, out))
    if a.map_scores:
        ms = map_scores(ens.predictor(a.mode, maps=True), split, ids, codec=ens.codec)
        write_json_atomic(ms, out / "map_scores.json")
        print(f"maps: keypoint F1 {ms['f1']:.3f} (recall {ms['recall']:.3f}, precision {ms['precision']:.3f}), "
              f"heatmap MSE {ms['heatmap_mse']:.2e}, PAF MSE {ms['paf_mse']:.2e} -> {out / 'map_scores.json'}")


def _experts_skeleton(models_dir, spec, split, check_data: bool = True):
    """The skeleton of the experts ``<models_dir>/pose_<domain>.keras`` (read from their files,
    never re-derived from the test annotations: a data-derived skeleton's spanning links depend on
    the annotations they were derived from); experts with different skeletons are refused. Without
    the files, the layout the user names with ``spec`` (``--skeleton``).

    Raises:
        DataError: the files missing and no ``spec``; experts that differ; ``spec`` not the
            experts'; (``check_data``) keypoint names that are not the annotations'.
    """
    from .coco import keypoint_names
    from .domains import EXPERT_DOMAINS
    from .skeleton import check_same_layout, check_same_skeleton, models_skeleton
    paths = [Path(models_dir) / f"pose_{d}.keras" for d in EXPERT_DOMAINS]   # keras_openpose.model.expert_path
    missing = [p for p in paths if not p.is_file()]
    given = None
    if spec:
        from .config import resolve_skeleton
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
    p = _parser("util_ainu.py", "Per-limb translational and rotational disagreement of the three experts "
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
    from .uncertainty import disagreement_for_split
    a.split = a.coco_dataType
    split = _split(a, _experiment(a), "test")
    skeleton = _experts_skeleton(a.models_dir, a.skeleton, split, check_data=not a.no_gt)
    res = disagreement_for_split(split, Path(a.results), Path(a.out or a.results), use_gt=not a.no_gt,
                                 skeleton=skeleton)
    print(f"{res['csv']}: total transl {res['total_transl']:.3f}, total rot {res['total_rot']:.3f}, "
          f"{res['n_persons']} people; Spearman rho(transl, error) {res.get('spearman_transl', float('nan')):.3f}, "
          f"AUSE {res.get('ause_transl', float('nan')):.3f}")


def export(argv=None):
    p = _parser("python -m keras_openpose.export",
                "Export a trained network (last stage: outputs heatmaps and pafs, dynamic height and width) "
                "to ONNX, LiteRT or OpenVINO, with its description (skeleton, stride, decoder options) and a "
                "parity check against Keras on real images that fails past the precision's tolerance.",
                ["python -m keras_openpose.export --weights models/pose_normal.keras --format onnx --out models/pose_normal.onnx",
                 "python -m keras_openpose.export --weights models/pose_normal.keras --format openvino --precision fp16 --out models/ov/pose_normal.xml",
                 "python -m keras_openpose.export --weights models/pose_normal.keras --format litert --precision int8 "
                 "--calibration-images dataset/sample/train2017 --input-size 256x256 --out models/pose_normal_int8.tflite",
                 "python -m keras_openpose.export --weights models/pose_normal.keras --format openvino --precision int8 "
                 "--calibration-images dataset/sample/train2017 --out models/ov8/pose_normal.xml"])
    from .export import FORMATS, TOLERANCE
    p.add_argument("--weights", required=True, help="a .keras network")
    p.add_argument("--format", required=True, choices=list(FORMATS))
    p.add_argument("--precision", default="fp32", choices=list(TOLERANCE))
    p.add_argument("--input-size", default=None, help="HxW (multiples of 8) to fix the input size (default dynamic)")
    p.add_argument("--calibration-images", default=None, help="folder of images for int8")
    p.add_argument("--check-images", default=None, help="folder of images for the parity check (default: the sample)")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    from .export import export_model
    from .files import check_output_file
    _check_model_file(a.weights)
    check_output_file(a.out, example=Path(a.weights).stem + {"onnx": ".onnx", "litert": ".tflite"}.get(a.format, ".xml"))
    size = None
    if a.input_size:
        try:
            size = tuple(int(v) for v in a.input_size.lower().split("x"))
        except ValueError:
            size = ()
        if len(size) != 2 or not all(v > 0 and v % 8 == 0 for v in size):
            raise DataError(f"--input-size {a.input_size!r}: expected HxW, multiples of 8, e.g. 256x256")
    r = export_model(a.weights, a.format, a.out, a.precision, size, a.calibration_images, a.check_images)
    print(f"{r['path']}: parity with Keras on {r['images']} images: max |diff| {r['max_abs_diff']:.2e} "
          f"(tolerance {r['tolerance']}, {r['precision']})")


# ------------------------------------------------------------------------------------------
# users: predict, quickstart
# ------------------------------------------------------------------------------------------

def predict(argv=None):
    p = _parser("python -m keras_openpose.predict",
                "Estimate poses (any skeleton: the model file says which) in an image, a folder, a video "
                "file or a webcam; write overlays and a COCO-style JSON (image_id = frame or file name).",
                ["python -m keras_openpose.predict --input photo.jpg        # the shipped network; overlays in runs/predict",
                 "python -m keras_openpose.predict --weights runs/quickstart/models/pose_dark.keras --input dataset/sample/val2017/000000397133.jpg --out runs/predict",
                 "python -m keras_openpose.predict --weights models/pose_normal.keras --input clip.mp4 --out runs/clip --show-kpt-name --show-maps",
                 "python -m keras_openpose.predict --models-dir models --mode route --input 0 --out runs/webcam --max-frames 300",
                 "python -m keras_openpose.predict --weights runs/hand_models/pose_normal.keras --input hands/ --out runs/hands --peak-threshold 0.05"])
    p.add_argument("--input", required=True, help="image, folder, video file, or webcam index (0)")
    p.add_argument("--out", default="runs/predict", help="output folder (overlays + poses.json; default runs/predict)")
    p.add_argument("--weights", help="one network: .keras, .onnx, .tflite or OpenVINO .xml (default, without "
                   "--models-dir: the shipped Lightweight OpenPose trained on COCO, models/pose_normal.keras)")
    p.add_argument("--models-dir", help="experts + classifier, with --mode route or fuse")
    p.add_argument("--mode", choices=["route", "fuse"], default="route")
    p.add_argument("--show-kpt-name", action="store_true", help="write part names on the overlay")
    p.add_argument("--show-maps", action="store_true", help="add heatmap and PAF panels to the overlay")
    p.add_argument("--max-frames", type=POSITIVE_INT, default=None)
    p.add_argument("--track", action="store_true", help="stable person ids across frames (greedy OKS matching)")
    p.add_argument("--smooth", action="store_true", help="One-Euro smoothing of tracked keypoints (implies --track)")
    _inference_args(p)
    _decode_args(p)
    a = p.parse_args(argv)
    from .files import check_output_dir
    from .inference import check_source, predict_source
    exp = _experiment(a)
    check_source(a.input)                 # cheap checks first: the input, the model, the output; then TensorFlow
    for m in [a.weights] if a.weights else []:
        _check_model_file(m)
    if a.models_dir and not Path(a.models_dir).is_dir():
        raise DataError(f"{a.models_dir}: models folder not found")
    check_output_dir(a.out)
    if not a.weights and not a.models_dir:
        from .weights import PRETRAINED_WEIGHTS, ensure_pretrained
        a.weights = str(ensure_pretrained(PRETRAINED_WEIGHTS))
    r = predict_source(a.input, a.out, weights=a.weights, models_dir=a.models_dir, mode=a.mode,
                       options=_inference_options(a, exp), decode=_decode_overrides(a), show_names=a.show_kpt_name,
                       show_maps=a.show_maps, max_frames=a.max_frames, track=a.track, smooth=a.smooth)
    print(f"{a.out}: {r['people']} people in {r['frames']} frames; network {r['network_ms']:.0f} ms, "
          f"decode {r['decode_ms']:.1f} ms per frame; {r['fps']:.1f} frames/s overall"
          + (f"; {len(r['skipped'])} skipped (skipped.json)" if r["skipped"] else ""))


def quickstart(argv=None):
    p = _parser("quickstart", "The whole pipeline on the bundled COCO sample (see README).",
                ["python -m keras_openpose.quickstart",
                 "python -m keras_openpose.quickstart --experiment configs/quickstart.yaml --out runs/quickstart"])
    p.add_argument("--config", default=None, help="alias of --experiment")
    p.add_argument("--out", default=str(PROJECT_ROOT / "runs" / "quickstart"))
    a = p.parse_args(argv)
    from .quickstart import run_quickstart
    run_quickstart(a.experiment or a.config or PROJECT_ROOT / "configs" / "quickstart.yaml", a.out)


def quickstart_main(argv=None):
    run(quickstart, sys.argv[1:] if argv is None else argv)
