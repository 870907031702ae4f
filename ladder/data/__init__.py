"""The data a run reads: image folders in the layouts users keep (:mod:`.layout`), Imagenette's
download and cache, the generated demo and synthetic sets (:mod:`.loaders`, :mod:`.imagenette`,
:mod:`.demo`, :mod:`.common`), the training order (:mod:`.sampling`), the pixel store built once
(:mod:`.prepare`, ``python -m ladder.data.prepare``; :mod:`.store`), and the device path
(:mod:`.device`) that keeps decoded uint8 images on the training device and augments whole
batches there (:mod:`.augment`, :mod:`.randaugment`).

May import :mod:`ladder.ladders` (for the config schema) and :mod:`ladder.utils`.
"""
