"""Command-line parsing. Every user-facing script is a thin wrapper around one function here: parse
arguments, call the package, print a short result. Bad input ends with one line
``error: <file>: <problem>`` and exit status 2, never a traceback.

Every command takes ``--experiment FILE`` (a YAML :class:`~keras_openpose.config.ExperimentConfig`)
whose values the flags override; every command that decodes takes the decoder options
(``--peak-threshold``, ``--min-parts``, ...), which otherwise come from the model file.
"""
from __future__ import annotations

import sys
from pathlib import Path
from .common import POSITIVE_INT, add_data_args, experiment_of, command_parser, split_of
from ..errors import DataError
from .common import number_type

def generate_masks(argv=None):
    p = command_parser("generate_masks_coco2014.py",
                "Write the ignore mask of every image of a COCO split (mask_miss_<id>.png; 255 = loss "
                "used, 0 = crowd regions and people without keypoints). Resumable.",
                ["python training/generate_masks_coco2014.py --coco-root dataset/sample --split train2017 --out runs/masks_train2017",
                 "python training/generate_masks_coco2014.py --annotations ../shared/data/keypoints/aic/test_aic.json --out runs/masks_aic"])
    add_data_args(p)
    p.add_argument("--out", required=True, help="output folder of PNG masks")
    a = p.parse_args(argv)
    from ..files import check_output_dir
    from ..data.store import write_masks
    split = split_of(a, experiment_of(a))
    check_output_dir(a.out)
    n = write_masks(split, a.out, progress=True)
    print(f"{a.out}: {n} masks written ({len(split.image_ids)} images in {split.split})")


def generate_hdf5(argv=None):
    p = command_parser("generate_hdf5_coco2014.py",
                "Build the compact training store of a COCO-format split (any skeleton): original JPEG "
                "bytes, ignore mask (PNG), people arrays and main people, once per image for every domain. "
                "Parallel, atomic, resumable (re-run the same command after an interruption).",
                ["python training/generate_hdf5_coco2014.py --coco-root dataset/sample --split train2017 --out runs/train2017.h5",
                 "python training/generate_hdf5_coco2014.py --coco-root dataset --split val2014 --out dataset/val2014_train.h5 --exclude-list cmu1k",
                 "python training/generate_hdf5_coco2014.py --annotations ../shared/data/keypoints/onehand10k/test_onehand10k.json --out runs/hands.h5"])
    add_data_args(p)
    p.add_argument("--out", required=True, help="output .h5")
    p.add_argument("--masks", help="folder from generate_masks_coco2014.py (else masks are computed here)")
    p.add_argument("--exclude-list", help="test list never stored: cmu1k, random1k, or an id file")
    p.add_argument("--workers", type=POSITIVE_INT, default=None, help="processes (default: all cores)")
    a = p.parse_args(argv)
    from ..data.testsets import resolve_test_list
    from ..data.store import build_store
    split = split_of(a, experiment_of(a))
    exclude = resolve_test_list(a.exclude_list, split) if a.exclude_list else []
    r = build_store(split, a.out, exclude_ids=exclude, mask_dir=a.masks, workers=a.workers)
    size = (f"{r['bytes'] / 1e6:.1f} MB = {r['bytes'] / r['jpeg_bytes']:.2f}x the stored JPEG bytes"
            if r["jpeg_bytes"] else "no image stored")
    print(f"{r['path']}: {r['images']} images, {r['people']} people, {r['main_people']} main people, {size}; "
          f"{len(r['skipped'])} skipped" + (f" (list: {r['path']}.skipped.txt)" if r["skipped"] else ""))
    for reason, n in r["skipped_by_reason"].items():
        print(f"  {n} x {reason}")
    for s in r["skipped"][:20]:
        print("  skipped:", s)


