#!/usr/bin/env bash
# Installs a build of Ratchet into a scratch prefix and builds the program of
# examples/installed/ against it twice, as a user would: with
# find_package(ratchet) and with pkg-config. Each must link and pass `--check`.
# usage: scripts/check-install.sh [BUILD_DIR]   (default: build/release, built)
set -euo pipefail
cd "$(dirname "$0")/.."
build="$(cd "${1:-build/release}" && pwd)"
# Inside the build directory, at a fixed place, so that ccache hits on the next run.
scratch="$build/check-install"
prefix="$scratch/prefix"
rm -rf "$scratch"
cmake --install "$build" --prefix "$prefix" >/dev/null

# The package must not name this tree or the prefix: it would not work elsewhere.
leaks="$(find "$prefix" \( -name '*.cmake' -o -name '*.pc' \) \
           -exec grep -lF -e "$PWD" -e "$build" {} + || true)"
if [ -n "$leaks" ]; then
  echo "check-install: these installed files name $PWD or $build:" >&2
  echo "$leaks" >&2
  exit 1
fi

export CCACHE_BASEDIR="$PWD"
cxx=("${CXX:-c++}")
launcher=()
if command -v ccache >/dev/null; then
  cxx=(ccache "${cxx[@]}")
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi

echo "check-install: find_package(ratchet)"
cmake -S examples/installed -B "$scratch/cmake" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" "${launcher[@]}" >/dev/null
cmake --build "$scratch/cmake" >/dev/null
"$scratch/cmake/greet" --check

echo "check-install: pkg-config --static ratchet"
pc_dir="$(dirname "$(find "$prefix" -name ratchet.pc)")"
read -ra flags <<<"$(PKG_CONFIG_PATH="$pc_dir" pkg-config --cflags --libs --static ratchet)"
"${cxx[@]}" -std=c++20 -O2 examples/installed/greet.cpp "${flags[@]}" -o "$scratch/greet-pkg-config"
"$scratch/greet-pkg-config" --check
