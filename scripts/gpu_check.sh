#!/usr/bin/env bash
# GPU readiness in one prepared command: short bf16 trainings of every task's GPU config, the attention and
# Transformer benchmarks (ratios against PyTorch, MFU), beam search with and without the KV cache, trainer
# overhead and torch.compile, written section by section to a Markdown report (see scripts/gpu_check.py).
#
#   bash scripts/gpu_data.sh .devdata                  # once, where ../shared/data exists: the small files needed
#   SEQ2SEQ_ATTN_DATA=.devdata bash scripts/gpu_check.sh          # on the GPU machine (.devdata carried along)
#   bash scripts/gpu_check.sh --tiny --device cpu --out /tmp/r.md # the same sections, tiny, on the CPU
#
# With this workplace's device tool (the GPU machine has python3 with torch, sentencepiece, sacrebleu, safetensors,
# pyyaml, Pillow; it has no ../shared, so .devdata travels as a carried, git-ignored folder):
#   run(carry=[".devdata"], timeout_s=420, command="PYTHONUNBUFFERED=1 SEQ2SEQ_ATTN_DATA=.devdata bash
#       scripts/gpu_check.sh --out $OUT/gpu_report.md --work /tmp/gpu_check 2>&1 | tee $OUT/gpu_check.log")
#   then copy gpu_report.md into docs/ and commit it.
#
# Options go to scripts/gpu_check.py (--out FILE, default docs/gpu_report.md; --work DIR; --only SECTION ...).
# GPU_CHECK_LIMIT (seconds, default 345) stops the whole run; the sections finished by then stay in the report.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-}"
if [[ -z "$PY" ]]; then
    if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python3; fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec timeout --signal=TERM --kill-after=10 "${GPU_CHECK_LIMIT:-345}" "$PY" scripts/gpu_check.py "$@"
