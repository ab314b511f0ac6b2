"""The training room: the one training loop of every ``tf.distribute`` strategy with resumable
checkpoints and distillation (:mod:`.loop`), the cluster and strategy set-up (:mod:`.cluster`) and
the local launcher of workers (:mod:`.launch`, ``python -m keras_openpose.train.launch``).

Every public name of the room is importable from here (``from keras_openpose.train import X``);
the module behind it loads on first use, so importing the room is cheap.
"""
from ..rooms import lazy_exports

#: public name -> the module of this room that defines it
_NAMES = {
    "TrainLoop": "loop",
    "cluster_from_env": "cluster",
    "compile_model": "loop",
    "free_ports": "launch",
    "get_strategy": "cluster",
    "launch": "launch",
    "load_teacher": "loop",
    "main": "launch",
    "set_precision": "loop",
    "slurm_tf_config": "launch",
    "tf_configs": "launch",
    "train_and_publish": "run",
    "train_expert": "loop",
    "training_codec": "loop",
    "worker_info": "cluster",
}

__getattr__, __all__ = lazy_exports(__name__, _NAMES)
