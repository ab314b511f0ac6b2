"""Pictures: skeleton overlays, heatmap/PAF panels, sparsification plots, the AP table."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .skeleton import DEFAULT_SKELETON, Skeleton


def draw_poses(image: np.ndarray, poses: list[dict], skeleton: Skeleton = DEFAULT_SKELETON,
               show_names: bool = False, thickness: int | None = None) -> np.ndarray:
    """Draw people (``{"keypoints": [3K floats]}`` in the skeleton's keypoint order, image pixels) on
    a copy of ``image`` (BGR uint8): limbs in the skeleton's colours, parts as white dots, part
    names with ``show_names``; a tracked person's ``"id"`` above it."""
    out = image.copy()
    t = thickness or max(1, round(max(image.shape[:2]) / 300))
    cols = skeleton.limb_colours
    for pose in poses:
        kp = np.asarray(pose["keypoints"], np.float32).reshape(1, -1, 3)
        parts = skeleton.keypoints_to_parts(kp)[0]
        for li, (a, b) in enumerate(skeleton.limbs):
            if parts[a, 2] > 0 and parts[b, 2] > 0:
                cv2.line(out, tuple(int(v) for v in parts[a, :2]), tuple(int(v) for v in parts[b, :2]),
                         cols[li], t + 1, cv2.LINE_AA)
        if "id" in pose and (parts[:, 2] > 0).any():      # a tracked person: its id above its top part
            top = parts[parts[:, 2] > 0][np.argmin(parts[parts[:, 2] > 0, 1])]
            cv2.putText(out, f"#{pose['id']}", (int(top[0]) - 8, int(top[1]) - 6 * t), cv2.FONT_HERSHEY_SIMPLEX,
                        0.3 * t + 0.3, (255, 255, 255), t, cv2.LINE_AA)
        for p, (x, y, v) in enumerate(parts):
            if v > 0:
                cv2.circle(out, (int(x), int(y)), t + 2, (255, 255, 255), -1, cv2.LINE_AA)
                if show_names:
                    cv2.putText(out, skeleton.parts[p], (int(x) + 3, int(y) - 3), cv2.FONT_HERSHEY_SIMPLEX,
                                0.35, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def map_panel(image: np.ndarray, heatmaps: np.ndarray, pafs: np.ndarray) -> np.ndarray:
    """Side-by-side panel: image, max over part heatmaps, PAF magnitude (sum over limbs), all at the
    image size (BGR uint8, width 3W)."""
    H, W = image.shape[:2]
    hm = np.clip(heatmaps[..., :-1].max(-1), 0, 1)
    mag = np.clip(np.sqrt(pafs[..., 0::2] ** 2 + pafs[..., 1::2] ** 2).max(-1), 0, 1)
    def up(m):
        m = cv2.resize((m * 255).astype(np.uint8), (W, H), interpolation=cv2.INTER_LINEAR)
        return cv2.addWeighted(image, 0.4, cv2.applyColorMap(m, cv2.COLORMAP_JET), 0.6, 0)
    return np.concatenate([image, up(hm), up(mag)], 1)


def plot_sparsification(curves: dict[str, dict], path: str | Path, title: str = "") -> None:
    """Save a PNG of sparsification curves (``{label: sparsification dict}``) with their oracles."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3.6), dpi=120)
    for i, (label, sp) in enumerate(curves.items()):
        if not sp.get("curve"):
            continue
        c = f"C{i}"
        ax.plot(sp["fractions"], sp["curve"], color=c, label=f"{label} (AUSE {sp['ause']:.3f})")
        ax.plot(sp["fractions"], sp["oracle"], color=c, ls="--", alpha=0.6)
    ax.set_xlabel("fraction of people removed (most uncertain first)")
    ax.set_ylabel("mean error (1 - OKS)")
    ax.set_title(title or "sparsification (dashed: oracle)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def ap_table(ap: dict[str, dict[str, float]], fmt: str = ".3f",
             intervals: dict[str, dict[str, tuple]] | None = None) -> str:
    """Text table of ``{model: {domain: value}}`` (models as rows), values in ``fmt``.

    With ``intervals`` (``{model: {domain: (low, high)}}``, e.g. the ``ap_interval`` of
    :func:`keras_openpose.evaluate.runs.evaluate_predictor`), a cell that has one reads
    ``0.368 [0.301-0.431]`` (bounds in ``fmt`` too) and the columns widen to fit; a missing or
    ``None`` interval leaves the value alone. Without ``intervals`` the table is as before.
    """
    domains = list(next(iter(ap.values())).keys()) if ap else []
    w = max([len(m) for m in ap] + [5])

    def cell(m, d):
        s = f"{ap[m].get(d, float('nan')):{fmt}}"
        iv = (intervals or {}).get(m, {}).get(d)
        if iv is not None and iv[0] is not None and iv[1] is not None:
            s += f" [{iv[0]:{fmt}}-{iv[1]:{fmt}}]"
        return s
    cells = {m: [cell(m, d) for d in domains] for m in ap}
    cw = [max([11, len(d)] + [len(cells[m][j]) for m in ap]) if intervals else 11 for j, d in enumerate(domains)]
    lines = [" " * w + " | " + " | ".join(f"{d:>{c}}" for d, c in zip(domains, cw))]
    lines.append("-" * len(lines[0]))
    for m in ap:
        lines.append(f"{m:<{w}} | " + " | ".join(f"{s:>{c}}" for s, c in zip(cells[m], cw)))
    return "\n".join(lines)
