#!/usr/bin/env bash
# Download the pure-Python packages the lent GPU machine lacks (its image has torch, timm,
# torchvision, matplotlib, tqdm, but not Hydra or kornia), as wheels for its Python 3.12, into .whl/
# (git-ignored), plus the timm release the tests here ran on. Then: device run with carry [".whl"] and `bash scripts/gpu_check.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_17_x86_64 --platform any -d .whl \
  "hydra-core==1.3.2" "omegaconf==2.3.0" "timm==1.0.31" \
  "kornia==0.9.0" "kornia_rs==0.2.0"  # timm and kornia: the versions our tests ran on
# Hydra 1.3 pins antlr4 4.9.*, published only as a source archive: build its pure-Python wheel.
python3 -m pip wheel -q --no-deps -w .whl "antlr4-python3-runtime==4.9.3"
ls .whl
