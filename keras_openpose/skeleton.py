"""Skeletons as data: keypoints, parts, limbs, flip pairs, OKS sigmas and colours.

A :class:`Skeleton` says everything the codec, augmentation, evaluation, uncertainty and drawing
code need to know about a keypoint layout:

* ``keypoints``: the names of the annotated keypoints, in the order of the dataset's COCO
  ``keypoints`` array (length K);
* ``parts``: the network's heatmap channels, in channel order (length P). Each part is one annotated
  keypoint or the midpoint of two (OpenPose's *neck* = midpoint of the shoulders). For a skeleton
  read from a dataset, parts = keypoints;
* ``limbs``: ``(from_part, to_part)`` pairs; limb ``i`` owns PAF channels ``2i`` (x) and ``2i + 1``
  (y), the unit vector pointing from ``from_part`` to ``to_part`` (Cao et al. 2017, eq. 8);
* ``flip_pairs``: left/right part pairs swapped by a horizontal flip;
* ``oks_sigmas``: per-keypoint OKS constants (COCO's ``kpt_oks_sigmas``), or ``None`` when the
  dataset has none (evaluation then uses PCK / AUC / EPE);
* ``colours``: one BGR colour per limb for drawing.

Greedy PAF grouping (Cao et al. 2017, sec. 3.4) needs the limbs to connect every part. A skeleton drawn
for display often does not (or has cycles), so :meth:`Skeleton.from_coco` keeps the user's links and
adds the fewest links that connect the rest: a minimum spanning forest (Kruskal) over the median
bbox-normalised distance between keypoints in the annotations.

Shipped definitions (``keras_openpose/skeletons/*.yaml``, read with :func:`get_skeleton`):
``openpose_coco18`` (the default: the CMU COCO model's channel layout, 18 parts + background = 19
heatmaps, 19 limbs = 38 PAF channels), ``coco17``, ``hand21`` (OneHand10K, FreiHAND), ``aic14`` (AI
Challenger) and ``ap10k17`` (AP-10K animals).
"""
from __future__ import annotations

import colorsys
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .errors import DataError

SKELETON_DIR = Path(__file__).resolve().parent / "skeletons"

#: OKS sigma used only to *pair* people of a skeleton without OKS sigmas (about COCO's mean
#: sigma, 0.063, rounded down: pairing, not scoring).
PAIRING_SIGMA = 0.05

#: Other names of the shipped skeletons (dataset names).
ALIASES = {"onehand10k": "hand21", "freihand": "hand21", "freihand2d": "hand21", "aic": "aic14",
           "ap10k": "ap10k17", "coco": "coco17", "openpose": "openpose_coco18"}


def _default_colours(n: int) -> tuple[tuple[int, int, int], ...]:
    return tuple(tuple(int(255 * c) for c in colorsys.hsv_to_rgb(i / max(n, 1), 0.9, 1.0)[::-1])
                 for i in range(n))


