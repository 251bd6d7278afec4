#!/usr/bin/env bash
# Installs the dependencies and builds one configuration.
# usage: scripts/build.sh [release|debug|asan]   (default: release)
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-release}"
bash scripts/install-deps.sh
jobs="$(nproc)"
# Cache hits across clones of the repository, wherever they are.
export CCACHE_BASEDIR="$PWD"
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j "$jobs"
