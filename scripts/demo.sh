#!/usr/bin/env bash
# Sets up and builds, writes the tiny demo checkpoint (random weights in openpi's layout, with a
# tokenizer and norm stats for every built-in robot), and runs the policy on the sample camera
# images, a joint state and a prompt: prints the action chunk a LIBERO robot would execute.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
build/pi0 make-checkpoint --preset tiny-pi0 --out out/demo-tiny-pi0 --seed 7 --force
build/pi0 infer --checkpoint out/demo-tiny-pi0 --robot libero \
  --image observation/image=assets/samples/base.png --image observation/wrist_image=assets/samples/wrist.png \
  --state 0.1,-0.2,0.3,0.0,0.5,-0.1,0.02,-0.02 --prompt "pick up the red block and put it in the bowl" --seed 1
