#!/usr/bin/env bash
# Download COCO images and keypoint annotations (resumable; every archive is checked before unpacking).
#
#   dataset/step1_download_coco2014.sh                 # COCO 2014 into dataset/
#   dataset/step1_download_coco2014.sh --year 2017     # COCO 2017
#   dataset/step1_download_coco2014.sh --dest /data/coco --keep-zips
#
# Layout made (2014):  DEST/train2014/  DEST/val2014/  DEST/annotations/person_keypoints_{train,val}2014.json
set -euo pipefail
usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; }
YEAR=2014
DEST="$(cd "$(dirname "$0")" && pwd)"
KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --year) YEAR="$2"; shift 2 ;;
    --dest) DEST="$2"; shift 2 ;;
    --keep-zips) KEEP=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "error: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done
case "$YEAR" in 2014|2017) ;; *) echo "error: --year must be 2014 or 2017" >&2; exit 2 ;; esac
command -v unzip >/dev/null || { echo "error: unzip is not installed (apt-get install unzip)" >&2; exit 2; }
if command -v wget >/dev/null; then GET="wget -c -q --show-progress -O"; elif command -v curl >/dev/null; then GET="curl -fL -C - -o"; else
  echo "error: neither wget nor curl is installed" >&2; exit 2; fi
mkdir -p "$DEST"
BASE=http://images.cocodataset.org
fetch() {  # url  -> DEST/name.zip, resumed with -c / -C -
  local url="$1" zip="$DEST/$(basename "$1")"
  echo "== $url"
  $GET "$zip.part" "$url"
  unzip -tq "$zip.part" >/dev/null || { echo "error: $zip.part is corrupt; delete it and run again" >&2; exit 1; }
  mv "$zip.part" "$zip"
}
for name in "zips/train$YEAR.zip" "zips/val$YEAR.zip" "annotations/annotations_trainval$YEAR.zip"; do
  target="$DEST/$(basename "$name" .zip)"
  [ "$name" = "annotations/annotations_trainval$YEAR.zip" ] && target="$DEST/annotations/person_keypoints_val$YEAR.json"
  if [ -e "$target" ]; then echo "== $target exists; skipping"; continue; fi
  zip="$DEST/$(basename "$name")"
  [ -f "$zip" ] || fetch "$BASE/$name"
  unzip -q -o "$zip" -d "$DEST"
  [ "$KEEP" = 1 ] || rm -f "$zip"
done
echo "== layout"
for d in "train$YEAR" "val$YEAR"; do echo "$DEST/$d: $(ls "$DEST/$d" | wc -l) images"; done
ls -1 "$DEST/annotations"/person_keypoints_*"$YEAR".json