def make_test_domains(argv=None):
    p = command_parser("make_test_domains.py",
                "Build test domains (normal, dark, motion_blur, resolution) of a COCO split as new "
                "splits with correct annotations (half resolution rescales keypoints, bbox, area, "
                "segmentation, width/height).",
                ["python dataset/make_test_domains.py --coco-root dataset/sample --split val2017 --out runs/test",
                 "python dataset/make_test_domains.py --coco-root dataset --split val2014 --test-list cmu1k --tag _cmu1k --out dataset",
                 "python dataset/make_test_domains.py --annotations ../shared/data/keypoints/aic/test_aic.json --domains dark --out runs/aic_test"])
    add_data_args(p)
    p.add_argument("--out", required=True, help="root to write <split><tag>_<domain>/ and annotations/")
    p.add_argument("--domains", default=None, help="comma-separated (default: the experiment's, normal,dark,motion_blur,resolution)")
    p.add_argument("--test-list", default=None, help="all (default), cmu1k, random1k, or an id file")
    p.add_argument("--tag", default="", help="inserted after the split name, e.g. _random1k")
    p.add_argument("--seed", type=int, default=0, help="seed of the random1k list")
    p.add_argument("--dark-factor", type=number_type(float, 0, 1, low_open=True), default=None, help="brightness factor (default 0.5)")
    p.add_argument("--blur-length", type=number_type(float, 1, 500), default=None, help="motion blur length, source px (default 30)")
    p.add_argument("--resolution-factor", type=number_type(float, 0, 1, low_open=True), default=None, help="down-scaling factor (default 0.5)")
    a = p.parse_args(argv)
    from ..data.testsets import make_domain_test_set, resolve_test_list
    from ..files import check_output_dir
    exp = experiment_of(a)
    check_output_dir(a.out)
    split = split_of(a, exp, "test")
    ids = resolve_test_list(a.test_list, split, a.seed)
    strength = {"dark": a.dark_factor, "motion_blur": a.blur_length, "resolution": a.resolution_factor}
    for d in (a.domains.split(",") if a.domains else exp.data.test_domains):
        d = d.strip()
        s = make_domain_test_set(split, d, a.out, ids, strength=strength.get(d), tag=a.tag, progress=True)
        print(f"{s.image_dir}: {len(s.images)} images, {len(s.data['annotations'])} annotations")


def check_coco(argv=None):
    p = command_parser("check_coco.py", "Check a COCO root (or one COCO-format annotation file): schema, image files "
                "present and readable at the annotated size. Reports problems with counts (exit 1 if any).",
                ["python dataset/check_coco.py --coco-root dataset/sample",
                 "python dataset/check_coco.py --coco-root dataset --splits train2014,val2014 --no-read",
                 "python dataset/check_coco.py --annotations ../shared/data/keypoints/ap10k/test_ap10k.json"])
    p.add_argument("--coco-root", default=None)
    p.add_argument("--splits", default=None, help="comma-separated (default: every annotation file)")
    p.add_argument("--annotations", default=None, help="one COCO-format JSON instead of a root")
    p.add_argument("--images", default=None, help="its image folder (default: the annotation file's folder)")
    p.add_argument("--no-read", action="store_true", help="only check that files exist (fast)")
    a = p.parse_args(argv)
    from ..data.coco import check_experiment_data, check_report, check_root, check_split
    exp = experiment_of(a)        # a missing or bad --experiment is an error, never ignored
    splits = a.splits.split(",") if a.splits else None
    if a.annotations:
        ann = Path(a.annotations)
        rep = {ann.stem: check_split(ann, Path(a.images) if a.images else ann.parent, not a.no_read)}
    elif a.coco_root:
        rep = check_root(a.coco_root, splits, read_images=not a.no_read)
    elif a.experiment:          # the experiment's data section: its train and test splits
        rep = check_experiment_data(exp.data, splits, read_images=not a.no_read)
    else:
        raise DataError("give --coco-root, --annotations or --experiment")
    lines, bad = check_report(rep)
    print("\n".join(lines))
    if bad:
        sys.exit(1)


# ------------------------------------------------------------------------------------------
# training
# ------------------------------------------------------------------------------------------

