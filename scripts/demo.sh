#!/usr/bin/env bash
# Sets up, builds, writes the tiny demo checkpoint and runs the model on sample inputs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
build/pi0 make-checkpoint --preset tiny-pi0 --out out/demo-tiny-pi0 --seed 7
build/pi0 inspect out/demo-tiny-pi0
