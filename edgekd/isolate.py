"""Third-party converters run in a child process, so that one that crashes, hangs or eats the memory cannot take
edgekd down.

:func:`run_isolated` calls a module-level function in a child process (``multiprocessing``'s ``forkserver``: a
clean single-threaded server forks each child, so no thread of torch's, TensorFlow's or JAX's is forked) with a
time limit and a memory limit (the child's resident memory, watched from the parent). What the child's native code
and libraries print goes to a log file instead of the console (left on the console with ``--debug``). A child that
dies by a signal, runs past the time limit, grows past the memory limit, or raises becomes a
:class:`ConverterFailed` (an ``ExportError``) naming the step, what happened ("killed by SIGSEGV", "no result after
600 s", ...) and the last lines of its own output; an edgekd error raised in the child comes back as itself.

Limits: ``EDGEKD_CONVERT_TIMEOUT_S`` (default 900 s) and ``EDGEKD_CONVERT_MEMORY_MB`` (default three quarters of
this machine's memory) override the defaults; callers may pass their own :class:`Limits`.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from . import errors
from .errors import ExportError

TAIL_LINES = 6  # of the converter's own output, quoted in the error
_POLL_S = 0.1


@dataclass(frozen=True)
class Limits:
    timeout_s: float
    memory_mb: float


class ConverterFailed(ExportError):
    """A converter step that crashed, hung, ran out of memory or raised, in its child process."""

    def __init__(self, step: str, what: str, tail: str = "", fix: str | None = None) -> None:
        self.step, self.what, self.tail = step, what, tail
        cause = f"{step}: {what}" + (f" (its last output: {tail})" if tail else "")
        super().__init__(cause, fix or "the step cannot convert this model; try another route or precision")

    def __reduce__(self):
        return ConverterFailed, (self.step, self.what, self.tail, self.fix)


def default_limits() -> Limits:
    mem_total = _mem_total_mb()
    return Limits(float(os.environ.get("EDGEKD_CONVERT_TIMEOUT_S", 900)),
                  float(os.environ.get("EDGEKD_CONVERT_MEMORY_MB", 0.75 * mem_total if mem_total else 8192)))


def run_isolated(fn: Callable[..., Any], *args: Any, step: str, log: Path, limits: Limits | None = None) -> Any:
    """``fn(*args)`` in a child process; its return value (picklable), or :class:`ConverterFailed` / the edgekd
    error it raised. ``fn`` must be importable by name (a module-level function); arguments that cannot be pickled
    (a model whose class is defined inside a function) make it run in this process instead, said in the log."""
    from .console import debugging

    import pickle

    limits = limits or default_limits()
    log = Path(log)
    log.parent.mkdir(parents=True, exist_ok=True)
    start = log.stat().st_size if log.is_file() else 0
    _note(log, f"==== {time.strftime('%Y-%m-%d %H:%M:%S')} {step}")
    ctx = _context()
    reader, writer = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_child, args=(writer, fn, args, str(log), debugging()), daemon=True)
    try:
        child.start()  # pickles fn and args for the fork server (once)
    except (pickle.PicklingError, AttributeError, TypeError) as e:  # e.g. a model class defined inside a function
        reader.close()
        writer.close()
        _note(log, f"run in this process, not isolated: its arguments cannot be sent to a child process "
                   f"({type(e).__name__}: {e})")
        return fn(*args)
    writer.close()
    deadline = time.monotonic() + limits.timeout_s
    message, killed_for = None, None
    try:
        while message is None and killed_for is None:
            if reader.poll(_POLL_S):
                try:
                    message = reader.recv()
                except EOFError:  # the child died without a word: its exit status says how
                    break
            elif not child.is_alive():
                break
            elif _rss_mb(child.pid) > limits.memory_mb:
                killed_for = f"ran out of memory (over the {limits.memory_mb:.0f} MB limit; killed)"
            elif time.monotonic() > deadline:
                killed_for = f"no result after {limits.timeout_s:g} s (hung; killed)"
        if message is None and killed_for is None and reader.poll(0):  # sent just before it exited
            try:
                message = reader.recv()
            except EOFError:
                pass
    finally:
        if child.is_alive():
            try:
                os.kill(child.pid, signal.SIGKILL)
            except ProcessLookupError:  # it ended meanwhile
                pass
        child.join(30)
        reader.close()
    if message is not None:
        status, payload = message
        if status == "ok":
            return payload
        raise _rebuilt(step, payload, _tail(log, start))
    if killed_for is None:
        code = child.exitcode
        killed_for = (f"killed by {signal.Signals(-code).name}" if code is not None and code < 0
                      else f"exited with code {code} without a result")
    raise ConverterFailed(step, killed_for, _tail(log, start))


def run_program(cmd: list[str], *, step: str, cwd: Path, limits: Limits | None = None) -> Any:
    """A third-party program (e.g. Vela) under the same watch: its ``subprocess.CompletedProcess`` (text output),
    or :class:`ConverterFailed` when it ran past the time limit, grew past the memory limit or died by a signal."""
    import subprocess

    limits = limits or default_limits()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, errors="replace", cwd=cwd)
    deadline = time.monotonic() + limits.timeout_s
    while True:
        try:
            out, err = proc.communicate(timeout=_POLL_S)  # retried after a timeout without losing output
            break
        except subprocess.TimeoutExpired:
            killed_for = (f"ran out of memory (over the {limits.memory_mb:.0f} MB limit; killed)"
                          if _rss_mb(proc.pid) > limits.memory_mb else
                          f"no result after {limits.timeout_s:g} s (hung; killed)" if time.monotonic() > deadline
                          else None)
            if killed_for:
                proc.kill()
                out, err = proc.communicate()
                raise ConverterFailed(step, killed_for, _last_lines(err or out)) from None
    if proc.returncode < 0:
        raise ConverterFailed(step, f"killed by {signal.Signals(-proc.returncode).name}", _last_lines(err or out))
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _last_lines(text: str) -> str:
    """The last non-blank lines of a program's output, colour codes dropped, as one line."""
    import re

    lines = [re.sub(r"\x1b\[[0-9;]*m", "", ln).strip() for ln in (text or "").splitlines()]
    lines = [ln for ln in lines if ln]
    return " | ".join(ln[:200] for ln in lines[-TAIL_LINES:])


def _note(log: Path, line: str) -> None:
    """A line of our own in the log; a log that cannot be written (full disk, size limit) is not an error here:
    the artifacts' own writes report that, naming the artifact."""
    try:
        with open(log, "ab") as f:
            f.write((line + "\n").encode())
    except OSError:
        pass


def _child(writer: Any, fn: Callable[..., Any], args: tuple, log: str, debug: bool) -> None:
    if not debug:  # the converters' chatter, native and Python, goes to the log (or nowhere if it cannot be opened)
        try:
            fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError:
            fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
    try:
        result = fn(*args)
        message = ("ok", result)
    except BaseException as e:  # everything goes back to the parent as data
        io_error = (e.errno, e.strerror, e.filename, e.filename2) if isinstance(e, OSError) else None
        message = ("error", (type(e).__name__, getattr(e, "cause", None), getattr(e, "fix", None),
                             " ".join(str(e).split())[:500], io_error))
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    writer.send(message)
    writer.close()


def _rebuilt(step: str, payload: tuple, tail: str) -> Exception:
    name, cause, fix, text, io_error = payload
    if io_error is not None:  # no space, a file size limit, a read-only folder: the user's to fix, not the route's
        from .fsio import write_error

        no, strerror, filename, filename2 = io_error
        err = write_error(OSError(no, strerror, filename, None, filename2), filename2 or filename or step)
        if err is not None:
            return err
    cls = getattr(errors, name, None)
    if cause is not None and isinstance(cls, type) and issubclass(cls, errors.EdgeKDError):
        return cls(cause, fix)  # edgekd's own error from inside the step: as it was raised
    return ConverterFailed(step, f"raised {name}: {text}" if text else f"raised {name}", tail)


def _tail(log: Path, start: int) -> str:
    """The last lines the step wrote to the log (its own header dropped), as one line."""
    try:
        with open(log, "rb") as f:
            f.seek(start)
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return _last_lines("\n".join(ln for ln in text.splitlines() if not ln.startswith("====")))


_CTX = None
# imported once by the fork server, so that each conversion's child starts with the converters loaded
PRELOAD = ["edgekd.forkserver_preload"]


def _context() -> Any:
    """The forkserver context, its server started once per process with :data:`PRELOAD` imported."""
    global _CTX
    if _CTX is None:
        import multiprocessing

        _CTX = multiprocessing.get_context("forkserver")
        _CTX.set_forkserver_preload(PRELOAD)
    return _CTX


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _mem_total_mb() -> float:
    try:
        with open("/proc/meminfo") as f:
            return next(int(ln.split()[1]) for ln in f if ln.startswith("MemTotal:")) / 1024
    except (OSError, StopIteration, ValueError):
        return 0.0
