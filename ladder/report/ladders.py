"""The report's ladders: each section's :class:`~ladder.ladders.rungs.Ladder`, named by its runs'
result.json (``ladder``; results written before it was recorded are ConvNeXt's), and the words
the report takes from it (its title, its reference's table and source).

A report never mixes ladders in one section (:class:`ladder.report.load.SectionKey` holds the
ladder). The ladder's title is shown in the section headings, and the CSVs get a ``ladder``
column, when the report holds more than one ladder or one that is not the default
(:func:`show_ladders`), so a ConvNeXt report reads as it always has.
"""
from __future__ import annotations

from typing import Iterable

from ladder.ladders.rungs import DEFAULT_LADDER, Ladder, load_ladder

# Words of the ConvNeXt report that its ladder file does not hold (the paper's training length,
# how it names the root rung); kept so the committed ConvNeXt reports regenerate byte for byte.
# Other ladders get the generic wording built from their ``reference``.
_WORDING = {
    "convnext": {
        "scope": "ImageNet-1K at 224 px and 300 epochs",
        "figure": "ImageNet-1K 224 px, 300 ep",
        "rungs": {"resnet50": "the torchvision ResNet-50"},
    },
}


def ladder_of(name: str | None = None) -> Ladder:
    """The ladder called ``name`` (default: ConvNeXt's), from the current search path
    (:func:`ladder.ladders.rungs.set_search_path`, the report's ``--config-dir``)."""
    return load_ladder(name or DEFAULT_LADDER)


def runs_ladder(runs: Iterable) -> Ladder:
    """The one ladder of a group of runs (the default for none); ValueError when they come from
    several, which one table can't hold."""
    names = sorted({getattr(r, "ladder", DEFAULT_LADDER) for r in runs})
    if len(names) > 1:
        raise ValueError(f"runs of several ladders ({', '.join(names)}) can't share one table; "
                         f"group them with ladder.report.group_runs first")
    return ladder_of(names[0] if names else None)


def show_ladders(names: Iterable[str]) -> bool:
    """Whether a report names its sections' ladders: when it holds more than one ladder, or
    one that is not the default."""
    return bool(set(names) - {DEFAULT_LADDER})


def reference_text(ladder: Ladder) -> str:
    """``Table 10 of Liu et al., *A ConvNet for the 2020s* (ImageNet-1K, 3 seeds)``: where the
    ladder's reference numbers come from."""
    ref = ladder.reference
    who = ref.source.split(",")[0].strip() if ref.paper else ref.source
    text = f"{ref.table} of {who}" + (f", *{ref.paper}*" if ref.paper else "")
    details = [ref.metric.split()[0]] if ref.metric else []
    if ref.seeds:
        details.append(f"{ref.seeds} seeds")
    return text + (f" ({', '.join(details)})" if details else "")


def reference_tables(ladders: Iterable[Ladder]) -> str:
    """The reference tables of a report's ladders: ``Table 10``, or each with its ladder's
    title when they differ."""
    ladders = list({lad.name: lad for lad in ladders}.values())
    tables = {lad.reference.table for lad in ladders}
    if len(tables) == 1:
        return tables.pop()
    return ", ".join(f"{lad.reference.table} ({lad.title})" for lad in ladders)


def reference_scope(ladder: Ladder) -> str:
    """What the reference numbers measure, for the sentence that says proxy accuracies do not
    compare with them."""
    own = _WORDING.get(ladder.name, {}).get("scope")
    if own:
        return own
    ref = ladder.reference
    return f"{ref.metric} ({ref.table})" if ref.metric else f"from {ref.table}"


def figure_scope(ladder: Ladder) -> str:
    """The paper panel's title line: what the reference numbers measure, briefly (the
    metric's first word, its dataset: ``ImageNet-1K``)."""
    own = _WORDING.get(ladder.name, {}).get("figure")
    metric = ladder.reference.metric
    return own or (metric.split()[0] if metric else "reference numbers")


def rung_words(ladder: Ladder, rung: str) -> str:
    """How the report's sentences name a rung: ```name```, or the ladder's own words for it."""
    return _WORDING.get(ladder.name, {}).get("rungs", {}).get(rung, f"`{rung}`")

