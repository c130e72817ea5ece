"""Numbered footnotes: a long cell text is printed once under its table, the cell keeps a mark.

A failed submission's reason or a constraint's explanation can run to hundreds of characters; inside
a table it would widen a column for every row. Terminal tables, Markdown leaderboards and the HTML
report all put such texts under the table through this one rule.
"""

from __future__ import annotations

__all__ = ["Footnotes"]


class Footnotes:
    """Collects the texts too long for a cell; equal texts share one number."""

    def __init__(self, inline_up_to: int = 32) -> None:
        self.inline_up_to = inline_up_to
        self._numbers: dict[str, int] = {}

    def mark(self, text: str) -> str:
        """``text`` itself when short enough, else its footnote mark ``[n]``."""
        if len(text) <= self.inline_up_to:
            return text
        return f"[{self.number(text)}]"

    def number(self, text: str) -> int:
        """The footnote number of ``text`` (a new one the first time it is seen)."""
        return self._numbers.setdefault(text, len(self._numbers) + 1)

    def items(self) -> list[tuple[int, str]]:
        """(number, text) in the order they were first marked."""
        return [(number, text) for text, number in self._numbers.items()]

    def lines(self) -> list[str]:
        """``[n] text`` lines to print under the table."""
        return [f"[{number}] {text}" for number, text in self.items()]
