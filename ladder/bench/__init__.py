"""Measurements of speed, each against a reference measured in the same run: training throughput
of rungs against the reference models (:mod:`.benchmark`) and of the whole trainer against its
pure step (:mod:`.pipeline_bench`).

May import every part below it: :mod:`ladder.train`, :mod:`ladder.data`, :mod:`ladder.ladders`,
:mod:`ladder.nets`, :mod:`ladder.utils`.
"""
