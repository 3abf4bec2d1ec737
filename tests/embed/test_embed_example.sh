#!/bin/sh
# The installed package from an embedder's side: install the build into a fresh prefix, configure
# examples/embed against that prefix alone, build it, make a tiny checkpoint with the installed
# CLI and check that the example prints finite actions of the robot's shape.
#   test_embed_example.sh BUILD_DIR SOURCE_DIR CXX_COMPILER PYTHON
set -eu
build=$1 src=$2 cxx=$3 python=$4
work=$(mktemp -d "${TMPDIR:-/tmp}/pi0_embed_test.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

cmake --install "$build" --prefix "$prefix" >/dev/null
for f in include/pi0/policy.h include/pi0/value.h include/pi0/version.h lib/cmake/pi0/pi0Config.cmake bin/pi0; do
  [ -e "$prefix/$f" ] || { echo "FAIL: the install has no $f"; exit 1; }
done
# The public headers stand alone: nothing under the prefix names the source tree's src/.
if grep -rn '#include "\(core\|model\|backend\|policy\|io\|serve\)/' "$prefix/include"; then
  echo "FAIL: an installed header includes a private header"; exit 1
fi

# CMAKE_FIND_USE_PACKAGE_REGISTRY etc. off and only the prefix given: the build tree cannot leak in.
cmake -S "$src/examples/embed" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER="$cxx" \
      -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF >"$work/configure.log" 2>&1 ||
  { cat "$work/configure.log"; exit 1; }
cmake --build "$work/build" >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }

"$prefix/bin/pi0" make-checkpoint --preset tiny-pi0 --seed 3 --out "$work/ck" >/dev/null
for robot in libero aloha; do
  "$work/build/embed" "$work/ck" "$robot" >"$work/$robot.json"
  "$python" - "$work/$robot.json" "$robot" <<'PY'
import json, math, sys
actions = json.load(open(sys.argv[1]))["actions"]
width = {"libero": 7, "aloha": 14}[sys.argv[2]]
assert len(actions) > 0 and all(len(row) == width for row in actions), (len(actions), [len(r) for r in actions])
assert all(math.isfinite(x) for row in actions for x in row), actions
print(f"{sys.argv[2]}: {len(actions)} x {width} finite actions, first row {actions[0][:3]}...")
PY
done
# The README's short example: the tiny chunk (10 x 7) and a finite first action.
out=$("$work/build/minimal" "$work/ck")
echo "minimal: $out"
echo "$out" | grep -Eq '^10 x 7 actions, first -?[0-9]+\.[0-9]+$' || { echo "FAIL: minimal printed '$out'"; exit 1; }
