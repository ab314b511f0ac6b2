import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_OPENPOSE_TENSORBOARD", "0")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SAMPLE = REPO / "dataset" / "sample"


@pytest.fixture(scope="session", autouse=True)
def torch_on_one_thread():
    """PyTorch (the domain classifier) on one intra-op thread in the test processes.

    ``keras_openpose.ensemble.classifier._torch`` asks for ``os.cpu_count()`` threads on every call. On the
    2-core test machine, shared with other jobs and with the other xdist worker, a 2-thread pool
    waits for a descheduled thread at every tiny op: 1500 Adam steps of the 31-64-3 statistics MLP
    took 43-64 s on 2 threads and 0.8 s on 1 (measured back to back). The results are the same (the
    quickstart classifier's figures, checked to the last digit on both), so the tests pin one
    thread; the classifier code itself runs unchanged (its own call, then this one)."""
    try:
        from keras_openpose.ensemble import classifier
    except Exception:        # the classifier's own tests report it; the others need not fail here
        classifier = None
    original = getattr(classifier, "_torch", None)
    if original is None:     # no classifier, or no such helper any more: nothing to pin
        yield
        return

    def one_thread():
        torch = original()
        torch.set_num_threads(1)
        return torch
    classifier._torch = one_thread
    yield
    classifier._torch = original


@pytest.fixture(scope="session")
def pretrained_weights():
    """The shipped Lightweight OpenPose as a Keras file (``models/pose_normal.keras``, converted
    from the shipped IR on first use; every process may call this: the file is written atomically)."""
    from keras_openpose.model.weights import PRETRAINED_WEIGHTS, ensure_pretrained
    return ensure_pretrained(PRETRAINED_WEIGHTS)


@pytest.fixture(scope="session")
def train_split():
    from keras_openpose.data.coco import CocoSplit
    return CocoSplit(SAMPLE, "train2017")


@pytest.fixture(scope="session")
def val_split():
    from keras_openpose.data.coco import CocoSplit
    return CocoSplit(SAMPLE, "val2017")


@pytest.fixture(scope="session")
def vgg19_network():
    """The 52 M-parameter CMU network, built once per test session (about 4 s and 200 MB each time).
    Tests read its structure or load weights into it; none may depend on its initial weights."""
    from keras_openpose.model.networks import build_model
    return build_model("vgg19")


@pytest.fixture(scope="session")
def train_store(tmp_path_factory, train_split):
    from keras_openpose.data.store import build_store
    path = tmp_path_factory.mktemp("store") / "train2017.h5"
    build_store(train_split, path, workers=2, progress=False)
    return path


def render_gt_maps(split, image_id, box=368, codec=None):
    """Ground-truth heatmaps/PAFs of an image as the network would see it (height resized to
    ``box``): ``(heatmaps, pafs, stride)`` with ``stride`` = image pixels per cell."""
    from keras_openpose.codec import DEFAULT_CODEC
    from keras_openpose.data.masks import keypoints_array
    codec = codec or DEFAULT_CODEC
    im = split.images[image_id]
    H, W = im["height"], im["width"]
    stride = codec.stride * H / box
    anns = [a for a in split.anns_by_image[image_id] if a["num_keypoints"] > 0 and not a["iscrowd"]]
    hr, wr = box, int(round(W * box / H))
    heat, paf = codec.encode(keypoints_array(anns, codec.skeleton.num_keypoints), (H, W), stride=stride,
                             map_shape=codec.map_shape((hr, wr)))
    return heat, paf, stride


