#!/usr/bin/env bash
# Subword regularization on Multi30k de-en: the CPU Transformer (configs/multi30k_transformer_cpu.yaml) trained
# with the best segmentation ("base") and with sentencepiece sampling ("sample", data.sampling_alpha), the same
# number of updates for both, for each seed; then test2016 BLEU (sacrebleu, the config's beam 5) of each run.
# Both arms of a seed run back to back under one hold of the shared lock (LOCK), so that they see the same
# machine and nothing else trains meanwhile. A run whose test log already has a BLEU line is not run again.
#
# Usage: scripts/bench_subword_sampling.sh OUT_DIR [STEPS=400] [SEEDS="1 2"] [ALPHA=0.1] [NBEST=64] [BEAM]
# (BEAM: the test's beam size; default the config's decoding.beam_size)
# Prints one line per run: arm seed steps BLEU; logs in OUT_DIR/{arm}_s{seed}.{train,test}.log.
set -euo pipefail
py="${PYTHON:-python}"
cfg="configs/multi30k_transformer_cpu.yaml"

run_seed() {  # OUT_DIR STEPS SEED ALPHA NBEST [BEAM]: both arms of one seed
  local out="$1" steps="$2" seed="$3" alpha="$4" nbest="$5" arm run beam=()
  if [ -n "${6:-}" ]; then beam=(--beam "$6"); fi
  for arm in base sample; do
    run="$out/${arm}_s${seed}"
    if grep -qs '^BLEU' "$run.test.log"; then continue; fi
    local extra=()
    if [ "$arm" = sample ]; then
      extra=(--set "data.sampling_alpha=$alpha" --set "data.sampling_nbest_size=$nbest")
    fi
    "$py" -m seq2seq_attn train "$cfg" --overwrite --set "training.run_dir=$run" --set "training.seed=$seed" \
      --set "training.max_steps=$steps" --set training.max_minutes=null --set training.max_epochs=100 \
      "${extra[@]}" > "$run.train.log" 2>&1
    "$py" -m seq2seq_attn test "$run" --src shared:multi30k/test_2016_flickr.de.gz \
      --ref shared:multi30k/test_2016_flickr.en.gz "${beam[@]}" > "$run.test.log" 2>&1
  done
}

if [ "${1:-}" = --seed ]; then
  shift
  run_seed "$@"
  exit 0
fi
out="$1"; steps="${2:-400}"; seeds="${3:-1 2}"; alpha="${4:-0.1}"; nbest="${5:-64}"; beam="${6:-}"
lock="${LOCK:-${TMPDIR:-/tmp}/seq2seq_attn_train.lock}"  # one training at a time on this machine
mkdir -p "$out"
for seed in $seeds; do
  flock "$lock" bash "$0" --seed "$out" "$steps" "$seed" "$alpha" "$nbest" "$beam"
  for arm in base sample; do
    echo "$arm $seed $steps $(grep -m1 '^BLEU' "$out/${arm}_s${seed}.test.log")"
  done
done
