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

#: Every image domain a test set or an expert can have (effects: :mod:`keras_openpose.data.domains`).
DOMAINS = ("normal", "dark", "low_light", "motion_blur", "resolution")
#: The trained experts and the classifier's classes, in the reference's index order.
EXPERT_DOMAINS = ("normal", "dark", "motion_blur")
#: The Keras dtype policies a network trains in; ``auto`` picks this machine's fastest
#: (:func:`keras_openpose.model.precision.resolve_precision`).
PRECISIONS = ("auto", "mixed_bfloat16", "mixed_float16", "float32", "bfloat16")

#: The repository root (defaults of the scripts: ``dataset/``, ``models/``, ``eval/results``).
PROJECT_ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------------------------------
# The one rule of every value: a YAML value, a command-line flag and a value set in code are all
# checked by the same :class:`Rule` (type, range or choices, help).
# ---------------------------------------------------------------------------------------------

_TRUE, _FALSE = ("true", "t", "yes", "y", "1", "on"), ("false", "f", "no", "n", "0", "off")


class ConfigValueError(DataError):
    """A configuration value breaks its :class:`Rule`; ``key``, ``value`` and ``rule`` (the
    rule's description) name the problem, :func:`from_dict` adds the file."""

    def __init__(self, key: str, value, rule: str):
        self.key, self.value, self.rule = key, value, rule
        super().__init__(f"{key} = {value!r}: must be {rule}")


def _num(x) -> str:
    """A bound as a user reads it: ``4294967295``, ``0.5``, ``1e-06``."""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


@dataclass(frozen=True)
class Rule:
    """Type and range of one configuration value, shared by the experiment YAML
    (:func:`from_dict`), the command-line flags (:meth:`flag`) and assignments in code.

    Attributes:
        kind: ``int``, ``float``, ``bool``, ``str`` or ``list`` (``items`` = each item's rule).
        low, high: inclusive bounds (``low_open``: ``low`` excluded); numbers must be finite.
        choices: the allowed values (strings).
        optional: ``None`` is allowed ("as another setting").
        help: one line for ``--help`` and for the error.
    """

    kind: type
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: tuple = ()
    optional: bool = False
    items: "Rule | None" = None
    help: str = ""

    def describe(self) -> str:
        """The rule in words: ``an integer >= 1``, ``a number in [0, 1]``, ``one of adam, sgd``."""
        if self.choices:
            s = "one of " + ", ".join(map(str, self.choices))
        elif self.kind is bool:
            s = "True or False"
        elif self.kind is list:
            s = "a list" + (f" of {self.items.describe()}" if self.items else "")
        elif self.kind is str:
            s = "a text"
        else:
            s = "an integer" if self.kind is int else "a number"
            lo = None if self.low is None else (f"> {_num(self.low)}" if self.low_open else f">= {_num(self.low)}")
            if lo and self.high is not None:
                s += f" in {'(' if self.low_open else '['}{_num(self.low)}, {_num(self.high)}]"
            elif lo or self.high is not None:
                s += " " + (lo or f"<= {_num(self.high)}")
        return s + (" or null" if self.optional else "")

    def check(self, value, key: str = "value"):
        """``value`` as the field holds it (a text as a flag gives it is parsed the same way; an
        integer is taken for a number), or :class:`ConfigValueError`."""
        def bad():
            return ConfigValueError(key, value, self.describe())
        if value is None:
            if self.optional:
                return None
            raise bad()
        kind = self.kind
        if kind is bool:
            if isinstance(value, bool):
                return value
            s = str(value).strip().lower() if isinstance(value, str) else None
            if s in _TRUE or s in _FALSE:
                return s in _TRUE
            raise bad()
        if kind is list:
            if isinstance(value, str):            # a flag's text: comma-separated items
                value = [v.strip() for v in value.split(",")]
            if not isinstance(value, (list, tuple)) or not value:
                raise bad()
            return [self.items.check(v, f"{key}[{n}]") for n, v in enumerate(value)] if self.items else list(value)
        if kind is str:
            if not isinstance(value, str) or (self.choices and value not in self.choices):
                raise bad()
            return value
        if isinstance(value, bool):
            raise bad()
        try:
            if isinstance(value, str):
                x = kind(value.strip())
            elif kind is int and isinstance(value, int):
                x = int(value)
            elif kind is float and isinstance(value, (int, float)):
                x = float(value)
            else:
                raise bad()
        except (ValueError, OverflowError):
            raise bad() from None
        if x != x or x in (float("inf"), float("-inf")):
            raise bad()
        if self.low is not None and (x <= self.low if self.low_open else x < self.low):
            raise bad()
        if self.high is not None and x > self.high:
            raise bad()
        if self.choices and x not in self.choices:
            raise bad()
        return x

    def flag(self):
        """An ``argparse`` type obeying this rule (the error names the value and the rule)."""
        import argparse

        def parse(text):
            try:
                return self.check(text)
            except ConfigValueError as e:
                raise argparse.ArgumentTypeError(f"{text}: must be {e.rule}") from None
        parse.__name__ = self.kind.__name__   # argparse names the type in its messages
        return parse


