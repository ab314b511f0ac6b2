"""Skeleton definitions: keypoints, parts, limbs and flip pairs, as data.

A :class:`Skeleton` says everything the codec, augmentation, evaluation and uncertainty code need to
know about a keypoint layout:

* ``keypoints``: the names of the annotated keypoints, in the order of the COCO ``keypoints`` array
  (COCO-17 for person keypoints);
* ``parts``: the network's heatmap channels, in channel order. Each part is either one annotated
  keypoint or the midpoint of two (OpenPose's *neck* = midpoint of the shoulders);
* ``limbs``: ordered ``(from_part, to_part)`` pairs; limb ``i`` owns PAF channels ``2i`` (x) and
  ``2i + 1`` (y), the vector pointing from ``from_part`` to ``to_part``;
* ``flip_pairs``: left/right part pairs swapped by a horizontal flip.

The default, :data:`OPENPOSE_COCO18`, is the channel layout of the CMU COCO model (Cao et al. 2017;
reference-system.md §5.1): 18 parts + background = 19 heatmap channels, 19 limbs = 38 PAF channels.
Any COCO-format skeleton is one :class:`Skeleton` definition away (see :data:`COCO17_PLAIN`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

COCO17_KEYPOINTS = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)

# Per-keypoint OKS constants of COCO (the sigmas pycocotools uses), for pairing people across
# experts without ground truth. AP itself is always computed by pycocotools.
COCO17_OKS_SIGMAS = np.array(
    [.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89]) / 10.0


@dataclass(frozen=True)
class Skeleton:
    """A keypoint layout for targets, decoding and evaluation.

    Args:
        name: short identifier.
        keypoints: annotated keypoint names, in annotation order (length K).
        parts: heatmap part names, in channel order (length P).
        part_sources: for each part, a tuple of one keypoint index (the part *is* that keypoint) or
            two (the part is their midpoint, present only if both are labelled).
        limbs: ``(from_part, to_part)`` index pairs, in PAF channel order (length L, 2L channels).
        flip_pairs: ``(left_part, right_part)`` pairs swapped by a horizontal flip.
        oks_sigmas: per-keypoint OKS sigmas (length K), used to pair people across experts.

    Raises:
        ValueError: on indices out of range or inconsistent lengths.
    """

    name: str
    keypoints: tuple[str, ...]
    parts: tuple[str, ...]
    part_sources: tuple[tuple[int, ...], ...]
    limbs: tuple[tuple[int, int], ...]
    flip_pairs: tuple[tuple[int, int], ...]
    oks_sigmas: tuple[float, ...] = field(default=tuple(COCO17_OKS_SIGMAS))

    def __post_init__(self):
        K, P = len(self.keypoints), len(self.parts)
        if len(self.part_sources) != P:
            raise ValueError(f"skeleton {self.name}: {P} parts but {len(self.part_sources)} part sources")
        for src in self.part_sources:
            if len(src) not in (1, 2) or any(not 0 <= k < K for k in src):
                raise ValueError(f"skeleton {self.name}: bad part source {src}")
        for a, b in self.limbs + self.flip_pairs:
            if not (0 <= a < P and 0 <= b < P) or a == b:
                raise ValueError(f"skeleton {self.name}: bad part pair {(a, b)}")
        if len(self.oks_sigmas) != K:
            raise ValueError(f"skeleton {self.name}: {K} keypoints but {len(self.oks_sigmas)} OKS sigmas")

    # Channel counts -----------------------------------------------------------------------
    @property
    def num_parts(self) -> int:
        return len(self.parts)

    @property
    def num_heatmaps(self) -> int:
        """Part heatmaps + one background channel (the last)."""
        return len(self.parts) + 1

    @property
    def num_limbs(self) -> int:
        return len(self.limbs)

    @property
    def num_pafs(self) -> int:
        return 2 * len(self.limbs)

    # Index helpers ------------------------------------------------------------------------
    @property
    def flip_permutation(self) -> np.ndarray:
        """Part permutation applied on a horizontal flip, shape ``(P,)``."""
        perm = np.arange(self.num_parts)
        for a, b in self.flip_pairs:
            perm[a], perm[b] = b, a
        return perm

    @property
    def keypoint_to_part(self) -> np.ndarray:
        """For each annotated keypoint, the part that is exactly it (``-1`` if none), shape ``(K,)``."""
        out = -np.ones(len(self.keypoints), dtype=np.int64)
        for p, src in enumerate(self.part_sources):
            if len(src) == 1:
                out[src[0]] = p
        return out

    def limb_name(self, i: int) -> str:
        a, b = self.limbs[i]
        return f"{self.parts[a]}-{self.parts[b]}"

    # Conversions ---------------------------------------------------------------------------
    def keypoints_to_parts(self, keypoints: np.ndarray) -> np.ndarray:
        """Convert annotated keypoints to parts.

        Args:
            keypoints: ``(N, K, 3)`` array of ``x, y, v`` (COCO visibility: 0 unlabelled,
                1 labelled occluded, 2 visible), any pixel frame.
        Returns:
            ``(N, P, 3)`` float32 array in the same frame; ``v`` is the COCO code, 0 where the part
            is absent. A midpoint part is present when both sources are labelled; its ``v`` is the
            smaller of the two codes (reference-system.md §5.1).
        """
        kp = np.asarray(keypoints, dtype=np.float32)
        if kp.ndim != 3 or kp.shape[1:] != (len(self.keypoints), 3):
            raise ValueError(f"expected keypoints of shape (N, {len(self.keypoints)}, 3), got {kp.shape}")
        out = np.zeros((kp.shape[0], self.num_parts, 3), np.float32)
        for p, src in enumerate(self.part_sources):
            if len(src) == 1:
                out[:, p] = kp[:, src[0]]
            else:
                a, b = kp[:, src[0]], kp[:, src[1]]
                ok = (a[:, 2] > 0) & (b[:, 2] > 0)
                out[ok, p, :2] = 0.5 * (a[ok, :2] + b[ok, :2])
                out[ok, p, 2] = np.minimum(a[ok, 2], b[ok, 2])
        out[out[..., 2] <= 0] = 0.0
        return out

    def parts_to_keypoints(self, parts: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`keypoints_to_parts` for parts that are single keypoints.

        Args:
            parts: ``(N, P, 3)`` array of ``x, y, score``.
        Returns:
            ``(N, K, 3)`` array; keypoints without a part of their own are zero.
        """
        parts = np.asarray(parts, dtype=np.float32)
        out = np.zeros((parts.shape[0], len(self.keypoints), 3), np.float32)
        k2p = self.keypoint_to_part
        has = k2p >= 0
        out[:, has] = parts[:, k2p[has]]
        return out


