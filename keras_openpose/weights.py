"""Weights users already have: the CMU Caffe model and the reference's Keras 2 ``.h5`` files.

* :func:`read_caffemodel` parses a ``.caffemodel`` (a protobuf ``NetParameter``) with a minimal
  wire-format reader: no Caffe, no protobuf package, no network. Both the current ``layer``
  (field 100, ``LayerParameter``: name 1, blobs 7) and the legacy ``layers`` (field 2,
  ``V1LayerParameter``: name 4, blobs 6) forms are read; a ``BlobProto`` gives its shape (field 7,
  or the legacy num/channels/height/width 1-4) and float data (field 5, packed or not).
* :func:`load_caffe_weights` puts them into :func:`keras_openpose.model.build_model` ``("vgg19")``
  by layer name; Caffe kernels ``(out, in, kh, kw)`` become Keras ``(kh, kw, in, out)``.
* :func:`load_reference_h5` loads a Keras 2 ``save_weights`` file (``weights.0100.h5`` of
  kevinlin311tw / ainu412 keras-openpose-reproduce): groups per layer name with
  ``<layer>/kernel:0`` and ``<layer>/bias:0`` datasets, already in Keras axis order.

The CMU network (``pose_iter_440000.caffemodel`` with ``pose_deploy.prototxt``) uses the same
layer names, input convention (BGR, ``x / 256 - 0.5``) and channel layout as our ``vgg19`` config.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import DataError


def _varint(buf: bytes, pos: int):
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def iter_fields(buf: bytes):
    """Yield ``(field_number, wire_type, value)`` of a protobuf message: ``value`` is an int for
    varint (0) and fixed (1, 5: raw bytes) types, ``bytes`` for length-delimited (2)."""
    pos, n = 0, len(buf)
    while pos < n:
        key, pos = _varint(buf, pos)
        field, wt = key >> 3, key & 7
        if wt == 0:
            val, pos = _varint(buf, pos)
        elif wt == 1:
            val, pos = buf[pos:pos + 8], pos + 8
        elif wt == 2:
            ln, pos = _varint(buf, pos)
            val, pos = buf[pos:pos + ln], pos + ln
        elif wt == 5:
            val, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported wire type {wt}")
        if pos > n:
            raise ValueError("truncated message")
        yield field, wt, val


def _blob(buf: bytes) -> np.ndarray:
    shape, legacy, data = [], {}, []
    for f, wt, v in iter_fields(buf):
        if f == 7 and wt == 2:  # BlobShape { repeated int64 dim = 1 [packed] }
            for g, gwt, gv in iter_fields(v):
                if g == 1 and gwt == 2:
                    p = 0
                    while p < len(gv):
                        d, p = _varint(gv, p)
                        shape.append(d)
                elif g == 1:
                    shape.append(gv)
        elif f in (1, 2, 3, 4) and wt == 0:
            legacy[f] = v
        elif f == 5:
            data.append(np.frombuffer(v, "<f4") if wt == 2 else np.frombuffer(v, "<f4", count=1))
    arr = np.concatenate(data) if data else np.zeros(0, np.float32)
    if not shape and legacy:
        shape = [legacy.get(k, 1) for k in (1, 2, 3, 4)]
    if shape and int(np.prod(shape)) == arr.size:
        arr = arr.reshape(shape)
    return arr.astype(np.float32)


def read_caffemodel(path: str | Path) -> dict[str, list[np.ndarray]]:
    """``{layer name: [blob, ...]}`` for every layer with blobs (weights then bias, Caffe shapes).

    Raises:
        DataError: missing file or bytes that are not a Caffe NetParameter.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: caffemodel not found")
    buf = path.read_bytes()
    out = {}
    try:
        for f, wt, v in iter_fields(buf):
            if wt != 2 or f not in (2, 100):
                continue
            name_field, blob_field = (1, 7) if f == 100 else (4, 6)
            name, blobs = None, []
            for g, gwt, gv in iter_fields(v):
                if g == name_field and gwt == 2:
                    name = gv.decode("utf-8", "replace")
                elif g == blob_field and gwt == 2:
                    blobs.append(_blob(gv))
            if name and blobs:
                out[name] = blobs
    except ValueError as e:
        raise DataError(f"{path}: not a Caffe model ({e})") from None
    if not out:
        raise DataError(f"{path}: no layer with weights found (not a Caffe model?)")
    return out