def _rules():
    R = Rule
    fraction = dict(low=0.0, high=1.0)
    return {
        # data
        "DataConfig.coco_root": R(str, help="COCO root (relative: to the project root)"),
        "DataConfig.test_domains": R(list, items=R(str, choices=DOMAINS), help="test domains"),
        # codec
        "CodecConfig.stride": R(int, 1, 64, help="network stride, input pixels per map cell"),
        "CodecConfig.sigma": R(float, 0, 100, low_open=True, help="heatmap Gaussian sigma, input pixels"),
        "CodecConfig.limb_width": R(float, 0, 100, low_open=True, help="PAF limb width, input pixels"),
        # decoder
        "DecodeOptions.peak_threshold": R(float, **fraction, help="minimum heatmap value of a keypoint candidate"),
        "DecodeOptions.smooth_sigma": R(float, 0, 50, help="Gaussian smoothing of the heatmaps before NMS (cells)"),
        "DecodeOptions.refine": R(bool, help="sub-pixel peak refinement"),
        "DecodeOptions.paf_samples": R(int, 2, 1000, help="points sampled along each candidate limb"),
        "DecodeOptions.paf_threshold": R(float, -1, 1, help="PAF projection a sample needs to support a limb"),
        "DecodeOptions.paf_min_fraction": R(float, **fraction, help="share of supporting samples a limb needs"),
        "DecodeOptions.length_prior": R(bool, help="penalise limbs longer than half the image height"),
        "DecodeOptions.min_parts": R(int, 1, 10_000, help="people with fewer parts are dropped (1 keeps lone peaks "
                                     "as 1-keypoint people: best COCO AP; 3-4 for displays without fragments)"),
        "DecodeOptions.min_mean_score": R(float, 0, 10, help="people with a lower mean part+limb score are dropped"),
        "DecodeOptions.short_limb": R(float, 0, 1000, help="limbs shorter than this (cells) are judged by proximity "
                                      "where their PAF is empty"),
        "DecodeOptions.upsample": R(int, 1, 8, help="heatmaps upsampled by this factor (bicubic) before peak finding"),
        "DecodeOptions.score_exponent": R(float, 0, 10, help="person score = mean score x (parts / P) ^ exponent"),
        "DecodeOptions.merge_ratio": R(float, 0, 10, help="join fragments of one person closer than this x limb "
                                       "hops x mean limb length (0 = off)"),
        "DecodeOptions.paf_samples_per_cell": R(float, 0, 100, help="PAF samples per cell of limb length on top of "
                                                "paf_samples (0 = fixed count)"),
        # augmentation
        "AugmentConfig.crop": R(int, 32, 2048, help="training crop size (368 in the paper)"),
        "AugmentConfig.target_dist": R(float, 0, 10, low_open=True, help="main person's height / crop"),
        "AugmentConfig.scale_min": R(float, 0, 10, low_open=True, help="scale jitter, lower end"),
        "AugmentConfig.scale_max": R(float, 0, 10, low_open=True, help="scale jitter, upper end"),
        "AugmentConfig.max_rotation": R(float, 0, 180, help="degrees"),
        "AugmentConfig.centre_jitter": R(float, 0, 10_000, help="source pixels"),
        "AugmentConfig.flip_prob": R(float, **fraction, help="probability of a horizontal flip"),
        # training
        "TrainConfig.effect": R(str, choices=DOMAINS if "normal" in DOMAINS else EXPERT_DOMAINS,
                                help="domain of the expert"),
        "TrainConfig.batch_size": R(int, 1, 1 << 20, help="global batch"),
        "TrainConfig.steps": R(int, 1, help="training steps"),
        "TrainConfig.steps_per_epoch": R(int, 1, help="steps per checkpoint"),
        "TrainConfig.optimizer": R(str, choices=("adam", "sgd", "sgd_cmu"), help="sgd_cmu: CMU lr multipliers"),
        "TrainConfig.learning_rate": R(float, 0, 10, low_open=True, help="base learning rate"),
        "TrainConfig.lr_step": R(int, 1, help="steps between learning-rate decays"),
        "TrainConfig.lr_gamma": R(float, 0, 1, low_open=True, help="learning-rate decay factor"),
        "TrainConfig.weight_decay": R(float, 0, 1, help="L2 on kernels"),
        "TrainConfig.precision": R(str, choices=PRECISIONS,
                                   help="Keras dtype policy; auto: mixed_bfloat16 where the CPU or GPU computes "
                                        "bfloat16 natively, else float32 (CPU) or mixed_float16 (older GPU)"),
        "TrainConfig.seed": R(int, 0, 2**32 - 1, help="seed"),
        "TrainConfig.workers": R(int, 0, 1024, help="parallel calls of the data map (0 = autotune)"),
        "TrainConfig.distribute": R(str, choices=("none", "mirrored", "multiworker"), help="tf.distribute strategy"),
        "TrainConfig.worker_timeout": R(float, 0, 7 * 86400, low_open=True, help="seconds to wait for a peer"),
        "TrainConfig.distill_weight": R(float, 0, 1000, help="weight of the distillation loss"),
        "TrainConfig.distill_from": R(str, optional=True, help="teacher .keras model (e.g. models/pose_normal.keras): "
                                      "it sees the clean crop, the expert the degraded one (masked L2 to its maps)"),
        "TrainConfig.images": R(str, optional=True, help="folder of unlabelled photos: random views, trained against "
                                "the teacher only (besides the stores' samples, or instead of them)"),
        # fine-tuning, classifier
        "FinetuneConfig.steps": R(int, 1, optional=True, help="fine-tuning steps (null: as train)"),
        "FinetuneConfig.learning_rate": R(float, 0, 10, low_open=True, optional=True,
                                          help="fine-tuning learning rate (null: as train)"),
        "FinetuneConfig.distill_weight": R(float, 0, 1000, help="weight of the distillation loss of the experts"),
        "ClassifierConfig.epochs": R(int, 1, 100_000, help="classifier epochs"),
        "ClassifierConfig.val_fraction": R(float, 0, 0.9, low_open=True, help="share of --train images held out"),
        "ClassifierConfig.dark_lights": R(float, **fraction, help="share of dark training images that are simulated low-light captures"),
        "ClassifierConfig.seed": R(int, 0, 2**32 - 1, help="seed"),
        # inference
        "InferenceOptions.box_size": R(int, 16, 4096, help="input height in pixels before scales"),
        "InferenceOptions.scales": R(list, items=R(float, 0, 8, low_open=True),
                                     help="multiples of the box, comma-separated on the command line (e.g. 0.5,1,1.5,2)"),
        "InferenceOptions.flip": R(bool, help="also run the mirrored image and average"),
        "InferenceOptions.max_side": R(int, 64, 16384, help="longest side of the network input"),
    }


