"""Errors edgekd raises on purpose.

Every error carries one line that names the cause and the fix; the CLI prints it and exits with
``exit_code`` (2 for bad input, 3 for an unmet budget). Anything else escaping is a bug in edgekd.
"""

from __future__ import annotations

import re


class EdgeKDError(Exception):
    """Base class: ``cause`` says what is wrong, ``fix`` says what the user can do about it."""

    exit_code = 2

    def __init__(self, cause: str, fix: str | None = None, details: tuple[str, ...] = ()) -> None:
        self.cause = cause.rstrip(". ")
        self.fix = fix.rstrip(". ") if fix else None
        self.details = tuple(" ".join(d.split()) for d in details)  # e.g. one reason per converter route
        super().__init__(str(self))

    def headline(self) -> str:
        line = self.cause if not self.fix else f"{self.cause}. Fix: {self.fix}"
        return " ".join(line.split())

    def __str__(self) -> str:
        return self.headline() + "".join(f"; {d}" for d in self.details)  # always a single line


class ConfigError(EdgeKDError):
    """An option or config value is invalid."""


class DataError(EdgeKDError):
    """A data spec cannot be parsed or its data is unusable."""


class TargetError(EdgeKDError):
    """A target profile is unknown or malformed."""


class TeacherError(EdgeKDError):
    """A teacher model cannot be loaded or does not fit the data."""


class TrainingError(EdgeKDError):
    """Training diverged (NaN/inf loss) or cannot proceed."""


class ExportError(EdgeKDError):
    """A model cannot be exported or converted."""


class ParityError(ExportError):
    """A converted model disagrees with its source beyond tolerance."""


class BenchError(EdgeKDError):
    """A benchmark could not be run."""


class EmulationError(BenchError):
    """The emulated ARM environment is missing or a model cannot run under emulation."""


class BoardError(BenchError):
    """A board named with --device ssh://... cannot be reached, refuses us, lacks a runtime, or fails the bundle."""


class OutputError(EdgeKDError):
    """An output location cannot be written."""


class ReportError(EdgeKDError):
    """A run directory or its report.json cannot be read (missing, corrupt, or another report_version)."""


class BudgetError(EdgeKDError):
    """No candidate meets the target's budget."""

    exit_code = 3


class IntegrityError(EdgeKDError):
    """A run's artifact is missing or differs from the sha256 its manifest recorded."""


def first_line(e: BaseException, limit: int = 200) -> str:
    """An exception's message as one short line for an error we raise: its first line, without terminal colour
    codes, at most ``limit`` characters (the exception's type name when it says nothing)."""
    lines = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip().splitlines()
    return (lines[0].strip() if lines else type(e).__name__)[:limit]
