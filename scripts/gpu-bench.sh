#!/usr/bin/env bash
# edge4d on a GPU through Vulkan side by side with PyTorch eager on the same GPU, in one
# run: P4Transformer forward and forward+backward (humanoid-small, paper-msr), the C2P
# pre-training step, fp32 matmul, the stream's per-frame latency and first frame, point
# ops, the segmentation net, attention fused and unfused, and the training step's peak
# memory. The two sides
# alternate for PASSES passes; every line goes to OUT (JSON lines, each tagged with its
# side and pass) and the summary gives medians over passes and ratios.
#
#   pip install -r ../shared/perf/torchref/requirements.txt   # torch with CUDA
#   PASSES=3 scripts/gpu-bench.sh [OUT]          # default OUT: runs/gpu-bench.jsonl
#
# BACKEND (default vulkan) picks edge4d's backend; TORCH_DEVICE (default cuda) the
# reference's (cpu runs the script where there is no GPU, e.g. on lavapipe);
# E4D_BIN points at a prebuilt edge4d binary (default: build target/release/edge4d); SKIP_TORCH=1
# times edge4d only; CONFIGS, MATMUL_SIZES, ATTENTION_BATCH, MEMORY_CONFIGS and
# MEMORY_BATCH shrink the run (a software rasteriser's check: BACKEND=vulkan SKIP_TORCH=1
# PASSES=1 CONFIGS=fixture MATMUL_SIZES=256 ATTENTION_BATCH=1 MEMORY_CONFIGS=fixture
# MEMORY_BATCH=2).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${1:-runs/gpu-bench.jsonl}
PASSES=${PASSES:-3}
BACKEND=${BACKEND:-vulkan}
TORCH_DEVICE=${TORCH_DEVICE:-cuda}
PY=${PYTHON:-python3}
TORCHREF=${TORCHREF:-../shared/perf/torchref}
CONFIGS=${CONFIGS:-humanoid-small,paper-msr}

if [ -z "${E4D_BIN:-}" ]; then
    cargo build --release --locked -q
    E4D_BIN=target/release/edge4d
fi
E4D="$E4D_BIN --backend $BACKEND"
$E4D info >&2 || { echo "error: edge4d finds no $BACKEND adapter" >&2; exit 1; }
if [ "${SKIP_TORCH:-0}" != 1 ] && ! "$PY" -c "import torch, numpy" 2>/dev/null; then
    echo "error: $PY cannot import torch and numpy; install them with" >&2
    echo "  $PY -m pip install -r $TORCHREF/requirements.txt   (or SKIP_TORCH=1)" >&2
    exit 1
fi
mkdir -p "$(dirname "$OUT")"
: > "$OUT"

tag() { sed -e "s/^{/{\"side\": \"$1\", \"pass\": $2, /"; }
torch() {
    [ "${SKIP_TORCH:-0}" = 1 ] && return 0
    "$PY" "$TORCHREF/bench_torch.py" --device "$TORCH_DEVICE" --idle-wait 0 --tries 1 "$@"
}

for pass in $(seq "$PASSES"); do
    echo "== pass $pass of $PASSES" >&2
    $E4D bench p4transformer --json --configs "$CONFIGS" --warmup 2 --repeats 7 \
        | tag edge4d "$pass" >> "$OUT"
    torch --configs "$CONFIGS" --warmup 2 --repeats 7 | tag torch "$pass" >> "$OUT"
    $E4D bench c2p --json | tag edge4d "$pass" >> "$OUT"
    torch --c2p-only --c2p-phases c2p_step_sgd | tag torch "$pass" >> "$OUT"
    $E4D bench matmul --json --sizes "${MATMUL_SIZES:-1024,2048,4096}" | tag edge4d "$pass" >> "$OUT"
    torch --sgemm --configs "" | tag torch "$pass" >> "$OUT"
    $E4D bench stream --json | tag edge4d "$pass" >> "$OUT"
    $E4D bench point-ops --json | tag edge4d "$pass" >> "$OUT"
    $E4D bench segmentation --json | tag edge4d "$pass" >> "$OUT"
    $E4D bench attention --json --batch-size "${ATTENTION_BATCH:-7}" | tag edge4d "$pass" >> "$OUT"
done
# Memory does not drift between passes: once.
$E4D bench memory --json --configs "${MEMORY_CONFIGS:-paper-msr}" --batch-size "${MEMORY_BATCH:-14}" \
    | tag edge4d 1 >> "$OUT"
echo "wrote $OUT" >&2
"$PY" scripts/bench_summary.py "$OUT" || true
