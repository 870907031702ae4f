"""Experiment tracking: the W&B client behind one small interface (:mod:`.tracking`), and a sweep
group's W&B workspace as code (:mod:`.workspace`, ``python -m ladder.workspace``).

May import :mod:`ladder.ladders` and :mod:`ladder.utils`; the training loop never imports wandb.
"""
