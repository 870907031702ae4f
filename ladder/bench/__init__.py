"""Measurements of speed, each against a reference measured in the same run: training throughput
of rungs against the reference models (:mod:`.benchmark`), of the whole trainer against its pure
step (:mod:`.pipeline_bench`), of budgets against a reference budget (:mod:`.preset_cost`) and of
the batched augmentation against the kornia one it replaced (:mod:`.augment_bench`); the steps
of the GPU scripts, scripts/gpu_check.sh and scripts/gpu_ladder.sh (:mod:`.gpu_steps`: the
summary and archive in :mod:`.gpu_summary`, single runs in :mod:`.gpu_runs`, concurrency rounds
and the sweep's sizing in :mod:`.gpu_rounds`); and timm's own model tests run on the ladder's
models (:mod:`.timm_model_tests`).

May import every part below it: :mod:`ladder.train`, :mod:`ladder.data`, :mod:`ladder.ladders`,
:mod:`ladder.nets`, :mod:`ladder.utils`.
"""
