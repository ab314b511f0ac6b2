"""Evaluation runs of any skeleton: :func:`score_detections` (COCO keypoint AP through
pycocotools, never reimplemented, with the skeleton's own OKS sigmas; bootstrap interval; PCK on the
reference's subsets) and :func:`evaluate_predictor` (a predictor over a split, resumable, with
its cached predictions, report and CSV).

Detections are COCO result dicts: ``{"image_id", "category_id", "keypoints": [3K floats],
"score"}`` in the pixel frame of the evaluated images.
"""
from __future__ import annotations

from pathlib import Path


from ..errors import DataError
from .cocoeval import bootstrap_ap, coco_keypoint_eval, match_to_gt
from .matching import match_by_distance
from .pck import CROWDED_INDEX, crowd_index, difficult_keypoints, head_pairs, pck

def check_layout(split, codec) -> None:
    """Raise :class:`DataError` when the split's keypoints per annotation are not the skeleton's
    (``codec``: a :class:`~keras_openpose.codec.PafCodec` or a :class:`~keras_openpose.skeleton.Skeleton`)."""
    skeleton = getattr(codec, "skeleton", codec)
    if split.num_keypoints != skeleton.num_keypoints:
        raise DataError(f"{split.annotation_file}: {split.num_keypoints} keypoints per annotation, the model's "
                        f"skeleton {skeleton.name!r} has {skeleton.num_keypoints}")


def reference_subsets(split) -> dict:
    """The reference's deform / rare / crowded PCK subsets (COCO val2014 ids, ``dataset/lists``)
    that have images in ``split``: ``{label: [image ids]}``."""
    import pandas as pd

    from ..config import PROJECT_ROOT
    df = pd.read_csv(PROJECT_ROOT / "dataset" / "lists" / "deform_rare_crowded_list.csv")
    out = {c: [int(v) for v in df[c].dropna() if int(v) in split.images] for c in df.columns}
    return {c: ids for c, ids in out.items() if ids}


def summary_line(s: dict, out) -> str:
    """One line per evaluation run: AP with its bootstrap interval when known (``AP 0.368 [0.30,
    0.43]``; or PCK when the skeleton has no OKS sigmas), timing."""
    split_ms = (f" (network {s['network_ms_per_image']:.0f} + decode {s['decode_ms_per_image']:.1f})"
                if "network_ms_per_image" in s else "")
    skipped = f"; {len(s['skipped_images'])} images skipped (see summary.json)" if s.get("skipped_images") else ""
    if s.get("stats") and s["stats"]["AP"] is None:
        return f"{out}: AP undefined: no annotated person in the {s['images']} images{skipped}"
    if s.get("stats"):
        st, iv = s["stats"], s.get("ap_interval")
        ci = f" [{iv[0]:.2f}, {iv[1]:.2f}]" if iv else ""
        return (f"{out}: AP {st['AP']:.3f}{ci}  AP50 {st['AP50']:.3f}  AP75 {st['AP75']:.3f}  AR {st['AR']:.3f}  "
                f"PCK@0.5 {s['pck']['all']:.3f}  {s['seconds_per_image'] * 1000:.0f} ms/image{split_ms} "
                f"({s['images']} images){skipped}")
    if "pck" in s:
        return (f"{out}: PCK@{s['pck_alpha']} {s['pck']['all']:.3f}  AUC {s['pck_auc']['all']:.3f}  "
                f"EPE {s['epe']['all']:.1f} px  (no OKS sigmas: AP undefined)  "
                f"{s['seconds_per_image'] * 1000:.0f} ms/image{split_ms} ({s['images']} images){skipped}")
    return f"{out}: {s['detections']} people in {s['images']} images{skipped}"


def model_tag(domain: str) -> str:
    """The reference's name of an expert in result folders: ``ours`` (normal), ``dark``, ``motion_blur``."""
    return {"": "ours", "normal": "ours"}.get(domain.lstrip("_"), domain.lstrip("_"))


def results_dir(base, split_name: str, tag: str, n_images: int) -> Path:
    """The run folder of one evaluation: ``<base>/<split>-<tag>-open-pose-single-scale-<n>``."""
    return Path(base) / f"{split_name}-{tag}-open-pose-single-scale-{n_images}"


