"""Domain ensemble: route each image to one expert, fuse the experts' maps, or run them all.

* ``route``: the classifier picks the expert (arg-max); only that expert runs (cost = classifier +
  one expert; the reference ran all three first, 3x the cost).
* ``fuse``: heatmaps and PAFs of the experts averaged with the classifier's probabilities as
  weights, then one decode; experts with probability below ``min_weight`` are skipped.
* ``all``: every expert runs and its people are kept separately (for the disagreement report).
"""
from __future__ import annotations

import numpy as np

import time
from pathlib import Path

from .classifier import DomainClassifier
from ..errors import DataError
from ..config import InferenceOptions
from ..inference.estimator import PoseEstimator

MODES = ("route", "fuse", "all")


class Ensemble:
    """Experts + classifier.

    Args:
        experts: ``{domain: PoseEstimator}`` with domains among the classifier's classes.
        classifier: the :class:`~keras_openpose.ensemble.classifier.DomainClassifier`.
        min_weight: ``fuse`` skips experts whose weight is below this.
        fuse_temperature: ``fuse`` weights are ``softmax(log p / T)`` of the classifier's
            probabilities ``p``: ``T = 1`` uses them as they are (the classifier is nearly one-hot
            on clear cases, so fuse ~ route), larger ``T`` flattens them towards the plain mean of
            the experts (``T = inf``).
    Every expert decodes with the first expert's decoder options (route, fuse and the experts
    alone are then compared on their maps, not on their thresholds).

    Raises:
        DataError: an expert missing for a classifier class, experts of different skeletons or
            strides, or ``fuse_temperature <= 0``.
    """

    def __init__(self, experts: dict[str, PoseEstimator], classifier: DomainClassifier | None,
                 min_weight: float = 0.02, fuse_temperature: float = 1.0):
        if not fuse_temperature > 0:
            raise DataError(f"--fuse-temperature {fuse_temperature}: must be > 0 (inf = plain mean)")
        self.experts, self.classifier, self.min_weight = experts, classifier, min_weight
        self.fuse_temperature = float(fuse_temperature)
        if classifier is not None:
            missing = set(classifier.classes) - set(experts)
            if missing:
                raise DataError(f"ensemble: no expert for classifier classes {sorted(missing)}")
        codecs = {d: e.codec for d, e in experts.items()}
        first = next(iter(codecs.values()))
        from ..skeleton import check_same_layout
        d0 = next(iter(codecs))
        for d, c in codecs.items():      # keypoints, parts and limbs by name first: the clearest message
            check_same_layout(first.skeleton, c.skeleton, "ensemble: experts with different skeletons",
                              (f"expert {d0}", f"expert {d}"))
        def maps_convention(c):       # what the maps mean; the decoder options are how to read them
            return {k: v for k, v in c.to_dict().items() if k != "decode"}
        if any(maps_convention(c) != maps_convention(first) for c in codecs.values()):
            raise DataError("ensemble: the experts have different skeletons or strides "
                            f"({', '.join(f'{d}: {c}' for d, c in codecs.items())})")
        #: one decoder for every predictor (mixed maps have no single expert): the first expert's
        #: (the normal one's); each expert's own options stay in its file
        self.codec = first
        for e in experts.values():
            e.codec = first
        self.last = {}

    @classmethod
    def from_models_dir(cls, models_dir, options: InferenceOptions | None = None, need_classifier: bool = True,
                        fuse_temperature: float = 1.0, **decode) -> "Ensemble":
        """The experts ``<models_dir>/pose_<domain>.keras`` (:func:`keras_openpose.model.networks.expert_path`)
        and ``domain_classifier.pt``; ``decode`` overrides single decoder options of every expert.

        Raises:
            DataError: a missing or unreadable model.
        """
        from ..data.domains import EXPERT_DOMAINS
        from ..model.networks import expert_path
        models_dir = Path(models_dir)
        experts = {d: PoseEstimator.from_weights(expert_path(models_dir, d), options, **decode) for d in EXPERT_DOMAINS}
        clf = DomainClassifier(models_dir / "domain_classifier.pt") if need_classifier else None
        return cls(experts, clf, fuse_temperature=fuse_temperature)

    def _probs(self, image):
        return self.classifier.probabilities(image)

    def route_maps(self, image: np.ndarray):
        """Maps ``(heatmaps, pafs, stride)`` of the most probable domain's expert (only it runs);
        ``self.last`` records the choice."""
        p = self._probs(image)
        domain = max(p, key=p.get)
        self.last = {"domain": domain, "probabilities": p, "experts_run": [domain]}
        return self.experts[domain].maps(image)

    def route(self, image: np.ndarray) -> list[dict]:
        """People from the expert of the most probable domain (:meth:`route_maps`, decoded)."""
        heat, paf, stride = self.route_maps(image)
        return self.experts[self.last["domain"]].decode(heat, paf, stride, image.shape[:2])

    def fuse_weights(self, p: dict[str, float]) -> dict[str, float]:
        """Weights of the experts that ``fuse`` runs: ``softmax(log p / T)`` of the classifier's
        probabilities, experts under ``min_weight`` dropped, the rest renormalised to sum 1."""
        logp = np.log(np.maximum(np.array(list(p.values()), np.float64), 1e-12)) / self.fuse_temperature
        wts = np.exp(logp - logp.max())
        used = {d: w for d, w in zip(p, wts / wts.sum()) if w >= self.min_weight} or {max(p, key=p.get): 1.0}
        tot = sum(used.values())
        return {d: float(w / tot) for d, w in used.items()}

    @staticmethod
    def mix(maps: dict, weights: dict[str, float]):
        """``sum_d weights[d] * maps[d]`` of heatmaps and PAFs: ``(heatmaps, pafs, stride)``."""
        heat = sum(w * maps[d][0] for d, w in weights.items())
        paf = sum(w * maps[d][1] for d, w in weights.items())
        return heat, paf, maps[next(iter(weights))][2]

    def fuse_maps(self, image: np.ndarray):
        """Probability-weighted mean of the experts' heatmaps and PAFs ``(heatmaps, pafs, stride)``
        (:meth:`fuse_weights`; experts left out are not run)."""
        p = self._probs(image)
        wts = self.fuse_weights(p)
        self.last = {"domain": max(p, key=p.get), "probabilities": p, "experts_run": sorted(wts), "weights": wts}
        return self.mix({d: self.experts[d].maps(image) for d in wts}, wts)

    def every_maps(self, image: np.ndarray) -> dict:
        """Maps of every expert, of ``route`` and of ``fuse`` from one pass of each expert and one
        classification: ``{domain: maps, "route": maps, "fuse": maps}`` (for scoring all of them
        on the same image without running an expert twice). ``self.last["seconds"]`` holds what
        each would have cost alone (route = classifier + its expert, fuse = classifier + the
        experts it weights)."""
        t0 = time.perf_counter()
        p = self._probs(image)
        seconds = {"classifier": time.perf_counter() - t0}
        maps = {}
        for d, e in self.experts.items():
            t0 = time.perf_counter()
            maps[d] = e.maps(image)
            seconds[d] = time.perf_counter() - t0
        domain = max(p, key=p.get)
        wts = self.fuse_weights(p)
        seconds["route"] = seconds["classifier"] + seconds[domain]
        seconds["fuse"] = seconds["classifier"] + sum(seconds[d] for d in wts)
        self.last = {"domain": domain, "probabilities": p, "experts_run": sorted(maps), "weights": wts,
                     "seconds": seconds}
        return {**maps, "route": maps[domain], "fuse": self.mix(maps, wts)}

    def fuse(self, image: np.ndarray) -> list[dict]:
        """People decoded (once) from :meth:`fuse_maps`."""
        heat, paf, stride = self.fuse_maps(image)
        return next(iter(self.experts.values())).decode(heat, paf, stride, image.shape[:2])

    def decode(self, heatmaps, pafs, stride, image_shape) -> list[dict]:
        """People from (mixed) maps with the experts' shared codec."""
        return next(iter(self.experts.values())).decode(heatmaps, pafs, stride, image_shape)

    def all(self, image: np.ndarray) -> dict[str, list[dict]]:
        """``{domain: people}`` of every expert."""
        return {d: e.estimate(image) for d, e in self.experts.items()}

    def predictor(self, mode: str, maps: bool = False):
        """An ``image -> people`` function for :func:`keras_openpose.evaluate.runs.evaluate_predictor`,
        or with ``maps`` an ``image -> (heatmaps, pafs, stride)`` one (for
        :func:`keras_openpose.evaluate.maps.map_scores`)."""
        fns = {"route": (self.route, self.route_maps), "fuse": (self.fuse, self.fuse_maps)}
        if mode not in fns:
            raise DataError(f"--mode {mode!r}: use route or fuse for a single prediction per image")
        return fns[mode][int(maps)]


