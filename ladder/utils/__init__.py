"""Process and file plumbing that every part may use: where a run executes (torchrun's ranks,
the device and precision, compute threads, the commit; :mod:`.runtime`) and atomic, safe
files and checkpoints (:mod:`.checkpoint`).

May import nothing of the package; every other part may import it.
"""
