#!/usr/bin/env bash
# Builds the C ABI in release mode and installs it under PREFIX (default /usr/local):
# lib/libedge4d.{so,a}, include/edge4d.h and lib/pkgconfig/edge4d.pc.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix="${1:-/usr/local}"
cargo build --release -p edge4d-ffi
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
mkdir -p "$prefix/lib/pkgconfig" "$prefix/include"
cp target/release/libedge4d.so target/release/libedge4d.a "$prefix/lib/"
cp bindings/include/edge4d.h "$prefix/include/"
sed -e "s|@PREFIX@|$prefix|" -e "s|@VERSION@|$version|" bindings/edge4d.pc.in \
    > "$prefix/lib/pkgconfig/edge4d.pc"
echo "installed edge4d $version under $prefix (PKG_CONFIG_PATH=$prefix/lib/pkgconfig)"
