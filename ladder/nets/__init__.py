"""The networks: :class:`~ladder.nets.config.NetConfig`, the typed axes the roadmap changes;
:class:`~ladder.nets.model.LadderNet`, the one parameterized network that builds every rung
(its ends are exactly torchvision's ResNet-50 and timm's ConvNeXt-T); and the conversion of
reference weights into it (:mod:`.convert`).

May import :mod:`ladder.utils` only: a network knows nothing of ladders, data or training.
"""