@dataclass(frozen=True)
class Skeleton:
    """A keypoint layout for targets, decoding, evaluation and drawing (see module doc).

    Args:
        name: short identifier.
        keypoints: annotated keypoint names, in annotation order (length K).
        parts: heatmap part names, in channel order (length P).
        part_sources: for each part, a tuple of one keypoint index (the part *is* that keypoint) or
            two (the part is their midpoint, present only when both are labelled).
        limbs: ``(from_part, to_part)`` 0-based index pairs, in PAF channel order (length L).
        flip_pairs: ``(left_part, right_part)`` pairs swapped by a horizontal flip.
        oks_sigmas: per-keypoint OKS sigmas (length K) or ``None``.
        colours: per-limb BGR colours (length L); ``None`` = evenly spaced hues.
        added_links: indices into ``limbs`` of the links added to connect the user's skeleton.

    Raises:
        DataError: indices out of range, inconsistent lengths, limbs that do not connect every part.
    """

    name: str
    keypoints: tuple[str, ...]
    parts: tuple[str, ...]
    part_sources: tuple[tuple[int, ...], ...]
    limbs: tuple[tuple[int, int], ...]
    flip_pairs: tuple[tuple[int, int], ...] = ()
    oks_sigmas: tuple[float, ...] | None = None
    colours: tuple[tuple[int, int, int], ...] | None = None
    added_links: tuple[int, ...] = ()

    def __post_init__(self):
        K, P = len(self.keypoints), len(self.parts)
        where = f"skeleton {self.name!r}"
        if K == 0:
            raise DataError(f"{where}: no keypoints")
        if len(set(self.parts)) != P:
            raise DataError(f"{where}: duplicate part names")
        if len(self.part_sources) != P:
            raise DataError(f"{where}: {P} parts but {len(self.part_sources)} part sources")
        for src in self.part_sources:
            if len(src) not in (1, 2) or any(not 0 <= k < K for k in src):
                raise DataError(f"{where}: bad part source {src}")
        for a, b in tuple(self.limbs) + tuple(self.flip_pairs):
            if not (0 <= a < P and 0 <= b < P) or a == b:
                raise DataError(f"{where}: bad part pair {(a, b)} for {P} parts")
        if self.oks_sigmas is not None and len(self.oks_sigmas) != K:
            raise DataError(f"{where}: {K} keypoints but {len(self.oks_sigmas)} OKS sigmas")
        if self.colours is not None and len(self.colours) != len(self.limbs):
            raise DataError(f"{where}: {len(self.limbs)} limbs but {len(self.colours)} colours")
        lost = unreachable(P, self.limbs)
        if lost:
            raise DataError(f"{where}: the limbs do not connect parts {', '.join(self.parts[p] for p in lost)} "
                            "(PAF grouping needs a connected skeleton)")

    # Channel counts -----------------------------------------------------------------------
    @property
    def num_keypoints(self) -> int:
        return len(self.keypoints)

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

    @property
    def pairing_sigmas(self) -> np.ndarray:
        """Sigmas for pairing people by OKS without evaluating them (across experts, to GT before
        disagreement): the OKS sigmas, else :data:`PAIRING_SIGMA` for every keypoint."""
        if self.oks_sigmas is not None:
            return np.asarray(self.oks_sigmas, np.float64)
        return np.full(self.num_keypoints, PAIRING_SIGMA)

    @property
    def limb_colours(self) -> tuple[tuple[int, int, int], ...]:
        """BGR colour of each limb (``colours`` or evenly spaced hues)."""
        return self.colours if self.colours is not None else _default_colours(self.num_limbs)

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
            smaller of the two codes.
        Raises:
            DataError: ``keypoints`` is not ``(N, K, 3)``.
        """
        kp = np.asarray(keypoints, dtype=np.float32)
        if kp.ndim != 3 or kp.shape[1:] != (len(self.keypoints), 3):
            raise DataError(f"skeleton {self.name!r}: expected keypoints of shape (N, {len(self.keypoints)}, 3), "
                            f"got {kp.shape}")
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

    # Data: dict / YAML / COCO category ------------------------------------------------------
    def to_dict(self) -> dict:
        """The YAML mapping (names, not indices): ``name, keypoints, [parts], limbs, flip_pairs,
        [oks_sigmas], [colours], [added_links]``; :meth:`from_dict` reads it back."""
        d: dict = {"name": self.name, "keypoints": list(self.keypoints)}
        if self.parts != self.keypoints or any(len(s) != 1 for s in self.part_sources):
            d["parts"] = [self.keypoints[s[0]] if len(s) == 1 and self.keypoints[s[0]] == p
                          else {p: [self.keypoints[k] for k in s]} for p, s in zip(self.parts, self.part_sources)]
        d["limbs"] = [[self.parts[a], self.parts[b]] for a, b in self.limbs]
        d["flip_pairs"] = [[self.parts[a], self.parts[b]] for a, b in self.flip_pairs]
        if self.oks_sigmas is not None:
            d["oks_sigmas"] = [float(s) for s in self.oks_sigmas]
        if self.colours is not None:
            d["colours"] = [list(c) for c in self.colours]
        if self.added_links:
            d["added_links"] = [self.limb_name(i) for i in self.added_links]
        return d

    @classmethod
    def from_dict(cls, d: dict, source: str = "skeleton") -> "Skeleton":
        """Build a skeleton from the mapping of :meth:`to_dict` (raises :class:`DataError` naming
        ``source`` and the problem)."""
        if not isinstance(d, dict):
            raise DataError(f"{source}: a skeleton must be a mapping")
        unknown = set(d) - {"name", "keypoints", "parts", "limbs", "flip_pairs", "oks_sigmas", "colours", "added_links"}
        if unknown:
            raise DataError(f"{source}: unknown skeleton keys: {', '.join(sorted(unknown))}")
        kp = tuple(str(k) for k in d.get("keypoints") or ())
        if not kp:
            raise DataError(f"{source}: no 'keypoints' list")
        parts, sources = [], []
        for entry in d.get("parts") or kp:
            if isinstance(entry, dict) and len(entry) == 1:
                (p, src), = entry.items()
            else:
                p, src = entry, [entry]
            missing = [s for s in src if s not in kp]
            if missing:
                raise DataError(f"{source}: part {p!r} refers to unknown keypoints {missing}")
            parts.append(str(p))
            sources.append(tuple(kp.index(s) for s in src))

        def pairs(key):
            out = []
            for pair in d.get(key) or ():
                if len(pair) != 2 or any(x not in parts for x in pair):
                    raise DataError(f"{source}: {key} entry {pair} does not name two parts")
                out.append((parts.index(pair[0]), parts.index(pair[1])))
            return tuple(out)
        limbs = pairs("limbs")
        names = [f"{parts[a]}-{parts[b]}" for a, b in limbs]
        added = tuple(names.index(n) for n in d.get("added_links") or () if n in names)
        return cls(name=str(d.get("name", "custom")), keypoints=kp, parts=tuple(parts), part_sources=tuple(sources),
                   limbs=limbs, flip_pairs=pairs("flip_pairs"),
                   oks_sigmas=None if d.get("oks_sigmas") is None else tuple(float(s) for s in d["oks_sigmas"]),
                   colours=None if d.get("colours") is None else tuple(tuple(int(v) for v in c) for c in d["colours"]),
                   added_links=added)

    @classmethod
    def from_yaml(cls, path: str | Path) -> "Skeleton":
        """Read a skeleton YAML file (the :meth:`to_dict` mapping)."""
        import yaml
        path = Path(path)
        if not path.is_file():
            raise DataError(f"{path}: skeleton file not found")
        try:
            d = yaml.safe_load(path.read_text())
        except yaml.YAMLError as e:
            raise DataError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
        return cls.from_dict(d, str(path))

    def to_yaml(self, path: str | Path) -> Path:
        """Write the skeleton as YAML (atomically); returns the path."""
        import yaml

        from .files import atomic_write
        path = Path(path)
        with atomic_write(path, "w") as f:
            yaml.safe_dump(self.to_dict(), f, sort_keys=False, default_flow_style=None, width=100)
        return path

    @classmethod
    def from_coco(cls, category: dict, links=None, flip_pairs=None, sigmas=None, annotations=None,
                  name: str | None = None) -> "Skeleton":
        """A skeleton from a COCO ``categories[]`` entry (parts = keypoints).

        Args:
            category: ``{"name", "keypoints": [K names], "skeleton": [[a, b], ...] (1-based, optional)}``.
            links: 0-based ``(a, b)`` pairs overriding the category's ``skeleton``.
            flip_pairs: 0-based left/right pairs; default: keypoints whose names differ only by a
                left/right marker (``left_x``/``right_x``, ``l_x``/``r_x``, ``L_X``/``R_X``).
            sigmas: OKS sigmas (length K), or ``None``.
            annotations: annotation dicts of this category (``keypoints``, ``bbox``); used to add
                links where the given ones do not connect every keypoint (minimum spanning forest
                over the median bbox-normalised keypoint distance). Without them a disconnected
                skeleton raises.
            name: skeleton name (default: the category name).
        Returns:
            the skeleton; :attr:`added_links` says which limbs were added.
        Raises:
            DataError: no keypoint names, links out of range, or keypoints that cannot be connected
                (named in the message: never labelled together with the others).
        """
        names = tuple(str(k) for k in category.get("keypoints") or ())
        label = f"category {category.get('name', category.get('id', '?'))!r}"
        if not names:
            raise DataError(f"{label}: no 'keypoints' names")
        K = len(names)
        if links is None:
            raw = [(int(a) - 1, int(b) - 1) for a, b in category.get("skeleton") or ()]
        else:
            raw = [(int(a), int(b)) for a, b in links]
        bad = [(a, b) for a, b in raw if not (0 <= a < K and 0 <= b < K)]
        if bad:
            raise DataError(f"{label}: links {bad} out of range for {K} keypoints")
        user, seen = [], set()
        for a, b in raw:
            if a != b and frozenset((a, b)) not in seen:
                seen.add(frozenset((a, b)))
                user.append((a, b))
        added = connect_limbs(K, user, annotations, names, label)
        if flip_pairs is None:
            flip_pairs = infer_flip_pairs(names)
        return cls(name=name or str(category.get("name", "custom")), keypoints=names, parts=names,
                   part_sources=tuple((k,) for k in range(K)), limbs=tuple(user + added),
                   flip_pairs=tuple((int(a), int(b)) for a, b in flip_pairs),
                   oks_sigmas=None if sigmas is None else tuple(float(s) for s in sigmas),
                   added_links=tuple(range(len(user), len(user) + len(added))))


def normalise_name(name: str) -> str:
    """A keypoint name for matching across datasets: lower case, runs of other characters -> ``_``
    (``"Right Shoulder"`` -> ``"right_shoulder"``)."""
    return re.sub(r"[^a-z0-9]+", "_", str(name).lower()).strip("_")


def find_shipped(names) -> "Skeleton | None":
    """The shipped skeleton whose keypoints are ``names`` (compared by :func:`normalise_name`), if any;
    COCO-17 names give OpenPose COCO-18 (the default network layout)."""
    key = tuple(normalise_name(n) for n in names)
    if key == tuple(normalise_name(n) for n in DEFAULT_SKELETON.keypoints):
        return DEFAULT_SKELETON
    for name in shipped_skeletons():
        s = get_skeleton(name)
        if tuple(normalise_name(n) for n in s.keypoints) == key:
            return s
    return None


def check_same_skeleton(a, b, where: str, names=("the model", "the data")) -> None:
    """Refuse to pair two skeletons (or keypoint name lists) whose keypoints differ by name or
    order, not only by count: an animal model on person annotations, COCO-17 against AIC-14.
    Names are compared by :func:`normalise_name`; ``None`` for ``b`` (data without names) passes.

    Raises:
        DataError: ``<where>: <a> keypoints [...] differ from <b> keypoints [...] (first at k: x vs y)``.
    """
    from .errors import DataError
    if a is None or b is None:
        return
    ka = tuple(a.keypoints if isinstance(a, Skeleton) else a)
    kb = tuple(b.keypoints if isinstance(b, Skeleton) else b)
    na, nb = [normalise_name(n) for n in ka], [normalise_name(n) for n in kb]
    if na == nb:
        return
    k = next((i for i, (x, y) in enumerate(zip(na, nb)) if x != y), min(len(na), len(nb)))
    first = f"first at {k}: {ka[k] if k < len(ka) else '(none)'} vs {kb[k] if k < len(kb) else '(none)'}"
    raise DataError(f"{where}: {names[0]}'s keypoints [{', '.join(ka)}] are not {names[1]}'s "
                    f"[{', '.join(kb)}] ({first})")


def check_same_layout(a: Skeleton, b: Skeleton, where: str, names=("the model", "the other model")) -> None:
    """Refuse two skeletons that would give the maps of one network another meaning: the keypoints
    (by name, :func:`check_same_skeleton`), then the heatmap parts and the limbs (PAF channels, by
    part names and order: a data-derived skeleton's spanning links can differ between data sets).

    Raises:
        DataError: ``<where>: <a> limbs [...] are not <b> limbs [...]`` (or parts, or keypoints).
    """
    check_same_skeleton(a, b, where, names)
    for what, fa, fb in (("parts", a.parts, b.parts),
                         ("limbs", [a.limb_name(i) for i in range(a.num_limbs)],
                          [b.limb_name(i) for i in range(b.num_limbs)])):
        if [normalise_name(n) for n in fa] != [normalise_name(n) for n in fb]:
            raise DataError(f"{where}: {names[0]}'s {what} [{', '.join(fa)}] are not {names[1]}'s "
                            f"[{', '.join(fb)}]")


def unreachable(n: int, links) -> list[int]:
    """Indices of the nodes ``0..n-1`` not connected (through ``links``) to the largest component."""
    comp = _components(n, links)
    if n == 0:
        return []
    sizes = np.bincount(comp)
    return [i for i in range(n) if comp[i] != int(np.argmax(sizes))]


class UnionFind:
    """Disjoint sets over ``0 .. n-1`` (path halving): what joins parts into one connected skeleton,
    used for the connectivity check, the spanning tree of added links and the decoder's limb order."""

    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, p: int) -> int:
        parent = self.parent
        while parent[p] != p:
            parent[p] = parent[parent[p]]
            p = parent[p]
        return p

    def union(self, a: int, b: int) -> bool:
        """Join the sets of ``a`` and ``b``; ``False`` when they were already one (a cycle)."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        self.parent[ra] = rb
        return True


def _components(n: int, links) -> np.ndarray:
    uf = UnionFind(n)
    for a, b in links:
        uf.union(a, b)
    _, comp = np.unique([uf.find(i) for i in range(n)], return_inverse=True)
    return comp


def keypoint_distances(annotations, K: int) -> np.ndarray:
    """``(K, K)`` median over annotated instances of the distance between two keypoints divided by
    the instance's size ``sqrt(bbox w * h)``; ``inf`` for pairs never labelled together."""
    rows = []
    for a in annotations or ():
        kp = np.asarray(a.get("keypoints", ()), np.float64).reshape(-1, 3)
        if kp.shape[0] != K:
            continue
        w, h = (a.get("bbox") or (0, 0, 1, 1))[2:4]
        size = np.sqrt(max(float(w) * float(h), 1.0))
        lab = kp[:, 2] > 0
        d = np.hypot(kp[:, None, 0] - kp[None, :, 0], kp[:, None, 1] - kp[None, :, 1]) / size
        d[~(lab[:, None] & lab[None, :])] = np.nan
        rows.append(d)
    if not rows:
        return np.full((K, K), np.inf)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pairs: never labelled together
        med = np.nanmedian(np.stack(rows), axis=0)
    return np.where(np.isnan(med), np.inf, med)


