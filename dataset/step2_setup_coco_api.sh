#!/usr/bin/env bash
# Install the COCO API (pycocotools from PyPI) into the project's virtual environment: no sudo, no clone.
#
#   dataset/step2_setup_coco_api.sh            # into .venv at the repository root (created if missing)
#   VENV=/path/to/venv dataset/step2_setup_coco_api.sh
set -euo pipefail
case "${1:-}" in -h|--help) sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q "pycocotools>=2.0.8"
"$VENV/bin/python" -c "import pycocotools, pycocotools.cocoeval; print('pycocotools', pycocotools.__version__ if hasattr(pycocotools, '__version__') else 'ok', 'in', '$VENV')"
