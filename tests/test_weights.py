"""Weight importers: small files in the CMU Caffe and the reference Keras 2 formats, built here."""
import struct

import h5py
import numpy as np
import pytest

from keras_openpose.errors import DataError
from keras_openpose.model.weights import load_caffe_weights, load_reference_h5, read_caffemodel


def _varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def _field(num, wt, payload):
    key = _varint(num << 3 | wt)
    if wt == 2:
        return key + _varint(len(payload)) + payload
    return key + payload


def _blob(arr, legacy=False):
    arr = np.asarray(arr, np.float32)
    if legacy:  # num, channels, height, width + unpacked floats
        shape = list(arr.shape) + [1] * (4 - arr.ndim)
        head = b"".join(_field(i + 1, 0, _varint(d)) for i, d in enumerate(shape))
        return head + b"".join(_field(5, 5, struct.pack("<f", v)) for v in arr.reshape(-1))
    dims = b"".join(_varint(d) for d in arr.shape)
    return _field(7, 2, _field(1, 2, dims)) + _field(5, 2, arr.astype("<f4").tobytes())


def _layer(name, blobs, legacy=False):
    if legacy:  # V1LayerParameter: name = 4, blobs = 6; NetParameter.layers = 2
        body = _field(4, 2, name.encode()) + b"".join(_field(6, 2, _blob(b, True)) for b in blobs)
        return _field(2, 2, body)
    body = _field(1, 2, name.encode()) + _field(2, 2, b"Convolution") + b"".join(_field(7, 2, _blob(b)) for b in blobs)
    return _field(100, 2, body)


@pytest.fixture(scope="module")
def vgg19(vgg19_network):
    return vgg19_network          # built once per session (conftest)


def test_caffemodel_lands_in_the_right_layers_with_the_right_axes(tmp_path, vgg19):
    rng = np.random.default_rng(0)
    k1 = rng.normal(size=(64, 3, 3, 3)).astype(np.float32)        # Caffe (out, in, kh, kw)
    b1 = rng.normal(size=(64,)).astype(np.float32)
    k2 = rng.normal(size=(19, 128, 1, 1)).astype(np.float32)
    b2 = rng.normal(size=(19,)).astype(np.float32)
    k3 = rng.normal(size=(128, 185, 7, 7)).astype(np.float32)
    b3 = np.zeros(128, np.float32)
    data = (_field(1, 2, b"pose") + _layer("data", []) + _layer("conv1_1", [k1, b1])
            + _layer("Mconv7_stage6_L2", [k2, b2], legacy=True) + _layer("Mconv1_stage2_L1", [k3, b3]))
    path = tmp_path / "pose.caffemodel"
    path.write_bytes(data)
    blobs = read_caffemodel(path)
    assert set(blobs) == {"conv1_1", "Mconv7_stage6_L2", "Mconv1_stage2_L1"}
    loaded = load_caffe_weights(vgg19, path, strict=False)
    assert sorted(loaded) == sorted(blobs)
    kern, bias = vgg19.get_layer("conv1_1").get_weights()
    assert kern.shape == (3, 3, 3, 64)
    # Keras kernel[kh, kw, in, out] == Caffe kernel[out, in, kh, kw]
    assert kern[1, 2, 0, 5] == k1[5, 0, 1, 2] and np.array_equal(bias, b1)
    np.testing.assert_array_equal(vgg19.get_layer("Mconv7_stage6_L2").get_weights()[0][0, 0], k2[:, :, 0, 0].T)
    np.testing.assert_array_equal(vgg19.get_layer("Mconv1_stage2_L1").get_weights()[0], k3.transpose(2, 3, 1, 0))
    with pytest.raises(DataError, match="no weights for"):
        load_caffe_weights(vgg19, path, strict=True)


def test_caffemodel_shape_mismatch_and_garbage(tmp_path, vgg19):
    path = tmp_path / "bad.caffemodel"
    path.write_bytes(_layer("conv1_1", [np.zeros((64, 3, 5, 5)), np.zeros(64)]))
    with pytest.raises(DataError, match="conv1_1: shapes"):
        load_caffe_weights(vgg19, path, strict=False)
    path.write_bytes(b"\xff\xff\xff")
    with pytest.raises(DataError, match="bad.caffemodel: not a Caffe model"):
        read_caffemodel(path)


def test_reference_keras2_h5(tmp_path, vgg19):
    rng = np.random.default_rng(1)
    k = rng.normal(size=(3, 3, 256, 128)).astype(np.float32)
    b = rng.normal(size=(128,)).astype(np.float32)
    path = tmp_path / "weights.0100.h5"
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [b"input_1", b"conv4_4_CPM"]
        f.create_group("input_1").attrs["weight_names"] = []
        g = f.create_group("conv4_4_CPM")
        g.attrs["weight_names"] = [b"conv4_4_CPM/kernel:0", b"conv4_4_CPM/bias:0"]
        g.create_dataset("conv4_4_CPM/kernel:0", data=k)
        g.create_dataset("conv4_4_CPM/bias:0", data=b)
    assert load_reference_h5(vgg19, path, strict=False) == ["conv4_4_CPM"]
    got = vgg19.get_layer("conv4_4_CPM").get_weights()
    assert np.array_equal(got[0], k) and np.array_equal(got[1], b)


def test_imagenet_vgg19_init(tmp_path, vgg19):
    from keras_openpose.model.weights import VGG19_IMAGENET_NAMES, load_vgg19_imagenet
    path = tmp_path / "vgg19_notop.h5"
    rng = np.random.default_rng(2)
    ref = {}
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [n.encode() for n in VGG19_IMAGENET_NAMES] + [b"block5_conv1"]
        for src, dst in list(VGG19_IMAGENET_NAMES.items()) + [("block5_conv1", None)]:
            shape = vgg19.get_layer(dst).kernel.shape if dst else (3, 3, 512, 512)
            k = rng.normal(size=shape).astype(np.float32)
            b = rng.normal(size=shape[-1:]).astype(np.float32)
            g = f.create_group(src)
            g.attrs["weight_names"] = [f"{src}/kernel:0".encode(), f"{src}/bias:0".encode()]
            g.create_dataset(f"{src}/kernel:0", data=k)
            g.create_dataset(f"{src}/bias:0", data=b)
            ref[dst] = (k, b)
    loaded = load_vgg19_imagenet(vgg19, path)
    assert sorted(loaded) == sorted(VGG19_IMAGENET_NAMES.values())   # block5 (not in CMU) ignored
    k, b = vgg19.get_layer("conv3_4").get_weights()
    assert np.array_equal(k, ref["conv3_4"][0]) and np.array_equal(b, ref["conv3_4"][1])
