import json

import cv2
import numpy as np
import pytest

from keras_openpose.data.masks import ann_to_mask, ignore_mask, select_main_people
from keras_openpose.data.coco import load_annotations
from keras_openpose.data.testsets import make_domain_test_set, read_id_list
from keras_openpose.data.domains import apply_effect, darken, motion_blur, motion_kernel
from keras_openpose.errors import DataError
from keras_openpose.data.store import Store, build_store, store_report


def test_mask_covers_crowd_and_unlabelled_people(train_split):
    crowd = [(i, a) for i in train_split.image_ids for a in train_split.anns_by_image[i] if a["iscrowd"]]
    assert crowd, "the sample has crowd annotations"
    for iid, a in crowd:
        im = train_split.images[iid]
        m = ignore_mask(train_split.anns_by_image[iid], im["height"], im["width"])
        region = ann_to_mask(a, im["height"], im["width"]).astype(bool)
        assert region.sum() > 0 and m[region].max() == 0  # loss ignored over the whole crowd region
        keep = np.zeros_like(region)
        for b in train_split.anns_by_image[iid]:
            keep |= ann_to_mask(b, im["height"], im["width"]).astype(bool)
        assert m[~keep].min() == 1  # and used everywhere outside annotated regions
    # a person without keypoints is masked, a labelled one is not
    for iid in train_split.image_ids:
        anns = train_split.anns_by_image[iid]
        nokp = [a for a in anns if a["num_keypoints"] == 0 and not a["iscrowd"]]
        if nokp:
            im = train_split.images[iid]
            m = ignore_mask(anns, im["height"], im["width"])
            assert m[ann_to_mask(nokp[0], im["height"], im["width"]).astype(bool)].max() == 0
            break


def test_main_people_spacing_uses_the_accepted_person():
    def ann(x, y, w, h):
        return {"bbox": [x, y, w, h], "area": w * h, "num_keypoints": 10, "iscrowd": 0}
    big = ann(0, 0, 400, 400)            # centre (200, 200), size 400 -> keep-out radius 120
    near = ann(250, 250, 40, 40)         # centre (270, 270): 99 px away -> too close to the big one
    far = ann(500, 0, 40, 40)            # far away
    assert select_main_people([big, near, far]) == [0, 2]
    # the reference used the size of the *last* annotation (40 -> radius 12) and kept `near`
    small_first = [ann(250, 250, 40, 40), ann(0, 0, 400, 400)]
    assert select_main_people(small_first) == [0, 1]  # radius of the small accepted person is 12


def test_store_round_trip(train_split, train_store):
    rep = store_report(train_store)
    st = Store(train_store)
    assert rep["complete"] and len(st) == rep["images"] > 0
    assert rep["bytes"] <= 1.25 * rep["jpeg_bytes"]
    for row in (0, len(st) - 1):
        iid = int(st.image_ids[row])
        raw = train_split.image_path(iid).read_bytes()
        assert np.array_equal(st.image(row), cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR))
        im = train_split.images[iid]
        assert np.array_equal(st.mask(row), ignore_mask(train_split.anns_by_image[iid], im["height"], im["width"]))
        people = [a for a in train_split.anns_by_image[iid] if a["num_keypoints"] > 0 and not a["iscrowd"]]
        np.testing.assert_allclose(st.keypoints[st.people(row)].reshape(len(people), -1),
                                   [a["keypoints"] for a in people])
    assert len(st.samples()) == rep["main_people"]
    st.close()


def test_store_build_resumes_without_loss_or_duplicates(tmp_path, train_split):
    out = tmp_path / "s.h5"
    r = build_store(train_split, out, workers=1, block=4, progress=False, stop_after=30)
    assert r["complete"] is False and (tmp_path / "s.h5.parts").is_dir() and not out.exists()
    full = build_store(train_split, out, workers=2, block=4, progress=False)
    build_store(train_split, tmp_path / "ref.h5", workers=2, progress=False)
    a, b = Store(out), Store(tmp_path / "ref.h5")
    assert full["complete"] and list(a.image_ids) == list(b.image_ids)
    assert np.array_equal(a.keypoints, b.keypoints)


def test_store_excludes_test_ids(tmp_path, train_split):
    test_ids = train_split.ids_with_people()[:5]
    build_store(train_split, tmp_path / "x.h5", exclude_ids=test_ids, workers=1, progress=False)
    st = Store(tmp_path / "x.h5")
    assert not set(test_ids) & set(st.image_ids.tolist())


