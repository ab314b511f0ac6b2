"""Command-line parsing, one module per command group: data (:mod:`.data`), training
(:mod:`.train`), evaluation (:mod:`.evaluate`), deployment and the quickstart (:mod:`.deploy`), over
shared flag helpers (:mod:`.common`). Every user-facing script is a thin wrapper around one command
here: parse arguments, call one library function, print a short result. Bad input ends with one
line ``error: <file>: <problem>`` and exit status 2, never a traceback.

Every command takes ``--experiment FILE`` (a YAML :class:`~keras_openpose.config.ExperimentConfig`)
whose values the flags override; every command that decodes takes the decoder options
(``--peak-threshold``, ``--min-parts``, ...), which otherwise come from the model file.

Every public name of the room is importable from here (``from keras_openpose.cli import X``);
the module behind it loads on first use, so importing the room is cheap.
"""
from ..rooms import lazy_exports

#: public name -> the module of this room that defines it
_NAMES = {
    "add_eval_args": "evaluate",
    "check_coco": "data",
    "check_names": "evaluate",
    "convert_weights": "train",
    "disagreement": "evaluate",
    "ensemble": "evaluate",
    "eval_single_scale": "evaluate",
    "experts_skeleton": "evaluate",
    "export": "deploy",
    "generate_hdf5": "data",
    "generate_masks": "data",
    "make_test_domains": "data",
    "predict": "deploy",
    "quickstart": "deploy",
    "quickstart_main": "deploy",
    "run": "common",
    "setup_eval": "evaluate",
    "str2bool": "common",
    "train_classifier": "train",
    "train_pose": "train",
    "validate_classifier": "train",
}

__getattr__, __all__ = lazy_exports(__name__, _NAMES)
