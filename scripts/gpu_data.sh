#!/usr/bin/env bash
# Copy the data files scripts/gpu_check.sh needs into a git-ignored folder that travels with the working tree to
# the GPU machine (which has no ../shared): Multi30k (6 .gz, 1.3 MB), an IMDB subset (every 5th training and every
# 10th test review of the CSVs, all columns, ~3.5 MB) and the CIFAR-10 npz (18.6 MB); 24 MB in all, under the
# 64 MiB that a carried folder may hold. MNIST is not needed.
#
#   bash scripts/gpu_data.sh [DEST]          # DEST defaults to .devdata (in .gitignore)
#   SEQ2SEQ_ATTN_DATA=.devdata bash scripts/gpu_check.sh      # on the GPU machine, with DEST carried along
#
# The source is $SEQ2SEQ_ATTN_DATA, else ../shared/data beside the checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST="${1:-.devdata}"
SRC="${SEQ2SEQ_ATTN_DATA:-../shared/data}"
PY="${PYTHON:-}"
if [[ -z "$PY" ]]; then
    if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python3; fi
fi
for f in multi30k/{train,val,test_2016_flickr}.{de,en}.gz imdb/{train,test}.csv.gz cifar10/cifar10_yoongikim_jpeg.npz; do
    [[ -f "$SRC/$f" ]] || { echo "gpu_data.sh: error: $SRC/$f not found (set SEQ2SEQ_ATTN_DATA)" >&2; exit 2; }
done
mkdir -p "$DEST/multi30k" "$DEST/imdb" "$DEST/cifar10"
cp "$SRC"/multi30k/{train,val,test_2016_flickr}.{de,en}.gz "$DEST/multi30k/"
cp "$SRC/cifar10/cifar10_yoongikim_jpeg.npz" "$DEST/cifar10/"
"$PY" - "$SRC/imdb" "$DEST/imdb" <<'PYEOF'
import csv, gzip, io, sys
from pathlib import Path

src, dest = Path(sys.argv[1]), Path(sys.argv[2])
csv.field_size_limit(2**31 - 1)  # long reviews
for split, every in (("train", 5), ("test", 10)):
    with gzip.open(src / f"{split}.csv.gz", "rt", encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([rows[0], *rows[1::every]])  # header, then every N-th row
    tmp = dest / f"{split}.csv.gz.tmp"
    tmp.write_bytes(gzip.compress(out.getvalue().encode("utf-8")))
    tmp.replace(dest / f"{split}.csv.gz")
    print(f"{dest / f'{split}.csv.gz'}: {len(rows) - 1} -> {len(rows[1::every])} rows")
PYEOF
SIZE=$(du -sk "$DEST" | cut -f1)
if (( SIZE > 60 * 1024 )); then
    echo "gpu_data.sh: error: $DEST holds ${SIZE} KiB, over the 60 MiB kept under the 64 MiB carry limit" >&2
    exit 2
fi
echo "gpu_data.sh: $DEST ready (${SIZE} KiB); carry it to the GPU machine and set SEQ2SEQ_ATTN_DATA=$DEST"
