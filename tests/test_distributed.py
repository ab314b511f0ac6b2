"""Training across processes on loopback (MultiWorkerMirroredStrategy, one CPU device per worker):
2 workers = 1 process at the same global batch; SIGTERM -> checkpoint -> relaunch -> the same
weights; a dead or missing peer -> a one-line error naming it, no hang.

Workers are stopped with SIGKILL on a timeout (TensorFlow catches SIGTERM)."""
import json
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import REPO, run_script

TRAIN = str(REPO / "training" / "train_pose.py")
#: SGD: its updates are linear in the gradients, so float rounding stays at rounding size (Adam's
#: g / sqrt(v) turns a 1e-9 difference of a near-zero gradient into a full step).
FLAGS = ["--config", "tiny", "--steps", "12", "--steps-per-epoch", "4", "--batch-size", "4", "--lr", "1e-5",
         "--optimizer", "sgd", "--precision", "float32", "--crop", "64", "--seed", "3"]


def _env(tmp, **extra):
    tmpdir = tmp / "tmp"
    tmpdir.mkdir(exist_ok=True)
    return {"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_OPENPOSE_TENSORBOARD": "0",
            "TMPDIR": str(tmpdir), **extra}


def _workers(store, run, models, tmp, kill_at=None, started=2, timeout=60):
    """Start 2 workers (``kill_at``: fault injection in worker 1); returns [(rc, output), ...] and seconds."""
    from keras_openpose.train.launch import tf_configs
    procs = []
    t0 = time.monotonic()
    for i, cfg in enumerate(tf_configs(2)[:started]):
        env = _env(tmp, TF_CONFIG=cfg, **({"KERAS_OPENPOSE_KILL_AT": kill_at} if kill_at and i == 1 else {}))
        procs.append(subprocess.Popen(
            [sys.executable, TRAIN, "--store", str(store), *FLAGS, "--out", str(run), "--models-dir", str(models),
             "--distribute", "multiworker", "--worker-timeout", str(timeout)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    out = []
    for p in procs:
        try:
            o, _ = p.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            p.kill()
            o, _ = p.communicate()
            o = "HUNG\n" + o
        out.append((p.returncode, o))
    return out, time.monotonic() - t0


def _weights(path):
    from keras_openpose.model.networks import load_network
    return load_network(path).get_weights()


def _csv(run):
    return np.array([[float(v) for v in ln.split(",")] for ln in (run / "training.csv").read_text().splitlines()[1:]])


@pytest.fixture(scope="module")
def one_process(tmp_path_factory, train_store):
    """The same command without a cluster, run in this process (:func:`conftest.run_script`)."""
    tmp = tmp_path_factory.mktemp("one")
    r = run_script("training/train_pose.py", "--store", train_store, *FLAGS, "--out", tmp / "run",
                   "--models-dir", tmp / "models")
    assert r.returncode == 0, r.stderr[-2000:]
    return tmp


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory, train_store):
    """The launcher's 2 loopback workers, uninterrupted."""
    tmp = tmp_path_factory.mktemp("two")
    r = subprocess.run([sys.executable, "-m", "keras_openpose.train.launch", "--workers", "2", "--", sys.executable, TRAIN,
                        "--store", str(train_store), *FLAGS, "--out", str(tmp / "run"), "--models-dir",
                        str(tmp / "models"), "--distribute", "multiworker", "--worker-timeout", "60"],
                       env=_env(tmp, PYTHONPATH=str(REPO)), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:]
    return tmp, r.stdout


@pytest.mark.slow
def test_two_workers_publish_the_model_of_one_process(one_process, two_workers):
    two, log = two_workers
    assert "[0] Epoch 3/3" in log and "[1] trained as a worker" in log    # both workers ran, output prefixed
    assert sorted(p.name for p in (two / "models").iterdir()) == ["manifest.json", "pose_normal.keras"]
    assert not list((two / "tmp").glob("keras_openpose_worker*"))   # worker 1's checkpoints were temporary
    a, b = _csv(one_process / "run"), _csv(two / "run")
    assert a.shape == b.shape == (3, 6)                       # epoch, loss, 4 stage outputs
    np.testing.assert_allclose(a, b, rtol=1e-4)               # per-epoch losses (2 x batch 2 = batch 4)
    assert abs(a[0, 1] - a[2, 1]) > 1e-2 * a[0, 1]             # and it did train
    for x, y in zip(_weights(one_process / "models" / "pose_normal.keras"), _weights(two / "models" / "pose_normal.keras")):
        np.testing.assert_allclose(x, y, rtol=1e-3, atol=2e-4)


@pytest.mark.slow
def test_sigterm_then_a_killed_worker_and_each_relaunch_resumes(tmp_path, train_store, two_workers):
    """One run through both faults, relaunched with the same commands each time: SIGTERM to worker 1
    at step 6 (mid-epoch 2: every worker checkpoints there, exit 42); then worker 1 SIGKILLed at step
    9 (epoch 3: worker 0 names the lost worker in one line, exit 3); then the run ends with the
    weights and losses of the uninterrupted launcher run."""
    run, models = tmp_path / "run", tmp_path / "models"
    out, _ = _workers(train_store, run, models, tmp_path, kill_at="step:6:TERM")   # worker 1 gets SIGTERM
    for rc, log in out:
        assert rc == 42, log[-2000:]
        assert "every worker saved its checkpoint at step 6 of 12" in log
    assert json.loads((run / "progress.json").read_text())["step"] == 6          # mid-epoch 2
    assert not (run / "model.keras").exists() and not list((tmp_path / "tmp").glob("keras_openpose_worker*"))
    out, seconds = _workers(train_store, run, models, tmp_path, kill_at="step:4")   # worker 1: SIGKILL at its 4th step, step 9 (epoch 3)
    (rc0, log0), (rc1, _) = out
    assert rc1 == -9 and rc0 == 3, log0[-2000:]
    errors = [ln for ln in log0.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "lost worker 1 of 2" in errors[0], log0[-2000:]
    assert seconds < 120
    from keras_openpose.model.networks import load_network
    assert load_network(run / "checkpoint.keras").info["trained_steps"] == 8     # epoch 2's checkpoint
    assert not (run / "progress.json").exists() and len(_csv(run)) == 2
    out, _ = _workers(train_store, run, models, tmp_path)                         # resumes from step 8
    assert [rc for rc, _ in out] == [0, 0], out[0][1][-2000:]
    ref = two_workers[0]
    np.testing.assert_array_equal(_csv(run), _csv(ref / "run"))
    for x, y in zip(_weights(run / "model.keras"), _weights(ref / "run" / "model.keras")):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)


def test_a_peer_that_never_starts_is_named_after_the_timeout(tmp_path, train_store):
    out, seconds = _workers(train_store, tmp_path / "run", tmp_path / "models", tmp_path, started=1, timeout=4)
    rc, log = out[0]
    assert rc == -9, log[-2000:]
    errors = [ln for ln in log.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "worker 1 (localhost:" in errors[0] and "did not join within 4 s" in errors[0]
    assert seconds < 60


def test_multiworker_without_tf_config_is_a_clear_error(monkeypatch):
    from keras_openpose.errors import DataError
    from keras_openpose.train.cluster import cluster_from_env
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(DataError, match="set TF_CONFIG"):
        cluster_from_env()
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}))
    with pytest.raises(DataError, match="not in the cluster's 2 workers"):
        cluster_from_env()
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}))
    assert cluster_from_env() == (["a:1", "b:2"], 1)


def test_replica_share_cuts_every_global_batch():
    from keras_openpose.data.pipeline import replica_share, sample_schedule
    idx, seeds = sample_schedule(10, steps=3, batch_size=4, seed=0)
    parts = [replica_share(idx, seeds, 4, 2, r, 1)[0].reshape(3, 2) for r in range(2)]
    np.testing.assert_array_equal(np.concatenate(parts, 1).reshape(-1), idx)   # replicas together = one process
    both = replica_share(idx, seeds, 4, 2, 0, 2)[0]
    np.testing.assert_array_equal(both, idx)
    from keras_openpose.errors import DataError
    with pytest.raises(DataError, match="divisible by the 3 replicas"):
        replica_share(idx, seeds, 4, 3, 0, 1)
