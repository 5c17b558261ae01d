#!/usr/bin/env bash
# The model's cost of a rolling window's cut (chokepoint-bench-rolling-cut, bench/top/rolling_cut.cpp:
# per window and per thread, THREADS parked threads, the closing tick's add and finish), for
# BUILD_DIR and, with OTHER_BUILD_DIR, the same program built from this source against that build's
# chokepoint_model (e.g. main's, which has no such target), RUNS times each in turn.
# Usage: bench/top/rolling_cut.sh [BUILD_DIR] [OTHER_BUILD_DIR] [THREADS] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
other=${2:-}
threads=${3:-2000}
runs=${4:-3}
work=$(mktemp -d "${TMPDIR:-/tmp}/cp-rolling-cut.XXXXXX")
trap 'rm -rf "$work"' EXIT
[ -x "$build/bin/chokepoint-bench-rolling-cut" ] || {
  echo "error: $build/bin/chokepoint-bench-rolling-cut is missing" >&2
  echo "hint: cmake --build $build --target chokepoint-bench-rolling-cut" >&2
  exit 2
}
if [ -n "$other" ]; then
  # The other build's sources are its parent directory (the presets' binaryDir).
  src=$(cd "$other/.." && pwd)/src
  c++ -O2 -std=c++20 -DFMT_SHARED -I"$src" bench/top/rolling_cut.cpp \
    "$other/src/model/libchokepoint_model.a" "$other/src/util/libchokepoint_util.a" -lfmt \
    -o "$work/other"
fi
for _ in $(seq "$runs"); do
  echo "$build: $("$build/bin/chokepoint-bench-rolling-cut" "$threads" 100 30 10 5)"
  [ -n "$other" ] && echo "$other: $("$work/other" "$threads" 100 30 10 5)"
done
