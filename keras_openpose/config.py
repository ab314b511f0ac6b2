"""All configuration in one place: dataclasses with the paper's / reference's defaults, loadable
from a small YAML file per experiment (``configs/*.yaml``) and saved with every run."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from .errors import DataError


@dataclass
class AugmentConfig:
    """One affine warp per sample (reference §5.2, with scale augmentation really applied).

    Attributes:
        crop: output size in input pixels (368 in the paper).
        stride: network stride (map cells = crop / stride).
        target_dist: main person's bbox height as a fraction of the crop, before ``scale`` jitter.
        scale_min, scale_max: uniform scale jitter.
        max_rotation: degrees, uniform in ``[-max, max]``.
        centre_jitter: pixels of the source image, uniform in ``[-j, j]`` on x and y.
        flip_prob: probability of a horizontal flip (left/right parts swapped).
        sigma: heatmap Gaussian sigma, input pixels.
        limb_width: PAF band half-width, input pixels.
        randomize_effect: draw the domain strength from a range (else the reference's fixed one).
        enabled: random warps; when False every sample is the identity warp centred on its main
            person (validation, and the overfitting check of the training path).
    """

    crop: int = 368
    stride: int = 8
    target_dist: float = 0.6
    scale_min: float = 0.5
    scale_max: float = 1.1
    max_rotation: float = 40.0
    centre_jitter: float = 40.0
    flip_prob: float = 0.5
    sigma: float = 7.0
    limb_width: float = 8.0
    randomize_effect: bool = True
    enabled: bool = True


@dataclass
class TrainConfig:
    """A training run of one expert.

    Attributes:
        model: network config name (:data:`keras_openpose.model.MODEL_CONFIGS`).
        effect: domain of the expert (``normal``, ``dark``, ``motion_blur``).
        batch_size, steps, steps_per_epoch: the schedule (an "epoch" is a checkpoint interval).
        optimizer: ``adam``, ``sgd`` (momentum 0.9) or ``sgd_cmu`` (momentum 0.9 with CMU's per-layer
            learning-rate multipliers x1/x2 backbone and stage 1, x4/x8 later stages).
        learning_rate: base rate; multiplied by ``lr_gamma`` every ``lr_step`` steps.
        weight_decay: L2 on kernels (paper: 5e-4).
        precision: Keras dtype policy (``mixed_bfloat16`` on CPU, ``mixed_float16`` on GPU, ``float32``).
        seed: seeds the sample order, augmentation and initialisation.
        workers: parallel calls of the tf.data map (0 = autotune).
        distribute: ``none`` or ``mirrored`` (several GPUs / logical devices).
        xla: compile the train step with XLA (faster on GPUs; about 2x slower on this CPU).
    """

    model: str = "vgg19"
    effect: str = "normal"
    batch_size: int = 10
    steps: int = 100_000
    steps_per_epoch: int = 1000
    optimizer: str = "adam"
    learning_rate: float = 2e-5
    lr_step: int = 136_106
    lr_gamma: float = 0.333
    weight_decay: float = 5e-4
    precision: str = "mixed_bfloat16"
    seed: int = 0
    workers: int = 0
    distribute: str = "none"
    xla: bool = False
    augment: AugmentConfig = field(default_factory=AugmentConfig)


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def from_dict(cls, data: dict, source: str = "config"):
    """Build dataclass ``cls`` from a dict, recursing into nested dataclasses; unknown keys raise
    :class:`DataError` naming them."""
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(names)
    if unknown:
        raise DataError(f"{source}: unknown {cls.__name__} keys: {', '.join(sorted(unknown))}")
    kwargs = {}
    for k, v in data.items():
        sub = names[k].default_factory if names[k].default_factory is not dataclasses.MISSING else None
        if sub is not None and dataclasses.is_dataclass(sub) and isinstance(v, dict):
            kwargs[k] = from_dict(sub, v, f"{source}:{k}")
        else:
            kwargs[k] = v
    return cls(**kwargs)


def load_yaml(path: str | Path) -> dict:
    import yaml
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise DataError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a mapping at the top level")
    return data


def save_yaml(data: dict, path: str | Path) -> None:
    import os

    import yaml
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(data, sort_keys=False))
    os.replace(tmp, path)
