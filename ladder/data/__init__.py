"""The data a run reads: image folders, Imagenette's download and cache, the generated demo and
synthetic sets (:mod:`.loaders`, :mod:`.imagenette`, :mod:`.common`), and the on-device path
(:mod:`.device`) that keeps decoded uint8 images on the training device and augments whole
batches there (:mod:`.augment`, :mod:`.randaugment`).

May import :mod:`ladder.ladders` (for the config schema) and :mod:`ladder.utils`.
"""
