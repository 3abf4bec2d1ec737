#!/usr/bin/env bash
# Sets up, builds and runs every test: the Release build, then the same suite under
# AddressSanitizer + UndefinedBehaviorSanitizer in build-asan/, then a short run of every fuzz
# target (scripts/fuzz.sh). Fails on any failure. PI0_SKIP_ASAN=1 / PI0_SKIP_FUZZ=1 skip those parts.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
(cd build && ctest --output-on-failure -j "$(nproc)")
if [ "${PI0_SKIP_ASAN:-0}" != "1" ]; then
  BUILD_DIR=build-asan BUILD_TYPE=RelWithDebInfo CMAKE_ARGS="-DPI0_SANITIZE=address,undefined" scripts/setup.sh
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j "$(nproc)")
fi
if [ "${PI0_SKIP_FUZZ:-0}" != "1" ]; then
  FUZZ_SECONDS=${FUZZ_SECONDS:-10} scripts/fuzz.sh
fi
