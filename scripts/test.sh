#!/usr/bin/env bash
# Sets up, builds and runs every test: the Release build, then the same suite under
# AddressSanitizer + UndefinedBehaviorSanitizer in build-asan/ and under ThreadSanitizer in
# build-tsan/, then a short run of every fuzz target (scripts/fuzz.sh; FUZZ_SECONDS each, default 8:
# about a minute for the seven targets). Fails on any failure.
# PI0_SKIP_ASAN=1 / PI0_SKIP_TSAN=1 / PI0_SKIP_FUZZ=1 skip those parts.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# Runs ctest in build dir $1 (extra env before), keeping its summary line for the closing count.
passed=0
run_ctest() {
  local dir=$1; shift
  local log; log=$(mktemp)
  (cd "$dir" && env "$@" ctest --output-on-failure -j "$(nproc)") | tee "$log"
  local n; n=$(sed -n 's/^100% tests passed, 0 tests failed out of \([0-9]*\)$/\1/p' "$log")
  rm -f "$log"
  [ -n "$n" ] || { echo "tests: ctest in $dir did not pass"; exit 1; }
  passed=$((passed + n))
}
run_ctest build
if [ "${PI0_SKIP_ASAN:-0}" != "1" ]; then
  BUILD_DIR=build-asan BUILD_TYPE=RelWithDebInfo CMAKE_ARGS="-DPI0_SANITIZE=address,undefined" scripts/setup.sh
  run_ctest build-asan ASAN_OPTIONS=detect_leaks=1
fi
if [ "${PI0_SKIP_TSAN:-0}" != "1" ]; then
  BUILD_DIR=build-tsan BUILD_TYPE=RelWithDebInfo CMAKE_ARGS="-DPI0_SANITIZE=thread" scripts/setup.sh
  run_ctest build-tsan TSAN_OPTIONS="halt_on_error=1 suppressions=$PWD/tests/tsan.supp"
fi
if [ "${PI0_SKIP_FUZZ:-0}" != "1" ]; then
  FUZZ_SECONDS=${FUZZ_SECONDS:-8} scripts/fuzz.sh
fi
echo "tests: $passed passed, 0 failed"
