#!/usr/bin/env bash
# Wheels for a GPU machine without network whose Python has torch, torchvision, timm,
# matplotlib and tqdm but not Hydra. Run this where there is network:
#
#   bash scripts/fetch_gpu_wheels.sh            # -> .whl/ (git-ignored), a few MB, seconds
#
# It downloads Hydra, OmegaConf and the timm release the tests ran on, as wheels for CPython
# $PY_VERSION (default 3.12) on x86_64 Linux, and builds the pure-Python wheel of antlr4 4.9.3
# (Hydra 1.3 pins it; it is published only as a source archive); also kornia, which no step
# needs, for scripts/augment_benchmark.py. Copy the clone, .whl/ included, to the GPU machine:
# scripts/gpu_check.sh and scripts/gpu_ladder.sh install them into $LADDER_WORK/site (no
# network, no dependencies) when their Python lacks a module the steps import
# (scripts/gpu_common.sh, gpu_python).
set -euo pipefail
cd "$(dirname "$0")/.."
PY_VERSION=${PY_VERSION:-3.12}
mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$PY_VERSION" \
  --implementation cp --platform manylinux_2_17_x86_64 --platform any -d .whl \
  "hydra-core==1.3.2" "omegaconf==2.3.0" "timm==1.0.31" \
  "kornia==0.9.0" "kornia_rs==0.2.0"  # timm and kornia: the versions the tests ran on
python3 -m pip wheel -q --no-deps -w .whl "antlr4-python3-runtime==4.9.3"
ls .whl