def connect_limbs(K: int, links, annotations=None, names=None, label: str = "skeleton") -> list[tuple[int, int]]:
    """The fewest links that, added to ``links``, connect all ``K`` keypoints: Kruskal's minimum
    spanning forest over :func:`keypoint_distances` of ``annotations`` (shortest first), joining
    only different components.

    Returns:
        the added ``(a, b)`` pairs (empty when ``links`` already connect everything).
    Raises:
        DataError: naming the keypoints that stay unreachable (no annotations, or never labelled
            together with the rest).
    """
    names = names or [str(k) for k in range(K)]
    if not unreachable(K, links):
        return []
    uf = UnionFind(K)
    for a, b in links:
        uf.union(a, b)
    dist = keypoint_distances(annotations, K)
    iu = np.triu_indices(K, 1)
    added = []
    for k in np.argsort(dist[iu], kind="stable"):      # Kruskal: shortest first, joining components only
        a, b = int(iu[0][k]), int(iu[1][k])
        if not np.isfinite(dist[a, b]):
            break
        if uf.union(a, b):
            added.append((a, b))
    lost = unreachable(K, list(links) + added)
    if lost:
        why = "no annotations to derive links from" if not annotations else "never labelled together with the others"
        raise DataError(f"{label}: cannot connect keypoints {', '.join(names[i] for i in lost)} ({why}); "
                        "give links that reach them")
    return added


