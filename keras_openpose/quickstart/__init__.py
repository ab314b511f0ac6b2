"""The quickstart: every stage of the system on the bundled COCO sample, end to end, on a real
trained network.

the shipped Lightweight OpenPose (trained on COCO; imported from its OpenVINO IR) as the normal
expert -> masks + store (train2017) -> the dark and motion-blur experts fine-tuned from it (effects
on the fly: realistic low light and brightness for dark; optionally distilled from the normal
network on the clean view) -> domain classifier -> five test domains of val2017 (normal, dark,
low_light, motion_blur, resolution) -> every expert and the ensemble (route, fuse) on every domain
(pycocotools AP with its 95 % bootstrap interval, map scores, from one pass of each expert per
image) -> expert disagreement against each person's OKS error per domain -> ``summary.json``.

Each step skips work whose output already exists, so an interrupted quickstart resumes.
Run: ``make quickstart`` or ``python -m keras_openpose.quickstart``.
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from ..config import PROJECT_ROOT, ExperimentConfig

NOTE = ("normal is the pretrained Lightweight OpenPose as shipped; the dark and motion-blur experts are "
        "fine-tuned from it for minutes on the 25 train2017 images with people. val2017 has 39 images with "
        "people: an AP moves by a few points with one image (the intervals say how much).")

#: Result names of the five predictors scored on every test domain.
PREDICTORS = {"normal": "ours", "dark": "dark", "motion_blur": "motion_blur", "ensemble": "ensemble_route",
              "ensemble_fuse": "ensemble_fuse"}


def _step(msg):
    print(f"\n== {msg}", flush=True)


def _timed(timings: dict, key: str, t0: float):
    timings[key] = round(timings.get(key, 0.0) + time.time() - t0, 1)


def _area(x, y):
    """Trapezoidal area under ``y(x)`` (``None`` without a curve)."""
    if not x or not y or len(x) != len(y):
        return None
    return float(sum((y[i] + y[i + 1]) / 2 * (x[i + 1] - x[i]) for i in range(len(x) - 1)))


def run_domain_pass(ens, split, results: Path, progress: bool = True) -> dict:
    """Every expert once per image of ``split`` (:meth:`~keras_openpose.ensemble.routing.Ensemble.every_maps`);
    each predictor's people are decoded from those maps and written as its evaluation run's
    ``predictions.jsonl`` (with the seconds it would have cost alone), and every predictor's maps
    are scored (:class:`~keras_openpose.evaluate.maps.MapScorer`). Returns ``{"scores", "routed_to"}``;
    written last (atomically) to ``results/maps-<split>.json``, the marker that the pass is done."""
    from tqdm import tqdm

    from ..data.domains import EXPERT_DOMAINS
    from ..evaluate.maps import MapScorer
    from ..evaluate.runs import results_dir
    from ..files import atomic_write, write_json_atomic
    marker = results / f"maps-{split.split}.json"
    if marker.exists():
        return json.loads(marker.read_text())
    keys = {"normal": "normal", "dark": "dark", "motion_blur": "motion_blur", "ensemble": "route", "ensemble_fuse": "fuse"}
    scorers = {m: MapScorer(ens.codec) for m in PREDICTORS}
    lines = {m: [] for m in PREDICTORS}
    choices = []
    for i in tqdm(split.image_ids, desc=f"experts on {split.split}", disable=not progress, leave=False):
        img = split.read(i)
        every = ens.every_maps(img)
        seconds = ens.last["seconds"]
        choices.append(ens.last["domain"])
        t = scorers["ensemble"].targets(split.anns_by_image[i], img.shape, every["route"])
        for m, k in keys.items():
            heat, paf, stride = every[k]
            t0 = time.perf_counter()
            people = ens.codec.decode(heat, paf, img.shape[:2], stride=stride)
            dt = seconds[k] + time.perf_counter() - t0
            lines[m].append(json.dumps({"image_id": int(i), "seconds": dt, "people": people}))
            scorers[m].add(every[k], t)
    for m, tag in PREDICTORS.items():
        with atomic_write(results_dir(results, split.split, tag, len(split.image_ids)) / "predictions.jsonl", "w") as f:
            f.write("\n".join(lines[m]) + "\n")
    rec = {"scores": {m: s.result() for m, s in scorers.items()},
           "routed_to": {d: choices.count(d) / max(len(choices), 1) for d in EXPERT_DOMAINS}}
    write_json_atomic(rec, marker)
    return rec


def run_quickstart(config_path, out_dir) -> dict:
    """Run the quickstart experiment ``config_path`` into ``out_dir``; returns the summary."""
    from ..ensemble.classifier import DomainClassifier, train_classifier, validate
    from ..data.coco import CocoSplit
    from ..data.testsets import make_domain_test_set
    from ..data.domains import EXPERT_DOMAINS
    from ..ensemble.routing import Ensemble
    from ..evaluate.runs import evaluate_predictor, results_dir
    from ..files import write_json_atomic
    from ..inference.estimator import PoseEstimator
    from ..model.networks import expert_path, publish_model
    from ..data.store import build_store, write_masks
    from ..train.run import train_and_publish
    from ..ensemble.uncertainty import disagreement_for_split
    from ..visualize import ap_table
    from ..model.weights import ensure_pretrained

    t_start = time.time()
    timings: dict = {}
    cfg = ExperimentConfig.from_yaml(config_path)
    out = Path(out_dir)
    root = Path(cfg.data.coco_root)
    root = root if root.is_absolute() else PROJECT_ROOT / root
    models = out / "models"
    train_split = CocoSplit(root, cfg.data.train_split)

    t0 = time.time()
    _step("1/8 the pretrained normal network (Lightweight OpenPose, COCO)")
    normal = expert_path(models, "normal")
    if not normal.exists():
        src = ensure_pretrained(PROJECT_ROOT / cfg.finetune.init_from)
        publish_model(src, models, "normal", {"config": cfg.model, "source": str(src)})
    print(f"{normal}: the shipped network, as trained on COCO")
    _timed(timings, "pretrained", t0)

    t0 = time.time()
    _step("2/8 masks and store from " + train_split.split)
    masks = out / "data" / f"masks_{train_split.split}"
    write_masks(train_split, masks, progress=True)
    store = out / "data" / f"{train_split.split}.h5"
    if not store.exists():
        r = build_store(train_split, store, mask_dir=masks, progress=True)
        print(f"store: {r['images']} images, {r['main_people']} main people, "
              f"{r['bytes'] / r['jpeg_bytes']:.2f}x the JPEG bytes")
    _timed(timings, "data", t0)

    t0 = time.time()
    _step("3/8 the dark and motion-blur experts, fine-tuned from the normal network (bfloat16 where the CPU has it)")
    for domain in EXPERT_DOMAINS[1:]:
        dst = expert_path(models, domain)
        if dst.exists():
            print(f"{dst} exists; skipping")
            continue
        tc = dataclasses.replace(cfg.train, effect=domain, steps=cfg.finetune.steps or cfg.train.steps,
                                 learning_rate=cfg.finetune.learning_rate or cfg.train.learning_rate)
        ft = cfg.finetune
        photos = None if ft.images is None else str(PROJECT_ROOT / ft.images)
        if ft.distill or photos:
            tc = dataclasses.replace(tc, distill_from=str(normal), distill_weight=ft.distill_weight, images=photos)
        init = normal
        run_cfg = dataclasses.replace(cfg, train=tc)
        how = []
        if ft.labels:
            how.append(f"the {train_split.split} store's annotated people")
        if photos:
            how.append(f"the photos of {ft.images} without labels")
        print(f"expert {domain}: {cfg.model}, {tc.steps} steps of {tc.batch_size} crops of {tc.augment.crop}, "
              f"fine-tuned from {init.name} on {' and '.join(how)}"
              + (f", distilled from it on the clean view (weight {tc.distill_weight})" if tc.distill_from else ""))
        run_dir = out / "train" / domain
        train_and_publish(run_cfg, str(store) if ft.labels else None, run_dir, models, init_from=init)
    _timed(timings, "experts", t0)

    t0 = time.time()
    _step("4/8 domain classifier")
    clf_path = models / "domain_classifier.pt"
    test_split = CocoSplit(root, cfg.data.test_split)
    clf_log = clf_path.with_suffix(".json")
    if not clf_path.exists() or not clf_log.exists() or "test_accuracy" not in json.loads(clf_log.read_text()):
        c = cfg.classifier
        train_classifier(train_split.image_dir, test_split.image_dir, clf_path, epochs=c.epochs, seed=c.seed,
                         val_fraction=c.val_fraction, dark_lights=c.dark_lights)
    log = json.loads(clf_log.read_text())
    clf_acc = log["test_accuracy"]
    print(f"classifier (CNN weight {log['cnn_weight']}, chosen on {len(log['val_images'])} held-out "
          f"{train_split.split} images): accuracy on the {test_split.split} images with "
          f"effects at held-out strengths: {clf_acc:.4f}; confusion (rows = truth, "
          f"{', '.join(log['confusion']['classes'])}): {log['confusion']['matrix']}")
    ll_file = clf_path.with_name("domain_classifier_low_light.json")
    if not ll_file.exists():
        ll = validate(clf_path, test_split.image_dir, "low_light", progress=True)
        write_json_atomic({k: ll[k] for k in ("accuracy", "accuracy_by_variant", "confusion")}, ll_file)
    ll = json.loads(ll_file.read_text())
    print("simulated low-light captures of the same images called dark: "
          + ", ".join(f"{v} {a:.0%}" for v, a in ll["accuracy_by_variant"].items()))
    _timed(timings, "classifier", t0)

    t0 = time.time()
    _step("5/8 test domains from " + test_split.split)
    test_root = out / "data" / "test"
    splits = {d: make_domain_test_set(test_split, d, test_root, progress=True) for d in cfg.data.test_domains}
    _timed(timings, "test_domains", t0)

    t0 = time.time()
    _step("6/8 every expert and the ensemble on every domain (one pass of each expert per image)")
    experts = {d: PoseEstimator.from_weights(expert_path(models, d), cfg.inference) for d in EXPERT_DOMAINS}
    ens = Ensemble(experts, DomainClassifier(clf_path))
    results = out / "eval"
    ap, ci, cost, runs, maps, routed = {}, {}, {}, {}, {}, {}
    for dom, sp in splits.items():
        rec = run_domain_pass(ens, sp, results)
        routed[dom] = rec["routed_to"]
        for m, tag in PREDICTORS.items():
            rdir = results_dir(results, sp.split, tag, len(sp.image_ids))
            s = evaluate_predictor(None, sp, sp.image_ids, rdir, f"{sp.split}-{tag}", progress=False,
                                   compute=False, skeleton=ens.codec.skeleton)
            ap.setdefault(m, {})[dom] = s["stats"]["AP"]
            ci.setdefault(m, {})[dom] = s.get("ap_interval")
            cost.setdefault(m, {})[dom] = s["seconds_per_image"]
            runs.setdefault(m, {})[dom] = {"stats": s["stats"], "pck": s["pck"], "dir": str(rdir)}
            maps.setdefault(m, {})[dom] = rec["scores"][m]
        print(f"  {dom}: AP " + ", ".join(f"{m} {ap[m][dom]:.3f}" for m in ap)
              + "; routed to " + ", ".join(f"{d} {v:.0%}" for d, v in routed[dom].items()))
    _timed(timings, "evaluation", t0)

    t0 = time.time()
    _step("7/8 expert disagreement against each person's OKS error, per domain")
    dis = {}
    for dom, sp in splits.items():
        rep = disagreement_for_split(sp, results, out / "disagreement", skeleton=ens.codec.skeleton)
        dis[dom] = {k: rep.get(k) for k in ("n_persons", "total_transl", "total_rot", "spearman_transl",
                                             "spearman_transl_interval", "spearman_rot", "spearman_rot_interval",
                                             "ause_transl", "ause_rot", "csv", "png")}
        sp = rep.get("sparsification_transl") or {}
        dis[dom]["oracle_area_transl"] = _area(sp.get("fractions"), sp.get("oracle"))
        dis[dom]["limbs"] = rep["limbs"]
        lo, hi = rep.get("spearman_transl_interval") or (float("nan"), float("nan"))
        print(f"  {dom}: {rep['n_persons']} people seen by >= 2 experts; rho(transl disagreement, 1 - OKS) "
              f"{rep.get('spearman_transl', float('nan')):.3f} [{lo:.2f}, {hi:.2f}], AUSE "
              f"{rep.get('ause_transl', float('nan')):.3f}; total transl {rep['total_transl']:.3f}")
    _timed(timings, "disagreement", t0)

    _step("8/8 summary")
    summary = {"ap": {m: ap[m] for m in ("normal", "dark", "motion_blur", "ensemble")},
               "ap_interval": ci, "ap_extra": {"ensemble_fuse": ap["ensemble_fuse"]},
               "ap_mean": {m: sum(v.values()) / len(v) for m, v in ap.items()},
               "classifier_accuracy": clf_acc, "classifier_cnn_weight": log["cnn_weight"],
               "classifier_low_light": ll["accuracy_by_variant"],
               "keypoint_f1": {m: {d: r["f1"] for d, r in v.items()} for m, v in maps.items()},
               "heatmap_mse": {m: {d: r["heatmap_mse"] for d, r in v.items()} for m, v in maps.items()},
               "paf_mse": {m: {d: r["paf_mse"] for d, r in v.items()} for m, v in maps.items()},
               "map_scores": maps, "routed_to": routed, "disagreement": dis,
               "seconds_per_image": cost, "runs": runs, "stage_seconds": timings,
               "wall_time_s": round(time.time() - t_start, 1), "note": NOTE}
    write_json_atomic(summary, out / "summary.json")
    table = {**summary["ap"], "ensemble_fuse": ap["ensemble_fuse"]}
    print("COCO keypoint AP (pycocotools) [95 % bootstrap interval, images resampled, 1000 draws]\n"
          + ap_table(table, intervals={m: {d: tuple(v) for d, v in ci[m].items() if v} for m in table}))
    print("\nmean AP over the domains: " + ", ".join(f"{m} {v:.3f}" for m, v in summary["ap_mean"].items()))
    print("\nroute: share of each test domain's images sent to each expert\n" + ap_table(routed))
    print("\nmilliseconds per image (network + decode; route and fuse include the classifier; per-image noise ~10 %)\n"
          + ap_table({m: {d: 1000 * v for d, v in r.items()} for m, r in cost.items()}, fmt=".0f"))
    print(f"\nclassifier accuracy {clf_acc:.4f}; wall time {summary['wall_time_s']:.0f} s "
          f"(" + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()) + ")")
    print(f"NOTE: {NOTE}")
    print(f"summary: {out / 'summary.json'}")
    return summary
