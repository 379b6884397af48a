#!/usr/bin/env bash
# Runs the whole test suite on the native CPU backend, then on Vulkan and GL (Mesa's
# lavapipe and llvmpipe run the WGSL kernels where there is no GPU).
# Usage: scripts/test.sh [--quick] [cargo test options]
#   --quick  skip the slow (#[ignore]d) tests.
# On a machine without a Vulkan or GL driver it first installs Mesa's software
# drivers (lavapipe for Vulkan, llvmpipe for GL) from Debian's packages, and Python's
# `mcap` reader (PyPI) into target/test-python for the recording tests.
set -euo pipefail
cd "$(dirname "$0")/.."

have_vulkan_icd() { compgen -G '/usr/share/vulkan/icd.d/*.json' >/dev/null || compgen -G '/etc/vulkan/icd.d/*.json' >/dev/null; }
have_egl() { ldconfig -p 2>/dev/null | grep 'libEGL_mesa.so' >/dev/null; }

if ! have_vulkan_icd || ! have_egl; then
    echo "== installing Mesa's Vulkan and GL drivers"
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mesa-vulkan-drivers libvulkan1 libegl1 libegl-mesa0 libgl1-mesa-dri >/dev/null
fi

# The C ABI tests build C and C++ programs with the system compilers, pkg-config and CMake.
missing=()
for tool in cc:gcc c++:g++ pkg-config:pkg-config cmake:cmake; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool##*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing ${missing[*]}"
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The recording tests read edge4d's MCAP output back with Python's reference reader.
pyenv=target/test-python
if ! "$pyenv/bin/python" -c "import mcap" 2>/dev/null; then
    echo "== installing Python's mcap reader into $pyenv"
    python3 -m venv "$pyenv"
    "$pyenv/bin/pip" install -q mcap
fi
export EDGE4D_PYTHON="$PWD/$pyenv/bin/python" EDGE4D_REQUIRE_PYTHON_MCAP=1

# lavapipe's window-system layer complains without it; compute does not need one.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"

# Slow tests (several training epochs) are #[ignore]d so a plain `cargo test` stays
# quick; this script runs them too unless --quick comes first.
slow=(--include-ignored)
if [ "${1:-}" = "--quick" ]; then
    slow=()
    shift
fi

for backend in cpu vulkan gl; do
    echo "== cargo test --workspace on EDGE4D_BACKEND=$backend"
    EDGE4D_BACKEND=$backend cargo test --workspace --locked "$@" -- "${slow[@]}"
done
