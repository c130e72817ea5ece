"""Where the printed official table disagrees with the organisers' own counter.

The official results table prints params (M, 3 decimals), FLOPs (G, 2 decimals), activations (M,
2 decimals) and the number of Conv2d layers. Running the organisers' counter on the released code
does not always give the printed value; the leaderboard shows both and says so. Values are compared
as printed: the counted number is rounded the way the official test script formats it.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.zoo.registry import Registry, ZooEntry, default_registry

# metric -> (published field, divisor, decimals, unit), as the official test script prints them.
PRINTED_AS: dict[str, tuple[str, float, int, str]] = {
    "params": ("params_m", 1e6, 3, "M"),
    "flops": ("flops_g", 1e9, 2, "G"),
    "activations": ("acts_m", 1e6, 2, "M"),
    "num_conv": ("num_conv", 1, 0, ""),
}


@dataclass(frozen=True)
class Disagreement:
    """One metric of one model whose printed value differs from the organisers' counter."""

    official_model_id: int
    team: str
    metric: str
    published: float
    counted: int
    counted_as_printed: float

    def describe(self) -> str:
        _, _, decimals, unit = PRINTED_AS[self.metric]
        return (
            f"{self.team} (official model {self.official_model_id}): {self.metric} printed "
            f"{self.published:.{decimals}f}{unit}, the organisers' counter gives "
            f"{self.counted_as_printed:.{decimals}f}{unit} ({self.counted:,})"
        )


def as_printed(metric: str, counted: int) -> float:
    """``counted`` in the table's unit, rounded to the table's decimals (as ``f'{x:.Nf}'`` does)."""
    _, divisor, decimals, _ = PRINTED_AS[metric]
    return float(f"{counted / divisor:.{decimals}f}")


def entry_disagreements(entry: ZooEntry) -> list[Disagreement]:
    """The metrics of one model whose printed value is not the counter's value as printed (none when
    the registry has no printed or counted figures for it)."""
    if entry.published is None or entry.official_counter is None:
        return []
    found = []
    for metric, (published_field, _, _, _) in PRINTED_AS.items():
        published = float(getattr(entry.published, published_field))
        counted = int(getattr(entry.official_counter, metric))
        printed = as_printed(metric, counted)
        if printed != published:
            found.append(
                Disagreement(entry.official_model_id, entry.team, metric, published, counted, printed)
            )
    return found


def compare_published(registry: Registry | None = None) -> list[Disagreement]:
    """Every disagreement between the printed table and the organisers' counter, in registry order."""
    registry = registry or default_registry()
    return [d for entry in registry.entries for d in entry_disagreements(entry)]
