"""Distribution of the training loop: the ``tf.distribute`` strategy by name, the cluster read from
``TF_CONFIG`` (or Slurm), a join watchdog that names the peers that never joined, and the worker's
rank. Used by :mod:`keras_openpose.train.loop`; faults are :class:`~keras_openpose.errors.ClusterError`.
"""
from __future__ import annotations

import json
import os
import sys


from ..errors import DataError


_STRATEGIES: dict = {}


def get_strategy(name: str, worker_timeout: float = 300.0):
    """The ``tf.distribute`` strategy of a run (created once per process, and first: collective ops
    must be configured before TensorFlow runs any op).

    Args:
        name: ``none`` (the default device), ``mirrored`` (all local GPUs, else all logical CPU
            devices) or ``multiworker`` (``MultiWorkerMirroredStrategy`` over the cluster in the
            ``TF_CONFIG`` environment variable: ``{"cluster": {"worker": ["host:port", ...]},
            "task": {"type": "worker", "index": i}}``).
        worker_timeout: seconds a collective (and the start-up barrier) waits for a peer before the
            run fails with :class:`ClusterError`.
    Raises:
        DataError: an unknown name, or ``multiworker`` without a usable ``TF_CONFIG``.
    """
    import tensorflow as tf
    if name in ("none", "default", ""):
        return tf.distribute.get_strategy()
    if name not in _STRATEGIES:
        if name == "mirrored":
            gpus = tf.config.list_logical_devices("GPU")
            devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
            _STRATEGIES[name] = tf.distribute.MirroredStrategy(devices)
        elif name == "multiworker":
            _STRATEGIES[name] = _multiworker_strategy(worker_timeout)
        else:
            raise DataError(f"--distribute {name!r}: use none, mirrored or multiworker")
    return _STRATEGIES[name]


def cluster_from_env() -> tuple[list[str], int]:
    """``(worker addresses, this worker's index)`` from ``TF_CONFIG``.

    Raises:
        DataError: ``TF_CONFIG`` missing, not JSON, or without this task in its worker list.
    """
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise DataError("--distribute multiworker: set TF_CONFIG (see README 'Scaling out'; "
                        "python -m keras_openpose.train.launch starts N workers on one machine)")
    try:
        cfg = json.loads(raw)
        cluster, task = cfg["cluster"], cfg["task"]
        workers = list(cluster.get("chief", [])) + list(cluster["worker"])
        index = int(task["index"]) + (len(cluster.get("chief", [])) if task["type"] == "worker" else 0)
    except (ValueError, KeyError, TypeError) as e:
        raise DataError(f"TF_CONFIG: not a cluster spec with a worker list and this task ({e})") from None
    if not 0 <= index < len(workers) or task["type"] not in ("worker", "chief"):
        raise DataError(f"TF_CONFIG: task {task} is not in the cluster's {len(workers)} workers")
    return workers, index


#: The join watchdog (a separate process: TensorFlow waits for missing peers inside C++ while
#: holding the GIL, so no thread of the worker can run): it exits quietly when the worker closes its
#: stdin (joined, or ended); otherwise it prints which peers' ports never opened and ends the worker.
_JOIN_WATCHDOG = r"""
import os, select, signal, socket, sys
pid, timeout, index, workers = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
if select.select([sys.stdin], [], [], timeout)[0]:
    sys.exit(0)
def up(a):
    try:
        socket.create_connection((a.rsplit(":", 1)[0], int(a.rsplit(":", 1)[1])), timeout=1).close()
        return True
    except OSError:
        return False
missing = [f"worker {i} ({a})" for i, a in enumerate(workers) if i != index and not up(a)]
sys.stderr.write(f"error: worker {index}: {', '.join(missing) or 'a peer'} did not join within {timeout:g} s "
                 "(--worker-timeout); start every worker with the same TF_CONFIG cluster\n")
sys.stderr.flush()
os.kill(pid, signal.SIGKILL)   # TensorFlow's C++ catches SIGTERM
"""


def _multiworker_strategy(worker_timeout: float):
    """``MultiWorkerMirroredStrategy`` over ``TF_CONFIG``'s workers, with ``worker_timeout`` on
    every collective and on joining: a start-up barrier (one all-reduce) must pass within
    ``worker_timeout`` seconds, or a watchdog process prints one line naming the workers whose
    ports never opened and ends this worker with SIGKILL (TensorFlow waits for missing peers inside
    C++, by default for an hour, where no Python code of this process can run, and catches
    SIGTERM)."""
    import subprocess

    import tensorflow as tf
    workers, index = cluster_from_env()
    watchdog = subprocess.Popen([sys.executable, "-c", _JOIN_WATCHDOG, str(os.getpid()), str(worker_timeout),
                                 str(index), *workers], stdin=subprocess.PIPE)
    opts = tf.distribute.experimental.CommunicationOptions(timeout_seconds=worker_timeout)
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    strategy = tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver, communication_options=opts)

    @tf.function
    def barrier():
        return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.constant(1.0)), axis=None)
    barrier()
    watchdog.stdin.close()
    watchdog.wait()
    return strategy


def worker_info(strategy) -> tuple[int, int, bool]:
    """``(worker index, number of workers, is chief)``; ``(0, 1, True)`` outside multiworker."""
    resolver = getattr(strategy, "cluster_resolver", None)
    spec = resolver.cluster_spec().as_dict() if resolver is not None else {}
    if not spec:
        return 0, 1, True
    n = sum(len(v) for k, v in spec.items() if k in ("chief", "worker"))
    idx = resolver.task_id + (len(spec.get("chief", [])) if resolver.task_type == "worker" else 0)
    return idx, n, idx == 0


