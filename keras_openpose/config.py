"""The experiment, typed: one :class:`ExperimentConfig` (data, skeleton, network, codec and decoder,
training, fine-tuning, classifier, inference) per experiment, read from one YAML file
(``configs/*.yaml``), overridden by command-line flags, and saved with every run.

Every section is a dataclass whose defaults are the paper's / reference's settings. Unknown keys
raise :class:`DataError` naming the key and the file. The stride, heatmap sigma and PAF width are
the codec's (:mod:`keras_openpose.codec`), the decoder thresholds are :class:`DecodeOptions`: they
are not re-declared here.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from .codec import DEFAULT_LIMB_WIDTH, DEFAULT_SIGMA, DEFAULT_STRIDE, DecodeOptions, PafCodec
from .errors import DataError

#: The repository root (defaults of the scripts: ``dataset/``, ``models/``, ``eval/results``).
PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class DataConfig:
    """Where the data is. A COCO root holds ``annotations/person_keypoints_<split>.json`` and
    ``<split>/``; any other COCO-format set is named by its annotation file and image folder.

    Attributes:
        coco_root: the root folder (relative paths are relative to the project root).
        train_split, test_split: split names.
        train_annotations, train_images, test_annotations, test_images: explicit files/folders
            (override the root's layout; e.g. ``hands/test_onehand10k.json`` and ``hands/``).
        test_domains: test domains built from the test split (``normal``, ``dark``, ``motion_blur``,
            ``resolution``).
    """

    coco_root: str = "dataset"
    train_split: str = "train2014"
    test_split: str = "val2014"
    train_annotations: str | None = None
    train_images: str | None = None
    test_annotations: str | None = None
    test_images: str | None = None
    test_domains: list = field(default_factory=lambda: ["normal", "dark", "motion_blur", "resolution"])


@dataclass
class CodecConfig:
    """Map settings of :class:`~keras_openpose.codec.PafCodec` (input pixels)."""

    stride: int = DEFAULT_STRIDE
    sigma: float = DEFAULT_SIGMA
    limb_width: float = DEFAULT_LIMB_WIDTH


@dataclass
class AugmentConfig:
    """One affine warp per sample (Cao et al. 2017 §4 / the reference's data generator, with scale
    augmentation really applied).

    Attributes:
        crop: output size in input pixels (368 in the paper).
        target_dist: main person's bbox height as a fraction of the crop, before ``scale`` jitter.
        scale_min, scale_max: uniform scale jitter.
        max_rotation: degrees, uniform in ``[-max, max]``.
        centre_jitter: pixels of the source image, uniform in ``[-j, j]`` on x and y.
        flip_prob: probability of a horizontal flip (the skeleton's left/right parts swapped).
        randomize_effect: draw the domain strength from a range (else the reference's fixed one).
        enabled: random warps; when False every sample is the identity warp centred on its main
            person (validation, and the overfitting check of the training path).
    """

    crop: int = 368
    target_dist: float = 0.6
    scale_min: float = 0.5
    scale_max: float = 1.1
    max_rotation: float = 40.0
    centre_jitter: float = 40.0
    flip_prob: float = 0.5
    randomize_effect: bool = True
    enabled: bool = True


@dataclass
class TrainConfig:
    """A training run of one expert.

    Attributes:
        effect: domain of the expert (``normal``, ``dark``, ``motion_blur``).
        batch_size, steps, steps_per_epoch: the schedule (an "epoch" is a checkpoint interval).
        optimizer: ``adam``, ``sgd`` (momentum 0.9) or ``sgd_cmu`` (momentum 0.9 with CMU's per-layer
            learning-rate multipliers x1/x2 backbone and stage 1, x4/x8 later stages).
        learning_rate: base rate; multiplied by ``lr_gamma`` every ``lr_step`` steps.
        weight_decay: L2 on kernels (paper: 5e-4).
        precision: Keras dtype policy (``mixed_bfloat16`` on CPU, ``mixed_float16`` on GPU, ``float32``).
        seed: seeds the sample order, augmentation and initialisation.
        workers: parallel calls of the tf.data map (0 = autotune).
        distribute: ``none``, ``mirrored`` (the GPUs / logical devices of one machine) or
            ``multiworker`` (the machines of ``TF_CONFIG``); ``batch_size`` is then the global batch.
        worker_timeout: seconds a distributed run waits for a peer (start-up and every collective)
            before it stops with an error naming the missing worker.
        xla: compile the train step with XLA (faster on GPUs; about 2x slower on this CPU).
    """

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
    worker_timeout: float = 300.0
    xla: bool = False
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass
class FinetuneConfig:
    """The dark and motion-blur experts, fine-tuned from the normal one (``None`` = as ``train``)."""

    steps: int | None = None
    learning_rate: float | None = None


@dataclass
class ClassifierConfig:
    """The domain classifier (:func:`keras_openpose.classifier.train_classifier`)."""

    epochs: int = 10
    val_fraction: float = 0.2
    dark_lights: float = 0.0
    seed: int = 0


@dataclass
class InferenceOptions:
    """How an image is fed to the network (CMU's convention).

    Attributes:
        box_size: the image is resized so its height is ``box_size x scale`` input pixels (368).
        scales: multiples of the box; maps are averaged over them.
        flip: also run the mirrored image and average (left/right channels swapped by the codec).
        max_side: the longest side of the network input, pixels: an image whose resize would exceed
            it (a panorama, a 10000x10 strip) is resized further so that it fits (its people get
            smaller) instead of filling memory.
    """

    box_size: int = 368
    scales: tuple = (1.0,)
    flip: bool = False
    max_side: int = 2048

    def __post_init__(self):
        self.scales = tuple(float(s) for s in self.scales)
        if not self.scales or any(not (0 < s <= 8) for s in self.scales):
            raise DataError(f"scales {self.scales}: each must be in (0, 8]")
        if not 16 <= int(self.box_size) <= 4096:
            raise DataError(f"box size {self.box_size}: must be in [16, 4096] pixels")
        if not 64 <= int(self.max_side) <= 16384:
            raise DataError(f"max side {self.max_side}: must be in [64, 16384] pixels")


@dataclass
class ExperimentConfig:
    """One experiment (see module doc).

    Attributes:
        skeleton: ``auto`` (OpenPose COCO-18 for COCO person keypoints, a shipped skeleton with the
            data's keypoint names, else the dataset's own skeleton), ``dataset`` (the annotation file's category, connected if needed), a shipped
            name (``openpose_coco18``, ``coco17``, ``hand21``, ``aic14``, ``ap10k17``) or a YAML file.
        model: network: ``vgg19`` (CMU), ``lightweight`` or ``tiny``.
    """

    data: DataConfig = field(default_factory=DataConfig)
    skeleton: str = "auto"
    model: str = "vgg19"
    codec: CodecConfig = field(default_factory=CodecConfig)
    decode: DecodeOptions = field(default_factory=DecodeOptions)
    train: TrainConfig = field(default_factory=TrainConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    inference: InferenceOptions = field(default_factory=InferenceOptions)

    def make_codec(self, skeleton) -> PafCodec:
        """The codec of this experiment for a resolved :class:`~keras_openpose.skeleton.Skeleton`."""
        return PafCodec(skeleton, self.codec.stride, self.codec.sigma, self.codec.limb_width, self.decode)

    @classmethod
    def from_yaml(cls, path: str | Path | None) -> "ExperimentConfig":
        """Read an experiment file (``None``: the defaults)."""
        if path is None:
            return cls()
        return from_dict(cls, load_yaml(path), str(path))

    def to_yaml(self, path: str | Path) -> Path:
        save_yaml(to_dict(self), path)
        return Path(path)


def resolve_skeleton(spec: str, coco_data: dict | None = None, source: str = "dataset"):
    """The :class:`~keras_openpose.skeleton.Skeleton` named by ``spec`` (see
    :attr:`ExperimentConfig.skeleton`) for a COCO annotation dict ``coco_data``.

    Raises:
        DataError: unknown name, a skeleton whose keypoint count differs from the data's, or
            ``dataset`` without a category with keypoint names.
    """
    from .skeleton import DEFAULT_SKELETON, Skeleton, find_shipped, get_skeleton
    category = None
    if coco_data is not None:
        category = next((c for c in coco_data.get("categories", []) if c.get("keypoints")), None)
    if spec in ("auto", "dataset"):
        if category is None:
            if spec == "dataset":
                raise DataError(f"{source}: --skeleton dataset needs a category with 'keypoints' names")
            return DEFAULT_SKELETON
        if spec == "auto":
            shipped = find_shipped(category["keypoints"])
            if shipped is not None:
                return shipped
        sigmas = category.get("oks_sigmas")
        return Skeleton.from_coco(category, sigmas=sigmas, annotations=coco_data.get("annotations"),
                                  name=str(category.get("supercategory") or category.get("name", "dataset")))
    skeleton = get_skeleton(spec)
    if category is not None and len(category["keypoints"]) != skeleton.num_keypoints:
        raise DataError(f"{source}: skeleton {skeleton.name!r} has {skeleton.num_keypoints} keypoints, the data "
                        f"{len(category['keypoints'])} ({category.get('name')}); use --skeleton auto")
    return skeleton


def to_dict(cfg) -> dict:
    d = dataclasses.asdict(cfg)
    if isinstance(cfg, ExperimentConfig):
        d["inference"]["scales"] = list(cfg.inference.scales)
    return d


def from_dict(cls, data: dict, source: str = "config"):
    """Build dataclass ``cls`` from a dict, recursing into nested dataclasses; unknown keys raise
    :class:`DataError` naming them and ``source``."""
    if not isinstance(data, dict):
        raise DataError(f"{source}: expected a mapping for {cls.__name__}, got {type(data).__name__}")
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(names)
    if unknown:
        raise DataError(f"{source}: unknown {cls.__name__} keys: {', '.join(sorted(unknown))} "
                        f"(known: {', '.join(names)})")
    kwargs = {}
    for k, v in data.items():
        sub = names[k].default_factory if names[k].default_factory is not dataclasses.MISSING else None
        if sub is not None and dataclasses.is_dataclass(sub) and isinstance(v, dict):
            kwargs[k] = from_dict(sub, v, f"{source}:{k}")
        elif sub is not None and dataclasses.is_dataclass(sub) and v is not None:
            raise DataError(f"{source}: {k} must be a mapping, got {v!r}")
        else:
            kwargs[k] = v
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise DataError(f"{source}: {e}") from None


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
    import yaml

    from .files import atomic_write
    with atomic_write(path, "w") as f:
        yaml.safe_dump(data, f, sort_keys=False)
