"""Nothing lost, nothing silently wrong: crash-consistent store builds, one validation of annotations
shared by check_coco and the store, locks, bounded inputs, undefined AP."""
import json
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

from conftest import REPO, SAMPLE
from keras_openpose.errors import DataError

BUILD = """
import sys; sys.path.insert(0, {repo!r})
from keras_openpose.data.coco import CocoSplit
from keras_openpose.data.store import build_store
r = build_store(CocoSplit({root!r}, {split!r}), {out!r}, workers=1, block=8, progress=False)
print("DONE", r["images"])
"""


def _build(out, kill_at=None, root=SAMPLE, split="train2017", timeout=120, kill_after=None):
    env = {**os.environ, "KERAS_OPENPOSE_KILL_AT": kill_at or ""}
    code = BUILD.format(repo=str(REPO), root=str(root), split=split, out=str(out))
    p = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if kill_after is not None:
        try:
            p.wait(kill_after)
        except subprocess.TimeoutExpired:
            p.kill()
    out_, err = p.communicate(timeout=timeout)
    return p.returncode, out_, err


def _datasets(path):
    """Every dataset of a store as comparable values (vlen byte rows as bytes), and its attrs."""
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                v = obj[()]
                out[name] = [bytes(x) if isinstance(x, np.ndarray) else x for x in v] if v.dtype == object else v
        f.visititems(visit)
        attrs = {k: f.attrs[k] for k in f.attrs}
    return out, attrs


def _same_store(a, b):
    da, aa = _datasets(a)
    db, ab = _datasets(b)
    assert da.keys() == db.keys()
    for k in da:
        if isinstance(da[k], list):
            assert da[k] == db[k], k
        else:
            assert np.array_equal(da[k], db[k]), k
    assert {k: str(v) for k, v in aa.items()} == {k: str(v) for k, v in ab.items()}


@pytest.fixture(scope="module")
def reference_store(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "ref.h5"
    rc, stdout, err = _build(out)
    assert rc == 0 and "DONE 25" in stdout, err
    return out


@pytest.mark.parametrize("kill", ["first_second", "block_written:3", "block_renamed:5", "assemble:4"])
def test_store_build_killed_at_any_moment_resumes_to_the_same_store(tmp_path, reference_store, kill):
    out = tmp_path / "s.h5"
    if kill == "first_second":
        rc, _, _ = _build(out, kill_after=0.4)
    else:
        rc, _, _ = _build(out, kill_at=kill)
    assert rc == -9 and not out.exists()                    # killed: no store, only complete blocks
    rc, stdout, err = _build(out)
    assert rc == 0 and "DONE 25" in stdout, err
    _same_store(out, reference_store)
    assert not (tmp_path / "s.h5.parts").exists()


def test_an_unreadable_leftover_is_restarted_with_a_notice(tmp_path, reference_store):
    out = tmp_path / "s.h5"
    (tmp_path / "s.h5.partial").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 88)    # the old 96-byte stub
    (tmp_path / "s.h5.parts").mkdir()
    (tmp_path / "s.h5.parts" / "build.json").write_text("{not json")
    rc, stdout, err = _build(out)
    assert rc == 0, err
    assert "s.h5.partial: a partial store of an earlier version; starting over" in stdout
    assert "blocks of another build (unreadable plan); starting over" in stdout
    _same_store(out, reference_store)


def test_a_second_build_on_the_same_output_is_refused_and_the_first_is_unharmed(tmp_path, train_split):
    from keras_openpose.files import OutputLock
    from keras_openpose.data.store import build_store
    out = tmp_path / "s.h5"
    with OutputLock(out):                                          # "the first build" holds the output
        with pytest.raises(DataError, match=r"s.h5: in use by another run \(\{\"pid\": " + str(os.getpid())):
            build_store(train_split, out, workers=1, progress=False)
        env = {**os.environ, "HDF5_USE_FILE_LOCKING": "FALSE"}     # the NFS setting changes nothing
        r = subprocess.run([sys.executable, "training/generate_hdf5_coco2014.py", "--coco-root", str(SAMPLE),
                            "--split", "train2017", "--out", str(out)], cwd=REPO, env=env, capture_output=True, text=True)
        assert r.returncode == 2 and "in use by another run" in r.stderr and "Traceback" not in r.stderr
    assert build_store(train_split, out, workers=1, progress=False)["images"] == 25


def test_out_is_checked_before_any_work(tmp_path, train_split):
    from keras_openpose.data.store import build_store
    (tmp_path / "dir.h5").mkdir()
    with pytest.raises(DataError, match="is a folder"):
        build_store(train_split, tmp_path / "dir.h5", workers=1, progress=False)
    assert list((tmp_path / "dir.h5").iterdir()) == []