def evaluate_ensemble(models_dir, split, image_ids, out_dir, mode: str = "route", options=None, decode=None,
                      fuse_temperature: float = 1.0, compute: bool = True, evaluate: bool = True,
                      overlays: int = 0, with_map_scores: bool = False, skeleton=None) -> list:
    """COCO keypoint evaluation of the ensemble of ``models_dir`` on ``image_ids`` of ``split``:
    ``mode`` ``route`` or ``fuse`` (one run, ``ensemble_<mode>``), or ``all`` (one run per expert,
    for the disagreement of :mod:`keras_openpose.ensemble.uncertainty`). Without ``compute`` the
    cached predictions of earlier runs are scored and no network is loaded.

    With ``with_map_scores`` the fused/routed maps are also scored before grouping
    (:func:`keras_openpose.evaluate.maps.map_scores`), written to ``<run>/map_scores.json``.

    Returns:
        ``[(summary dict of evaluate_predictor, run folder, map scores or None), ...]``.
    Raises:
        DataError: missing experts or classifier, or any error of the evaluation.
    """
    from ..data.domains import EXPERT_DOMAINS
    from ..evaluate.maps import map_scores
    from ..evaluate.runs import evaluate_predictor, model_tag, results_dir
    from ..files import write_json_atomic
    ens = None                                # scoring cached predictions needs no network
    if compute or with_map_scores:
        ens = Ensemble.from_models_dir(models_dir, options, need_classifier=mode != "all",
                                       fuse_temperature=fuse_temperature, **(decode or {}))
    n = len(image_ids)
    if mode == "all":
        runs = []
        for d, est in (ens.experts if ens else dict.fromkeys(EXPERT_DOMAINS)).items():
            out = results_dir(out_dir, split.split, model_tag(d), n)
            runs.append((evaluate_predictor(est.estimate if est else None, split, image_ids, out,
                                            f"{split.split}-{model_tag(d)}", compute=compute, evaluate=evaluate,
                                            skeleton=skeleton), out, None))
        return runs
    out = results_dir(out_dir, split.split, f"ensemble_{mode}", n)
    s = evaluate_predictor(ens.predictor(mode) if ens else None, split, image_ids, out, f"{split.split}-ensemble_{mode}",
                           compute=compute, evaluate=evaluate, overlays=overlays, skeleton=skeleton)
    ms = None
    if with_map_scores:
        ms = map_scores(ens.predictor(mode, maps=True), split, image_ids, codec=ens.codec)
        write_json_atomic(ms, out / "map_scores.json")
    return [(s, out, ms)]

