"""People across video frames: stable ids by greedy OKS matching, and One-Euro smoothing.

* **Ids.** Each frame, the OKS (pycocotools' ``computeOks``, the skeleton's sigmas) between every
  detected person and every live track is computed; a track is its last keypoints moved by its
  velocity (mean keypoint displacement per frame) over the frames since, area = their bounding box;
  pairs are taken greedily from the highest OKS down, each person and track used once, while OKS
  >= ``min_oks``. Unmatched people start new tracks (new ids, never reused); a track unseen for more
  than ``max_gap`` frames ends, so a person hidden for a few frames keeps its id.
* **Smoothing** (optional): the One-Euro filter (Casiez, Roussel and Vogel, CHI 2012) per keypoint
  coordinate: a low-pass filter whose cutoff rises with speed,
  ``f_c = min_cutoff + beta |dx/dt|``, ``alpha = 1 / (1 + 1 / (2 pi f_c dt))``,
  ``x_hat = alpha x + (1 - alpha) x_hat_prev``: still keypoints stop jittering, fast ones do not lag.
"""
from __future__ import annotations

import math

import numpy as np

from ..skeleton import DEFAULT_SKELETON, Skeleton


class OneEuroFilter:
    """One-Euro filter over ``(K, 2)`` keypoint coordinates at ``fps`` frames per second (module doc).
    Keypoints not found in a frame pass through and leave their state alone; a keypoint found again
    restarts from its new position."""

    def __init__(self, fps: float = 25.0, min_cutoff: float = 1.0, beta: float = 0.05, d_cutoff: float = 1.0):
        self.dt, self.min_cutoff, self.beta, self.d_cutoff = 1.0 / fps, min_cutoff, beta, d_cutoff
        self.x = self.dx = self.known = None

    def _alpha(self, cutoff):
        return 1.0 / (1.0 + 1.0 / (2 * math.pi * cutoff * self.dt))

    def __call__(self, x: np.ndarray, found: np.ndarray) -> np.ndarray:
        """Filtered ``x (K, 2)``; ``found (K,)`` marks the keypoints present in this frame."""
        x = np.asarray(x, np.float64)
        found = np.asarray(found, bool)
        if self.x is None:
            self.x, self.dx, self.known = x.copy(), np.zeros_like(x), np.zeros(len(x), bool)
        new = found & ~self.known
        self.x[new], self.dx[new] = x[new], 0.0
        go = found & self.known
        a_d = self._alpha(self.d_cutoff)
        self.dx[go] = a_d * (x[go] - self.x[go]) / self.dt + (1 - a_d) * self.dx[go]
        a = self._alpha(self.min_cutoff + self.beta * np.abs(self.dx[go]))
        self.x[go] = a * x[go] + (1 - a) * self.x[go]
        self.known |= found
        out = x.copy()
        out[found] = self.x[found]
        return out


class PoseTracker:
    """Stable person ids over a stream of frames (see module doc).

    Args:
        skeleton: the keypoint layout (OKS sigmas for matching: :attr:`Skeleton.pairing_sigmas`).
        min_oks: least OKS for a person to continue a track.
        max_gap: frames a track may go unseen and still be continued.
        smooth: One-Euro smoothing of the keypoints of tracked people; ``fps``, ``min_cutoff``,
            ``beta`` are its settings.
    """

    def __init__(self, skeleton: Skeleton = DEFAULT_SKELETON, min_oks: float = 0.3, max_gap: int = 5,
                 smooth: bool = False, fps: float = 25.0, min_cutoff: float = 1.0, beta: float = 0.05):
        self.sigmas = skeleton.pairing_sigmas
        self.min_oks, self.max_gap, self.smooth = min_oks, max_gap, smooth
        self.filter_args = (fps, min_cutoff, beta)
        self.tracks: dict[int, dict] = {}
        self.frame = 0
        self.next_id = 1

    def update(self, people: list[dict]) -> list[dict]:
        """Give each person of this frame an ``"id"`` (and smoothed ``"keypoints"`` with ``smooth``);
        returns new dicts in the input order."""
        from ..evaluate.matching import oks_matrix
        from ..evaluate.matching import oks_reference
        self.frame += 1
        live = [t for t, tr in self.tracks.items() if self.frame - tr["seen"] <= self.max_gap + 1]
        self.tracks = {t: self.tracks[t] for t in live}
        oks = oks_matrix(people, [oks_reference(self._predicted(self.tracks[t])) for t in live], self.sigmas) \
            if people and live else np.zeros((len(people), len(live)))
        ids = [0] * len(people)
        for k in np.argsort(-oks, axis=None, kind="stable") if oks.size else []:
            i, j = divmod(int(k), len(live))
            if oks[i, j] < self.min_oks:
                break
            if ids[i] or live[j] in ids:
                continue
            ids[i] = live[j]
        out = []
        for i, person in enumerate(people):
            if not ids[i]:
                ids[i] = self.next_id
                self.next_id += 1
                self.tracks[ids[i]] = {"filter": OneEuroFilter(*self.filter_args)}
            tr = self.tracks[ids[i]]
            q = {**person, "id": ids[i]}
            if self.smooth:
                k = np.asarray(person["keypoints"], np.float64).reshape(-1, 3)
                k[:, :2] = tr["filter"](k[:, :2], k[:, 2] > 0)
                q["keypoints"] = k.reshape(-1).tolist()
            if "person" in tr:   # velocity: mean displacement per frame of the keypoints seen both times
                a = np.asarray(tr["person"]["keypoints"]).reshape(-1, 3)
                b = np.asarray(q["keypoints"]).reshape(-1, 3)
                both = (a[:, 2] > 0) & (b[:, 2] > 0)
                if both.any():
                    tr["velocity"] = (b[both, :2] - a[both, :2]).mean(0) / (self.frame - tr["seen"])
            tr.update(person=q, seen=self.frame)
            out.append(q)
        return out

    def _predicted(self, tr: dict) -> dict:
        """The track's last person moved by its velocity to the current frame."""
        k = np.asarray(tr["person"]["keypoints"], np.float64).reshape(-1, 3).copy()
        found = k[:, 2] > 0
        k[found, :2] += tr.get("velocity", np.zeros(2)) * (self.frame - tr["seen"])
        return {"keypoints": k.reshape(-1).tolist()}
