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

from ..errors import PREEMPTED_EXIT_CODE, ClusterError, DataError, Preempted  # noqa: E402



def str2bool(v) -> bool:
    """Parse ``True/False/yes/no/1/0`` (case-insensitive); the reference's ``type=bool`` turned
    ``False`` into True, as the original project's flags did)."""
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in ("true", "t", "yes", "y", "1", "on"):
        return True
    if s in ("false", "f", "no", "n", "0", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (True/False), got {v!r}")


def number_type(kind, low=None, high=None, low_open=False):
    """An argparse type: a ``kind`` number in ``[low, high]`` (``(low, high]`` with ``low_open``),
    checked by the :class:`~keras_openpose.config.Rule` that checks the experiment YAML."""
    from ..config import Rule
    return Rule(kind, low, high, low_open).flag()


POSITIVE_INT, POSITIVE = number_type(int, 1), number_type(float, 0, low_open=True)
FRACTION = number_type(float, 0, 1)


def command_parser(prog, description, examples):
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
        from ..files import os_error_line
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

def experiment_of(a):
    """The ``--experiment`` file as an :class:`~keras_openpose.config.ExperimentConfig` (defaults
    without one) and the keys it sets, read once per command (kept on ``a``); each call returns a
    fresh copy the command may change."""
    import copy

    from ..config import ExperimentConfig, from_dict, load_yaml
    if not hasattr(a, "_experiment_read"):
        raw = load_yaml(a.experiment) if a.experiment else {}
        cfg = from_dict(ExperimentConfig, raw, str(a.experiment)) if a.experiment else ExperimentConfig()
        a._experiment_read = (cfg, raw)
    return copy.deepcopy(a._experiment_read[0])


def check_model_file(path):
    """"not found" for a missing model file, before TensorFlow is imported (the shipped pretrained
    network is made on first use: it may be missing)."""
    from ..model.weights import PRETRAINED_IR, PRETRAINED_WEIGHTS
    p = Path(path)
    if not p.exists() and not (p.resolve() == PRETRAINED_WEIGHTS.resolve() and PRETRAINED_IR.is_file()):
        raise DataError(f"{p}: model file not found")


def add_data_args(p, split_flag="--split", required_split=False):
    p.add_argument("--coco-root", default=None, help="COCO root with annotations/ and <split>/ (default: the "
                   "experiment's data.coco_root, else dataset/)")
    p.add_argument(split_flag, dest="split", default=None, required=required_split,
                   help="split name, e.g. train2017, val2014" + ("" if required_split else " (default: the experiment's)"))
    p.add_argument("--annotations", default=None, help="any COCO-format keypoint JSON (instead of the COCO root layout)")
    p.add_argument("--images", default=None, help="its image folder (default: the annotation file's folder)")


def split_of(a, exp, which: str = "train"):
    """The split named by the data flags, else by the experiment's ``data`` section."""
    from ..data.coco import open_split
    d = exp.data
    if a.annotations:   # a file named on the command line: the split is named after it
        return open_split(split=a.split, annotations=a.annotations, images=a.images)
    return open_split(a.coco_root or d.coco_root, a.split or getattr(d, f"{which}_split"),
                      getattr(d, f"{which}_annotations"), a.images or getattr(d, f"{which}_images"))


def add_decode_args(p):
    """The decoder flags: one per :class:`~keras_openpose.codec.DecodeOptions` field, each with the
    type, range and help of its :data:`keras_openpose.config.RULES` entry (the rule of the YAML)."""
    from ..codec import DecodeOptions
    from ..config import field_rule
    g = p.add_argument_group("decoder (default: the model's own options, then the experiment's decode section)")
    for f in dataclasses.fields(DecodeOptions):
        rule = field_rule(DecodeOptions, f.name)
        g.add_argument("--" + f.name.replace("_", "-"), dest="decode_" + f.name, type=rule.flag(), default=None,
                       help=f"{rule.help}: {rule.describe()} (default {f.default})")


def decode_overrides(a) -> dict:
    """Decoder options set explicitly: the experiment file's ``decode`` keys, then the flags (both
    checked by the same rules)."""
    out = {}
    if a.experiment:
        experiment_of(a)                         # unknown keys, bad values -> DataError (read once)
        decode, raw = a._experiment_read[0].decode, a._experiment_read[1]
        out.update({k: getattr(decode, k) for k in raw.get("decode") or {}})
    out.update({k[len("decode_"):]: v for k, v in vars(a).items() if k.startswith("decode_") and v is not None})
    return out


#: The inference flags of every command that runs a network (type, range, help: config.RULES).
INFERENCE_FLAGS = {"box_size": "--box-size", "scales": "--scales", "flip": "--flip", "max_side": "--max-side"}


def add_inference_args(p):
    from ..config import InferenceOptions
    add_options(p, InferenceOptions, INFERENCE_FLAGS, "input (default: the experiment's inference section)")


def inference_options(a, exp):
    """The experiment's :class:`~keras_openpose.config.InferenceOptions` with the flags given on top."""
    opts = dataclasses.replace(exp.inference)
    apply_options(a, opts, INFERENCE_FLAGS)
    return opts


# ------------------------------------------------------------------------------------------
# dataset / training data
# ------------------------------------------------------------------------------------------


def add_options(p, cls, flags: dict, title: str | None = None):
    """Flags for fields of the config dataclass ``cls``: ``flags`` = ``{field: "--flag"}``. Each
    takes the type, range and help of the field's :data:`keras_openpose.config.RULES` entry (the
    rule the experiment YAML obeys), defaults to ``None`` (= the experiment's value) and is read back
    by :func:`apply_options`."""
    from ..config import field_rule
    g = p.add_argument_group(title) if title else p
    for field, flag in flags.items():
        rule = field_rule(cls, field)
        g.add_argument(flag, dest=f"opt_{cls.__name__}_{field}", type=rule.flag(), default=None,
                       metavar=flag.lstrip("-").upper().replace("-", "_"),
                       help=f"{rule.help}: {rule.describe()}" if rule.help else rule.describe())


def apply_options(a, obj, flags: dict) -> None:
    """Set on the config section ``obj`` every field whose flag (:func:`add_options`) was given;
    flags override the experiment file, which overrides the defaults."""
    for field in flags:
        v = getattr(a, f"opt_{type(obj).__name__}_{field}")
        if v is not None:
            setattr(obj, field, v)