def run_script(*args):
    """Run a user-facing script (``path.py ...``, relative to the repository, or ``-m module ...``) as
    ``__main__`` in this process with ``args`` as its command line: the script file itself runs,
    without starting a new Python and TensorFlow (4-8 s each). Returns a
    :class:`subprocess.CompletedProcess` (``returncode`` from its ``SystemExit``, 0 when it returns).
    For what only a separate process shows (a traceback, start-up before TensorFlow, signals), tests
    start one."""
    import contextlib
    import io
    import runpy
    import subprocess
    module = args[1] if args[0] == "-m" else None
    argv = [module, *args[2:]] if module else [str(REPO / args[0]), *args[1:]]
    out, err, saved, code = io.StringIO(), io.StringIO(), sys.argv, 0
    sys.argv = [str(a) for a in argv]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                if module:
                    runpy.run_module(module, run_name="__main__", alter_sys=True)
                else:
                    runpy.run_path(argv[0], run_name="__main__")
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = saved
    return subprocess.CompletedProcess([str(a) for a in args], code, out.getvalue(), err.getvalue())


#: Small real COCO-format sets with other skeletons (research-only images: read from ../shared, never copied).
SHARED_KEYPOINTS = REPO.parent / "shared" / "data" / "keypoints"


def shared_split(annotation: str):
    """The :class:`CocoSplit` of ``../shared/data/keypoints/<annotation>`` (images beside the JSON)."""
    from keras_openpose.data.coco import CocoSplit
    ann = SHARED_KEYPOINTS / annotation
    return CocoSplit(ann.parent, ann.stem, ann, ann.parent)


# ------------------------------------------------------------------------------------------
# xdist scheduling (``make test`` and ``make test-all`` = ``pytest -n 2``): the longest work first, and the tests that
# share an expensive module fixture on one worker. Which tests run, and what they assert, is not
# changed; a run without xdist keeps the file order.
# ------------------------------------------------------------------------------------------

#: Tests that share a module fixture costing several training processes: under xdist they run as
#: one unit on one worker, so the fixture is made once (a module fixture is made again on every
#: worker that runs one of its tests, and again after a test of another module).
SHARED_UNITS = {
    "test_distributed.py::test_two_workers_publish_the_model_of_one_process": "test_distributed.py two_workers",
    "test_distributed.py::test_sigterm_then_a_killed_worker_and_each_relaunch_resumes": "test_distributed.py two_workers",
    "test_export.py::test_int8_export_calibrated_on_real_images": "test_export.py batchnorm_model",
    "test_any_skeleton.py::test_store_train_evaluate_predict": "test_any_skeleton.py trained_sets",
    "test_export.py::test_a_failed_parity_check_leaves_no_file": "test_export.py batchnorm_model",
}

#: Rough seconds of the slow tests (call + their fixtures, 2 busy cores, ``-n 2``), only to start
#: the longest units first; a test not listed counts 1 s. Keys: ``file::function`` (every parameter).
EXPECTED_SECONDS = {
    "test_distributed.py::test_two_workers_publish_the_model_of_one_process": 55,
    "test_distributed.py::test_sigterm_then_a_killed_worker_and_each_relaunch_resumes": 90,
    "test_distributed.py::test_a_peer_that_never_starts_is_named_after_the_timeout": 14,
    "test_train.py::test_killed_and_preempted_training_resumes_to_the_uninterrupted_weights": 70,
    "test_train.py::test_it_learns": 48,
    "test_train.py::test_photos_distillation_trains_publishes_and_resumes_exactly": 50,
    "test_train.py::test_mirrored_strategy_on_two_logical_cpus": 18,
    "test_train.py::test_distillation_term_is_zero_for_the_teacher_itself": 17,
    "test_train.py::test_float16_loss_scaling_counts_skipped_steps": 12,
    "test_any_skeleton.py::test_every_command_on_a_hand_dataset": 20,
    "test_any_skeleton.py::test_store_train_evaluate_predict": 33,
    "test_classifier.py::test_quickstart_classifier_routes_low_light_to_dark": 45,
    "test_export.py::test_int8_export_of_the_trained_network_keeps_its_ap": 28,
    "test_export.py::test_a_failed_parity_check_leaves_no_file": 10,
    "test_export.py::test_export_parity_and_the_same_maps_through_from_weights": 13,
    "test_export.py::test_int8_export_calibrated_on_real_images": 9,
    "test_cli.py::test_ensemble_script_fuse_with_map_scores": 18,
    "test_cli.py::test_predict_on_an_image_and_a_video": 3,
    "test_cli.py::test_eval_script_full_report_on_known_answer": 5,
    "test_cli.py::test_missing_image_is_a_one_line_error": 5,
    "test_cli.py::test_pipelined_prediction_equals_one_frame_at_a_time": 4,
    "test_pretrained.py::test_predict_works_out_of_the_box": 8,
    "test_pretrained.py::test_keras_maps_and_ap_equal_the_irs": 4,
    "test_train.py::test_divergence_never_checkpoints_non_finite_weights": 5,
    "test_roundtrip.py::test_pose_network_config_and_file_round_trip": 4,
}


