"""Ranks as the NTIRE 2022 organisers assign them, and the check that we reproduce their table.

Per-metric ranks: lower is better, equal values share the lowest rank ("min" ranking). The tracks:
main = rank of the runtime; sub-track 1 = rank of the sum of the #Params and FLOPs ranks; sub-track 2
= rank of the sum of the runtime, #Params, FLOPs, #Acts and GPU memory ranks; tied sums share the
lowest rank.

The published table prints metrics rounded (#Params to 0.001 M, FLOPs to 0.01 G); the organisers
ranked unrounded values, so where two teams print the same value they still got consecutive ranks.
The printed figures cannot order such a pair, so when a tie at the printed precision carries exactly
the consecutive ranks it spans, those printed ranks are adopted and reported as such
(:class:`PrintedTie`); any other disagreement is a difference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = [
    "METRICS",
    "Difference",
    "PrintedTie",
    "Reproduction",
    "TrackRanks",
    "min_rank",
    "rank_tracks",
    "reproduce_ranks",
]

# Per-metric keys, in the order of the official table; sub-track 1 sums the ranks of the middle two.
METRICS: tuple[str, ...] = ("time", "params", "flops", "acts", "mem")
SUB_TRACK1: tuple[str, ...] = ("params", "flops")
SUB_TRACK2: tuple[str, ...] = METRICS


def min_rank(values: Sequence[float | None]) -> list[int | None]:
    """1 + the number of strictly smaller values; equal values share a rank; None is not ranked."""
    present = [value for value in values if value is not None]
    return [None if value is None else 1 + sum(other < value for other in present) for value in values]


@dataclass(frozen=True)
class PrintedTie:
    """Entries whose printed values are equal but whose printed ranks are consecutive and distinct."""

    metric: str
    value: float
    entries: tuple[tuple[str, int], ...]

    def describe(self) -> str:
        ranked = ", ".join(f"{name} {rank}" for name, rank in self.entries)
        return f"{self.metric} {self.value:g}: {ranked}"


def _adopt_printed_ties(
    metric: str, names: Sequence[str], values: Sequence[float | None], printed: Sequence[int | None]
) -> tuple[list[int | None], list[PrintedTie]]:
    """Min ranks, except that a printed-precision tie whose printed ranks span it takes those ranks."""
    ranks = min_rank(values)
    ties: list[PrintedTie] = []
    groups: dict[float, list[int]] = {}
    for index, value in enumerate(values):
        if value is not None:
            groups.setdefault(value, []).append(index)
    for value, members in groups.items():
        if len(members) < 2:
            continue
        lowest = ranks[members[0]]
        assert lowest is not None
        printed_ranks = [printed[index] for index in members]
        if sorted(rank for rank in printed_ranks if rank is not None) == list(
            range(lowest, lowest + len(members))
        ):
            for index in members:
                ranks[index] = printed[index]
            entries = tuple(sorted(((names[i], int(printed[i])) for i in members), key=lambda item: item[1]))
            ties.append(PrintedTie(metric, value, entries))
    return ranks, ties


def _sum_ranks(ranks: dict[str, list[int | None]], keys: Sequence[str], count: int) -> list[int | None]:
    scores: list[int | None] = []
    for index in range(count):
        parts = [ranks[key][index] for key in keys]
        present = [part for part in parts if part is not None]
        scores.append(sum(present) if len(present) == len(parts) else None)
    return scores


@dataclass(frozen=True)
class TrackRanks:
    """Per-metric ranks, track scores and track ranks, one list entry per input entry."""

    metric_ranks: dict[str, list[int | None]]
    main_rank: list[int | None]
    sub_track1_score: list[int | None]
    sub_track1_rank: list[int | None]
    sub_track2_score: list[int | None]
    sub_track2_rank: list[int | None]
    printed_ties: tuple[PrintedTie, ...] = ()


def rank_tracks(
    names: Sequence[str],
    metrics: dict[str, Sequence[float | None]],
    *,
    printed_metric_ranks: dict[str, Sequence[int | None]] | None = None,
) -> TrackRanks:
    """Rank entries on the NTIRE 2022 tracks; lower metric values are better.

    ``metrics`` maps each of :data:`METRICS` to one value per entry (None when not measured, e.g.
    GPU memory on a CPU: that entry then has no rank for the metric and no score for the tracks that
    need it). ``printed_metric_ranks`` is only for published tables, to order ties at printed precision.
    """
    count = len(names)
    ranks: dict[str, list[int | None]] = {}
    ties: list[PrintedTie] = []
    for key in METRICS:
        values = list(metrics[key])
        if len(values) != count:
            raise ValueError(f"metric {key!r} has {len(values)} values for {count} entries")
        if printed_metric_ranks is None:
            ranks[key] = min_rank(values)
        else:
            ranks[key], found = _adopt_printed_ties(key, names, values, list(printed_metric_ranks[key]))
            ties.extend(found)
    score1 = _sum_ranks(ranks, SUB_TRACK1, count)
    score2 = _sum_ranks(ranks, SUB_TRACK2, count)
    return TrackRanks(
        metric_ranks=ranks,
        main_rank=min_rank(list(metrics["time"])),
        sub_track1_score=score1,
        sub_track1_rank=min_rank(score1),
        sub_track2_score=score2,
        sub_track2_rank=min_rank(score2),
        printed_ties=tuple(ties),
    )


@dataclass(frozen=True)
class Difference:
    """One printed number that the computation does not give."""

    name: str
    column: str
    printed: int | None
    computed: int | None
    known: str = ""

    def describe(self) -> str:
        text = f"{self.name} {self.column} printed {self.printed}, computed {self.computed}"
        return f"{text} (known: {self.known})" if self.known else text


@dataclass(frozen=True)
class Reproduction:
    """How far the computed ranks agree with the printed ones."""

    ranks_checked: int
    ranks_reproduced: int
    scores_checked: int
    scores_reproduced: int
    printed_ties: tuple[PrintedTie, ...]
    differences: tuple[Difference, ...] = field(default_factory=tuple)

    def summary(self) -> str:
        tied = sum(len(tie.entries) for tie in self.printed_ties)
        text = (
            f"official table reproduced: {self.ranks_reproduced} of {self.ranks_checked} printed ranks and "
            f"{self.scores_reproduced} of {self.scores_checked} track scores "
            f"({tied} metric ranks sit in {len(self.printed_ties)} ties at the printed precision and are "
            "ordered as printed)"
        )
        if not self.differences:
            return text + "; no differences"
        known = sum(bool(item.known) for item in self.differences)
        listed = "; ".join(item.describe() for item in self.differences)
        return f"{text}; {len(self.differences)} difference(s), {known} of them known: {listed}"


def reproduce_ranks(
    names: Sequence[str],
    metrics: dict[str, Sequence[float | None]],
    printed_metric_ranks: dict[str, Sequence[int | None]],
    printed_tracks: dict[str, Sequence[int | None]],
) -> tuple[TrackRanks, Reproduction]:
    """Rank a published table from its metrics and compare every printed rank and score.

    ``printed_tracks`` holds ``main_track_rank``, ``sub_track1_score``, ``sub_track1_rank``,
    ``sub_track2_score`` and ``sub_track2_rank`` as printed.
    """
    tracks = rank_tracks(names, metrics, printed_metric_ranks=printed_metric_ranks)
    computed_ranks = {
        "main_track_rank": tracks.main_rank,
        "sub_track1_rank": tracks.sub_track1_rank,
        "sub_track2_rank": tracks.sub_track2_rank,
        **{f"{key}_rank": tracks.metric_ranks[key] for key in METRICS},
    }
    printed_ranks = {
        **{key: printed_tracks[key] for key in ("main_track_rank", "sub_track1_rank", "sub_track2_rank")},
        **{f"{key}_rank": printed_metric_ranks[key] for key in METRICS},
    }
    computed_scores = {
        "sub_track1_score": tracks.sub_track1_score,
        "sub_track2_score": tracks.sub_track2_score,
    }
    differences: list[Difference] = []

    def compare(computed: dict[str, list[int | None]], printed: dict[str, Sequence[int | None]]) -> int:
        agreed = 0
        for column, values in computed.items():
            for index, value in enumerate(values):
                if value == printed[column][index]:
                    agreed += 1
                else:
                    differences.append(Difference(names[index], column, printed[column][index], value))
        return agreed

    rank_agreed = compare(computed_ranks, printed_ranks)
    score_agreed = compare(computed_scores, {key: printed_tracks[key] for key in computed_scores})
    reproduction = Reproduction(
        ranks_checked=len(computed_ranks) * len(names),
        ranks_reproduced=rank_agreed,
        scores_checked=len(computed_scores) * len(names),
        scores_reproduced=score_agreed,
        printed_ties=tracks.printed_ties,
        differences=tuple(differences),
    )
    return tracks, reproduction
