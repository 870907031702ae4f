"""The ladders as data: ladder files and their rungs (:mod:`.ladder_file`, :mod:`.rungs`), the
typed schema of the whole training config (:mod:`.schema`) and its Hydra registration
(:mod:`.conf_store`), composing a rung's config outside Hydra's app (:mod:`.compose`),
experiments on the rungs' own axes (:mod:`.variants`), every rung as a timm model
(:mod:`.registry`) and the params/GFLOPs table (:mod:`.inspect`, ``python -m ladder.inspect``).

May import :mod:`ladder.nets` and :mod:`ladder.utils`.
"""
