"""Command-line parsing. Every user-facing script is a thin wrapper around one function here: parse
arguments, call the package, print a short result. Bad input ends with one line
``error: <file>: <problem>`` and exit status 2, never a traceback.

Every command takes ``--experiment FILE`` (a YAML :class:`~keras_openpose.config.ExperimentConfig`)
whose values the flags override; every command that decodes takes the decoder options
(``--peak-threshold``, ``--min-parts``, ...), which otherwise come from the model file.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from .common import (FRACTION, POSITIVE_INT, check_model_file, add_decode_args, decode_overrides,
                     experiment_of, command_parser)
from ..config import PROJECT_ROOT
from .common import number_type
from .common import add_options, apply_options
from ..config import AugmentConfig, TrainConfig

#: train_pose.py's flags of TrainConfig / AugmentConfig fields (type, range, help: config.RULES)
TRAIN_FLAGS = {"steps": "--steps", "steps_per_epoch": "--steps-per-epoch", "batch_size": "--batch-size",
               "learning_rate": "--lr", "optimizer": "--optimizer", "precision": "--precision", "seed": "--seed",
               "distribute": "--distribute", "worker_timeout": "--worker-timeout", "images": "--images",
               "distill_from": "--distill-from", "distill_weight": "--distill-weight"}
AUGMENT_FLAGS = {"crop": "--crop"}


def train_pose(argv=None):
    p = command_parser("train_pose.py",
                "Train one CPM/PAF expert on any COCO-format skeleton. The domain effect is applied on the fly "
                "to the shared store. Checkpoints every epoch and on SIGTERM (exit 42); re-running the same "
                "command resumes exactly. --batch-size is the global batch of all replicas and workers. "
                "The published model describes itself (network, skeleton, stride, decoder options).",
                ["python training/train_pose.py --effect _dark --store runs/train2017.h5 --config tiny --steps 300",
                 "python training/train_pose.py --effect '' --store dataset/train2017.h5 --config vgg19 --precision mixed_float16",
                 "python training/train_pose.py --experiment configs/quickstart.yaml --store runs/hands.h5 --skeleton auto --models-dir runs/hand_models",
                 "python training/train_pose.py --effect _motion_blur --init-from models/pose_normal.keras --config tiny",
                 "python training/train_pose.py --effect _motion_blur --init-from models/pose_normal.keras --distill-from models/pose_normal.keras --images my_photos --config lightweight",
                 "python -m keras_openpose.train.launch --workers 2 -- python training/train_pose.py --store runs/train2017.h5 --config tiny --batch-size 8 --distribute multiworker",
                 "TF_CONFIG='{\"cluster\": {\"worker\": [\"host0:23456\", \"host1:23456\"]}, \"task\": {\"type\": \"worker\", \"index\": 0}}' python training/train_pose.py ... --distribute multiworker"])
    p.add_argument("--effect", default=None, help="'' (normal), _dark or _motion_blur (default: the experiment's)")
    p.add_argument("--store", default=None, help="training store(s) from generate_hdf5_coco2014.py, comma-separated "
                   "(this and/or --images)")
    p.add_argument("--config", default=None, help="network: vgg19 (CMU), lightweight, tiny")
    p.add_argument("--skeleton", default=None, help="auto (default: OpenPose COCO-18 for COCO persons, else the "
                   "dataset's), dataset, a shipped name (coco17, hand21, aic14, ap10k17) or a YAML file")
    p.add_argument("--out", default=None, help="run folder (default training/runs/weights<effect>)")
    p.add_argument("--models-dir", default=str(PROJECT_ROOT / "models"), help="where the final model is published")
    p.add_argument("--init-from", help="a .keras model to fine-tune from (e.g. the normal expert)")
    p.add_argument("--init", help="ImageNet VGG-19 weights file (Keras applications notop .h5) for the "
                   "vgg19 backbone; default: random init N(0, 0.01)")
    p.add_argument("--xla", action="store_true", help="XLA-compile the train step (GPUs)")
    p.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint")
    add_options(p, TrainConfig, TRAIN_FLAGS, "training (default: the experiment's train section)")
    add_options(p, AugmentConfig, AUGMENT_FLAGS)
    add_decode_args(p)
    a = p.parse_args(argv)
    from ..data.domains import effect_from_flag
    cfg = experiment_of(a)
    if a.effect is not None:
        cfg.train.effect = effect_from_flag(a.effect)
    cfg.model, cfg.skeleton = a.config or cfg.model, a.skeleton or cfg.skeleton
    apply_options(a, cfg.train, TRAIN_FLAGS)
    apply_options(a, cfg.train.augment, AUGMENT_FLAGS)
    cfg.train.xla = cfg.train.xla or a.xla
    cfg.decode = dataclasses.replace(cfg.decode, **decode_overrides(a))
    effect_tag = "" if cfg.train.effect == "normal" else "_" + cfg.train.effect
    out = Path(a.out or PROJECT_ROOT / "training" / "runs" / f"weights{effect_tag}")
    if a.init_from:                                   # cheap checks first, before TensorFlow is imported
        check_model_file(a.init_from)
    from ..train.run import train_and_publish
    final, dst = train_and_publish(cfg, a.store, out, a.models_dir, resume=not a.no_resume, init_from=a.init_from,
                                   init_vgg19=a.init)
    print(f"{final} -> {dst}" if dst else "trained as a worker of the cluster; its chief (worker 0) publishes the model")

def train_classifier(argv=None):
    p = command_parser("train.py", "Train the domain classifier (normal / dark / motion_blur) from scratch on any "
                "image folder; effects at random strengths and directions. A seeded --val-fraction of the "
                "--train images chooses the CNN's best epoch and its weight; --test images are only scored.",
                ["python train_domain_classifier/train.py --train dataset/sample/train2017 --test dataset/sample/val2017 --out models/domain_classifier.pt",
                 "python train_domain_classifier/train.py --train dataset/train2014 --test dataset/val2014 --epochs 20 --max-images 5000",
                 "python train_domain_classifier/train.py --train dataset/train2014 --backbone resnet18 --backbone-weights ~/weights/resnet18-f37072fd.pth"])
    p.add_argument("--train", required=True, help="folder of training images")
    p.add_argument("--test", "--val", dest="test", default=None,
                   help="folder of held-out images, scored once at the end (never used for choices)")
    p.add_argument("--val-fraction", type=number_type(float, 0, 0.9, low_open=True), default=None,
                   help="share of --train images held out to choose the epoch and the CNN weight (default 0.2)")
    p.add_argument("--out", default=str(PROJECT_ROOT / "models" / "domain_classifier.pt"))
    p.add_argument("--epochs", type=POSITIVE_INT, default=None, help="default: the experiment's classifier.epochs (10)")
    p.add_argument("--max-images", type=POSITIVE_INT, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--dark-lights", type=FRACTION, default=None,
                   help="share of dark training images whose clipped pixels (lamps, windows) stay clipped; "
                        "0 = the reference's darkening only (see keras_openpose.ensemble.classifier.train_classifier)")
    p.add_argument("--backbone", default=None,
                   help="optional torchvision network for the crop CNN (resnet18, resnet50, mobilenet_v3_small, ...); "
                        "needs torchvision")
    p.add_argument("--backbone-weights", default=None,
                   help="its ImageNet weights file as torchvision publishes it (you download it; nothing is fetched)")
    a = p.parse_args(argv)
    from ..ensemble.classifier import train_classifier as tc
    c = experiment_of(a).classifier

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
    p = command_parser("validate.py", "Classify the images of a folder; with labels, report accuracy and the "
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
    from ..ensemble.classifier import validate
    from ..files import write_json_atomic
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
    p = command_parser("convert_weights.py",
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
    from ..model.networks import build_model, save_model_atomic
    from ..model.weights import convert_openvino_ir, load_caffe_weights, load_reference_h5
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

