"""Scale check of the store build and of evaluation on many images (one JSON line each).

The bundled train2017 sample (80 images) is copied N times as hard links (no extra disk) with new
image ids and file names, so the build sees N distinct images; each size runs in its own process so
peak RSS is the build's own (the main process; the largest worker's beside it); the RSS after
reading the annotation file is printed beside it: that part grows with the file, as any COCO
reader's does, while the build itself holds one block of images at a time. Evaluation scores 1k images of val2017 copies with the ground truth as
detections (the cost of the evaluation machinery: reading, pycocotools, PCK; no network).

    python bench/store_scale.py                 # 5k and 20k images, eval on 1k
    python bench/store_scale.py --sizes 2000 --eval 500
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def make_copies(split_name: str, n: int, root: Path) -> Path:
    """A COCO root with ``n`` images: hard links of the sample's ``split_name`` images, new ids."""
    src = json.loads((REPO / "dataset" / "sample" / "annotations" / f"person_keypoints_{split_name}.json").read_text())
    img_dir = root / split_name
    img_dir.mkdir(parents=True)
    images, anns, k = [], [], 0
    by_image = {}
    for a in src["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    for c in range(-(-n // len(src["images"]))):
        for im in src["images"]:
            if len(images) >= n:
                break
            new_id = c * 10**7 + im["id"]
            name = f"{c:05d}_{im['file_name']}"
            os.link(REPO / "dataset" / "sample" / split_name / im["file_name"], img_dir / name)
            images.append({**im, "id": new_id, "file_name": name})
            for a in by_image.get(im["id"], []):
                k += 1
                anns.append({**a, "id": k, "image_id": new_id})
    (root / "annotations").mkdir()
    (root / "annotations" / f"person_keypoints_{split_name}.json").write_text(
        json.dumps({**src, "images": images, "annotations": anns}))
    return root


CHILD_BUILD = """
import json, resource, sys, time
sys.path.insert(0, {repo!r})
from keras_openpose.data.coco import CocoSplit
from keras_openpose.data.store import build_store
t = time.perf_counter()
split = CocoSplit({root!r}, "train2017")
rss_split = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
r = build_store(split, {out!r}, progress=False)
dt = time.perf_counter() - t
rss_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
rss_worker = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps({{"images_in_split": len(split.images), "stored_images": r["images"], "seconds": dt,
                   "images_per_s": len(split.images) / dt, "peak_rss_mb": rss_self, "peak_worker_rss_mb": rss_worker,
                   "rss_after_loading_annotations_mb": rss_split,
                   "bytes_per_jpeg_byte": r["bytes"] / max(r["jpeg_bytes"], 1)}}))
"""


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="5000,20000")
    p.add_argument("--eval", type=int, default=1000)
    a = p.parse_args()
    for n in map(int, a.sizes.split(",")):
        with tempfile.TemporaryDirectory() as d:
            root = make_copies("train2017", n, Path(d) / "coco")
            code = CHILD_BUILD.format(repo=str(REPO), root=str(root), out=str(Path(d) / "s.h5"))
            r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
            if r.returncode:
                print(json.dumps({"bench": "store_build", "images": n, "error": r.stderr.strip().splitlines()[-1]}))
                continue
            out = json.loads(r.stdout.strip().splitlines()[-1])
            print(json.dumps({"bench": "store_build", "images": n, **{k: round(v, 3) if isinstance(v, float) else v
                                                                      for k, v in out.items()}}), flush=True)
    if a.eval:
        from keras_openpose.data.coco import CocoSplit
        from keras_openpose.evaluate.runs import evaluate_predictor
        with tempfile.TemporaryDirectory() as d:
            root = make_copies("val2017", a.eval, Path(d) / "coco")
            split = CocoSplit(root, "val2017")

            def truth(image_id):
                return [{"keypoints": x["keypoints"], "score": 1.0} for x in split.anns_by_image[image_id]
                        if x["num_keypoints"] > 0 and not x["iscrowd"]]
            ids = iter(split.image_ids)
            t = time.perf_counter()
            s = evaluate_predictor(lambda img: truth(next(ids)), split, split.image_ids, Path(d) / "ev", "scale",
                                   progress=False)
            dt = time.perf_counter() - t
            print(json.dumps({"bench": "eval", "images": a.eval, "seconds": round(dt, 1),
                              "ap": s["stats"]["AP"], "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))


if __name__ == "__main__":
    main()
