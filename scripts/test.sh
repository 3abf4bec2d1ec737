#!/usr/bin/env bash
# Sets up, builds and runs every test: the Release build, then the same suite under
# AddressSanitizer + UndefinedBehaviorSanitizer in build-asan/. Fails on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
(cd build && ctest --output-on-failure -j "$(nproc)")
if [ "${PI0_SKIP_ASAN:-0}" != "1" ]; then
  BUILD_DIR=build-asan BUILD_TYPE=RelWithDebInfo CMAKE_ARGS="-DPI0_SANITIZE=address,undefined" scripts/setup.sh
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j "$(nproc)")
fi
