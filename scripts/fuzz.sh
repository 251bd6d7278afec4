#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, `cmake --preset fuzz`) and runs each one.
# usage: scripts/fuzz.sh [SECONDS] [TARGET...]
#   SECONDS  how long each target runs (default 300); CI runs 20.
#   TARGET   fuzz/<TARGET>.cpp (default: all of them).
# Each target starts from its seed corpus, fuzz/corpus/<TARGET>/ (read only), and
# keeps what it finds in build/fuzz/corpus/<TARGET>/. A crash stops the script
# with its input in build/fuzz/crashes/: add it to the normal suite as a test.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-300}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for source in fuzz/*_fuzz.cpp; do targets+=("$(basename "$source" .cpp)"); done
fi

bash scripts/install-deps.sh
export CCACHE_BASEDIR="$PWD"
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$(nproc)" --target "${targets[@]}"

mkdir -p build/fuzz/crashes
for target in "${targets[@]}"; do
  mkdir -p "build/fuzz/corpus/$target"
  echo "== fuzzing $target for ${seconds}s"
  "build/fuzz/fuzz/$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="build/fuzz/crashes/$target-" \
    "build/fuzz/corpus/$target" "fuzz/corpus/$target" 2>"build/fuzz/$target.log" || {
    tail -50 "build/fuzz/$target.log"
    echo "fuzz: $target failed; its input is in build/fuzz/crashes/" >&2
    exit 1
  }
  grep -E "stat::number_of_executed_units|cov:" "build/fuzz/$target.log" | tail -2
done
