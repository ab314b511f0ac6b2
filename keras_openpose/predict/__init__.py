"""Poses in an image, a folder, a video or a webcam (``python -m keras_openpose.predict``):
:func:`predict_source`, from one expert or the ensemble of a models folder, with overlays, map panels,
tracking and smoothing. It sits above :mod:`keras_openpose.ensemble` and
:mod:`keras_openpose.inference.tracking`, which it combines.
"""
from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np

from ..config import InferenceOptions
from ..errors import DataError
from ..inference.estimator import PoseEstimator
from ..inference.sources import VideoWriter, check_source, frames, is_video

def predict_source(source: str, out_dir: str | Path, weights: str | Path | None = None,
                   models_dir: str | Path | None = None, mode: str = "route",
                   options: InferenceOptions | None = None, decode: dict | None = None,
                   show_names: bool = False, show_maps: bool = False, max_frames: int | None = None,
                   track: bool = False, smooth: bool = False) -> dict:
    """Poses in every frame of ``source`` (:func:`frames`) from one expert (``weights``) or the
    ensemble of ``models_dir`` (``mode`` route or fuse); one network pass per frame serves both the
    people and the map panels.

    Writes ``out_dir/<name>_pose.jpg`` per image (``name`` = the file name with its extension, e.g.
    ``a.png_pose.jpg``; or ``overlay.mp4`` for a video or webcam) and ``poses.json`` =
    ``[{"image_id": frame or file name, "category_id": 1, "keypoints": [3K], "score"}]``; every
    entry of a folder that is not used (unreadable or truncated images, other file types, subfolders)
    is listed with its reason in ``skipped.json``. With ``track``
    (videos) every person gets a stable ``"id"`` (:class:`keras_openpose.inference.tracking.PoseTracker`),
    ``smooth`` adds One-Euro smoothing of its keypoints.

    Returns:
        ``{"frames", "people", "skipped": [lines], "network_ms", "decode_ms", "fps"}`` (milliseconds
        per frame; ``fps`` over the whole stream, reading and writing included).
    Raises:
        DataError: a missing model or an unreadable source, an output folder that cannot be written
            (checked before any work), a failed write (naming the file and the OS error).
    """
    from ..files import check_output_dir
    from ..visualize import draw_poses, map_panel
    check_source(source)
    out = check_output_dir(out_dir)
    decode = decode or {}
    if weights:
        experts = [PoseEstimator.from_weights(weights, options, **decode)]
        maps_fn, decoder = experts[0].maps, experts[0]
    else:
        from ..ensemble.routing import Ensemble
        ens = Ensemble.from_models_dir(models_dir, options, **decode)
        experts, maps_fn, decoder = list(ens.experts.values()), ens.predictor(mode, maps=True), ens
    skeleton = experts[0].skeleton
    tracker = None
    if track or smooth:
        from ..inference.tracking import PoseTracker
        tracker = PoseTracker(skeleton, smooth=smooth)
    video = VideoWriter(out / "overlay.mp4") if is_video(source) else None
    results, n, skipped = [], 0, []

    def finish(name, frame, maps):
        """Decode, track, draw and write one frame (runs while the network works on the next)."""
        nonlocal n
        heat, paf, stride = maps
        people = decoder.decode(heat, paf, stride, frame.shape[:2])
        if tracker is not None:
            people = tracker.update(people)
        n += 1
        vis = draw_poses(frame, people, skeleton, show_names=show_names)
        if show_maps:
            vis = np.concatenate([vis, map_panel(frame, heat, paf)[:, frame.shape[1]:]], 1)
        results.extend({"image_id": name, "category_id": 1, **q} for q in people)
        if video is not None:
            video.write(vis)
        else:
            _write_image(vis, out / f"{name}_pose.jpg")

    t0 = time.perf_counter()
    from concurrent.futures import ThreadPoolExecutor
    try:
        # frame t is decoded and drawn while the network (one call in flight: an ensemble keeps
        # per-call state) runs on frame t+1, and a reader thread fetches the frames ahead
        with ThreadPoolExecutor(1) as network, ThreadPoolExecutor(1) as reader:
            stream = frames(source, skipped)
            ahead = reader.submit(next, stream, None)
            pending, k = None, 0
            while True:
                item = ahead.result()
                if item is not None and (max_frames is None or k < max_frames):
                    ahead = reader.submit(next, stream, None)
                else:
                    item = None
                done = None
                if pending is not None:
                    try:
                        done = (pending[0], pending[1], pending[2].result())
                    except DataError as e:      # e.g. an image too elongated for the network
                        skipped.append(f"{pending[0]}: {e}")
                pending = None if item is None else (*item, network.submit(maps_fn, item[1]))
                if done is not None:
                    finish(*done)
                if pending is None:
                    break
                k += 1
    except BaseException:
        if video is not None:
            try:
                video.close()
            except DataError:
                pass                            # the first error is the one to report
        raise
    if video is not None:
        video.close()
    wall = time.perf_counter() - t0
    _write_json(results, out / "poses.json")
    if skipped:
        _write_json(skipped, out / "skipped.json")
    per = max(n, 1)
    return {"frames": n, "people": len(results), "skipped": skipped,
            "network_ms": 1000 * sum(e.timing["network_s"] for e in experts) / per,
            "decode_ms": 1000 * sum(e.timing["decode_s"] for e in experts) / per,
            "fps": n / wall if wall > 0 else 0.0}


def _write_image(image: np.ndarray, path: Path) -> None:
    """Write an overlay (JPEG) atomically; a failed encode or write is a :class:`DataError`
    naming the file and the OS error."""
    from ..files import os_error_line, write_bytes_atomic
    ok, buf = cv2.imencode(".jpg", image)
    if not ok:
        raise DataError(f"{path}: JPEG encoding failed")
    try:
        write_bytes_atomic(buf.tobytes(), path)
    except OSError as e:
        raise DataError(os_error_line(e) or f"{path}: {e}") from None


def _write_json(obj, path: Path) -> None:
    from ..files import os_error_line, write_json_atomic
    try:
        write_json_atomic(obj, path)
    except OSError as e:
        raise DataError(os_error_line(e) or f"{path}: {e}") from None
