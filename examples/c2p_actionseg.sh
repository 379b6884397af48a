#!/usr/bin/env bash
# C2P's data-efficiency claim (paper supplementary Table 6) with the paper's protocol,
# on action segmentation of the rendered human-motion sequences:
#   1. data: 150-frame sequences at 15 fps, several actions each with blended
#      transitions, per-frame labels; test sequences are unseen views, bodies and
#      speeds (`edge4d data humanoid --sequences`);
#   2. pre-train the per-frame backbone (configs/humanoid-actionseg.toml) with C2P on
#      every training sequence, without labels;
#   3. fine-tune that same backbone with its per-frame head on 10%, 20%, 40% and 80% of
#      the labelled training sequences, and from scratch, with the same number of
#      optimizer steps, for 3 seeds each;
#   4. the time shortcut: the same with C2P pre-trained without the time input
#      (`--no-time`);
#   5. ablations at $ABLATION_FRACTIONS of the labels (default 0.1): time window 1 and
#      5, complete → complete, random point dropping;
# then prints markdown tables of Acc, Edit and F1@{10,25,50} (mean ± std over seeds) on
# the test sequences. Runs are skipped when their eval.json exists.
#
#   examples/c2p_actionseg.sh [OUT] [PRETRAIN_EPOCHS] [FINETUNE_STEPS]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-runs/actionseg}"
pre_epochs="${2:-20}"
steps="${3:-1000}"
seeds="${SEEDS:-0 1 2}"
fractions="${FRACTIONS:-0.1 0.2 0.4 0.8}"
ablation_fractions="${ABLATION_FRACTIONS:-0.1}"
train_sequences=200
config=configs/humanoid-actionseg.toml
cargo build --release
edge4d=./target/release/edge4d
data="$out/data"
[ -f "$data/test.safetensors" ] ||
    $edge4d data humanoid --sequences --out "$data" --train-clips "$train_sequences" \
        --test-clips 60 --frames 150 --points 256

pretrain() { # name, extra flags...
    local name=$1; shift
    [ -f "$out/pre-$name/done" ] && return
    $edge4d pretrain --method c2p --config "$config" --data "$data/train.safetensors" \
        --out "$out/pre-$name" --overwrite --epochs "$pre_epochs" --batch-size 8 --lr 0.01 \
        --warmup-epochs 2 --seed 0 --log-every 25 "$@" > "$out/pre-$name.log" 2>&1
    touch "$out/pre-$name/done"
}

finetune() { # name, fraction, seed, init (or "")
    local name=$1 fraction=$2 seed=$3 init=$4
    local dir="$out/ft-$name-$fraction-$seed"
    [ -f "$dir/eval.json" ] && return
    # The labelled sequences (at least one), so every run takes about $steps steps.
    local sequences epochs
    sequences=$(python3 -c "import math; print(max(1, math.ceil($train_sequences * $fraction)))")
    epochs=$(( (steps * 4 + sequences - 1) / sequences ))
    $edge4d finetune --task action-segmentation --config "$config" \
        --data "$data/train.safetensors" --label-fraction "$fraction" --seed "$seed" \
        ${init:+--init "$init"} --epochs "$epochs" --milestones $(( epochs * 2 / 3 )) \
        --batch-size 4 --lr 0.05 --warmup-epochs 1 --log-every 50 \
        --out "$dir" --overwrite > "$dir.log" 2>&1
    $edge4d eval --config "$config" --weights "$dir/model.safetensors" \
        --data "$data/test.safetensors" --json > "$dir/eval.json"
}

pretrain c2p
pretrain c2p-notime --no-time
for fraction in $fractions; do
    for seed in $seeds; do
        finetune scratch "$fraction" "$seed" ""
        finetune c2p "$fraction" "$seed" "$out/pre-c2p/model.safetensors"
        finetune c2p-notime "$fraction" "$seed" "$out/pre-c2p-notime/model.safetensors"
    done
done
for ablation in "window1 --terms same-frame" "window5 --terms window5" \
                "c2c --pair c2c" "drop --views drop"; do
    set -- $ablation
    name=$1; shift
    pretrain "$name" "$@"
    for fraction in $ablation_fractions; do
        for seed in $seeds; do
            finetune "$name" "$fraction" "$seed" "$out/pre-$name/model.safetensors"
        done
    done
done

python3 - "$out" "$fractions" "$ablation_fractions" <<'EOF'
import glob, json, statistics, sys
out, fractions, ablation_fractions = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
metrics = ["accuracy", "edit", "f1@10", "f1@25", "f1@50"]

def cell(name, fraction, metric):
    runs = [json.load(open(p)) for p in sorted(glob.glob(f"{out}/ft-{name}-{fraction}-*/eval.json"))]
    v = [r[metric] for r in runs]
    if not v:
        return "–"
    sd = statistics.stdev(v) if len(v) > 1 else 0.0
    return f"{statistics.mean(v):.1f} ± {sd:.1f} (n={len(v)})" if metric == "accuracy" else f"{statistics.mean(v):.1f} ± {sd:.1f}"

def table(rows, fractions):
    print("| initialisation | labels | Acc | Edit | F1@10 | F1@25 | F1@50 |")
    print("|---|---|---|---|---|---|---|")
    for label, name in rows:
        for f in fractions:
            print(f"| {label} | {float(f) * 100:.0f}% | " + " | ".join(cell(name, f, m) for m in metrics) + " |")

print()
table([("from scratch", "scratch"), ("C2P", "c2p"), ("C2P, no time input", "c2p-notime")], fractions)
print()
table([("C2P window 3 (the paper)", "c2p"), ("window 1 (same frame only)", "window1"),
       ("window 5", "window5"), ("complete → complete", "c2c"),
       ("random point dropping", "drop"), ("from scratch", "scratch")], ablation_fractions)
EOF
