"""``edgekd build --target A --target B ...``: one model family, several devices, compared side by side.

Each target gets its own build into ``OUT/<target>/`` (its plan against its own budget, its own figures and choice:
exactly what a single-target build writes). What does not depend on the target is made once: the data and the
teacher's outputs (cached by content), and every student, ONNX export, int8 model and TFLite model (the shared
store, ``shared_store``), so the second and later targets train nothing their predecessors trained. Then
``OUT/comparison.json|md|html`` puts the devices side by side (``report.devices``): each candidate's judged figure
on each device with how it was obtained, and the choice per device.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from .build_config import BuildConfig
from .errors import BudgetError, ConfigError
from .fsio import ensure_dir, write_json_atomic, write_text_atomic

Progress = Callable[[str], None]


@dataclass(frozen=True)
class TargetOutcome:
    target: str
    run_dir: str
    selected: str | None
    unmet: str | None  # the budget error's message when nothing fits the target


def default_out(targets: tuple[str, ...]) -> Path:
    return Path("runs") / "+".join(targets)


def build_targets(config: BuildConfig, targets: tuple[str, ...], progress: Progress | None = None) -> dict[str, Any]:
    """Build for every target in turn (students shared); write and return the comparison dict.

    Raises BudgetError (exit 3) after writing the comparison when some target has no student within budget."""
    from .pipeline import build
    from .report.devices import comparison, comparison_html, comparison_markdown
    from .targets import load_target

    say = progress or (lambda _m: None)
    if len(set(targets)) != len(targets):
        raise ConfigError(f"--target repeats a device ({', '.join(targets)})", "name each target once")
    if config.board:
        raise ConfigError(f"--device {config.board} is one board, but {len(targets)} targets were named",
                          "measure on the board with a single --target (the one the board is)")
    for t in targets:  # every name checked before any work: a typo fails in a second, not after the first build
        load_target(t, config.targets_dir)
    out = ensure_dir(Path(config.out_dir) if config.out_dir else default_out(targets))
    reports, outcomes = {}, []
    for i, t in enumerate(targets, 1):
        say(f"== target {i}/{len(targets)}: {t} ==")
        run_dir = out / t
        try:
            reports[t] = build(replace(config, target=t, out_dir=str(run_dir)), progress=say)
            outcomes.append(TargetOutcome(t, str(run_dir), reports[t]["selected"], None))
        except BudgetError as e:  # this device fits nothing: the others are still built and compared
            say(f"{t}: {e}")
            report_file = run_dir / "report.json"
            if report_file.is_file():
                reports[t] = json.loads(report_file.read_text())
            outcomes.append(TargetOutcome(t, str(run_dir), None, str(e)))
    cmp = comparison(reports, [o.__dict__ for o in outcomes])
    write_json_atomic(out / "comparison.json", cmp)
    write_text_atomic(out / "comparison.md", comparison_markdown(cmp))
    write_text_atomic(out / "comparison.html", comparison_html(cmp))
    say(f"comparison: {out / 'comparison.md'} (and comparison.json, comparison.html)")
    unmet = [o for o in outcomes if o.unmet]
    if unmet:
        raise BudgetError(f"{len(unmet)} of {len(targets)} targets have no student within budget: "
                          + "; ".join(f"{o.target}: {o.unmet}" for o in unmet),
                          f"see {out / 'comparison.md'}; relax those budgets or try other sizes")
    return cmp
