"""One training run and many: what a run trains (:mod:`.subject`), the trainer's loop
(:mod:`.trainer`) with its optimizer and schedule (:mod:`.optim`), evaluation
(:mod:`.evaluate`), latency (:mod:`.latency`), checkpointed state (:mod:`.run_state`), results
(:mod:`.run_results`) and stopping on a signal (:mod:`.preempt`); and concurrent resumable
jobs for sweeps (:mod:`.jobs`): the sweep of rungs x seeds (:mod:`.sweep`) and leave-one-out
(:mod:`.loo`).

May import :mod:`ladder.nets`, :mod:`ladder.ladders`, :mod:`ladder.data`, :mod:`ladder.track`
and :mod:`ladder.utils`.
"""
