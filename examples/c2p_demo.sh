#!/usr/bin/env bash
# C2P's data-efficiency claim (paper Table 6) in miniature, on the rendered human-motion
# dataset, on this machine's device (lavapipe on a CPU-only machine):
#   1. pre-train a backbone with C2P on every training clip, without labels;
#   2. fine-tune humanoid-tiny with 10%, 20% and 100% of the labels, from the
#      pre-trained backbone and from scratch, with the same number of optimizer steps,
#      for 3 seeds each;
#   3. ablations (at $ABLATION_FRACTION of the labels, default all; seeds
#      $ABLATION_SEEDS, default all three): complete-to-complete, partial-to-partial,
#      and random point dropping instead of camera views;
# and prints a markdown table of test accuracy (mean ± std over seeds) on the
# unseen-view split. Each test clip is its own video, so clip and video accuracy agree.
#
#   examples/c2p_demo.sh [OUT] [PRETRAIN_EPOCHS] [FINETUNE_STEPS]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-runs/c2p}"
pre_epochs="${2:-10}"
steps="${3:-225}"
seeds="0 1 2"
ablation_seeds="${ABLATION_SEEDS:-$seeds}"
ablation_fraction="${ABLATION_FRACTION:-1.0}"
cargo build --release
edge4d=./target/release/edge4d
data="$out/data"
[ -f "$data/test.safetensors" ] ||
    $edge4d data humanoid --out "$data" --train-clips 24 --test-clips 10 --frames 12 --points 256

pretrain() { # name, extra flags...
    local name=$1; shift
    [ -f "$out/pre-$name/model.safetensors" ] ||
        $edge4d pretrain --method c2p --config configs/humanoid-c2p.toml \
            --data "$data/train.safetensors" --out "$out/pre-$name" --overwrite --epochs "$pre_epochs" \
            --batch-size 8 --lr 0.01 --warmup-epochs 1 --seed 0 "$@"
}

finetune() { # name, fraction, seed, init (or "")
    local name=$1 fraction=$2 seed=$3 init=$4
    local dir="$out/ft-$name-$fraction-$seed"
    # Labelled clips (ceil(24 x fraction) per action), so every run takes ~$steps steps.
    local clips
    case "$fraction" in 0.1) clips=45 ;; 0.2) clips=75 ;; *) clips=360 ;; esac
    local epochs=$(( (steps * 8 + clips - 1) / clips ))
    if [ ! -f "$dir/eval.json" ]; then
        $edge4d finetune --task action-recognition --config configs/humanoid-tiny.toml \
            --data "$data/train.safetensors" --label-fraction "$fraction" --seed "$seed" \
            ${init:+--init "$init"} --epochs "$epochs" --milestones $(( epochs * 2 / 3 )) \
            --batch-size 8 --lr 0.02 --warmup-epochs 1 --no-augment --log-every 50 \
            --out "$dir" --overwrite > "$dir.log" 2>&1
        $edge4d eval --config configs/humanoid-tiny.toml --weights "$dir/model.safetensors" \
            --data "$data/test.safetensors" --json > "$dir/eval.json"
    fi
}

row() { # label, name, fractions...
    local label=$1 name=$2; shift 2
    printf '| %s |' "$label"
    for fraction in "$@"; do
        grep -ho '"video_accuracy":[0-9.]*' "$out"/ft-"$name"-"$fraction"-*/eval.json |
            cut -d: -f2 |
            awk '{ s += $1; ss += $1 * $1; n++ }
                 END { m = s / n; sd = sqrt((ss - n * m * m) / (n - 1 > 0 ? n - 1 : 1));
                       printf " %.1f ± %.1f |", 100 * m, 100 * sd }'
    done
    echo
}

pretrain c2p
for fraction in 0.1 0.2 1.0; do
    for seed in $seeds; do
        finetune scratch "$fraction" "$seed" ""
        finetune c2p "$fraction" "$seed" "$out/pre-c2p/model.safetensors"
    done
done
for ablation in "c2c --pair c2c" "p2p --pair p2p" "drop --views drop"; do
    set -- $ablation
    name=$1; shift
    pretrain "$name" "$@"
    for seed in $ablation_seeds; do
        finetune "$name" "$ablation_fraction" "$seed" "$out/pre-$name/model.safetensors"
    done
done

echo
echo "| initialisation | 10% labels | 20% labels | 100% labels |"
echo "|---|---|---|---|"
row "from scratch" scratch 0.1 0.2 1.0
row "C2P (complete → partial, camera views)" c2p 0.1 0.2 1.0
echo
echo "| pre-training ablation | $ablation_fraction of the labels |"
echo "|---|---|"
row "C2P complete → partial" c2p "$ablation_fraction"
row "complete → complete" c2c "$ablation_fraction"
row "partial → partial" p2p "$ablation_fraction"
row "random point dropping" drop "$ablation_fraction"
row "none (from scratch)" scratch "$ablation_fraction"