def _assign(model, name: str, kernel: np.ndarray, bias: np.ndarray | None, source: str):
    try:
        layer = model.get_layer(name)
    except ValueError:
        return False
    want = [w.shape for w in layer.get_weights()]
    got = [kernel.shape] + ([bias.shape] if bias is not None else [])
    if [tuple(s) for s in want] != [tuple(s) for s in got]:
        raise DataError(f"{source}: layer {name}: shapes {got} do not fit {want}")
    layer.set_weights([kernel] + ([bias] if bias is not None else []))
    return True


def load_caffe_weights(model, caffemodel: str | Path, strict: bool = True) -> list[str]:
    """Load CMU Caffe weights into ``model`` by layer name; returns the names loaded.

    Args:
        strict: every convolution of ``model`` must be found (else :class:`DataError` lists them).
    """
    blobs = read_caffemodel(caffemodel)
    loaded = []
    for name, bl in blobs.items():
        k = bl[0]
        if k.ndim != 4:
            continue
        if _assign(model, name, k.transpose(2, 3, 1, 0), bl[1].reshape(-1) if len(bl) > 1 else None, str(caffemodel)):
            loaded.append(name)
    _check_complete(model, loaded, caffemodel, strict)
    return loaded


#: Keras ``applications.VGG19`` layer names -> CMU backbone names (the 10 layers CMU initialises).
VGG19_IMAGENET_NAMES = {f"block{b}_conv{i}": f"conv{b}_{i}" for b, n in ((1, 2), (2, 2), (3, 4), (4, 2))
                        for i in range(1, n + 1)}


def load_vgg19_imagenet(model, path: str | Path) -> list[str]:
    """Initialise ``conv1_1 ... conv4_2`` from an ImageNet VGG-19 weights file the user has (Keras
    applications' ``vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5``), as CMU trained from
    ImageNet VGG-19. Nothing is downloaded. Note the input convention differs from ImageNet's
    (BGR ``x / 256 - 0.5``, as CMU); fine-tuning absorbs it, as in the original training."""
    return load_reference_h5(model, path, strict=False, rename=VGG19_IMAGENET_NAMES, require=VGG19_IMAGENET_NAMES.values())


def load_reference_h5(model, path: str | Path, strict: bool = True, rename: dict | None = None,
                      require=None) -> list[str]:
    """Load a Keras 2 ``save_weights`` HDF5 (the reference's ``weights.0100.h5``) by layer name.

    Args:
        rename: ``{name in the file: name in the model}``; layers not in it keep their name
            (with ``rename`` given, only renamed layers are loaded).
        require: names that must be loaded (else :class:`DataError`).
    """
    import h5py
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: weights file not found")
    loaded = []
    try:
        f = h5py.File(path, "r")
    except OSError:
        raise DataError(f"{path}: not an HDF5 file") from None
    with f:
        root = f["model_weights"] if "model_weights" in f else f
        names = [n.decode() if isinstance(n, bytes) else n for n in root.attrs.get("layer_names", list(root.keys()))]
        for name in names:
            if rename is not None and name not in rename:
                continue
            g = root[name]
            wn = [n.decode() if isinstance(n, bytes) else n for n in g.attrs.get("weight_names", [])]
            if not wn:
                continue
            arrs = {w.split("/")[-1].split(":")[0]: np.asarray(g[w]) for w in wn}
            if "kernel" not in arrs:
                continue
            target = rename[name] if rename else name
            if _assign(model, target, arrs["kernel"], arrs.get("bias"), str(path)):
                loaded.append(target)
    _check_complete(model, loaded, path, strict)
    missing = [n for n in (require or []) if n not in loaded]
    if missing:
        raise DataError(f"{path}: no weights for {', '.join(missing)}")
    return loaded


def _check_complete(model, loaded, source, strict):
    convs = [layer.name for layer in model.layers if layer.get_weights()]
    missing = [n for n in convs if n not in loaded]
    if strict and missing:
        raise DataError(f"{source}: no weights for {len(missing)} layers of the network (first: {missing[0]})")