def score_detections(split, image_ids, dets: list[dict], skeleton=None, subsets: dict | None = None,
                     ap_draws: int = 1000, seed: int = 0) -> dict:
    """Scores of detections on ``image_ids`` of ``split`` for ``skeleton`` (default OpenPose COCO-18).

    With OKS sigmas: COCO keypoint AP (pycocotools, the skeleton's sigmas), detections matched to GT
    at OKS 0.5 ("all" areas), PCK@0.5 (bbox) rows ``all``, ``difficult`` (hips/knees/ankles),
    ``head`` (head-size normaliser), ``crowded``, ``crowd_annotated``. Without sigmas: AP is
    undefined (``stats`` is ``None``), detections are matched by :func:`match_by_distance` and
    PCK is at 0.2 of the bbox size (the hand benchmarks' convention).

    Args:
        dets: result dicts; an ``id`` (1-based) is written into each.
        subsets: ``{label: [image ids]}`` for extra PCK rows.
        ap_draws: bootstrap draws of the AP interval (:func:`bootstrap_ap`, images resampled,
            ``seed``); 0 skips it.
    Returns:
        ``{"stats", "matches", "pck_alpha", "rows": {label: pck dict}, "ap_interval"}``:
        ``ap_interval`` = ``[low, high]``, the 95 % percentile-bootstrap interval of AP (``[0, 0]``
        without detections), ``None`` when AP is undefined or ``ap_draws`` is 0.
    """
    from ..skeleton import DEFAULT_SKELETON
    skeleton = skeleton or DEFAULT_SKELETON
    for k, d in enumerate(dets, 1):
        d["id"] = k
    gts = [a for i in image_ids for a in split.anns_by_image[i]]
    names = skeleton.keypoints
    if skeleton.oks_sigmas is not None:
        stats, ev = coco_keypoint_eval(split.data, dets, image_ids, skeleton.oks_sigmas)
        matches, alpha = match_to_gt(ev), 0.5
    else:
        stats, ev, matches, alpha = None, None, match_by_distance(gts, dets), 0.2
    interval = None
    if ap_draws and stats and stats["AP"] is not None:
        if ev is None:        # no detection: AP 0 in every draw
            interval = [0.0, 0.0]
        else:
            b = bootstrap_ap(ev, ap_draws, seed)
            interval = None if b["low"] is None else [b["low"], b["high"]]
    crowd_imgs = {a["image_id"] for a in split.data["annotations"] if a.get("iscrowd")}
    crowded = {i for i in image_ids if crowd_index(split.anns_by_image[i]) >= CROWDED_INDEX}
    rows = {"all": pck(gts, dets, matches, alpha)}
    hard = difficult_keypoints(names)
    if hard:
        rows["difficult"] = pck(gts, dets, matches, alpha, keypoints=hard)
    if head_pairs(names):
        rows["head"] = pck(gts, dets, matches, alpha, normaliser="head", head=head_pairs(names))
    if crowded:
        rows["crowded"] = pck([a for a in gts if a["image_id"] in crowded], dets, matches, alpha)
    if crowd_imgs & set(image_ids):
        rows["crowd_annotated"] = pck([a for a in gts if a["image_id"] in crowd_imgs], dets, matches, alpha)
    for label, ids in (subsets or {}).items():
        ids = set(ids)
        rows[label] = pck([a for a in gts if a["image_id"] in ids], dets, matches, alpha)
    return {"stats": stats, "matches": matches, "pck_alpha": alpha, "rows": rows, "ap_interval": interval}


