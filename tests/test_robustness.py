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
from keras_openpose.coco import CocoSplit
from keras_openpose.store import build_store
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
    from keras_openpose.store import build_store
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
    from keras_openpose.store import build_store
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
    from keras_openpose.coco import CocoSplit, check_split
    from keras_openpose.store import build_store
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
    from keras_openpose.coco import CocoSplit
    from keras_openpose.evaluate import evaluate_predictor, summary_line
    from keras_openpose.store import build_store
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
    from keras_openpose.inference import preprocess
    x, s, (hr, wr) = preprocess(np.zeros((100, 10000, 3), np.uint8), 368, 1.0, 8, max_side=2048)
    assert wr == 2048 and hr == 20 and x.shape == (24, 2048, 3)     # resized to fit, not 368 x 36800
    with pytest.raises(DataError, match="image 10000x10: too elongated"):
        preprocess(np.zeros((10, 10000, 3), np.uint8), 368, 1.0, 8, max_side=2048)


def test_folders_with_bad_files_skip_and_list_them(tmp_path, val_split):
    from keras_openpose.inference import frames
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
    from keras_openpose.pipeline import SampleMaker
    from keras_openpose.store import Store
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
    from keras_openpose.coco import CocoSplit, check_split, ignore_mask, select_main_people
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
    from keras_openpose.train import train_expert
    with OutputLock(tmp_path / "run" / "run"):
        with pytest.raises(DataError, match=r"run/run: in use by another run"):
            train_expert(ExperimentConfig(model="tiny"), train_store, tmp_path / "run", verbose=0)


def test_numeric_flags_are_checked_when_parsed():
    r = subprocess.run([sys.executable, "eval/eval_coco2014_single_scale.py", "--coco_dataType", "val2017",
                        "--scales", "0"], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 2 and "argument --scales: 0: each scale must be in (0, 8]" in r.stderr
    assert "Traceback" not in r.stderr
