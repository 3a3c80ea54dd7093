#!/usr/bin/env bash
# Subword regularization on Multi30k de-en: the CPU Transformer (configs/multi30k_transformer_cpu.yaml) trained
# with the best segmentation ("base") and with sentencepiece sampling ("sample", data.sampling_alpha), the same
# number of updates for both, for each seed; then test2016 BLEU (sacrebleu, the config's beam 5) of each run.
# Each run's training and test hold the shared lock (LOCK) so that only one job uses the CPU at a time.
#
# Usage: scripts/bench_subword_sampling.sh OUT_DIR [STEPS=400] [SEEDS="1 2"] [ALPHA=0.1] [NBEST=64]
# Prints one line per run: arm seed steps BLEU; logs in OUT_DIR/{arm}_s{seed}.{train,test}.log.
set -euo pipefail
out="$1"; steps="${2:-400}"; seeds="${3:-1 2}"; alpha="${4:-0.1}"; nbest="${5:-64}"
lock="${LOCK:-/work/notes/train.lock}"
py="${PYTHON:-python}"
cfg="configs/multi30k_transformer_cpu.yaml"
mkdir -p "$out"
for seed in $seeds; do
  for arm in base sample; do
    run="$out/${arm}_s${seed}"
    extra=()
    if [ "$arm" = sample ]; then
      extra=(--set "data.sampling_alpha=$alpha" --set "data.sampling_nbest_size=$nbest")
    fi
    # One lock for the training and the test of a run: nothing else runs between them.
    flock "$lock" bash -c '"$@" > "$0.train.log" 2>&1 &&
      "${@:1:3}" test "$0" --src shared:multi30k/test_2016_flickr.de.gz \
        --ref shared:multi30k/test_2016_flickr.en.gz > "$0.test.log" 2>&1' "$run" \
      "$py" -m seq2seq_attn train "$cfg" --overwrite --set "training.run_dir=$run" \
      --set "training.seed=$seed" --set "training.max_steps=$steps" --set training.max_minutes=null \
      --set training.max_epochs=100 "${extra[@]}"
    echo "$arm $seed $steps $(grep -m1 '^BLEU' "$run.test.log")"
  done
done
