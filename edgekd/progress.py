"""Training progress on the console: a bar within each epoch on a terminal, plain lines otherwise.

On a terminal (stderr is a TTY) the current epoch shows as one line rewritten in place — epoch, steps done, running
loss and the time left in the whole training — at most a few times a second, and erased before the epoch's own
summary line is printed. Anywhere else (CI logs, pipes) nothing is drawn: the epoch lines carry the ETA instead.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

REFRESH_S = 0.25
WIDTH = 24


def eta_text(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class EpochBar:
    """``update(step, loss)`` after each step; ``clear()`` before printing anything else."""

    def __init__(self, epoch: int, epochs: int, steps: int, seconds_per_epoch: float | None,
                 stream: TextIO | None = None, enabled: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.epoch, self.epochs, self.steps = epoch, epochs, max(1, steps)
        self.per_epoch = seconds_per_epoch
        self.t0 = time.perf_counter()
        self.last = 0.0
        self.drawn = False

    def update(self, step: int, loss: float) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self.last < REFRESH_S and step + 1 < self.steps:
            return
        self.last = now
        done = (step + 1) / self.steps
        elapsed = now - self.t0
        this_left = elapsed / done - elapsed if done > 0 else 0.0
        later = (self.per_epoch or elapsed / max(done, 1e-9)) * (self.epochs - self.epoch)
        filled = int(WIDTH * done)
        self.stream.write(f"\r    epoch {self.epoch}/{self.epochs} [{'#' * filled}{'.' * (WIDTH - filled)}] "
                          f"{100 * done:3.0f}%  loss {loss:.4f}  ETA {eta_text(this_left + later)}\x1b[K")
        self.stream.flush()
        self.drawn = True

    def clear(self) -> None:
        if self.drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.drawn = False