def _limbs(parts: tuple[str, ...], names: list[tuple[str, str]]) -> tuple[tuple[int, int], ...]:
    return tuple((parts.index(a), parts.index(b)) for a, b in names)


_OP18_PARTS = (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
    "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
    "right_eye", "left_eye", "right_ear", "left_ear",
)

OPENPOSE_COCO18 = Skeleton(
    name="openpose_coco18",
    keypoints=COCO17_KEYPOINTS,
    parts=_OP18_PARTS,
    part_sources=tuple(
        (COCO17_KEYPOINTS.index("left_shoulder"), COCO17_KEYPOINTS.index("right_shoulder"))
        if p == "neck" else (COCO17_KEYPOINTS.index(p),)
        for p in _OP18_PARTS),
    # CMU COCO model PAF channel order (limb i -> channels 2i, 2i+1); reference-system.md §5.1.
    limbs=_limbs(_OP18_PARTS, [
        ("neck", "right_hip"), ("right_hip", "right_knee"), ("right_knee", "right_ankle"),
        ("neck", "left_hip"), ("left_hip", "left_knee"), ("left_knee", "left_ankle"),
        ("neck", "right_shoulder"), ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"),
        ("right_shoulder", "right_ear"),
        ("neck", "left_shoulder"), ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
        ("left_shoulder", "left_ear"),
        ("neck", "nose"), ("nose", "right_eye"), ("nose", "left_eye"),
        ("right_eye", "right_ear"), ("left_eye", "left_ear"),
    ]),
    flip_pairs=_limbs(_OP18_PARTS, [
        ("right_shoulder", "left_shoulder"), ("right_elbow", "left_elbow"),
        ("right_wrist", "left_wrist"), ("right_hip", "left_hip"), ("right_knee", "left_knee"),
        ("right_ankle", "left_ankle"), ("right_eye", "left_eye"), ("right_ear", "left_ear"),
    ]),
)

# The plain COCO-17 skeleton (parts = keypoints, limbs = COCO's own 19-edge skeleton), to show that
# another COCO-format layout is one definition away.
COCO17_PLAIN = Skeleton(
    name="coco17",
    keypoints=COCO17_KEYPOINTS,
    parts=COCO17_KEYPOINTS,
    part_sources=tuple((k,) for k in range(17)),
    limbs=_limbs(COCO17_KEYPOINTS, [
        ("left_ankle", "left_knee"), ("left_knee", "left_hip"), ("right_ankle", "right_knee"),
        ("right_knee", "right_hip"), ("left_hip", "right_hip"), ("left_shoulder", "left_hip"),
        ("right_shoulder", "right_hip"), ("left_shoulder", "right_shoulder"),
        ("left_shoulder", "left_elbow"), ("right_shoulder", "right_elbow"),
        ("left_elbow", "left_wrist"), ("right_elbow", "right_wrist"), ("left_eye", "right_eye"),
        ("nose", "left_eye"), ("nose", "right_eye"), ("left_eye", "left_ear"),
        ("right_eye", "right_ear"), ("left_ear", "left_shoulder"), ("right_ear", "right_shoulder"),
    ]),
    flip_pairs=tuple((COCO17_KEYPOINTS.index("left_" + n), COCO17_KEYPOINTS.index("right_" + n))
                     for n in ("eye", "ear", "shoulder", "elbow", "wrist", "hip", "knee", "ankle")),
)

SKELETONS = {s.name: s for s in (OPENPOSE_COCO18, COCO17_PLAIN)}
DEFAULT_SKELETON = OPENPOSE_COCO18


def get_skeleton(name: str) -> Skeleton:
    """Look a skeleton up by name; raises ``KeyError`` listing the known names."""
    try:
        return SKELETONS[name]
    except KeyError:
        raise KeyError(f"unknown skeleton {name!r}; known: {sorted(SKELETONS)}") from None
