"""Start N training workers on this machine, each with its own ``TF_CONFIG`` on loopback ports:
the way to try ``--distribute multiworker`` (and to test it) without a cluster. On several
machines, set ``TF_CONFIG`` on each host instead (README "Scaling out"); a cluster manager
(Slurm, Kubernetes, Ray) only has to do the same.

    python -m keras_openpose.train.launch --workers 2 -- python training/train_pose.py \\
        --distribute multiworker --store runs/train2017.h5 --config tiny --batch-size 8
    srun --ntasks-per-node=1 bash -c 'TF_CONFIG=$(python -m keras_openpose.train.launch --slurm-tf-config) \\
        exec python training/train_pose.py ... --distribute multiworker'

Every worker gets ``TF_CONFIG = {"cluster": {"worker": ["localhost:P", "localhost:P+1", ...]},
"task": {"type": "worker", "index": i}}``, ``CUDA_VISIBLE_DEVICES`` of its own when ``--gpus``
is given, and its output prefixed with ``[i]``. SIGTERM / SIGINT to the launcher are passed on to
every worker (which then checkpoint and exit 42, see :mod:`keras_openpose.train.loop`). The launcher
exits with the first non-zero status of a worker (0 when all succeed); a worker still running
``--grace`` seconds after another failed is killed.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time


def free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports free on loopback now (the OS picks them)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("localhost", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def tf_configs(n: int, ports: list[int] | None = None, host: str = "localhost") -> list[str]:
    """The ``TF_CONFIG`` JSON of each of ``n`` workers on ``host``."""
    ports = ports or free_ports(n)
    cluster = {"worker": [f"{host}:{p}" for p in ports]}
    return [json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}) for i in range(n)]


def slurm_tf_config(port: int = 23456) -> str:
    """This Slurm task's ``TF_CONFIG`` (one task per node), from
    ``tf.distribute.cluster_resolver.SlurmClusterResolver`` (``port`` on every node)."""
    import tensorflow as tf
    r = tf.distribute.cluster_resolver.SlurmClusterResolver(port_base=port)
    return json.dumps({"cluster": r.cluster_spec().as_dict(), "task": {"type": r.task_type, "index": r.task_id}})


def _pipe(stream, prefix: str, out) -> None:
    for line in iter(stream.readline, ""):
        out.write(prefix + line)
        out.flush()


def launch(command: list[str], workers: int, port: int | None = None, gpus: list[str] | None = None,
           grace: float = 60.0, env: dict | None = None) -> int:
    """Run ``command`` as ``workers`` processes with loopback ``TF_CONFIG``s; returns the exit
    status (see module doc)."""
    ports = [port + i for i in range(workers)] if port else None
    procs = []
    for i, tf_config in enumerate(tf_configs(workers, ports)):
        e = dict(os.environ if env is None else env, TF_CONFIG=tf_config)
        if gpus:
            e["CUDA_VISIBLE_DEVICES"] = gpus[i % len(gpus)]
        p = subprocess.Popen(command, env=e, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=_pipe, args=(p.stdout, f"[{i}] ", sys.stdout), daemon=True).start()
        procs.append(p)

    def forward(signum, frame):
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)
    old = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        failed_at = None
        status = 0
        while any(p.poll() is None for p in procs):
            for p in procs:
                if p.poll() not in (None, 0) and status == 0:
                    status, failed_at = p.returncode, time.monotonic()
            if failed_at is not None and time.monotonic() - failed_at > grace:
                for p in procs:
                    if p.poll() is None:
                        p.kill()
            time.sleep(0.2)
        for p in procs:
            if p.returncode and status == 0:
                status = p.returncode
        return status if status >= 0 else 128 - status
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m keras_openpose.train.launch", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", type=int, default=2, help="number of worker processes (default 2)")
    p.add_argument("--port", type=int, default=None, help="first loopback port (default: free ports)")
    p.add_argument("--gpus", default=None, help="comma-separated GPU ids handed out to the workers in turn")
    p.add_argument("--grace", type=float, default=60.0,
                   help="seconds the others may take to stop after a worker failed (then killed)")
    p.add_argument("--slurm-tf-config", action="store_true",
                   help="print this Slurm task's TF_CONFIG (SlurmClusterResolver; --port, default 23456) and exit")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- then the training command")
    a = p.parse_args(argv)
    if a.slurm_tf_config:
        print(slurm_tf_config(a.port or 23456))
        return 0
    cmd = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not cmd or a.workers < 1:
        p.error("give --workers N >= 1 and a command after --")
    return launch(cmd, a.workers, a.port, a.gpus.split(",") if a.gpus else None, a.grace)


if __name__ == "__main__":
    sys.exit(main())
