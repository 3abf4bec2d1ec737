#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) in build-fuzz/ and runs each for
# FUZZ_SECONDS (default 15). Seeds come from fuzz/corpus/<target>/; new findings are kept in
# build-fuzz/corpus/<target>/, crashes in build-fuzz/crashes/. Exits non-zero on any crash.
#   scripts/fuzz.sh                      every target, 15 s each
#   FUZZ_SECONDS=600 scripts/fuzz.sh fuzz_safetensors   a longer run of one target
set -euo pipefail
cd "$(dirname "$0")/.."
for p in clang libclang-rt-14-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || MISSING="${MISSING:-} $p"
done
if [ -n "${MISSING:-}" ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $MISSING >/dev/null
fi
cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ -DPI0_FUZZ=ON \
      -DPI0_SANITIZE=address,undefined >/dev/null
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in fuzz/fuzz_*.cpp; do targets+=("$(basename "$f" .cpp)"); done
fi
cmake --build build-fuzz -j "$(nproc)" --target "${targets[@]}"
mkdir -p build-fuzz/crashes
for t in "${targets[@]}"; do
  mkdir -p "build-fuzz/corpus/$t"
  seeds=()
  [ -d "fuzz/corpus/$t" ] && seeds+=("fuzz/corpus/$t")
  echo "fuzz: $t for ${FUZZ_SECONDS:-15} s"
  "build-fuzz/$t" -max_total_time="${FUZZ_SECONDS:-15}" -max_len=65536 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="build-fuzz/crashes/$t-" "build-fuzz/corpus/$t" "${seeds[@]}" 2>&1 | grep -E "^(stat::number_of_executed_units|stat::new_units_added|==.*ERROR|SUMMARY)" || true
  # Crashes, leaks, out-of-memory and timeouts fail the run. "slow-unit" files do not: on this
  # shared machine a stopped or descheduled process makes any input look slow.
  if ls build-fuzz/crashes/"$t"-{crash,leak,oom,timeout}-* >/dev/null 2>&1; then
    echo "fuzz: $t found a crash: $(ls build-fuzz/crashes/"$t"-{crash,leak,oom,timeout}-* 2>/dev/null)"; exit 1
  fi
done
echo "fuzz: no crashes"