def evaluate_predictor(predict, split, image_ids, out_dir, name: str = "run", progress: bool = True,
                       overlays: bool = False, compute: bool = True, evaluate: bool = True,
                       subsets: dict | None = None, timing: dict | None = None, skeleton=None,
                       ap_draws: int = 1000) -> dict:
    """Run ``predict(image) -> people`` over ``image_ids`` of ``split`` and write the report.

    Files in ``out_dir``: ``predictions.jsonl`` (per image, appended as it goes: an interrupted run
    resumes where it stopped), ``<name>_result.json`` (COCO results), ``<name>_result_matchGtId.json``
    (each detection with its matched GT id and the image's ``iscrowd`` flag), ``<name>_result.csv``
    (COCO stats when the skeleton has OKS sigmas, PCK rows, timing), ``summary.json``, and with
    ``overlays`` ``predictions/<file name>`` images.

    Args:
        compute: run the predictor (else reuse ``predictions.jsonl``).
        evaluate: compute COCO stats / PCK (needs ground truth), see :func:`score_detections`.
        subsets: ``{label: [image ids]}`` for extra PCK rows.
        timing: a predictor's running ``{"network_s", "decode_s", "images"}`` (as
            :class:`~keras_openpose.inference.estimator.PoseEstimator` keeps); adds the per-image split.
        skeleton: the keypoint layout (sigmas, names, limbs for overlays); default OpenPose COCO-18.
        ap_draws: bootstrap draws of the AP interval (:func:`bootstrap_ap`); 0 skips it.
    Returns:
        the summary dict (stats, ``ap_interval`` = ``[low, high]`` 95 % bootstrap interval of AP or
        ``None`` when AP is undefined, pck, seconds per image, counts). The CSV carries the interval
        as the rows ``ap_interval low`` / ``ap_interval high`` (empty when undefined). A skipped
        image (``DataError``) adds no time.
    Raises:
        DataError: images without cached predictions (``compute`` off), or an overlay that cannot
            be written (``<path>: <OS error>``, :func:`keras_openpose.files.write_image_atomic`).
    """
    import json
    import time

    import pandas as pd
    from tqdm import tqdm

    from ..files import atomic_write, write_image_atomic, write_json_atomic
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cache = out_dir / "predictions.jsonl"
    done = {}
    if cache.exists():
        for line in cache.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                break  # a line cut by an interruption: redo from there
            done[rec["image_id"]] = rec
    seconds = sum(r["seconds"] for r in done.values())
    if compute:
        todo = [i for i in image_ids if i not in done]
        if overlays:
            from ..visualize import draw_poses
            (out_dir / "predictions").mkdir(exist_ok=True)
        with open(cache, "a") as f:
            for i in tqdm(todo, desc=name, disable=not progress, leave=False):
                try:
                    img = split.read(i)
                    t0 = time.perf_counter()
                    people = predict(img)
                    dt = time.perf_counter() - t0
                    rec = {"image_id": int(i), "seconds": dt, "people": people}
                except DataError as e:    # a missing, unreadable or unusable image: skipped and listed
                    img, rec = None, {"image_id": int(i), "seconds": 0.0, "people": [], "error": str(e)}
                f.write(json.dumps(rec) + "\n")
                f.flush()
                done[i] = rec
                seconds += rec["seconds"]     # 0 for a skipped image (``dt`` is unset or stale there)
                if overlays and img is not None:   # a failed write (full disk) ends the run: one line, the path
                    write_image_atomic(draw_poses(img, people, skeleton) if skeleton else draw_poses(img, people),
                                       out_dir / "predictions" / split.images[i]["file_name"])
    missing = [i for i in image_ids if i not in done]
    if missing:
        raise DataError(f"{cache}: no predictions for {len(missing)} images (run with --compute_keypoint True)")
    bad = [done[i]["error"] for i in image_ids if "error" in done[i]]
    image_ids = [i for i in image_ids if "error" not in done[i]]
    dets = [{"image_id": int(i), "category_id": 1, **p} for i in image_ids for p in done[i]["people"]]
    write_json_atomic(dets, out_dir / f"{name}_result.json")
    summary = {"name": name, "images": len(image_ids), "detections": len(dets),
               "seconds_per_image": seconds / max(len(image_ids), 1), "skipped_images": bad}
    if timing and timing.get("images"):
        summary["network_ms_per_image"] = 1000 * timing["network_s"] / timing["images"]
        summary["decode_ms_per_image"] = 1000 * timing["decode_s"] / timing["images"]
    if evaluate:
        sc = score_detections(split, image_ids, dets, skeleton, subsets, ap_draws)
        stats, rows, alpha = sc["stats"], sc["rows"], sc["pck_alpha"]
        crowd_imgs = {a["image_id"] for a in split.data["annotations"] if a.get("iscrowd")}
        write_json_atomic([{**d, "gtId": sc["matches"].get(d["id"], 0), "iscrowd": int(d["image_id"] in crowd_imgs)}
                           for d in dets], out_dir / f"{name}_result_matchGtId.json")
        summary.update({"stats": stats, "ap_interval": sc["ap_interval"], "pck_alpha": alpha,
                        "pck": {k: v["pck"] for k, v in rows.items()},
                        "pck_auc": {k: v["auc"] for k, v in rows.items()},
                        "nme": {k: v["nme"] for k, v in rows.items()},
                        "epe": {k: v["epe"] for k, v in rows.items()},
                        "pck_counts": {k: [v["correct"], v["total"]] for k, v in rows.items()}})
        table = [(f"{k}", v) for k, v in (stats or {}).items()]
        if stats:     # two numeric rows, so the value column stays numeric; empty when undefined
            iv = sc["ap_interval"] or [None, None]
            table += [("ap_interval low", iv[0]), ("ap_interval high", iv[1])]
        table += [(f"PCK@{alpha} {k}", v["pck"]) for k, v in rows.items()]
        table += [("PCK AUC@0-0.5 all", rows["all"]["auc"]), ("NME all", rows["all"]["nme"]),
                  ("EPE px all", rows["all"]["epe"])]
        table.append(("seconds per image", summary["seconds_per_image"]))
        for k in ("network_ms_per_image", "decode_ms_per_image"):
            if k in summary:
                table.append((k.replace("_", " "), summary[k]))
        df = pd.DataFrame(table, columns=["evaluation_metrics", "value"])
        with atomic_write(out_dir / f"{name}_result.csv", "w") as f:
            df.to_csv(f, index=False)
    write_json_atomic(summary, out_dir / "summary.json")
    return summary