def _corrupt_copy(tmp_path, val_split):
    """A copy of val2017 with one problem of each kind; returns (root, expected skipped reasons)."""
    root = tmp_path / "bad"
    shutil.copytree(SAMPLE / "val2017", root / "val2017")
    data = json.loads((SAMPLE / "annotations" / "person_keypoints_val2017.json").read_text())
    people = [a for a in data["annotations"] if a["num_keypoints"] >= 5 and not a["iscrowd"]]
    a0, a1, a2, a3, a4 = people[:5]
    a0["keypoints"][3] = float("nan")                         # one NaN keypoint
    a1["keypoints"] = a1["keypoints"][:-3]                    # 16 keypoints instead of 17
    a2["bbox"][2] = 0                                         # zero-width box
    i = a3["keypoints"][2::3].index(2)
    a3["keypoints"][3 * i] = 1e6                              # a labelled keypoint far outside the image
    a4["image_id"] = 999999999                                # no such image
    victim = next(im for im in data["images"] if im["id"] not in {a["image_id"] for a in people[:4]})
    jpg = root / "val2017" / victim["file_name"]
    jpg.write_bytes(jpg.read_bytes()[:len(jpg.read_bytes()) // 2])   # truncated JPEG
    (root / "annotations").mkdir()
    (root / "annotations" / "person_keypoints_val2017.json").write_text(json.dumps(data))
    return root, {"non-finite keypoint values", "N keypoints, the category has N", "bbox width/height NxN not positive",
                  "labelled keypoints far outside the image", "image id N has no image", "truncated JPEG (no end marker)"}


def test_check_coco_reports_exactly_what_the_store_skips(tmp_path, val_split):
    from keras_openpose.data.coco import CocoSplit, check_split
    from keras_openpose.data.store import build_store
    root, reasons = _corrupt_copy(tmp_path, val_split)
    ann = root / "annotations" / "person_keypoints_val2017.json"
    rep = check_split(ann, root / "val2017", progress=False)
    assert set(rep["by_reason"]) == reasons and sum(rep["by_reason"].values()) == 6
    r = build_store(CocoSplit(root, "val2017"), tmp_path / "v.h5", workers=1, progress=False)
    assert r["complete"] and set(r["skipped_by_reason"]) == reasons
    # the same entries: the store skips the truncated image only if it has a main person; the rest are identical
    assert set(r["skipped"]) <= set(rep["problems"]) and len(set(rep["problems"]) - set(r["skipped"])) <= 1
    assert (tmp_path / "v.h5.skipped.txt").read_text().splitlines() == r["skipped"]
    out = subprocess.run([sys.executable, "dataset/check_coco.py", "--coco-root", str(root), "--splits", "val2017"],
                         cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 1 and "1 x non-finite keypoint values" in out.stdout and "Traceback" not in out.stderr


def test_empty_split_and_a_split_without_people(tmp_path, val_split):
    from keras_openpose.data.coco import CocoSplit
    from keras_openpose.evaluate.runs import evaluate_predictor, summary_line
    from keras_openpose.data.store import build_store
    root = tmp_path / "e"
    (root / "annotations").mkdir(parents=True)
    (root / "val2017").mkdir()
    nobody = [im for im in val_split.data["images"] if not val_split.anns_by_image[im["id"]]][:2]
    for im in nobody:
        shutil.copy(val_split.image_path(im["id"]), root / "val2017" / im["file_name"])
    data = {**val_split.data, "images": nobody, "annotations": []}
    (root / "annotations" / "person_keypoints_val2017.json").write_text(json.dumps(data))
    split = CocoSplit(root, "val2017")
    r = build_store(split, tmp_path / "e.h5", workers=1, progress=False)
    assert r["images"] == 0 and r["jpeg_bytes"] == 0
    s = evaluate_predictor(lambda img: [], split, split.image_ids, tmp_path / "ev", "e", progress=False)
    assert s["stats"]["AP"] is None and "AP undefined: no annotated person" in summary_line(s, "x")
    saved = json.loads((tmp_path / "ev" / "summary.json").read_text())
    assert saved["stats"]["AP"] is None and saved["pck"]["all"] is None          # null, never NaN
    assert "NaN" not in (tmp_path / "ev" / "summary.json").read_text()


def test_bounded_network_input():
    from keras_openpose.inference.estimator import preprocess
    x, s, (hr, wr) = preprocess(np.zeros((100, 10000, 3), np.uint8), 368, 1.0, 8, max_side=2048)
    assert wr == 2048 and hr == 20 and x.shape == (24, 2048, 3)     # resized to fit, not 368 x 36800
    with pytest.raises(DataError, match="image 10000x10: too elongated"):
        preprocess(np.zeros((10, 10000, 3), np.uint8), 368, 1.0, 8, max_side=2048)


def test_folders_with_bad_files_skip_and_list_them(tmp_path, val_split):
    from keras_openpose.inference.sources import frames
    d = tmp_path / "imgs"
    d.mkdir()
    for im in val_split.data["images"][:2]:
        shutil.copy(val_split.image_path(im["id"]), d / im["file_name"])
    (d / "broken.jpg").write_bytes(b"not a jpeg")
    skipped = []
    got = [name for name, _ in frames(str(d), skipped)]
    assert len(got) == 2 and skipped == [f"{d / 'broken.jpg'}: not a readable image"]
    with pytest.raises(DataError, match="broken.jpg: not a readable image"):
        list(frames(str(d)))


def test_non_finite_targets_name_the_image(tmp_path, train_store):
    from keras_openpose.codec import DEFAULT_CODEC
    from keras_openpose.config import AugmentConfig
    from keras_openpose.data.pipeline import SampleMaker
    from keras_openpose.data.store import Store
    bad = tmp_path / "nan.h5"
    shutil.copy(train_store, bad)
    with h5py.File(bad, "a") as f:                      # a store written before the validation existed
        f["people/keypoints"][0, 5, 0] = np.nan
        image_id = int(f["images/image_id"][0])
    maker = SampleMaker(Store(bad), AugmentConfig(crop=64, enabled=False), DEFAULT_CODEC)
    row = int(np.nonzero(maker.samples[:, 0] == 0)[0][0])
    with pytest.raises(DataError, match=f"nan.h5: image {image_id} has non-finite keypoints"):
        maker.make(row, 0)


# ---------------------------------------------------------------------------------------------
# Annotation files mutated at random: accepted, skipped-and-counted, or one DataError. Never another
# exception, never a hang.
# ---------------------------------------------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_BASE = None


def _base():
    global _BASE
    if _BASE is None:
        d = json.loads((SAMPLE / "annotations" / "person_keypoints_val2017.json").read_text())
        ids = [im["id"] for im in d["images"][:4]]
        _BASE = {**d, "images": d["images"][:4], "annotations": [a for a in d["annotations"] if a["image_id"] in ids]}
    return _BASE


_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True, allow_infinity=True),
                    st.text(max_size=5), st.lists(st.integers(-5, 5), max_size=4), st.just({}), st.just([]))


@st.composite
def _mutations(draw):
    """A list of (section, index, key, new value | 'DELETE') edits of the base annotation file."""
    edits = []
    for _ in range(draw(st.integers(1, 4))):
        section = draw(st.sampled_from(["images", "annotations", "categories", "top"]))
        key = draw(st.sampled_from(["id", "image_id", "keypoints", "bbox", "area", "iscrowd", "num_keypoints",
                                    "segmentation", "height", "width", "file_name", "skeleton", "category_id"]))
        if section == "annotations" and key in ("keypoints", "bbox", "segmentation") and draw(st.booleans()):
            # numbers inside the arrays, the likeliest real-world damage
            value = ("ITEM", draw(st.integers(0, 60)), draw(st.floats(allow_nan=True, allow_infinity=True, width=32)))
        else:
            value = draw(st.one_of(_VALUES, st.just("DELETE")))
        edits.append((section, draw(st.integers(0, 10)), key, value))
    return edits


def _apply(data, edits):
    import copy
    d = copy.deepcopy(data)
    for section, i, key, value in edits:
        if section == "top":
            if value == "DELETE":
                d.pop(key if key in d else "images", None)
            else:
                d["images" if i % 2 else "annotations"] = value
            continue
        items = d.get(section)
        if not isinstance(items, list) or not items:
            continue
        obj = items[i % len(items)]
        if not isinstance(obj, dict):
            continue
        if value == "DELETE":
            obj.pop(key, None)
        elif isinstance(value, tuple) and value[0] == "ITEM":
            arr = obj.get(key)
            if isinstance(arr, list) and arr:
                target = arr[0] if key == "segmentation" and isinstance(arr[0], list) else arr
                if isinstance(target, list) and target:
                    target[value[1] % len(target)] = value[2]
        else:
            obj[key] = value
    return d


@settings(max_examples=60, deadline=5000, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(edits=_mutations())
def test_mutated_annotation_files_are_accepted_skipped_or_refused(tmp_path, edits):
    from keras_openpose.data.coco import CocoSplit, check_split
    from keras_openpose.data.masks import ignore_mask, select_main_people
    root = tmp_path / "m"
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "val2017").mkdir(exist_ok=True)
    ann = root / "annotations" / "person_keypoints_val2017.json"
    ann.write_text(json.dumps(_apply(_base(), edits)))
    try:
        split = CocoSplit(root, "val2017")
    except DataError as e:
        assert "\n" not in str(e) and str(ann) in str(e)
        return
    rep = check_split(ann, root / "val2017", read_images=False, progress=False)
    assert rep["skipped_annotations"] + len(split.data["annotations"]) == len(_apply(_base(), edits).get("annotations", []) or []) \
        or not isinstance(_apply(_base(), edits).get("annotations"), list)
    for i in split.image_ids:               # what the masks and the store do with every image
        im = split.images[i]
        select_main_people(split.anns_by_image[i])
        if im["height"] * im["width"] > 10**7:
            continue                        # a valid but huge image: the mask is just big
        assert ignore_mask(split.anns_by_image[i], im["height"], im["width"]).shape == (im["height"], im["width"])


def test_a_second_training_run_in_the_same_folder_is_refused(tmp_path, train_store):
    from keras_openpose.config import ExperimentConfig
    from keras_openpose.files import OutputLock
    from keras_openpose.train.loop import train_expert
    with OutputLock(tmp_path / "run" / "run"):
        with pytest.raises(DataError, match=r"run/run: in use by another run"):
            train_expert(ExperimentConfig(model="tiny"), train_store, tmp_path / "run", verbose=0)


def test_numeric_flags_are_checked_when_parsed():
    r = subprocess.run([sys.executable, "eval/eval_coco2014_single_scale.py", "--coco_dataType", "val2017",
                        "--scales", "0"], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 2 and "argument --scales: 0: must be a number in (0, 8]" in r.stderr
    assert "Traceback" not in r.stderr


# ---------------------------------------------------------------------------------------------
# A hostile user's inputs (issue 21): typed YAML values, outputs checked before work, full and
# read-only disks, every skipped file counted, mismatched skeletons refused. Each probe of the issue
# has its test below (P1 ... P12).
# ---------------------------------------------------------------------------------------------

import argparse  # noqa: E402
import dataclasses  # noqa: E402

import yaml  # noqa: E402


def _cli(*args, env=None, timeout=300):
    return subprocess.run([sys.executable, *map(str, args)], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout)


def _one_error_line(r, *needles):
    """Exit status 2, no traceback, exactly one ``error:`` line holding every needle."""
    assert r.returncode == 2, (r.returncode, r.stderr[-3000:])
    assert "Traceback" not in r.stderr and "Segmentation" not in r.stderr
    lines = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, r.stderr[-3000:]
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def _in_tmpfs(mnt, size, commands, ro=False, timeout=300):
    """Run shell ``commands`` with a ``size`` tmpfs mounted on ``mnt`` (a private mount namespace
    of an unprivileged user namespace); skips where the machine does not allow it."""
    mnt.mkdir(parents=True, exist_ok=True)
    script = f"mount -t tmpfs -o size={size}{',ro' if ro else ''} tmpfs {mnt} || exit 97\ncd {REPO}\n{commands}"
    try:
        r = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        pytest.skip("no unshare here: the injected-fault tests cover this")
    if r.returncode == 97 or r.stderr.startswith("unshare:"):
        pytest.skip("this machine does not allow mounting a tmpfs: the injected-fault tests cover this")
    return r


class _FakeEstimator:
    """A stand-in network for predict's file handling (no TensorFlow): one person per frame."""

    def __init__(self, *args, **kwargs):
        from keras_openpose.codec import DEFAULT_CODEC
        self.codec, self.skeleton = DEFAULT_CODEC, DEFAULT_CODEC.skeleton
        self.timing = {"network_s": 0.0, "decode_s": 0.0, "images": 0}

    def maps(self, image):
        h, w = -(-image.shape[0] // 8), -(-image.shape[1] // 8)
        return (np.zeros((h, w, self.skeleton.num_heatmaps), np.float32),
                np.zeros((h, w, self.skeleton.num_pafs), np.float32), 8.0)

    def decode(self, heat, paf, stride, shape):
        return [{"keypoints": [10.0, 12.0, 1.0] * self.skeleton.num_keypoints, "score": 0.9}]


@pytest.fixture
def fake_network(monkeypatch):
    from keras_openpose.inference import estimator as inference
    monkeypatch.setattr(inference.PoseEstimator, "from_weights", classmethod(lambda cls, *a, **k: _FakeEstimator()))


def _image_folder(d):
    """A folder of every kind of entry: JPEG, PNG of the same stem, GIF, WebP, TIFF, a truncated
    JPEG, a text file, a subfolder. Returns (processed names, skipped reasons by file)."""
    import cv2
    d.mkdir(parents=True, exist_ok=True)
    img = cv2.imread(str(SAMPLE / "val2017" / "000000397133.jpg"))
    img = cv2.resize(img, (160, 120))
    for name in ("a.jpg", "a.png", "c.gif", "d.webp", "e.tiff"):
        assert cv2.imwrite(str(d / name), img)
    full = (d / "a.jpg").read_bytes()
    (d / "half.jpg").write_bytes(full[:len(full) // 2])
    (d / "notes.txt").write_text("not an image")
    (d / "sub").mkdir(exist_ok=True)
    return ({"a.jpg", "a.png", "c.gif", "d.webp", "e.tiff"},
            {"half.jpg": "truncated JPEG (no end marker)", "notes.txt": "not an image type (.txt",
             "sub": "a folder (subfolders are not searched)"})


# P1, P4: one typed rule for every value, the same for a YAML value and a flag ------------------

def _write_yaml(path, doc):
    path.write_text(yaml.safe_dump(doc) if not isinstance(doc, str) else doc)
    return path


@pytest.mark.parametrize("doc, needle", [
    ("train: {steps: many}", "train.steps = 'many': must be an integer >= 1"),
    ("train: {steps: 4.7}", "train.steps = 4.7: must be an integer >= 1"),
    ("decode: {peak_threshold: high}", "decode.peak_threshold = 'high': must be a number in [0, 1]"),
    ("train: {learning_rate: -1.0}", "train.learning_rate = -1.0: must be a number in (0, 10]"),
    ("train: {augment: {scale_min: 2, scale_max: 1}}", "train.augment.scale_min = 2.0: must be <= train.augment.scale_max"),
    ("data: {test_domains: [dark, night]}", "data.test_domains[1] = 'night': must be one of normal, dark"),
    ("inference: {scales: [1, 9]}", "inference.scales[1] = 9: must be a number in (0, 8]"),
    ("train: {optimizer: adamw}", "train.optimizer = 'adamw': must be one of adam, sgd, sgd_cmu"),
    ("train: {xla: maybe}", "train.xla = 'maybe': must be True or False"),
    ("train: [1, 2]", "train must be a mapping"),
])
def test_p1_bad_yaml_values_name_file_key_value_and_rule(tmp_path, doc, needle):
    from keras_openpose.config import ExperimentConfig
    f = _write_yaml(tmp_path / "bad.yaml", doc)
    with pytest.raises(DataError) as e:
        ExperimentConfig.from_yaml(f)
    assert str(f) in str(e.value) and needle in str(e.value) and "\n" not in str(e.value)


def test_p1_a_bad_decode_value_stops_predict_before_any_work(tmp_path):
    f = _write_yaml(tmp_path / "bad.yaml", "decode: {peak_threshold: high}")
    r = _cli("-m", "keras_openpose.predict", "--weights", tmp_path / "none.keras", "--input", SAMPLE / "val2017",
             "--out", tmp_path / "out", "--experiment", f)
    _one_error_line(r, str(f), "decode.peak_threshold = 'high': must be a number in [0, 1]")
    assert not (tmp_path / "out").exists()


def test_p1_numbers_written_the_yaml_1_1_way_are_read_as_numbers(tmp_path):
    from keras_openpose.config import ExperimentConfig
    cfg = ExperimentConfig.from_yaml(_write_yaml(tmp_path / "e.yaml", "train: {learning_rate: 1e-4, steps: '200'}"))
    assert cfg.train.learning_rate == 1e-4 and cfg.train.steps == 200          # as the flags read them
    assert ExperimentConfig.from_yaml(_write_yaml(tmp_path / "e.yaml", "train:\nfinetune: {steps: null}\n")) == ExperimentConfig()


def test_p4_a_negative_learning_rate_is_refused_from_yaml_and_flag_alike(tmp_path, train_store, capsys):
    from keras_openpose.cli import train_pose
    from keras_openpose.config import TrainConfig, flag_type
    f = _write_yaml(tmp_path / "lr.yaml", {"model": "tiny", "train": {"learning_rate": -1.0, "steps": 2}})
    models = tmp_path / "models"
    with pytest.raises(DataError, match=r"lr.yaml: train.learning_rate = -1.0: must be a number in \(0, 10\]"):
        train_pose(["--experiment", str(f), "--store", str(train_store), "--models-dir", str(models),
                    "--out", str(tmp_path / "run")])
    assert not models.exists()                                   # nothing trained, nothing published
    with pytest.raises(argparse.ArgumentTypeError, match=r"-0.01: must be a number in \(0, 10\]"):
        flag_type("TrainConfig.learning_rate")("-0.01")
    # the flag is parsed by the same rule (config.RULES via cli.common.add_options): refused at once
    with pytest.raises(SystemExit) as e:
        train_pose(["--store", str(train_store), "--lr", "20", "--models-dir", str(models), "--out", str(tmp_path / "run")])
    assert e.value.code == 2 and "argument --lr: 20: must be a number in (0, 10]" in capsys.readouterr().err
    t = TrainConfig()
    with pytest.raises(DataError, match=r"train.steps = 0: must be an integer >= 1"):
        t.steps = 0


def _config_fields():
    from keras_openpose.codec import DecodeOptions
    from keras_openpose.config import (AugmentConfig, ClassifierConfig, CodecConfig, DataConfig,
                                       ExperimentConfig, FinetuneConfig, InferenceOptions, TrainConfig,
                                       field_rule)
    paths = {DataConfig: ("data",), CodecConfig: ("codec",), DecodeOptions: ("decode",), TrainConfig: ("train",),
             AugmentConfig: ("train", "augment"), FinetuneConfig: ("finetune",), ClassifierConfig: ("classifier",),
             InferenceOptions: ("inference",), ExperimentConfig: ()}
    return [(cls, f.name, paths[cls]) for cls in paths for f in dataclasses.fields(cls) if field_rule(cls, f.name)]


def test_p1_every_value_of_the_experiment_has_a_rule():
    from keras_openpose.config import RULES, ExperimentConfig, field_rule
    checked = {(cls.__name__, name) for cls, name, _ in _config_fields()}
    sections = {f.name for f in dataclasses.fields(ExperimentConfig) if dataclasses.is_dataclass(getattr(ExperimentConfig(), f.name))}
    assert len(checked) >= 50 and sections >= {"data", "train", "decode", "inference"}
    for key, rule in RULES.items():          # every rule belongs to a field that exists, with its help
        cls_name, name = key.split(".")
        assert (cls_name, name) in checked or cls_name == "TrainConfig", key
        assert rule.help, key
    from keras_openpose.config import TrainConfig
    assert field_rule(TrainConfig, "learning_rate").describe() == "a number in (0, 10]"


_YAML_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-10**7, 10**7), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6), st.sampled_from(["1e-4", "many", "high", "0.5", "-1", "3", "True", "normal", "adam", "dark"]),
    st.lists(st.one_of(st.integers(-3, 10), st.floats(-1, 10), st.sampled_from(["dark", "x"])), max_size=3),
    st.just({}), st.just({"a": 1}))


@settings(max_examples=150, deadline=5000, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                    HealthCheck.too_slow])
@given(which=st.integers(0, 10**6), value=_YAML_VALUES)
def test_p1_random_yaml_values_are_taken_by_their_rule_or_refused_in_one_line(tmp_path, which, value):
    """Any value for any key: a config whose values all obey their rules, or one DataError naming
    the file and the key; and the flag parser of the same rule decides a number's text alike."""
    from keras_openpose.config import ConfigValueError, ExperimentConfig, field_rule
    fields = _config_fields()
    cls, name, path = fields[which % len(fields)]
    doc = {name: value}
    for key in reversed(path):
        doc = {key: doc}
    f = _write_yaml(tmp_path / "v.yaml", doc)
    rule = field_rule(cls, name)
    try:
        rule.check(value, name)
        rule_ok = True
    except ConfigValueError:
        rule_ok = False
    try:
        cfg = ExperimentConfig.from_yaml(f)
    except DataError as e:
        msg = str(e)
        assert "\n" not in msg and str(f) in msg and name in msg, msg
        assert not rule_ok or "must be <= train.augment.scale_max" in msg, msg     # or a rule across fields
        accepted = False
    else:
        section = cfg
        for key in path:
            section = getattr(section, key)
        got = getattr(section, name)
        assert rule.check(got) == (list(got) if isinstance(got, tuple) else got)    # it obeys its rule
        assert ExperimentConfig.from_yaml(cfg.to_yaml(tmp_path / "again.yaml")) == cfg
        assert rule_ok
    if rule.kind in (int, float) and isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:                                  # a flag given the same number as text: the same decision
            rule.flag()(str(value))
            flag_ok = True
        except argparse.ArgumentTypeError:
            flag_ok = False
        assert flag_ok == rule_ok, (name, value)


# P2: outputs checked before any work; P3, P9: every write failure is one line ------------------

def test_p2_predict_out_is_checked_before_the_network_loads(tmp_path):
    (tmp_path / "a_file").write_text("x")
    for out, needle in ((tmp_path / "a_file", "is a file; give a folder"),
                        (tmp_path / "a_file" / "sub", "a_file is a file, not a folder")):
        r = _cli("-m", "keras_openpose.predict", "--weights", REPO / "models" / "pose_normal.keras",
                 "--input", SAMPLE / "val2017", "--out", out)
        _one_error_line(r, f"--out {out}", needle)


def test_p2_export_and_test_domains_outputs_are_checked_first(tmp_path):
    (tmp_path / "m.keras").write_bytes(b"")                 # never loaded: the output is refused first
    (tmp_path / "a_file").write_text("x")
    r = _cli("-m", "keras_openpose.export", "--weights", tmp_path / "m.keras", "--format", "onnx", "--out", tmp_path)
    _one_error_line(r, f"--out {tmp_path}: is a folder; give a file name (e.g. {tmp_path / 'm.onnx'})")
    r = _cli("dataset/make_test_domains.py", "--coco-root", SAMPLE, "--split", "val2017", "--out", tmp_path / "a_file")
    _one_error_line(r, "is a file; give a folder")
    r = _cli("-m", "keras_openpose.export", "--weights", tmp_path / "missing.keras", "--format", "onnx",
             "--out", tmp_path / "x.onnx")
    _one_error_line(r, "missing.keras: model file not found")


def test_p2_outputs_on_a_read_only_file_system_are_refused_first(tmp_path):
    ro = tmp_path / "ro"
    (tmp_path / "m.keras").write_bytes(b"")
    py = sys.executable
    r = _in_tmpfs(ro, "1m", f"""
{py} -m keras_openpose.predict --weights {tmp_path / 'm.keras'} --input {SAMPLE / 'val2017'} --out {ro / 'p'}; echo "rc=$?"
{py} -m keras_openpose.export --weights {tmp_path / 'm.keras'} --format onnx --out {ro / 'm.onnx'}; echo "rc=$?"
{py} dataset/make_test_domains.py --coco-root {SAMPLE} --split val2017 --out {ro / 't'}; echo "rc=$?"
{py} training/generate_hdf5_coco2014.py --coco-root {SAMPLE} --split train2017 --out {ro / 's.h5'}; echo "rc=$?"
""", ro=True)
    assert r.stdout.split() == ["rc=2"] * 4 and "Traceback" not in r.stderr, r.stderr[-3000:]
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 4 and all("Read-only file system" in e for e in errors), errors


def test_p3_a_full_disk_stops_the_store_build_cleanly_and_it_resumes(tmp_path, reference_store):
    """An injected ENOSPC in the block writer, then in the assembly: one line each, finished blocks
    kept; with space again the same command resumes to the identical store."""
    out = tmp_path / "s.h5"
    cmd = ("training/generate_hdf5_coco2014.py", "--coco-root", SAMPLE, "--split", "train2017", "--out", out,
           "--workers", "1")
    r = _cli(*cmd, env={"KERAS_OPENPOSE_FAULT_AT": "block_write:2"})
    _one_error_line(r, f"{out}: No space left on device", "1 finished blocks are kept", "run the same command again")
    assert not out.exists() and len(list(tmp_path.glob("s.h5.parts/block_*.h5"))) == 1
    r = _cli(*cmd, env={"KERAS_OPENPOSE_FAULT_AT": "assemble_write:1"})
    _one_error_line(r, f"{out}: No space left on device", "2 finished blocks are kept")
    assert not out.exists() and not list(tmp_path.glob(".s.tmp*"))
    r = _cli(*cmd)
    assert r.returncode == 0, r.stderr[-2000:]
    _same_store(out, reference_store)


def test_p3_a_really_full_tmpfs_during_a_store_build(tmp_path, reference_store):
    mnt, py = tmp_path / "mnt", sys.executable
    cmd = f"{py} training/generate_hdf5_coco2014.py --coco-root {SAMPLE} --split train2017 --out {mnt / 's.h5'} --workers 2"
    r = _in_tmpfs(mnt, "6m", f"""
{cmd}; echo "rc=$?"
ls {mnt / 's.h5.parts'} | grep -c block_
mount -o remount,size=64m {mnt}
{cmd} >/dev/null; echo "rc=$?"
cp {mnt / 's.h5'} {tmp_path / 'copy.h5'}
""")
    assert r.stdout.split() == ["rc=2", "2", "rc=0"], (r.stdout, r.stderr[-3000:])
    assert "Traceback" not in r.stderr and "No space left on device" in r.stderr and "2 finished blocks are kept" in r.stderr
    _same_store(tmp_path / "copy.h5", reference_store)


def test_p9_a_full_disk_during_predict_is_one_line_naming_the_file(tmp_path, fake_network, monkeypatch):
    from keras_openpose import files
    from keras_openpose.predict import predict_source
    src = tmp_path / "in"
    _image_folder(src)
    monkeypatch.setenv("KERAS_OPENPOSE_FAULT_AT", "atomic_write:3")
    monkeypatch.setattr(files, "_FAULT_COUNTS", {})
    with pytest.raises(DataError, match=r"out/[a-z.]+_pose.jpg: No space left on device"):
        predict_source(str(src), tmp_path / "out", weights="fake")
    assert not (tmp_path / "out" / "poses.json").exists()         # no result that looks complete


PREDICT_FAKE = """
import sys; sys.path[:0] = [{repo!r}, {tests!r}]
from keras_openpose import inference
from test_robustness import _FakeEstimator
inference.PoseEstimator.from_weights = classmethod(lambda cls, *a, **k: _FakeEstimator())
from keras_openpose.cli import predict, run
run(predict, ["--weights", {weights!r}, "--input", {src!r}, "--out", {out!r}])
"""


def test_p9_a_really_full_tmpfs_during_predict(tmp_path):
    src, mnt = tmp_path / "in", tmp_path / "mnt"
    _image_folder(src)
    (tmp_path / "m.keras").write_bytes(b"")
    code = PREDICT_FAKE.format(repo=str(REPO), tests=str(REPO / "tests"), weights=str(tmp_path / "m.keras"),
                               src=str(src), out=str(mnt / "p"))
    (tmp_path / "p.py").write_text(code)
    r = _in_tmpfs(mnt, "40k", f"{sys.executable} {tmp_path / 'p.py'}")
    _one_error_line(r, str(mnt / "p"), "No space left on device")


# P5, P6: the experiment flag is never ignored; cheap checks first -------------------------------

def test_p5_check_coco_reads_its_experiment_flag(tmp_path):
    r = _cli("dataset/check_coco.py", "--experiment", tmp_path / "missing.yaml")
    _one_error_line(r, "missing.yaml: config file not found")
    f = _write_yaml(tmp_path / "typo.yaml", "data: {coco_rot: dataset/sample}")
    r = _cli("dataset/check_coco.py", "--coco-root", SAMPLE, "--experiment", f)
    _one_error_line(r, "unknown DataConfig keys: coco_rot")
    f = _write_yaml(tmp_path / "e.yaml", {"data": {"coco_root": str(SAMPLE), "train_split": "train2017",
                                                   "test_split": "val2017"}})
    r = _cli("dataset/check_coco.py", "--experiment", f, "--no-read")      # the experiment's two splits
    assert r.returncode == 0 and "train2017: 80 images" in r.stdout and "val2017: 79 images" in r.stdout, r.stderr


CHEAP = """
import sys; sys.path.insert(0, {repo!r})
from keras_openpose.cli import predict, run
try:
    run(predict, {argv!r})
except SystemExit:
    pass
print("tensorflow imported:", "tensorflow" in sys.modules)
"""


def test_p6_a_missing_input_is_not_found_before_tensorflow(tmp_path):
    for missing, needle in (("clip.mp4", "clip.mp4: video not found"), ("img.jpg", "img.jpg: input not found")):
        argv = ["--weights", str(REPO / "models" / "pose_normal.keras"), "--input", str(tmp_path / missing),
                "--out", str(tmp_path / "out")]
        r = _cli("-c", CHEAP.format(repo=str(REPO), argv=argv))
        assert f"error: {tmp_path / missing}".replace(str(tmp_path / missing), "") in r.stderr and needle in r.stderr
        assert "tensorflow imported: False" in r.stdout, r.stdout
    argv = ["--weights", str(tmp_path / "none.keras"), "--input", str(SAMPLE / "val2017"), "--out", str(tmp_path / "o")]
    r = _cli("-c", CHEAP.format(repo=str(REPO), argv=argv))
    assert "none.keras: model file not found" in r.stderr and "tensorflow imported: False" in r.stdout


# P6, P7, P8: one image reader; every file processed or listed; outputs keyed by file name -------

def test_p6_p7_every_folder_entry_is_processed_or_listed_with_its_reason(tmp_path):
    from keras_openpose.inference.sources import frames
    names, reasons = _image_folder(tmp_path / "in")
    skipped = []
    got = [name for name, img in frames(str(tmp_path / "in"), skipped)]
    assert set(got) == names and len(got) == len(names)                   # GIF, WebP and TIFF included
    by_file = {line.split(": ", 1)[0]: line.split(": ", 1)[1] for line in skipped}
    assert set(by_file) == {str(tmp_path / "in" / n) for n in reasons}
    for n, why in reasons.items():
        assert by_file[str(tmp_path / "in" / n)].startswith(why)


def test_p7_truncated_images_are_refused_by_every_reader(tmp_path, val_split):
    import cv2

    from keras_openpose.data.coco import CocoSplit
    from keras_openpose.data.images import image_problem, read_image
    from keras_openpose.evaluate.runs import evaluate_predictor
    img = cv2.imread(str(SAMPLE / "val2017" / "000000397133.jpg"))
    for ext, reason in ((".jpg", "truncated JPEG"), (".png", "truncated PNG"), (".gif", "truncated GIF"),
                        (".webp", "truncated WebP")):
        data = cv2.imencode(ext, img)[1].tobytes()
        (tmp_path / f"t{ext}").write_bytes(data[:len(data) // 2])
        with pytest.raises(DataError, match=f"t{ext}: {reason}"):
            read_image(tmp_path / f"t{ext}")
        assert image_problem(data[:len(data) // 2])[1].startswith(reason)     # the store's and check_coco's check
        assert image_problem(data)[1] is None
    root, _ = _corrupt_copy(tmp_path, val_split)                              # eval: skipped and listed
    split = CocoSplit(root, "val2017")
    s = evaluate_predictor(lambda im: [], split, split.image_ids, tmp_path / "ev", "t", progress=False)
    assert any("truncated JPEG (no end marker)" in line for line in s["skipped_images"])


def test_p8_same_stem_files_never_collide(tmp_path, fake_network):
    from keras_openpose.predict import predict_source
    names, reasons = _image_folder(tmp_path / "in")
    r = predict_source(str(tmp_path / "in"), tmp_path / "out", weights="fake")
    assert r["frames"] == len(names) and len(r["skipped"]) == len(reasons)
    assert {p.name for p in (tmp_path / "out").glob("*_pose.jpg")} == {f"{n}_pose.jpg" for n in names}
    poses = json.loads((tmp_path / "out" / "poses.json").read_text())
    assert sorted(p["image_id"] for p in poses) == sorted(names)               # a.jpg and a.png: two people
    assert len(json.loads((tmp_path / "out" / "skipped.json").read_text())) == len(reasons)


# P10: skeletons compared by keypoint names --------------------------------------------------

def test_p10_an_animal_model_is_not_scored_on_person_annotations(val_split):
    from keras_openpose.cli import check_names
    from keras_openpose.skeleton import check_same_skeleton, get_skeleton
    animal, person = get_skeleton("ap10k17"), get_skeleton("coco17")
    assert animal.num_keypoints == person.num_keypoints == val_split.num_keypoints       # the count agrees
    with pytest.raises(DataError) as e:
        check_names(argparse.Namespace(any_keypoint_names=False), animal, val_split)
    msg = str(e.value)
    assert "person_keypoints_val2017.json" in msg and "--any-keypoint-names" in msg
    assert ", ".join(animal.keypoints) in msg and ", ".join(person.keypoints) in msg      # both name lists
    check_names(argparse.Namespace(any_keypoint_names=True), animal, val_split)          # the user means it
    check_names(argparse.Namespace(any_keypoint_names=False), get_skeleton("openpose_coco18"), val_split)
    check_same_skeleton(person, [n.replace("_", " ").title() for n in person.keypoints], "x")   # names normalised


# P11, P12: unknown categories and file names outside the image folder -------------------------

def test_p11_p12_unknown_category_and_outside_file_names_are_skipped_and_counted(tmp_path, val_split):
    from keras_openpose.data.coco import CocoSplit, check_split
    from keras_openpose.data.store import build_store
    root = tmp_path / "c"
    shutil.copytree(SAMPLE / "val2017", root / "val2017")
    (tmp_path / "outside.jpg").write_bytes((SAMPLE / "val2017" / "000000397133.jpg").read_bytes())
    data = json.loads((SAMPLE / "annotations" / "person_keypoints_val2017.json").read_text())
    people = [a for a in data["annotations"] if a["num_keypoints"] >= 5 and not a["iscrowd"]]
    people[0]["category_id"] = 99
    used = {a["image_id"] for a in people[:1]}
    others = [im for im in data["images"] if im["id"] not in used][:2]
    others[0]["file_name"] = "../../outside.jpg"
    others[1]["file_name"] = str(tmp_path / "outside.jpg")
    (root / "annotations").mkdir()
    ann = root / "annotations" / "person_keypoints_val2017.json"
    ann.write_text(json.dumps(data))
    split = CocoSplit(root, "val2017")
    assert people[0]["id"] not in {a["id"] for a in split.data["annotations"]}
    assert others[0]["id"] not in split.images and others[1]["id"] not in split.images
    rep = check_split(ann, root / "val2017", progress=False)
    assert rep["by_reason"]["category_id N is not a keypoint category of the file"] == 1
    assert rep["by_reason"]["file_name outside the image folder"] == 2
    r = build_store(split, tmp_path / "c.h5", workers=1, progress=False)
    assert r["skipped_by_reason"]["file_name outside the image folder"] == 2
    assert r["skipped_by_reason"]["category_id N is not a keypoint category of the file"] == 1
