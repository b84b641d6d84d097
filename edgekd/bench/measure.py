"""Pure helpers shared by benchmarks: latency percentiles, memory readings, a description of the host.

Memory is reported in MB of 2**20 bytes (MiB) throughout.
"""

from __future__ import annotations

import os
import platform
import resource
import sys
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..errors import ConfigError

MB = float(1 << 20)


def percentiles(samples_ms: Iterable[float]) -> dict[str, float]:
    """p50/p90/p99 (numpy's linear interpolation between closest ranks) and the mean of ``samples_ms``."""
    a = np.asarray(list(samples_ms), dtype=np.float64)
    if a.size == 0:
        raise ConfigError("no latency samples to summarise", "run the benchmark with runs >= 1")
    if not np.isfinite(a).all():
        raise ConfigError("latency samples contain NaN or inf", "pass measured durations in milliseconds")
    p50, p90, p99 = np.percentile(a, [50, 90, 99], method="linear")
    return {"p50_ms": float(p50), "p90_ms": float(p90), "p99_ms": float(p99), "mean_ms": float(a.mean())}


def current_rss_mb() -> float:
    """Resident memory of this process now (VmRSS); the peak so far where /proc is unavailable."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0  # kB
    except (OSError, ValueError, IndexError):
        pass
    return peak_rss_mb()


def peak_rss_mb() -> float:
    """Peak resident memory of this process image: VmHWM from /proc/self/status.

    Not getrusage's ru_maxrss: on Linux a child inherits its parent's high-water mark across fork+exec,
    so a small benchmark worker started by a large build process would report the build's memory.
    ru_maxrss is only the fallback where /proc is unavailable.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0  # kB
    except (OSError, ValueError, IndexError):
        pass
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / MB if sys.platform == "darwin" else maxrss / 1024.0


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo (x86 'model name', ARM 'Hardware'/'CPU part'), else platform."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip() not in fields and value.strip():
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    for key in ("model name", "Model", "Hardware", "cpu model", "Processor"):
        if key in fields:
            return fields[key]
    if "CPU part" in fields:
        return f"{platform.machine()} (CPU implementer {fields.get('CPU implementer', '?')}, part {fields['CPU part']})"
    return platform.processor() or platform.machine() or "unknown CPU"


def logical_cores() -> int:
    return os.cpu_count() or 1


def usable_cores() -> int:
    """Cores this process may run on (CPU affinity / container limits), never more than the logical cores."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return logical_cores()


def host_environment() -> dict[str, Any]:
    return {
        "cpu": cpu_model(),
        "machine": platform.machine(),
        "logical_cores": logical_cores(),
        "usable_cores": usable_cores(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }
