"""The run's progress on the terminal: one line per submission, where it runs and how far it got."""

from __future__ import annotations

import threading

from tqdm import tqdm


class Progress:
    """One progress bar per submission: where it runs, which pass and round, how far it got.

    The lanes' threads report to it at once; ``quiet`` shows nothing.
    """

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bars: dict[str, tqdm] = {}
        self._lock = threading.Lock()

    def show(self, name: str, where: str, doing: str, done: int, total: int) -> None:
        if self.quiet:
            return
        with self._lock:
            bar = self.bars.get(name)
            if bar is None:
                bar = tqdm(total=total, position=len(self.bars), leave=False, unit="img", dynamic_ncols=True)
                self.bars[name] = bar
            bar.set_description(f"{name} [{where}] {doing}", refresh=False)
            bar.total = total
            bar.n = done
            bar.refresh()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
