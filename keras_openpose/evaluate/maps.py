"""Scores of the network's maps themselves, against the ground truth's encoded maps: heatmap and
PAF MSE under the ignore mask, and keypoint F1 of the peaks within a radius (a check of the maps
that does not depend on the decoder's grouping).
"""
from __future__ import annotations


import numpy as np


#: Names of COCOeval's 10 keypoint stats, in order.
class MapScorer:
    """Scores of a model's *maps*, before any grouping: what AP cannot tell apart for weak networks.

    Maps are ``(heatmaps (h, w, P+1), pafs (h, w, 2L), stride)`` as
    :meth:`keras_openpose.inference.estimator.PoseEstimator.maps` returns them (``stride`` image pixels per
    cell). They are compared with the targets the networks are trained on (eq. 7-9 of Cao et al.
    2017, :meth:`keras_openpose.codec.PafCodec.encode` at that stride, drawn from the non-crowd
    people with a labelled keypoint) where the ignore mask (crowds, unlabelled people) allows.

    * ``heatmap_mse``, ``paf_mse``: mean squared error per unmasked cell and channel (the training
      loss, per element), over all images;
    * keypoint ``recall``: share of labelled parts (``v > 0``) with a heatmap peak of the same part
      (3x3 NMS, ``peak_threshold``) within ``alpha * max(w, h)`` of the person's bbox, input pixels;
    * keypoint ``precision``: share of peaks (outside ignored regions) within that distance of a
      labelled part of the same channel; ``f1``; ``peaks_per_image``.

    Usage: ``t = scorer.targets(anns, image_shape, maps)`` once per image (it depends only on the
    annotations and the map grid, so several models of the same image share it), then
    ``scorer.add(maps, t)`` per model; :meth:`result` gives the scores.
    """

    def __init__(self, codec=None, peak_threshold: float | None = None, alpha: float = 0.1):
        from ..codec import DEFAULT_CODEC
        self.codec = codec or DEFAULT_CODEC
        self.skeleton = self.codec.skeleton
        self.peak_threshold = self.codec.decode_options.peak_threshold if peak_threshold is None else peak_threshold
        self.alpha = alpha
        self.se_h = self.se_p = self.n_h = self.n_p = 0.0
        self.hits = self.parts_total = self.good_peaks = self.peaks_total = self.images = 0

    def targets(self, anns: list[dict], image_shape, maps) -> dict:
        """Targets of one image: heatmaps, PAFs and the ignore mask at the cells of ``maps``, the
        ignore mask in image pixels, the parts ``(N, P, 3)`` (image px) and the match radii ``(N,)``."""
        from ..data.masks import ignore_mask, keypoints_array
        heat, _, stride = maps
        H, W = image_shape[:2]
        h, w = heat.shape[:2]
        people = [a for a in anns if not a.get("iscrowd") and a.get("num_keypoints", 0) > 0]
        kp = keypoints_array(people, self.skeleton.num_keypoints)
        parts = self.skeleton.keypoints_to_parts(kp)
        th, tp = self.codec.encode(kp, image_shape, stride=stride, map_shape=(h, w))
        m = ignore_mask(anns, H, W)
        ys = np.clip(np.rint(self.codec.cell_centres(h, stride)), 0, H - 1).astype(int)
        xs = np.clip(np.rint(self.codec.cell_centres(w, stride)), 0, W - 1).astype(int)
        radius = np.array([self.alpha * max(a["bbox"][2], a["bbox"][3]) for a in people], np.float64)
        return {"heat": th, "paf": tp, "mask_cells": m[np.ix_(ys, xs)].astype(np.float64)[..., None],
                "mask": m, "parts": parts, "radius": radius}

    def add(self, maps, t: dict) -> None:
        """Accumulate one model's maps of one image against that image's :meth:`targets`."""
        from ..codec import find_peaks
        heat, paf, stride = maps
        mc = t["mask_cells"]
        self.se_h += float((mc * (heat - t["heat"]) ** 2).sum())
        self.se_p += float((mc * (paf - t["paf"]) ** 2).sum())
        self.n_h += float(mc.sum()) * heat.shape[2]
        self.n_p += float(mc.sum()) * paf.shape[2]
        # keypoint detection, before grouping: every peak against every labelled part of its channel
        P = self.skeleton.num_parts
        ps, fx, fy, _ = find_peaks(heat[..., :P], self.peak_threshold)
        px, py = self.codec.to_pixels(fx, stride), self.codec.to_pixels(fy, stride)
        m = t["mask"]
        H, W = m.shape
        keep = m[np.clip(np.rint(py).astype(int), 0, H - 1), np.clip(np.rint(px).astype(int), 0, W - 1)] > 0
        parts = t["parts"]                                                   # (N, P, 3)
        labelled = parts[..., 2] > 0
        g = parts[:, ps]                                                     # (N, n, 3): the peak's part
        near = (np.hypot(px - g[..., 0], py - g[..., 1]) <= t["radius"][:, None]) & (g[..., 2] > 0)  # (N, n)
        found = np.zeros_like(labelled)
        np.logical_or.at(found, (slice(None), ps), near)
        self.hits += int((found & labelled).sum())
        self.parts_total += int(labelled.sum())
        self.peaks_total += int(keep.sum())
        self.good_peaks += int((near.any(0) & keep).sum())
        self.images += 1

    def result(self) -> dict:
        """``{"heatmap_mse", "paf_mse", "recall", "precision", "f1", "peaks_per_image", "images"}``."""
        rec = self.hits / self.parts_total if self.parts_total else float("nan")
        prec = self.good_peaks / self.peaks_total if self.peaks_total else 0.0
        f1 = 2 * rec * prec / (rec + prec) if (rec + prec) > 0 else 0.0
        return {"heatmap_mse": self.se_h / max(self.n_h, 1), "paf_mse": self.se_p / max(self.n_p, 1),
                "recall": rec, "precision": prec, "f1": f1,
                "peaks_per_image": self.peaks_total / max(self.images, 1), "images": self.images}


def map_scores(maps_fn, split, image_ids, codec=None, peak_threshold: float | None = None, alpha: float = 0.1,
               progress: bool = True, name: str = "maps") -> dict:
    """:class:`MapScorer` scores of ``maps_fn(image) -> (heatmaps, pafs, stride)`` over ``image_ids``
    of ``split``; returns :meth:`MapScorer.result`."""
    from tqdm import tqdm
    scorer = MapScorer(codec, peak_threshold, alpha)
    for i in tqdm(image_ids, desc=name, disable=not progress, leave=False):
        img = split.read(i)
        maps = maps_fn(img)
        scorer.add(maps, scorer.targets(split.anns_by_image.get(i, []), img.shape, maps))
    return scorer.result()