def _test_key(nodeid: str) -> str:
    """``tests/test_x.py::test_y[param]`` -> ``test_x.py::test_y``."""
    return nodeid.split("[", 1)[0].split("@", 1)[0].rsplit("/", 1)[-1]


def _unit(nodeid: str) -> str:
    return SHARED_UNITS.get(_test_key(nodeid), nodeid)


def pytest_collection_modifyitems(config, items):
    """On xdist workers: the units (:data:`SHARED_UNITS`, else one test each) longest first
    (:data:`EXPECTED_SECONDS`), each unit's tests together in file order. Every worker sorts the
    same collection the same way; the scheduler below hands the units out in this order."""
    if not hasattr(config, "workerinput"):
        return
    units = {}
    for item in items:
        units.setdefault(_unit(item.nodeid), []).append(item)
    order = sorted(units.values(), key=lambda u: -sum(EXPECTED_SECONDS.get(_test_key(i.nodeid), 1) for i in u))
    items[:] = [item for unit in order for item in unit]


try:
    from xdist.scheduler import LoadScopeScheduling
except ImportError:          # no xdist: nothing to schedule
    LoadScopeScheduling = None
else:
    class LongestFirstScheduling(LoadScopeScheduling):
        """xdist's ``--dist loadscope`` with :func:`_unit` as the scope: each free worker takes
        the next unit in collection order (longest first, see above)."""

        def _split_scope(self, nodeid):
            return _unit(nodeid)


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config, log):
    """``-n N`` alone (``--dist load``): :class:`LongestFirstScheduling`; any other --dist as asked."""
    if LoadScopeScheduling is None or config.getvalue("dist") != "load":
        return None
    config.option.loadscopereorder = False      # keep the collection's order of the units
    return LongestFirstScheduling(config, log)


#: The ``slow`` marker's rule (pyproject.toml): a test whose setup + call take this many seconds or
#: more on the 2-core test machine is marked ``@pytest.mark.slow``, so that ``make test`` (the
#: others) stays within 5 minutes there; ``make test-all`` and CI run every test.
SLOW_SECONDS = 20
_SECONDS = {}


def pytest_runtest_logreport(report):
    seconds, slow = _SECONDS.get(report.nodeid, (0.0, False))
    _SECONDS[report.nodeid] = (seconds + report.duration, slow or "slow" in report.keywords)


def pytest_terminal_summary(terminalreporter):
    """Names the unmarked tests that took 1.5x :data:`SLOW_SECONDS` or more in this run (a line, not
    a failure: timings here vary 10-40 % with the load, so a test near the rule crosses it in some
    runs and not in others)."""
    limit = 1.5 * SLOW_SECONDS
    over = sorted(((s, n) for n, (s, slow) in _SECONDS.items() if s >= limit and not slow), reverse=True)
    if over:
        terminalreporter.write_line(f"{len(over)} test(s) not marked slow took {limit:.0f} s or more "
                                    f"(the rule: {SLOW_SECONDS} s, pyproject.toml): "
                                    + ", ".join(f"{n} ({s:.0f} s)" for s, n in over))