#: ``"<Section class>.<field>"`` -> :class:`Rule`; a field without an entry is checked against its
#: annotation (``int``, ``float``, ``bool``, ``str``, ``list``, ``X | None``).
RULES: dict[str, Rule] = _rules()

_KINDS = {"int": int, "float": float, "bool": bool, "str": str, "list": list, "tuple": list}


def field_rule(cls, name: str) -> Rule | None:
    """The :class:`Rule` of field ``name`` of dataclass ``cls`` (:data:`RULES`, else from its
    annotation; ``None`` for nested sections and annotations without a plain type)."""
    rule = RULES.get(f"{cls.__name__}.{name}")
    if rule is not None:
        return rule
    f = next((f for f in dataclasses.fields(cls) if f.name == name), None)
    if f is None:
        return None
    parts = [p.strip() for p in str(getattr(f.type, "__name__", f.type)).split("|")]
    optional = "None" in parts
    kinds = [_KINDS.get(p) for p in parts if p != "None"]
    if len(kinds) != 1 or kinds[0] is None:
        return None
    return Rule(kinds[0], optional=optional)


def flag_type(key: str):
    """The argparse type of the value ``"<Section class>.<field>"`` (one rule with the YAML)."""
    cls_name, name = key.split(".")
    return field_rule(globals()[cls_name], name).flag()