_SIDE = re.compile(r"^(left|right|l|r)([_\- ]?)(.*)$", re.IGNORECASE)


def infer_flip_pairs(names) -> list[tuple[int, int]]:
    """Left/right keypoint pairs from names that differ only by a side marker at the start
    (``left_eye``/``right_eye``, ``L_Eye``/``R_Eye``, ``l_paw``/``r_paw``)."""
    index = {}
    for i, n in enumerate(names):
        m = _SIDE.match(n)
        if m and (len(m.group(1)) > 1 or m.group(2)):   # "l_x", "left_x", "leftx"; not "leg"
            side = m.group(1)[0].lower()
            index.setdefault(m.group(3).lower(), {})[side] = i
    return [(d["l"], d["r"]) for d in index.values() if "l" in d and "r" in d]


def get_skeleton(name: str) -> Skeleton:
    """A shipped skeleton by name or alias (``openpose_coco18``, ``coco17``, ``hand21``/``onehand10k``/
    ``freihand``, ``aic14``/``aic``, ``ap10k17``/``ap10k``), or a YAML file path.

    Raises:
        DataError: unknown name (the message lists the known ones) or a bad file.
    """
    return _load(ALIASES.get(str(name), str(name)))


@lru_cache(maxsize=None)
def _load(name: str) -> Skeleton:
    path = SKELETON_DIR / f"{name}.yaml"
    if path.is_file():
        return Skeleton.from_yaml(path)
    if name.endswith((".yaml", ".yml")):
        return Skeleton.from_yaml(name)
    raise DataError(f"unknown skeleton {name!r}; known: {', '.join(shipped_skeletons())} "
                    f"(aliases {', '.join(sorted(ALIASES))}), or a YAML file")


def shipped_skeletons() -> list[str]:
    """Names of the skeletons shipped in ``keras_openpose/skeletons``."""
    return sorted(p.stem for p in SKELETON_DIR.glob("*.yaml"))


OPENPOSE_COCO18 = get_skeleton("openpose_coco18")
COCO17 = get_skeleton("coco17")
DEFAULT_SKELETON = OPENPOSE_COCO18
COCO17_KEYPOINTS = COCO17.keypoints
