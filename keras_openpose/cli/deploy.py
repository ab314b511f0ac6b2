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
from .common import (POSITIVE_INT, check_model_file, add_decode_args, decode_overrides, experiment_of,
                     add_inference_args, inference_options, command_parser, run)
from ..config import PROJECT_ROOT
from ..errors import DataError

def export(argv=None):
    p = command_parser("python -m keras_openpose.export",
                "Export a trained network (last stage: outputs heatmaps and pafs, dynamic height and width) "
                "to ONNX, LiteRT or OpenVINO, with its description (skeleton, stride, decoder options) and a "
                "parity check against Keras on real images that fails past the precision's tolerance.",
                ["python -m keras_openpose.export --weights models/pose_normal.keras --format onnx --out models/pose_normal.onnx",
                 "python -m keras_openpose.export --weights models/pose_normal.keras --format openvino --precision fp16 --out models/ov/pose_normal.xml",
                 "python -m keras_openpose.export --weights models/pose_normal.keras --format litert --precision int8 "
                 "--calibration-images dataset/sample/train2017 --input-size 256x256 --out models/pose_normal_int8.tflite",
                 "python -m keras_openpose.export --weights models/pose_normal.keras --format openvino --precision int8 "
                 "--calibration-images dataset/sample/train2017 --out models/ov8/pose_normal.xml"])
    from ..export import FORMATS, TOLERANCE
    p.add_argument("--weights", required=True, help="a .keras network")
    p.add_argument("--format", required=True, choices=list(FORMATS))
    p.add_argument("--precision", default="fp32", choices=list(TOLERANCE))
    p.add_argument("--input-size", default=None, help="HxW (multiples of 8) to fix the input size (default dynamic)")
    p.add_argument("--calibration-images", default=None, help="folder of images for int8")
    p.add_argument("--check-images", default=None, help="folder of images for the parity check (default: the sample)")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    from ..export import export_model
    from ..files import check_output_file
    check_model_file(a.weights)
    check_output_file(a.out, example=Path(a.weights).stem + {"onnx": ".onnx", "litert": ".tflite"}.get(a.format, ".xml"))
    size = None
    if a.input_size:
        try:
            size = tuple(int(v) for v in a.input_size.lower().split("x"))
        except ValueError:
            size = ()
        if len(size) != 2 or not all(v > 0 and v % 8 == 0 for v in size):
            raise DataError(f"--input-size {a.input_size!r}: expected HxW, multiples of 8, e.g. 256x256")
    r = export_model(a.weights, a.format, a.out, a.precision, size, a.calibration_images, a.check_images)
    print(f"{r['path']}: parity with Keras on {r['images']} images: max |diff| {r['max_abs_diff']:.2e} "
          f"(tolerance {r['tolerance']}, {r['precision']})")


# ------------------------------------------------------------------------------------------
# users: predict, quickstart
# ------------------------------------------------------------------------------------------

def predict(argv=None):
    p = command_parser("python -m keras_openpose.predict",
                "Estimate poses (any skeleton: the model file says which) in an image, a folder, a video "
                "file or a webcam; write overlays and a COCO-style JSON (image_id = frame or file name).",
                ["python -m keras_openpose.predict --input photo.jpg        # the shipped network; overlays in runs/predict",
                 "python -m keras_openpose.predict --weights runs/quickstart/models/pose_dark.keras --input dataset/sample/val2017/000000397133.jpg --out runs/predict",
                 "python -m keras_openpose.predict --weights models/pose_normal.keras --input clip.mp4 --out runs/clip --show-kpt-name --show-maps",
                 "python -m keras_openpose.predict --models-dir models --mode route --input 0 --out runs/webcam --max-frames 300",
                 "python -m keras_openpose.predict --weights runs/hand_models/pose_normal.keras --input hands/ --out runs/hands --peak-threshold 0.05"])
    p.add_argument("--input", required=True, help="image, folder, video file, or webcam index (0)")
    p.add_argument("--out", default="runs/predict", help="output folder (overlays + poses.json; default runs/predict)")
    p.add_argument("--weights", help="one network: .keras, .onnx, .tflite or OpenVINO .xml (default, without "
                   "--models-dir: the shipped Lightweight OpenPose trained on COCO, models/pose_normal.keras)")
    p.add_argument("--models-dir", help="experts + classifier, with --mode route or fuse")
    p.add_argument("--mode", choices=["route", "fuse"], default="route")
    p.add_argument("--show-kpt-name", action="store_true", help="write part names on the overlay")
    p.add_argument("--show-maps", action="store_true", help="add heatmap and PAF panels to the overlay")
    p.add_argument("--max-frames", type=POSITIVE_INT, default=None)
    p.add_argument("--track", action="store_true", help="stable person ids across frames (greedy OKS matching)")
    p.add_argument("--smooth", action="store_true", help="One-Euro smoothing of tracked keypoints (implies --track)")
    add_inference_args(p)
    add_decode_args(p)
    a = p.parse_args(argv)
    from ..files import check_output_dir
    from ..inference.sources import check_source
    from ..predict import predict_source
    exp = experiment_of(a)
    check_source(a.input)                 # cheap checks first: the input, the model, the output; then TensorFlow
    for m in [a.weights] if a.weights else []:
        check_model_file(m)
    if a.models_dir and not Path(a.models_dir).is_dir():
        raise DataError(f"{a.models_dir}: models folder not found")
    check_output_dir(a.out)
    if not a.weights and not a.models_dir:
        from ..model.weights import PRETRAINED_WEIGHTS, ensure_pretrained
        a.weights = str(ensure_pretrained(PRETRAINED_WEIGHTS))
    r = predict_source(a.input, a.out, weights=a.weights, models_dir=a.models_dir, mode=a.mode,
                       options=inference_options(a, exp), decode=decode_overrides(a), show_names=a.show_kpt_name,
                       show_maps=a.show_maps, max_frames=a.max_frames, track=a.track, smooth=a.smooth)
    print(f"{a.out}: {r['people']} people in {r['frames']} frames; network {r['network_ms']:.0f} ms, "
          f"decode {r['decode_ms']:.1f} ms per frame; {r['fps']:.1f} frames/s overall"
          + (f"; {len(r['skipped'])} skipped (skipped.json)" if r["skipped"] else ""))


def quickstart(argv=None):
    p = command_parser("quickstart", "The whole pipeline on the bundled COCO sample (see README).",
                ["python -m keras_openpose.quickstart",
                 "python -m keras_openpose.quickstart --experiment configs/quickstart.yaml --out runs/quickstart"])
    p.add_argument("--out", default=str(PROJECT_ROOT / "runs" / "quickstart"))
    a = p.parse_args(argv)
    from ..quickstart import run_quickstart
    run_quickstart(a.experiment or PROJECT_ROOT / "configs" / "quickstart.yaml", a.out)


def quickstart_main(argv=None):
    run(quickstart, sys.argv[1:] if argv is None else argv)