#: What each section class is called in an experiment file (for messages).
_SECTIONS = {"DataConfig": "data", "CodecConfig": "codec", "DecodeOptions": "decode", "TrainConfig": "train",
             "AugmentConfig": "train.augment", "FinetuneConfig": "finetune", "ClassifierConfig": "classifier",
             "InferenceOptions": "inference", "ExperimentConfig": ""}


def check_value(cls, name: str, value):
    """``value`` checked against field ``name`` of ``cls`` (:func:`field_rule`); raises
    :class:`ConfigValueError` naming ``<section>.<name>``, the value and the rule."""
    rule = field_rule(cls, name)
    if rule is None:
        return value
    section = _SECTIONS.get(cls.__name__, cls.__name__)
    value = rule.check(value, f"{section}.{name}" if section else name)
    return tuple(value) if rule.kind is list and cls.__name__ == "InferenceOptions" else value


def check_values(obj):
    """Check every field of dataclass instance ``obj`` against its rule, keeping the value as the
    rule reads it (``"0.2"`` -> ``0.2``), for classes that do not check on assignment (e.g.
    :class:`~keras_openpose.codec.DecodeOptions`)."""
    for f in dataclasses.fields(obj):
        if not dataclasses.is_dataclass(getattr(obj, f.name)):
            object.__setattr__(obj, f.name, check_value(type(obj), f.name, getattr(obj, f.name)))
    return obj


class _Checked:
    """A section whose every assignment (constructor, YAML, flag, code) obeys its :class:`Rule`."""

    def __setattr__(self, name, value):
        if name in getattr(type(self), "__dataclass_fields__", {}):
            value = check_value(type(self), name, value)
            if dataclasses.is_dataclass(value) and not isinstance(value, _Checked):
                check_values(value)     # e.g. the decoder options
        object.__setattr__(self, name, value)


@dataclass
class DataConfig(_Checked):
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
class CodecConfig(_Checked):
    """Map settings of :class:`~keras_openpose.codec.PafCodec` (input pixels)."""

    stride: int = DEFAULT_STRIDE
    sigma: float = DEFAULT_SIGMA
    limb_width: float = DEFAULT_LIMB_WIDTH


