"""``edgekd bench MODEL --device ssh://...``: measure on the board, put the emulated estimate beside it, and
store the pair for ``edgekd calibrate``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..errors import EmulationError
from ..records import BoardMeasurement

if TYPE_CHECKING:
    from ..targets import TargetProfile

SAMPLES = 8


def bench_on_board(model: str | Path, device_url: str, target: "TargetProfile", *, runs: int = 100,
                   say: Callable[[str], None] = lambda _m: None) -> BoardMeasurement:
    from ..backends.arm import random_inputs
    from ..emu.estimator import estimate_ms
    from .learn import board_clock, count_model, remember
    from .measure import measure_on_board, with_estimate
    from .ssh import parse_device

    device = parse_device(device_url)
    path = Path(model)
    say(f"board: running {path.name}'s smoke bundle on {device.destination} ({target.threads} thread(s))")
    m, _result = measure_on_board(device, path, target, random_inputs(path, SAMPLES), runs=runs)
    if not m.core:
        say(f"board: its CPU ({', '.join(m.board.get('cpu_parts') or ['?'])}) is none of the cores edgekd emulates: "
            "no estimate beside the measurement, nothing stored for calibration")
        return m
    clock = board_clock(m, target.clock_ghz)
    try:
        counts = count_model(path, m.core)
    except EmulationError as e:
        say(f"board: no estimate beside the measurement ({e.cause}); nothing stored for calibration")
        return m
    est = estimate_ms(counts.instructions, m.core, clock, m.threads, m.precision, dram_bytes=counts.dram_bytes)
    m = with_estimate(m, est.ms, (est.low_ms, est.high_ms))
    remember(m, counts, clock)
    say("board: measurement stored for `edgekd calibrate`")
    return m
