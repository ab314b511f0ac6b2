"""The quickstart: every stage of the system on the bundled COCO sample, end to end.

masks + store (train2017) -> three experts (normal from scratch, dark and motion blur fine-tuned
from it, effects on the fly) -> domain classifier -> four test domains of val2017 -> every expert
and the ensemble (route, fuse) on every domain (pycocotools AP) -> expert disagreement per domain
-> ``summary.json`` and the AP table.

Each step skips work whose output already exists, so an interrupted quickstart resumes.
Run: ``make quickstart`` or ``python -m keras_openpose.quickstart``.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from .cli import REPO, _model_tag, _publish, _results_dir, disagreement_for_split, run  # noqa: E402
from .config import TrainConfig, from_dict, load_yaml  # noqa: E402

NOTE = ("These APs come from tiny networks trained for minutes on a CPU with ~25 images: they show "
        "that every stage runs and hands its output on, not what the method can reach.")


def _step(msg):
    print(f"\n== {msg}", flush=True)


def run_quickstart(config_path, out_dir) -> dict:
    """Run the quickstart described by ``config_path`` into ``out_dir``; returns the summary."""
    from dataclasses import replace

    from tqdm import tqdm

    from .classifier import train_classifier
    from .coco import CocoSplit, make_domain_test_set, write_json_atomic
    from .codec import DecodeOptions
    from .domains import EXPERT_DOMAINS
    from .evaluate import MapScorer, evaluate_predictor
    from .inference import InferenceOptions, PoseEstimator, load_network
    from .store import build_store, write_masks
    from .train import train_expert
    from .visualize import ap_table

    t_start = time.time()
    cfg = load_yaml(config_path)
    out = Path(out_dir)
    data_cfg = cfg["data"]
    root = Path(data_cfg["coco_root"])
    if not root.is_absolute():
        root = REPO / root
    models = out / "models"
    train_split = CocoSplit(root, data_cfg["train_split"])

    _step("1/7 masks and store from " + data_cfg["train_split"])
    masks = out / "data" / f"masks_{train_split.split}"
    write_masks(train_split, masks, progress=True)
    store = out / "data" / f"{train_split.split}.h5"
    if not store.exists():
        r = build_store(train_split, store, mask_dir=masks, progress=True)
        print(f"store: {r['images']} images, {r['main_people']} main people, "
              f"{r['bytes'] / r['jpeg_bytes']:.2f}x the JPEG bytes")

    _step("2/7 three experts (small network, bfloat16 on CPU)")
    base = from_dict(TrainConfig, cfg["train"], str(config_path))
    for domain in EXPERT_DOMAINS:
        dst = models / f"pose_{domain}.keras"
        if dst.exists():
            print(f"{dst} exists; skipping")
            continue
        run_dir = out / "train" / domain
        if domain == "normal":
            tc = replace(base, effect=domain)
            init = None
        else:
            tc = replace(base, effect=domain, steps=cfg.get("finetune_steps", base.steps),
                         learning_rate=cfg.get("finetune_learning_rate", base.learning_rate))
            init = models / "pose_normal.keras"
        print(f"expert {domain}: {tc.model}, {tc.steps} steps of {tc.batch_size}" + (f", fine-tuned from {init.name}" if init else ""))
        final = train_expert(tc, store, run_dir, init_from=init)
        _publish(final, models, domain, {"config": tc.model, "steps": tc.steps, "run": str(run_dir)})

    _step("3/7 domain classifier")
    clf_path = models / "domain_classifier.pt"
    test_split = CocoSplit(root, data_cfg["test_split"])
    clf_log = clf_path.with_suffix(".json")
    if not clf_path.exists() or not clf_log.exists() or "test_accuracy" not in json.loads(clf_log.read_text()):
        train_classifier(train_split.image_dir, test_split.image_dir, clf_path,
                         epochs=cfg.get("classifier", {}).get("epochs", 10))
    log = json.loads(clf_log.read_text())
    clf_acc = log["test_accuracy"]
    print(f"classifier (CNN weight {log['cnn_weight']}, chosen on {len(log['val_images'])} held-out "
          f"{train_split.split} images): accuracy on the {test_split.split} images with "
          f"effects at held-out strengths: {clf_acc:.4f}; confusion (rows = truth, "
          f"{', '.join(log['confusion']['classes'])}): {log['confusion']['matrix']}")

    ll_file = clf_path.with_name("domain_classifier_low_light.json")
    if not ll_file.exists():
        from .classifier import validate
        ll = validate(clf_path, test_split.image_dir, "low_light", progress=True)
        write_json_atomic({k: ll[k] for k in ("accuracy", "accuracy_by_variant", "confusion")}, ll_file)
    ll = json.loads(ll_file.read_text())
    print("simulated low-light captures of the same images called dark: "
          + ", ".join(f"{v} {a:.0%}" for v, a in ll["accuracy_by_variant"].items()))

    _step("4/7 test domains from " + test_split.split)
    test_root = out / "data" / "test"
    domains = data_cfg["test_domains"]
    splits = {d: make_domain_test_set(test_split, d, test_root, progress=True) for d in domains}

    _step("5/7 every expert and the ensemble on every domain")
    dec = DecodeOptions(**cfg.get("decode", {}))
    opts = InferenceOptions(decode=dec)
    experts = {d: PoseEstimator(load_network(models / f"pose_{d}.keras"), opts) for d in EXPERT_DOMAINS}
    from .classifier import DomainClassifier
    from .ensemble import Ensemble
    ens = Ensemble(experts, DomainClassifier(clf_path))
    results = out / "eval"
    ap, cost, runs = {}, {}, {}
    for dom, sp in splits.items():
        ids = sp.image_ids
        for model_name, predict in [*((d, e.estimate) for d, e in experts.items()),
                                    ("ensemble", ens.route), ("ensemble_fuse", ens.fuse)]:
            tag = "ensemble_route" if model_name == "ensemble" else (
                "ensemble_fuse" if model_name == "ensemble_fuse" else _model_tag(model_name))
            rdir = _results_dir(results, sp.split, tag, len(ids))
            s = evaluate_predictor(predict, sp, ids, rdir, f"{sp.split}-{tag}", progress=True, subsets=None)
            ap.setdefault(model_name, {})[dom] = s["stats"]["AP"]
            cost.setdefault(model_name, {})[dom] = s["seconds_per_image"]
            runs.setdefault(model_name, {})[dom] = {"stats": s["stats"], "pck": s["pck"], "dir": str(rdir)}
        print(f"  {dom}: " + ", ".join(f"{m} {ap[m][dom]:.3f}" for m in ap))

    # AP is zero for networks this weak, so the maps themselves are scored too (before grouping):
    # keypoint F1 of the heatmap peaks and the heatmap / PAF error against the training targets.
    # One pass per image: each expert runs once, route and fuse are made from its maps.
    maps, routed = {}, {}
    names = {**{d: d for d in EXPERT_DOMAINS}, "route": "ensemble", "fuse": "ensemble_fuse"}
    for dom, sp in splits.items():
        f = results / f"maps-{sp.split}.json"
        if not f.exists():
            scorers = {n: MapScorer(peak_threshold=dec.peak_threshold) for n in names.values()}
            choices = []
            for i in tqdm(sp.image_ids, desc=f"maps {sp.split}", leave=False):
                img = sp.read(i)
                every = ens.every_maps(img)
                choices.append(ens.last["domain"])
                t = scorers["ensemble"].targets(sp.anns_by_image[i], img.shape, every["route"])
                for k, m in every.items():
                    scorers[names[k]].add(m, t)
            rec = {"scores": {n: s.result() for n, s in scorers.items()},
                   "routed_to": {d: choices.count(d) / len(choices) for d in EXPERT_DOMAINS}}
            write_json_atomic(rec, f)
        rec = json.loads(f.read_text())
        for n, r in rec["scores"].items():
            maps.setdefault(n, {})[dom] = r
        routed[dom] = rec["routed_to"]
        print(f"  {dom}: keypoint F1 " + ", ".join(f"{m} {maps[m][dom]['f1']:.3f}" for m in maps)
              + "; routed to " + ", ".join(f"{d} {v:.0%}" for d, v in routed[dom].items()))

    _step("6/7 expert disagreement per domain")
    dis = {}
    for dom, sp in splits.items():
        rep = disagreement_for_split(sp, sp.split, results, out / "disagreement")
        dis[dom] = {k: rep.get(k) for k in ("n_persons", "total_transl", "total_rot", "spearman_transl",
                                             "spearman_rot", "ause_transl", "ause_rot", "csv", "png")}
        dis[dom]["limbs"] = rep["limbs"]
        print(f"  {dom}: {rep['n_persons']} people seen by >= 2 experts, total transl {rep['total_transl']:.3f}, "
              f"total rot {rep['total_rot']:.3f}, rho(transl, 1-OKS) {rep.get('spearman_transl', float('nan')):.3f}")

    _step("7/7 summary")
    summary = {"ap": {m: ap[m] for m in ("normal", "dark", "motion_blur", "ensemble")},
               "ap_extra": {"ensemble_fuse": ap["ensemble_fuse"]},
               "classifier_accuracy": clf_acc, "classifier_cnn_weight": log["cnn_weight"],
               "classifier_low_light": ll["accuracy_by_variant"],
               "keypoint_f1": {m: {d: r["f1"] for d, r in v.items()} for m, v in maps.items()},
               "heatmap_mse": {m: {d: r["heatmap_mse"] for d, r in v.items()} for m, v in maps.items()},
               "paf_mse": {m: {d: r["paf_mse"] for d, r in v.items()} for m, v in maps.items()},
               "map_scores": maps, "routed_to": routed, "disagreement": dis,
               "seconds_per_image": cost, "runs": runs,
               "wall_time_s": round(time.time() - t_start, 1), "note": NOTE}
    write_json_atomic(summary, out / "summary.json")
    print("COCO keypoint AP (pycocotools)\n" + ap_table({**summary["ap"], "ensemble_fuse": ap["ensemble_fuse"]}))
    print(f"\nkeypoint F1 of the heatmap peaks (peak threshold {dec.peak_threshold}, within 0.1 x bbox size)\n"
          + ap_table(summary["keypoint_f1"]))
    print("\nheatmap MSE x 1000 against the training targets (lower is better)\n"
          + ap_table({m: {d: 1000 * v for d, v in r.items()} for m, r in summary["heatmap_mse"].items()}))
    print("\nPAF MSE x 1000 against the training targets (lower is better)\n"
          + ap_table({m: {d: 1000 * v for d, v in r.items()} for m, r in summary["paf_mse"].items()}))
    print("\nroute: share of each test domain's images sent to each expert\n" + ap_table(routed))
    print("\nmilliseconds per image (network + decode; route and fuse include the classifier; per-image noise ~10 %)\n"
          + ap_table({m: {d: 1000 * v for d, v in r.items()} for m, r in cost.items()}, fmt=".0f"))
    print(f"\nclassifier accuracy {clf_acc:.4f}; wall time {summary['wall_time_s']:.0f} s")
    print(f"NOTE: {NOTE}")
    print(f"summary: {out / 'summary.json'}")
    return summary


def main(argv=None):
    from .cli import quickstart
    run(quickstart, argv)


if __name__ == "__main__":
    main(sys.argv[1:])