@dataclass
class AugmentConfig(_Checked):
    """One affine warp per sample (Cao et al. 2017 sec. 4 / the original project's data generator, with scale
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

    def __post_init__(self):
        if self.scale_min > self.scale_max:
            raise ConfigValueError("train.augment.scale_min", self.scale_min,
                                   f"<= train.augment.scale_max ({self.scale_max:g})")


@dataclass
class TrainConfig(_Checked):
    """A training run of one expert.

    Attributes:
        effect: domain of the expert (``normal``, ``dark``, ``motion_blur``).
        batch_size, steps, steps_per_epoch: the schedule (an "epoch" is a checkpoint interval).
        optimizer: ``adam``, ``sgd`` (momentum 0.9) or ``sgd_cmu`` (momentum 0.9 with CMU's per-layer
            learning-rate multipliers x1/x2 backbone and stage 1, x4/x8 later stages).
        learning_rate: base rate; multiplied by ``lr_gamma`` every ``lr_step`` steps.
        weight_decay: L2 on kernels (paper: 5e-4).
        precision: Keras dtype policy (``float32``, ``mixed_bfloat16``, ``mixed_float16``) or ``auto``:
            the fastest of this machine (:func:`keras_openpose.model.precision.resolve_precision`;
            bfloat16 only where the hardware computes it natively, it is ~10x slower emulated).
        seed: seeds the sample order, augmentation and initialisation.
        workers: parallel calls of the tf.data map (0 = autotune).
        distribute: ``none``, ``mirrored`` (the GPUs / logical devices of one machine) or
            ``multiworker`` (the machines of ``TF_CONFIG``); ``batch_size`` is then the global batch.
        worker_timeout: seconds a distributed run waits for a peer (start-up and every collective)
            before it stops with an error naming the missing worker.
        xla: compile the train step with XLA (faster on GPUs; about 2x slower on this CPU).
        distill_from: a ``.keras`` teacher network (e.g. the normal expert) for label-free
            adaptation: the teacher sees the clean crop, the student the degraded one (same warp),
            and the loss adds ``distill_weight x`` the masked L2 of every student stage output to
            the teacher's last-stage maps (:mod:`keras_openpose.train.loop`). ``None``: no teacher.
        distill_weight: weight of the teacher term (>= 0).
        images: a folder of unlabelled photos sampled besides (or instead of) the stores: a random
            view of a photo per sample, distillation loss only (needs ``distill_from``).
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
    precision: str = "auto"
    seed: int = 0
    workers: int = 0
    distribute: str = "none"
    worker_timeout: float = 300.0
    xla: bool = False
    distill_from: str | None = None
    distill_weight: float = 1.0
    images: str | None = None
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass
class FinetuneConfig(_Checked):
    """The dark and motion-blur experts, fine-tuned from the normal one (``None`` = as ``train``).

    Attributes:
        init_from: the normal network the experts start from (relative paths: to the project root);
            default the shipped pretrained Lightweight OpenPose (made from its IR on first use).
        distill: also distil the normal network into each expert: the teacher sees the clean crop,
            the expert its degraded copy (``TrainConfig.distill_from``), with ``distill_weight``.
        images: a folder of photos (relative paths: to the project root) the experts learn from
            without labels, against the normal network (implies ``distill``); with ``labels`` also
            the store's annotated people.
        labels: train on the store's annotated people (with ``images`` or ``distill``: both terms).
    """

    steps: int | None = None
    learning_rate: float | None = None
    init_from: str = "models/pose_normal.keras"
    distill: bool = False
    distill_weight: float = 1.0
    images: str | None = None
    labels: bool = True


@dataclass
class ClassifierConfig(_Checked):
    """The domain classifier (:func:`keras_openpose.ensemble.classifier.train_classifier`)."""

    epochs: int = 10
    val_fraction: float = 0.2
    dark_lights: float = 0.0
    seed: int = 0


@dataclass
class InferenceOptions(_Checked):
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


@dataclass
class ExperimentConfig(_Checked):
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


def from_dict(cls, data: dict, source: str = "config", file: str | None = None):
    """Build dataclass ``cls`` from a dict, recursing into nested dataclasses. Unknown keys, and
    values that break their :class:`Rule` (:data:`RULES`), raise :class:`DataError` naming the file,
    the key, the value and the rule."""
    file = file or source
    if not isinstance(data, dict):
        raise DataError(f"{source}: expected a mapping for {cls.__name__}, got {type(data).__name__}")
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(names)
    if unknown:
        raise DataError(f"{source}: unknown {cls.__name__} keys: {', '.join(sorted(map(str, unknown)))} "
                        f"(known: {', '.join(names)})")
    kwargs = {}
    for k, v in data.items():
        sub = names[k].default_factory if names[k].default_factory is not dataclasses.MISSING else None
        if sub is not None and dataclasses.is_dataclass(sub) and isinstance(v, dict):
            kwargs[k] = from_dict(sub, v, f"{source}:{k}", file)
        elif sub is not None and dataclasses.is_dataclass(sub) and v is not None:
            raise DataError(f"{source}: {k} must be a mapping, got {v!r}")
        elif sub is not None and dataclasses.is_dataclass(sub):
            continue                    # an empty section: its defaults
        else:
            kwargs[k] = v
    try:
        obj = cls(**kwargs)
        return obj if isinstance(obj, _Checked) else check_values(obj)
    except ConfigValueError as e:
        rule = RULES.get(f"{cls.__name__}.{e.key.rsplit('.', 1)[-1].split('[')[0]}")
        raise DataError(f"{file}: {e}" + (f" ({rule.help})" if rule and rule.help else "")) from None
    except (TypeError, ValueError) as e:
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
