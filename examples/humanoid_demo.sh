#!/usr/bin/env bash
# Trains the small P4Transformer on the rendered human-motion dataset from scratch,
# with all labels and with 10% of them, and evaluates on the unseen-view test split.
# Runs on a CPU-only machine (lavapipe): see docs/RESULTS.md for times and accuracies.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-runs/humanoid}"
cargo build --release
edge4d=./target/release/edge4d
$edge4d data humanoid --out "$out/data" --train-clips 24 --test-clips 10 --frames 16 --points 512
common=(finetune --task action-recognition --config configs/humanoid-small.toml
        --data "$out/data/train.safetensors" --val "$out/data/test.safetensors"
        --batch-size 8 --lr 0.02 --warmup-epochs 1 --gamma 0.1 --seed 0 --no-augment --overwrite)
$edge4d "${common[@]}" --epochs 15 --milestones 10 --out "$out/all-labels"
# 10% of the labels: the same 15 epochs, then about as many steps as the full run.
$edge4d "${common[@]}" --epochs 15 --milestones 10 --label-fraction 0.1 --out "$out/10pct-labels"
$edge4d "${common[@]}" --epochs 150 --milestones 100 --val-every 10 --label-fraction 0.1 \
        --out "$out/10pct-labels-long"
