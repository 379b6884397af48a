#!/usr/bin/env bash
# Downloads PyPI's pybullet 3.2.7 wheel, extracts the DeepMimic motion clips and the
# humanoid URDF into DIR (default: data/deepmimic) and verifies them against
# data/deepmimic/SHA256SUMS. The files are also committed; this recreates them.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
out="${1:-data/deepmimic}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --no-deps -q -d "$tmp" pybullet==3.2.7
wheel="$(ls "$tmp"/pybullet-3.2.7-*.whl | head -n1)"
python3 -m zipfile -e "$wheel" "$tmp/x" >/dev/null 2>&1 || unzip -q "$wheel" -d "$tmp/x"
mkdir -p "$out"
cp "$tmp"/x/pybullet_data/data/motions/humanoid3d_*.txt "$out"/
tr -d '\0' < "$tmp/x/pybullet_data/humanoid/humanoid.urdf" > "$out/humanoid.urdf"
cp "$tmp"/x/pybullet-3.2.7.dist-info/LICENSE.txt "$out/LICENSE.txt"
(cd "$out" && sha256sum -c --quiet "$root/data/deepmimic/SHA256SUMS")
echo "motion clips in $out"