def test_effects_match_definitions(val_split):
    img = val_split.read(val_split.image_ids[0])
    d = darken(img, 0.5)
    assert np.array_equal(d, np.clip(np.rint(img * 0.5), 0, 255).astype(np.uint8))
    k = motion_kernel(30)
    assert k.shape == (31, 31) and k.sum() == pytest.approx(1.0)
    row = k[15]
    assert np.all(k[np.arange(31) != 15] == 0)
    assert row[1:-1] == pytest.approx(np.full(29, 1 / 30)) and row[0] == pytest.approx(1 / 60)
    # a centred kernel: a single bright pixel spreads symmetrically over 30 px, no vertical shift
    dot = np.zeros((41, 81, 3), np.uint8)
    dot[20, 40] = 255
    blurred = motion_blur(dot, 30).astype(float)[..., 0]
    assert blurred[20].sum() == pytest.approx(255, abs=20) and blurred[19].sum() == 0
    cols = np.nonzero(blurred[20])[0]
    assert cols.min() == 40 - 15 and cols.max() == 40 + 15
    # the image version equals filter2D with that kernel
    ref = cv2.filter2D(img.astype(np.float32), -1, k, borderType=cv2.BORDER_REFLECT_101)
    assert np.abs(motion_blur(img, 30).astype(float) - ref).max() <= 0.5 + 1e-3
    half = apply_effect(img, "resolution")
    assert half.shape[:2] == (img.shape[0] // 2, img.shape[1] // 2)


def test_half_resolution_rescales_every_annotation_field(tmp_path, val_split):
    out = make_domain_test_set(val_split, "resolution", tmp_path)
    for im in out.data["images"]:
        src = val_split.images[im["id"]]
        assert (im["width"], im["height"]) == (src["width"] // 2, src["height"] // 2)
        assert out.read(im["id"]).shape[:2] == (im["height"], im["width"])
    src_anns = {a["id"]: a for a in val_split.data["annotations"]}
    kinds = set()
    for a in out.data["annotations"]:
        s = src_anns[a["id"]]
        sx = out.images[a["image_id"]]["width"] / val_split.images[a["image_id"]]["width"]
        sy = out.images[a["image_id"]]["height"] / val_split.images[a["image_id"]]["height"]
        np.testing.assert_allclose(a["bbox"], np.array(s["bbox"]) * [sx, sy, sx, sy], rtol=1e-6)
        assert a["area"] == pytest.approx(s["area"] * sx * sy)
        kp, kp0 = np.array(a["keypoints"]).reshape(-1, 3), np.array(s["keypoints"]).reshape(-1, 3)
        np.testing.assert_allclose(kp[:, 0], kp0[:, 0] * sx)
        np.testing.assert_array_equal(kp[:, 2], kp0[:, 2])
        if isinstance(a["segmentation"], list):
            kinds.add("polygon")
            np.testing.assert_allclose(a["segmentation"][0][0], s["segmentation"][0][0] * sx)
        else:
            kinds.add("rle")
            m = ann_to_mask(a, out.images[a["image_id"]]["height"], out.images[a["image_id"]]["width"])
            assert m.shape == (out.images[a["image_id"]]["height"], out.images[a["image_id"]]["width"])
            assert m.sum() == pytest.approx(s["area"] * sx * sy, rel=0.35)
    assert kinds == {"polygon", "rle"}


def test_bad_annotation_file_errors_name_the_file(tmp_path):
    p = tmp_path / "x.json"
    p.write_text(json.dumps({"hello": 1}))
    with pytest.raises(DataError, match=str(p).replace("\\", "\\\\") + ".*not a COCO annotation file"):
        load_annotations(p)
    p.write_text("{not json")
    with pytest.raises(DataError, match="not a JSON file"):
        load_annotations(p)
    with pytest.raises(DataError, match="annotation file not found"):
        load_annotations(tmp_path / "missing.json")


def test_id_lists(tmp_path):
    from keras_openpose.data.testsets import cmu_val2014_1k
    ids = cmu_val2014_1k()
    assert len(ids) == 1160 and ids[:3] == [136, 192, 241]
    p = tmp_path / "l.txt"
    p.write_text("# ids\n5\n7\n")
    assert read_id_list(p) == [5, 7]
    p.write_text("abc\n")
    with pytest.raises(DataError, match="l.txt:1"):
        read_id_list(p)


def test_check_root_counts_problems(tmp_path, val_split):
    import shutil

    from keras_openpose.data.coco import check_root
    rep = check_root("dataset/sample", progress=False)
    assert rep["val2017"]["images"] == 79 and rep["val2017"]["missing"] == 0 and rep["train2017"]["unreadable"] == 0
    root = tmp_path / "c"
    shutil.copytree("dataset/sample/annotations", root / "annotations")
    (root / "val2017").mkdir()
    ims = val_split.data["images"]
    shutil.copy(val_split.image_path(ims[0]["id"]), root / "val2017" / ims[0]["file_name"])
    (root / "val2017" / ims[1]["file_name"]).write_bytes(b"not a jpeg")
    r = check_root(root, ["val2017"], progress=False)["val2017"]
    assert (r["missing"], r["unreadable"]) == (77, 1) and len(r["errors"]) == 20
