"""Wall time of the build-heavy tests, this checkout against a baseline checkout, interleaved (A B A B ...).

    .venv/bin/python benchmarks/suite_time.py --baseline DIR [--rounds 2] [-k EXPR]

DIR is a checkout of an earlier commit (e.g. `git worktree add /tmp/old COMMIT`); both run with this checkout's
.venv, the baseline with PYTHONPATH=DIR so its own edgekd is imported. The subset is the tests that build
(`test_build.py`, `test_build_npu.py`, `test_resume.py`, `test_arm_emu.py`); tests one side has and the other does
not are deselected with -k. Interleaving spreads slow drift of a shared machine over both sides; the figure is
the ratio of the means. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import record  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SUBSET = ["tests/integration/test_build.py", "tests/integration/test_build_npu.py", "tests/integration/test_resume.py",
          "tests/unit/test_arm_emu.py"]


def _run(checkout: Path, env: dict[str, str], k: str) -> tuple[float, str]:
    cmd = [str(ROOT / ".venv/bin/python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", *SUBSET] + (["-k", k] if k else [])
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=checkout, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    last = (r.stdout.strip().splitlines() or ["(no output)"])[-1]
    if r.returncode != 0:
        sys.exit(f"tests failed in {checkout}: {last}")
    return wall, last


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--baseline", type=Path, required=True, help="checkout of the earlier commit")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("-k", default="not default_teacher_is_the_same", help="pytest -k: tests both sides have")
    args = ap.parse_args()
    base = args.baseline.resolve()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=base, capture_output=True, text=True).stdout.strip()
    walls: dict[str, list[float]] = {"baseline": [], "this": []}
    for i in range(args.rounds):
        for side, checkout, env in (("baseline", base, {**os.environ, "PYTHONPATH": str(base)}),
                                    ("this", ROOT, dict(os.environ))):
            wall, last = _run(checkout, env, args.k)
            walls[side].append(wall)
            print(f"round {i + 1} {side}: {wall:.1f} s ({last})", flush=True)
    mean = {s: sum(v) / len(v) for s, v in walls.items()}
    ratio = mean["this"] / mean["baseline"]
    record("suite_time", {"baseline_commit": commit, "subset": SUBSET, "k": args.k, "walls_s": walls,
                          "mean_s": mean, "ratio": ratio},
           f"build-heavy tests ({len(SUBSET)} files), interleaved x{args.rounds}: baseline {commit} "
           f"{mean['baseline']:.0f} s ({', '.join(f'{w:.0f}' for w in walls['baseline'])}), this checkout "
           f"{mean['this']:.0f} s ({', '.join(f'{w:.0f}' for w in walls['this'])}): {ratio:.2f}x",
           f"python benchmarks/suite_time.py --baseline DIR --rounds {args.rounds}")


if __name__ == "__main__":
    main()
