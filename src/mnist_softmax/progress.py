"""A one-line progress bar on stderr, shown only when stderr is a terminal."""

from __future__ import annotations

import sys
import time


class ProgressBar:
    """Redraws `label [#####     ] 45% 4.2/9.3 MB` at most ten times a second; `close()` ends the line."""

    def __init__(self, label: str, stream=None):
        self.label = label
        self.stream = stream or sys.stderr
        self.last = 0.0
        self.drawn = False

    def __call__(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        if now - self.last < 0.1 and done != total:
            return
        self.last = now
        mb = f"{done / 1e6:.1f}"
        if total:
            filled = int(30 * done / total)
            bar = "#" * filled + " " * (30 - filled)
            line = f"{self.label} [{bar}] {100 * done // total:3d}% {mb}/{total / 1e6:.1f} MB"
        else:
            line = f"{self.label} {mb} MB"
        self.stream.write("\r" + line)
        self.drawn = True
        if total and done >= total:
            self.close()
        self.stream.flush()

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.drawn = False


def download_progress(quiet: bool):
    """A `progress(url)` factory for load_dataset: a bar per file on a terminal, nothing otherwise."""
    if quiet or not sys.stderr.isatty():
        return None
    bars: list[ProgressBar] = []

    def start(url: str):
        for bar in bars:
            bar.close()
        bars.append(ProgressBar(url.rsplit("/", 1)[-1]))
        return bars[-1]

    return start
