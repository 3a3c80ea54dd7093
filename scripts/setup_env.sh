#!/usr/bin/env bash
# Create (or reuse) .venv and install seq2seq-attn with its dev extra.
# Torch goes in first so that the project's torch range is already satisfied: pick your build with
#   TORCH_SPEC="torch==2.13.0" (default) or e.g. TORCH_SPEC="torch==2.13.0 --index-url YOUR_CUDA_WHEEL_INDEX"
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${VENV:-$root/.venv}"
python="${PYTHON:-python3}"
torch_spec="${TORCH_SPEC:-torch==2.13.0}"

if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
stamp="$venv/.seq2seq_attn_installed"
# Reinstall only when the dependencies (pyproject) or the torch spec changed.
want="$(cat "$root/pyproject.toml"; echo "$torch_spec")"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
    # shellcheck disable=SC2086
    "${pip[@]}" install $torch_spec
  fi
  "${pip[@]}" install -e "$root[dev]"
  printf '%s' "$want" > "$stamp"
fi
