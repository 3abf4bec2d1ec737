#!/usr/bin/env bash
# Sets up, builds, writes the tiny demo checkpoint (weights + tokenizer + norm stats) and runs the
# whole policy on the sample camera images, a state and a prompt (LIBERO robot).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
build/pi0 make-checkpoint --preset tiny-pi0 --out out/demo-tiny-pi0 --seed 7
build/pi0 inspect out/demo-tiny-pi0
build/pi0 infer --checkpoint out/demo-tiny-pi0 --robot libero \
  --image observation/image=assets/samples/base.png --image observation/wrist_image=assets/samples/wrist.png \
  --state 0.1,0.2,0.3,0,0,0,0.04,-0.04 --prompt "pick up the red block" --seed 7
