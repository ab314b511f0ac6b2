"""CPM/PAF networks (Cao et al. 2017, Fig. 3) written with ``keras`` only.

Two families, both with the CMU convention: input ``(H, W, 3)`` float **BGR 0..255**, normalised in
the model as ``x / 256 - 0.5``; outputs per stage ``t`` = PAF ``(H/8, W/8, 38)`` ("L1") then heatmaps
``(H/8, W/8, 19)`` ("L2"), i.e. ``[stage1_L1, stage1_L2, ..., stageT_L1, stageT_L2]``.

* ``vgg19``: the CMU COCO model: VGG-19 ``conv1_1 ... conv4_2``, ``conv4_3_CPM`` (256),
  ``conv4_4_CPM`` (128); stage 1 = three 3x3x128, 1x1x512, 1x1 out per branch (``conv5_*_CPM_L{1,2}``);
  stages 2-6 = five 7x7x128, 1x1x128, 1x1 out per branch (``Mconv{1..7}_stage{t}_L{1,2}``) on
  ``concat(L1, L2, features)``. 52,311,446 parameters; layer names as in CMU's prototxt so weights
  load by name.
* ``lightweight``: Osokin's Lightweight OpenPose idea (arXiv 1811.12004): a MobileNet-V1 style
  depthwise-separable backbone to stride 8, a cheap CPM neck, an initial stage and refinement stages
  built from 1x1 + 3x3 + dilated 3x3 residual blocks. ``tiny`` is the same family narrowed for
  CPU training in minutes (quickstart, tests).
"""
from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import layers

from .skeleton import DEFAULT_SKELETON


@dataclass(frozen=True)
class ModelConfig:
    """Network hyper-parameters (see module doc).

    Attributes:
        family: ``vgg19`` (CMU) or ``mobilenet`` (lightweight family).
        stages: number of stages (1 initial + refinements).
        width: channel multiplier of the mobilenet backbone.
        channels: width of the neck and the stages (mobilenet).
        refine_blocks: residual blocks per refinement stage (mobilenet).
        num_heatmaps, num_pafs: output channels (19 and 38 for OpenPose COCO-18).
        weight_decay: L2 kernel regulariser (Keras semantics: adds ``wd * sum(w^2)``).
        norm: normalisation of the mobilenet family: ``group`` (GroupNorm, 8 groups: the same in
            training and inference, robust at the small batches of CPU training) or ``batch``.
    """

    family: str = "vgg19"
    stages: int = 6
    width: float = 1.0
    channels: int = 128
    refine_blocks: int = 5
    num_heatmaps: int = DEFAULT_SKELETON.num_heatmaps
    num_pafs: int = DEFAULT_SKELETON.num_pafs
    weight_decay: float = 5e-4
    norm: str = "group"


MODEL_CONFIGS = {
    "vgg19": ModelConfig("vgg19", stages=6),
    "lightweight": ModelConfig("mobilenet", stages=2, width=1.0, channels=128, refine_blocks=5),
    "tiny": ModelConfig("mobilenet", stages=2, width=0.5, channels=64, refine_blocks=2),
}

STRIDE = 8


def get_config(name_or_cfg) -> ModelConfig:
    """A :class:`ModelConfig` from a name in :data:`MODEL_CONFIGS`, a dict or a config."""
    from .errors import DataError
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
    group norm computes the same thing in training and inference."""
    if kind == "batch":
        return layers.BatchNormalization(name=name)
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


def build_model(config="vgg19", input_shape=(None, None, 3), name: str | None = None) -> keras.Model:
    """Build a CPM/PAF network.

    Args:
        config: a name of :data:`MODEL_CONFIGS` (``vgg19``, ``lightweight``, ``tiny``), a dict or a
            :class:`ModelConfig`.
        input_shape: ``(H, W, 3)``; ``None`` dims allowed (fully convolutional, stride 8).
    Returns:
        a functional ``keras.Model`` with input ``image`` (BGR 0..255) and ``2 x stages`` outputs
        (see module doc). Layers follow the global dtype policy (e.g. ``mixed_bfloat16``); the
        output convolutions compute in float32.
    Raises:
        DataError: unknown config name.
    """
    cfg = get_config(config)
    inp = keras.Input(input_shape, name="image")
    x = layers.Rescaling(1.0 / 256, offset=-0.5, name="normalize")(inp)
    outs = _vgg19_cmu(x, cfg) if cfg.family == "vgg19" else _mobilenet(x, cfg)
    model = keras.Model(inp, outs, name=name or f"openpose_{cfg.family}")
    model.openpose_config = cfg
    return model


def inference_model(model: keras.Model) -> keras.Model:
    """The last stage's ``[PAF, heatmaps]`` of a training model (shares its weights)."""
    return keras.Model(model.inputs, model.outputs[-2:], name=model.name + "_inference")
