"""CPM/PAF networks (Cao et al. 2017, Fig. 3) written with ``keras`` only.

Two families, both with the CMU convention: input ``(H, W, 3)`` float **BGR 0..255**, normalised in
the model as ``x / 256 - 0.5``; outputs per stage ``t`` = PAF ``(H/8, W/8, 2L)`` ("L1") then heatmaps
``(H/8, W/8, P + 1)`` ("L2"), i.e. ``[stage1_L1, stage1_L2, ..., stageT_L1, stageT_L2]``; 38 and 19
channels for OpenPose COCO-18, any skeleton's counts otherwise.

A network is a :class:`PoseNetwork`: a registered Keras model class whose config holds the network
hyper-parameters, the :class:`~keras_openpose.codec.PafCodec` (skeleton, stride, target widths,
decoder options), the precision and the input convention, so a saved ``.keras`` file is all a user
needs (:func:`load_network`).

* ``vgg19``: the CMU COCO model: VGG-19 ``conv1_1 ... conv4_2``, ``conv4_3_CPM`` (256),
  ``conv4_4_CPM`` (128); stage 1 = three 3x3x128, 1x1x512, 1x1 out per branch (``conv5_*_CPM_L{1,2}``);
  stages 2-6 = five 7x7x128, 1x1x128, 1x1 out per branch (``Mconv{1..7}_stage{t}_L{1,2}``) on
  ``concat(L1, L2, features)``. 52,311,446 parameters; layer names as in CMU's prototxt so weights
  load by name.
* ``lightweight``: Lightweight OpenPose (Osokin, arXiv 1811.12004) layer for layer, as trained on
  COCO and released by Intel's Open Model Zoo (``human-pose-estimation-0001``; the weights import
  exactly: :func:`keras_openpose.model.weights.load_openvino_ir`). MobileNet-v1 trunk ``conv1`` (3x3/2),
  ``conv2_1 ... conv5_5`` depthwise-separable (``<name>_dw`` 3x3 depthwise, ``<name>_sep`` 1x1),
  stride 8 after ``conv3_2``, ``conv5_1`` dilated 2, every layer with a bias (batch norm folded)
  and ReLU; the CPM block ``conv4_3_CPM_al`` (1x1) ``_red`` (1x1), three depthwise 3x3 + 1x1 pairs
  (``_dw1``, ``_dw1_1x1``, ...), ``_inc`` (1x1), all ELU, with the residual ``al + inc``, then
  ``conv4_4_CPM`` (3x3, ReLU); the initial stage: a shared trunk ``conv5_{1,2,3}_CPM_L1`` (3x3, 128)
  and per branch ``conv5_4_CPM_L{1,2}`` (1x1, 512) and ``conv5_5_CPM_L{1,2}`` (1x1 out); one
  refinement stage of 5 residual blocks ``Mconv{i}_stage2_L1_{sq,3x3,3x3_2}`` (1x1, 3x3, 3x3
  dilated 2; out = sq + 3x3_2) on ``concat(PAF, heatmaps, features)`` and per branch
  ``Mconv6_stage2_L{1,2}`` (1x1, 128), ``Mconv7_stage2_L{1,2}`` (1x1 out). The stride-2
  convolutions pad one pixel on every side (Caffe), not Keras ``same`` (which pads bottom/right
  only): the imported weights see the pixels they were trained on. 4,094,560 parameters for
  COCO-18 (the model card: 4.099 M). Its input normalisation is the IR's, ``(x - 128) / 255``
  (``input_scale``, ``input_offset``). No normalisation layer: it fine-tunes at any batch size.
* ``tiny``: the same idea narrowed for CPU training from scratch in minutes (tests): a
  MobileNet-v1 style trunk with group norm (which trains well at the small batches of a CPU), a
  CPM neck, and 1x1 + 3x3 + dilated 3x3 residual refinement blocks.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import keras
from keras import layers

from ..codec import DEFAULT_CODEC, PAD_VALUE, PafCodec
from ..errors import DataError
from ..files import atomic_path, copy_atomic, write_json_atomic


@dataclass(frozen=True)
class ModelConfig:
    """Network hyper-parameters (see module doc).

    Attributes:
        family: ``vgg19`` (CMU), ``lwop`` (Lightweight OpenPose, exact) or ``mobilenet`` (``tiny``).
        stages: number of stages (1 initial + refinements).
        width: channel multiplier of the mobilenet backbone.
        channels: width of the neck and the stages (mobilenet).
        refine_blocks: residual blocks per refinement stage (mobilenet).
        num_heatmaps, num_pafs: output channels (19 and 38 for OpenPose COCO-18); set from the
            codec by :class:`PoseNetwork`.
        weight_decay: L2 kernel regulariser (Keras semantics: adds ``wd * sum(w^2)``).
        norm: normalisation of the mobilenet family: ``group`` (GroupNorm, 8 groups: the same in
            training and inference, robust at the small batches of CPU training) or ``batch``
            (synchronized across replicas; folds into the convolutions at inference: 2-3x faster).
        input_scale, input_offset: the network's first operation, ``x * input_scale +
            input_offset`` on BGR 0..255 (CMU: ``1/256``, ``-0.5``; the imported Lightweight OpenPose:
            the IR's own constants, ``(x - 128) / 255`` in float16).
    """

    family: str = "vgg19"
    stages: int = 6
    width: float = 1.0
    channels: int = 128
    refine_blocks: int = 5
    num_heatmaps: int = DEFAULT_CODEC.num_heatmaps
    num_pafs: int = DEFAULT_CODEC.num_pafs
    weight_decay: float = 5e-4
    norm: str = "group"
    input_scale: float = 1.0 / 256
    input_offset: float = -0.5


#: Lightweight OpenPose's normalisation as its IR stores it (float16 of 1/255 and -128/255).
LWOP_INPUT_SCALE, LWOP_INPUT_OFFSET = 0.0039215087890625, -0.501953125

MODEL_CONFIGS = {
    "vgg19": ModelConfig("vgg19", stages=6),
    "lightweight": ModelConfig("lwop", stages=2, channels=128, refine_blocks=5, norm="none",
                               input_scale=LWOP_INPUT_SCALE, input_offset=LWOP_INPUT_OFFSET),
    "tiny": ModelConfig("mobilenet", stages=2, width=0.5, channels=64, refine_blocks=2),
}

#: Both families down-sample three times by 2: their maps are at stride 8 (the codec's stride must match).
NETWORK_STRIDE = 2 ** 3



def input_convention(cfg: "ModelConfig") -> dict:
    """How images enter a network (stored in each saved model's description): BGR 0..255, the
    network's own normalisation inside it, grey padding bottom/right to the stride."""
    return {"channels": "BGR", "range": [0, 255],
            "normalisation": f"x * {cfg.input_scale!r} + {cfg.input_offset!r}, inside the network",
            "pad_value": PAD_VALUE, "pad": "bottom/right to a multiple of the stride"}


#: The CMU convention (vgg19, tiny).
INPUT_CONVENTION = input_convention(ModelConfig())


def get_config(name_or_cfg) -> ModelConfig:
    """A :class:`ModelConfig` from a name in :data:`MODEL_CONFIGS`, a dict or a config."""
    if isinstance(name_or_cfg, ModelConfig):
        return name_or_cfg
    if isinstance(name_or_cfg, dict):
        return ModelConfig(**name_or_cfg)
    try:
        return MODEL_CONFIGS[name_or_cfg]
    except KeyError:
        raise DataError(f"--config {name_or_cfg!r}: unknown network; known: {', '.join(MODEL_CONFIGS)}") from None


def _conv_base(x, filters, k, name, wd, relu=True, dilation=1, dtype=None, init=None):
    init = init or keras.initializers.RandomNormal(stddev=0.01)
    x = layers.Conv2D(filters, k, padding="same", name=name, dilation_rate=dilation,
                      kernel_initializer=init, bias_initializer="zeros",
                      kernel_regularizer=keras.regularizers.L2(wd) if wd else None, dtype=dtype)(x)
    return layers.ReLU(name=name + "_relu")(x) if relu else x


def _vgg19_cmu(x, cfg: ModelConfig):
    wd = cfg.weight_decay
    _conv = _conv_base
    blocks = [(1, 2, 64), (2, 2, 128), (3, 4, 256), (4, 2, 512)]
    for b, n, f in blocks:
        for i in range(1, n + 1):
            x = _conv(x, f, 3, f"conv{b}_{i}", wd)
        if b < 4:
            x = layers.MaxPooling2D(2, 2, name=f"pool{b}_stage1")(x)
    x = _conv(x, 256, 3, "conv4_3_CPM", wd)
    features = _conv(x, 128, 3, "conv4_4_CPM", wd)
    outs = []
    out_ch = {1: cfg.num_pafs, 2: cfg.num_heatmaps}
    prev = None
    for t in range(1, cfg.stages + 1):
        if t == 1:
            inp = features
        else:
            inp = layers.Concatenate(name=f"concat_stage{t}")([prev[0], prev[1], features])
        stage = []
        for br in (1, 2):
            y = inp
            if t == 1:
                for i in range(1, 4):
                    y = _conv(y, 128, 3, f"conv5_{i}_CPM_L{br}", wd)
                y = _conv(y, 512, 1, f"conv5_4_CPM_L{br}", wd)
                y = _conv(y, out_ch[br], 1, f"conv5_5_CPM_L{br}", wd, relu=False, dtype="float32")
            else:
                for i in range(1, 6):
                    y = _conv(y, 128, 7, f"Mconv{i}_stage{t}_L{br}", wd)
                y = _conv(y, 128, 1, f"Mconv6_stage{t}_L{br}", wd)
                y = _conv(y, out_ch[br], 1, f"Mconv7_stage{t}_L{br}", wd, relu=False, dtype="float32")
            stage.append(y)
        outs += stage
        prev = stage
    return outs


def _norm(kind: str, channels: int, name: str):
    """GroupNorm (8 groups or fewer) or BatchNorm. With batch norm, a small network trained on a
    few images at small batches learns to rely on batch statistics that its moving averages do
    not match at inference (measured here: inference outputs off by the outputs' own scale);
    group norm computes the same thing in training and inference. Batch norm is ``synchronized``:
    under a ``tf.distribute`` strategy its batch statistics are those of the global batch (one
    all-reduce per layer), so R replicas match one process; without a strategy it is plain."""
    if kind == "batch":
        return layers.BatchNormalization(name=name, synchronized=True)
    import math
    return layers.GroupNormalization(groups=math.gcd(8, channels), name=name)


def _dw(x, filters, stride, name, wd, dilation=1, norm="group"):
    x = layers.DepthwiseConv2D(3, stride, padding="same", dilation_rate=dilation, use_bias=False,
                               name=name + "_dw")(x)
    x = _norm(norm, x.shape[-1], name + "_dw_bn")(x)
    x = layers.ReLU(name=name + "_dw_relu")(x)
    x = layers.Conv2D(filters, 1, use_bias=False, name=name + "_pw",
                      kernel_regularizer=keras.regularizers.L2(wd) if wd else None)(x)
    x = _norm(norm, filters, name + "_pw_bn")(x)
    return layers.ReLU(name=name + "_pw_relu")(x)


def _mobilenet(x, cfg: ModelConfig):
    wd, w, C = cfg.weight_decay, cfg.width, cfg.channels

    def _conv(x, filters, k, name, wd, relu=True, dilation=1, dtype=None):
        # Hidden layers: conv + normalisation + ReLU (He init), as Lightweight OpenPose's refinement
        # blocks; without normalisation a stack trained from scratch sits on the loss plateau.
        # Output layers: plain conv, N(0, 0.01) as CMU, so training starts near the zero map.
        if not relu:
            return _conv_base(x, filters, k, name, wd, relu=False, dilation=dilation, dtype=dtype)
        x = layers.Conv2D(filters, k, padding="same", dilation_rate=dilation, use_bias=False, name=name,
                          kernel_initializer="he_normal",
                          kernel_regularizer=keras.regularizers.L2(wd) if wd else None)(x)
        x = _norm(cfg.norm, filters, name + "_bn")(x)
        return layers.ReLU(name=name + "_relu")(x)

    def ch(n):
        return max(8, int(n * w))

    x = layers.Conv2D(ch(32), 3, 2, padding="same", use_bias=False, name="conv1")(x)
    x = _norm(cfg.norm, ch(32), "conv1_bn")(x)
    x = layers.ReLU(name="conv1_relu")(x)
    spec = [(64, 1, 1), (128, 2, 1), (128, 1, 1), (256, 2, 1), (256, 1, 1), (512, 1, 1), (512, 1, 2),
            (512, 1, 1)]
    for i, (f, s, d) in enumerate(spec, 2):
        x = _dw(x, ch(f), s, f"conv{i}", wd, d, cfg.norm)
    # CPM neck (LWOP "Cpm"): 1x1 to C, three dw-separable convs with a residual, 3x3 conv
    a = _conv(x, C, 1, "cpm_align", wd)
    y = a
    for i in range(3):
        y = _dw(y, C, 1, f"cpm_trunk{i}", wd, norm=cfg.norm)
    features = _conv(layers.Add(name="cpm_add")([a, y]), C, 3, "cpm_out", wd)

    def heads(y, t):
        p = _conv(_conv(y, 4 * C if t == 1 else C, 1, f"stage{t}_paf_pre", wd), cfg.num_pafs, 1,
                  f"stage{t}_paf", wd, relu=False, dtype="float32")
        h = _conv(_conv(y, 4 * C if t == 1 else C, 1, f"stage{t}_heat_pre", wd), cfg.num_heatmaps, 1,
                  f"stage{t}_heat", wd, relu=False, dtype="float32")
        return [p, h]

    y = features
    for i in range(3):
        y = _conv(y, C, 3, f"stage1_trunk{i}", wd)
    outs = heads(y, 1)
    for t in range(2, cfg.stages + 1):
        y = layers.Concatenate(name=f"concat_stage{t}")([features, outs[-1], outs[-2]])
        for b in range(cfg.refine_blocks):
            r = _conv(y, C, 1, f"stage{t}_block{b}_in", wd)
            z = _conv(r, C, 3, f"stage{t}_block{b}_c1", wd)
            z = _conv(z, C, 3, f"stage{t}_block{b}_c2", wd, dilation=2)
            y = layers.Add(name=f"stage{t}_block{b}_add")([r, z])
        outs += heads(y, t)
    return outs


def _lwop(x, cfg: ModelConfig):
    """Lightweight OpenPose, layer for layer (module doc); layer names are the IR's with ``/`` -> ``_``."""
    wd, C = cfg.weight_decay, cfg.channels

    def conv(x, filters, k, name, act="relu", stride=1, dilation=1, depthwise=False, dtype=None):
        padding = "same"
        if stride > 1:      # Caffe pads (k - 1) / 2 on every side; Keras "same" would pad bottom/right only
            x = layers.ZeroPadding2D((k - 1) // 2, name=name + "_pad")(x)
            padding = "valid"
        reg = keras.regularizers.L2(wd) if wd else None
        if depthwise:
            x = layers.DepthwiseConv2D(k, stride, padding=padding, dilation_rate=dilation, name=name,
                                       depthwise_regularizer=reg)(x)
        else:
            x = layers.Conv2D(filters, k, stride, padding=padding, dilation_rate=dilation, name=name,
                              kernel_initializer="he_normal" if act else keras.initializers.RandomNormal(stddev=0.01),
                              kernel_regularizer=reg, dtype=dtype)(x)
        if act == "relu":
            return layers.ReLU(name=name + "_relu")(x)
        if act == "elu":
            return layers.ELU(name=name + "_elu")(x)
        return x

    x = conv(x, 32, 3, "conv1", stride=2)
    trunk = [("conv2_1", 64, 1, 1), ("conv2_2", 128, 2, 1), ("conv3_1", 128, 1, 1), ("conv3_2", 256, 2, 1),
             ("conv4_1", 256, 1, 1), ("conv4_2", 512, 1, 1), ("conv5_1", 512, 1, 2), ("conv5_2", 512, 1, 1),
             ("conv5_3", 512, 1, 1), ("conv5_4", 512, 1, 1), ("conv5_5", 512, 1, 1)]
    for name, f, s, d in trunk:
        x = conv(x, None, 3, name + "_dw", stride=s, dilation=d, depthwise=True)
        x = conv(x, f, 1, name + "_sep")
    al = conv(x, C, 1, "conv4_3_CPM_al", "elu")
    y = conv(al, C, 1, "conv4_3_CPM_red", "elu")
    for i in (1, 2, 3):
        y = conv(y, None, 3, f"conv4_3_CPM_dw{i}", "elu", depthwise=True)
        y = conv(y, C, 1, f"conv4_3_CPM_dw{i}_1x1" if i < 3 else "conv4_3_CPM_inc", "elu")
    features = conv(layers.Add(name="conv4_3_CPM_res")([al, y]), C, 3, "conv4_4_CPM")

    y = features
    for i in (1, 2, 3):
        y = conv(y, C, 3, f"conv5_{i}_CPM_L1")
    out_ch = {1: cfg.num_pafs, 2: cfg.num_heatmaps}
    outs = [conv(conv(y, 4 * C, 1, f"conv5_4_CPM_L{b}"), out_ch[b], 1, f"conv5_5_CPM_L{b}", None, dtype="float32")
            for b in (1, 2)]
    for t in range(2, cfg.stages + 1):
        y = layers.Concatenate(name=f"concat_stage{t}")([outs[-2], outs[-1], features])
        for b in range(1, cfg.refine_blocks + 1):
            sq = conv(y, C, 1, f"Mconv{b}_stage{t}_L1_sq")
            z = conv(sq, C, 3, f"Mconv{b}_stage{t}_L1_3x3")
            z = conv(z, C, 3, f"Mconv{b}_stage{t}_L1_3x3_2", dilation=2)
            y = layers.Add(name=f"Mconv{b}_stage{t}_L1_5x5_res")([sq, z])
        k = cfg.refine_blocks + 1
        outs += [conv(conv(y, C, 1, f"Mconv{k}_stage{t}_L{b}"), out_ch[b], 1, f"Mconv{k + 1}_stage{t}_L{b}", None,
                      dtype="float32") for b in (1, 2)]
    return outs


@keras.saving.register_keras_serializable(package="keras_openpose")
class PoseNetwork(keras.Model):
    """A CPM/PAF network that describes itself (see module doc).

    Args:
        network: a name of :data:`MODEL_CONFIGS` (``vgg19``, ``lightweight``, ``tiny``), a dict or a
            :class:`ModelConfig`; its output channel counts are taken from the codec.
        codec: :class:`~keras_openpose.codec.PafCodec` or its ``to_dict()`` (default OpenPose COCO-18).
        precision: dtype policy of the hidden layers (``float32``, ``mixed_bfloat16``,
            ``mixed_float16``); default the global policy. Output convolutions compute in float32.
        domain: the expert's domain (``normal``, ``dark``, ``motion_blur``).
        info: free JSON-able facts (training steps, run folder).
    Raises:
        DataError: unknown network, or a codec whose stride is not the network's (8).
    """

    def __init__(self, network="vgg19", codec=None, precision: str | None = None, domain: str = "normal",
                 info: dict | None = None, name: str | None = None, **kwargs):
        kwargs.pop("input", None)       # the input convention is fixed; stored for readers only
        codec = codec if isinstance(codec, PafCodec) else (
            DEFAULT_CODEC if codec is None else PafCodec.from_dict(codec, "model description"))
        if codec.stride != NETWORK_STRIDE:
            raise DataError(f"codec stride {codec.stride}: the networks output maps at stride {NETWORK_STRIDE}")
        cfg = dataclasses.replace(get_config(network), num_heatmaps=codec.num_heatmaps, num_pafs=codec.num_pafs)
        precision = precision or keras.config.dtype_policy().name
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(precision)
        try:
            inp = keras.Input((None, None, 3), name="image")
            x = layers.Rescaling(cfg.input_scale, offset=cfg.input_offset, name="normalize")(inp)
            builders = {"vgg19": _vgg19_cmu, "lwop": _lwop, "mobilenet": _mobilenet}
            if cfg.family not in builders:
                raise DataError(f"network family {cfg.family!r}: known {', '.join(builders)}")
            outs = builders[cfg.family](x, cfg)
            super().__init__(inp, outs, name=name or f"openpose_{cfg.family}", **kwargs)
        finally:
            keras.config.set_dtype_policy(previous)
        self.network_config, self.codec, self.precision = cfg, codec, precision
        self.domain, self.info = domain, dict(info or {})

    @property
    def stages(self) -> int:
        return len(self.outputs) // 2

    def get_config(self) -> dict:
        return {"name": self.name, "network": dataclasses.asdict(self.network_config),
                "codec": self.codec.to_dict(), "precision": self.precision, "domain": self.domain,
                "info": self.info, "input": input_convention(self.network_config)}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def describe(self) -> dict:
        """The description saved in the file (JSON-able)."""
        return self.get_config()


def build_model(config="vgg19", codec: PafCodec | None = None, precision: str | None = None,
                domain: str = "normal", name: str | None = None) -> PoseNetwork:
    """Build a CPM/PAF network (:class:`PoseNetwork`).

    Args:
        config: a name of :data:`MODEL_CONFIGS` (``vgg19``, ``lightweight``, ``tiny``), a dict or a
            :class:`ModelConfig`.
        codec: the maps' codec (default: OpenPose COCO-18, 19 heatmaps, 38 PAFs).
        precision: dtype policy of the hidden layers (default: the global policy).
    Returns:
        a fully convolutional model: input ``image (B, H, W, 3)`` BGR 0..255, ``2 x stages``
        outputs (module doc) at stride 8.
    Raises:
        DataError: unknown config name.
    """
    return PoseNetwork(config, codec, precision, domain, name=name)


def with_precision(model: PoseNetwork, precision: str, name: str | None = None) -> PoseNetwork:
    """The same network (config, codec, domain, info) and weights in the dtype policy ``precision``
    (and named ``name``, if given): a new model; ``model`` is unchanged. Weights are cast to the new
    variables' dtype (under ``mixed_*`` policies variables stay float32)."""
    twin = PoseNetwork.from_config({**model.get_config(), "precision": precision, **({"name": name} if name else {})})
    twin.set_weights(model.get_weights())
    return twin


def for_this_machine(model: keras.Model) -> keras.Model:
    """``model`` itself, or, for a :class:`PoseNetwork` saved in a bfloat16 policy on a CPU without
    native bfloat16 (:func:`keras_openpose.model.precision.runnable_precision`), its
    :func:`with_precision` twin in ``float32``: the same maps to bfloat16 rounding, ~10x faster there.
    """
    from .precision import runnable_precision
    if not isinstance(model, PoseNetwork):
        return model
    target = runnable_precision(model.precision)
    return model if target == model.precision else with_precision(model, target)


def inference_model(model: keras.Model) -> keras.Model:
    """The last stage's ``[PAF, heatmaps]`` of a training model (shares its weights)."""
    return keras.Model(model.inputs, model.outputs[-2:], name=model.name + "_inference")


def save_model_atomic(model: keras.Model, path: str | Path) -> Path:
    """``model.save`` to a temporary file in the same folder, then rename: never a half-written model."""
    with atomic_path(path) as tmp:
        model.save(tmp)
    return Path(path)


def load_network(path: str | Path, compile: bool = False) -> keras.Model:
    """Load a saved network (``.keras``, or a run folder holding ``model.keras``).

    Returns:
        the model; a :class:`PoseNetwork` carries its codec (``model.codec``); files saved as plain
        functional models (older versions) get :func:`network_codec`'s default.
    Raises:
        DataError: missing file, or not a Keras model file (naming the file).
    """
    from . import losses  # noqa: F401  (registers MaskedL2 / MultiplierSGD for checkpoints)
    path = Path(path)
    if path.is_dir():
        path = path / "model.keras"
    if not path.is_file():
        raise DataError(f"{path}: model weights not found")
    try:
        return keras.saving.load_model(path, compile=compile)
    except Exception as e:  # keras raises many types for a bad archive
        raise DataError(f"{path}: not a Keras model file ({type(e).__name__}: {str(e).splitlines()[0][:120]})") from None


def network_codec(model) -> PafCodec:
    """The codec of a loaded network: its own, or OpenPose COCO-18 for a plain functional model
    with 38 + 19 output channels.

    Raises:
        DataError: a plain model with other channel counts (nothing says which skeleton it has).
    """
    codec = getattr(model, "codec", None)
    if isinstance(codec, PafCodec):
        return codec
    paf, heat = model.outputs[-2].shape[-1], model.outputs[-1].shape[-1]
    if (paf, heat) != (DEFAULT_CODEC.num_pafs, DEFAULT_CODEC.num_heatmaps):
        raise DataError(f"model {model.name}: {heat} heatmaps and {paf // 2} limbs but no saved skeleton "
                        "(re-save it with keras_openpose to describe it)")
    return DEFAULT_CODEC


def expert_path(models_dir: str | Path, domain: str) -> Path:
    """Where the expert of ``domain`` is published: ``<models_dir>/pose_<domain>.keras``."""
    return Path(models_dir) / f"pose_{domain}.keras"


def publish_model(model_path: str | Path, models_dir: str | Path, domain: str, extra: dict | None = None) -> Path:
    """Copy a trained model to :func:`expert_path` atomically and record it in
    ``<models_dir>/manifest.json`` (``{"pose_<domain>": {"file", ...extra}}``). Returns the path."""
    models_dir = Path(models_dir)
    dst = copy_atomic(model_path, expert_path(models_dir, domain))
    man_path = models_dir / "manifest.json"
    man = json.loads(man_path.read_text()) if man_path.exists() else {}
    man[f"pose_{domain}"] = {"file": dst.name, **(extra or {})}
    write_json_atomic(man, man_path)
    return dst
