"""A build's run directory as records: read and re-validate report.json (and manifest.json), regenerate the pages.

``edgekd report RUN_DIR`` and ``edgekd compare RUN_A RUN_B`` start here. Anything wrong with the input (not a
run directory, report.json missing or corrupt, written for another report_version) is a :class:`ReportError`
naming the cause and the fix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ReportError
from ..fsio import sha256_file, write_json_atomic, write_text_atomic
from .build_report import REPORT_VERSION

_NUM = (int, float)
# top-level fields every report.json has, and their JSON types
TOP = {"target": str, "target_description": str, "budget": dict, "data": dict, "teacher": dict, "distill": dict,
       "candidates": list, "selection": dict, "latency_note": str, "quantization_warnings": list,
       "stage_seconds": dict, "wall_seconds": _NUM, "environment": dict, "command": str}
CANDIDATE = {"name": str, "student": str, "runtime": str, "params": int, "macs": int, "accuracy_int8": _NUM,
             "latency": dict, "host_latency": dict, "host_latency_fp32": dict, "peak_memory_mb": _NUM,
             "model_size_mb": _NUM, "within_budget": bool, "budget_violations": list}
# a latency figure (records.LatencyFigure.as_dict); a measured one has p50/p90/p99, an estimated one its estimate
FIGURE = {"backend": str, "kind": str, "source": str, "how": str, "judged_ms": _NUM}
_FIX_RERUN = "re-run the build (`edgekd build ...`) to write it again"
SELECTION = {"reason": str, "pareto": list, "violations": dict}
BUDGET = ("p90_latency_ms", "peak_memory_mb", "model_size_mb", "min_accuracy")  # present, a number or null
ARM = {"estimate_ms": _NUM, "band_ms": list, "first_inference_ms": _NUM, "instructions": _NUM, "core": str,
       "clock_ghz": _NUM, "threads": int, "parity": dict}
NPU = {"time_ms": _NUM, "cycles_total": int, "sram_kib": _NUM, "flash_kib": _NUM, "npu_ops": int, "cpu_ops": int,
       "cpu_fallback": list, "layers": list, "accelerator": str, "clock_mhz": _NUM}
PROFILE = {"profiled_runtime": str, "ops": list}
OP = {"node": str, "op_type": str, "calls": int, "total_us": _NUM, "mean_us": _NUM, "share": _NUM}


@dataclass(frozen=True)
class Run:
    """A run directory's records, validated."""

    path: Path
    report: dict[str, Any]
    manifest: dict[str, Any] | None  # None when the run has no manifest.json
    notes: tuple[str, ...] = field(default_factory=tuple)  # integrity remarks (e.g. report.json edited since)


def load_run(run_dir: str | Path) -> Run:
    """Read and validate ``RUN_DIR/report.json`` (and ``manifest.json`` when present)."""
    run = Path(run_dir)
    if not run.is_dir():
        raise ReportError(f"{run} is not a directory" + (" (it is a file)" if run.exists() else ""),
                          "pass the run directory of a build, e.g. runs/raspberrypi (the one holding report.json)")
    path = run / "report.json"
    if not path.is_file():
        raise ReportError(f"{run} holds no report.json: it is not an edgekd run directory, or its build did not "
                          "get as far as the report", f"pass the directory a build wrote (its --out), or {_FIX_RERUN}")
    report = _read_json(path)
    validate_report(report, path)
    manifest, notes = None, []
    if (run / "manifest.json").is_file():
        manifest = _read_json(run / "manifest.json")
        recorded = (manifest.get("artifacts") or {}).get("report.json") if isinstance(manifest, dict) else None
        if not isinstance(manifest, dict):
            raise ReportError(f"{run / 'manifest.json'} is not a JSON object", _FIX_RERUN)
        if recorded and recorded != sha256_file(path):
            notes.append("report.json differs from the sha256 manifest.json recorded at build time "
                         "(edited or replaced since the build)")
    else:
        notes.append("the run has no manifest.json (artifact hashes cannot be checked)")
    return Run(run, report, manifest, tuple(notes))


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ReportError(f"cannot read {path} ({getattr(e, 'strerror', None) or e})", _FIX_RERUN) from None
    try:
        return json.loads(text)
    except ValueError as e:
        where = f" at line {e.lineno}, column {e.colno}" if hasattr(e, "lineno") else ""
        raise ReportError(f"{path} is not valid JSON{where} (truncated or edited by hand?)", _FIX_RERUN) from None


def validate_report(r: Any, path: Path | str = "report.json") -> None:
    """Check report_version and the fields the pages are built from; ReportError naming the first problem."""
    if not isinstance(r, dict):
        raise ReportError(f"{path} holds a JSON {type(r).__name__}, not a report object", _FIX_RERUN)
    version = r.get("report_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ReportError(f"{path} has no report_version: not a report written by edgekd", _FIX_RERUN)
    if version > REPORT_VERSION:
        raise ReportError(f"{path} was written by a newer edgekd (report_version {version}; this edgekd reads "
                          f"{REPORT_VERSION})", "use the edgekd that made the run, or upgrade edgekd")
    if version < REPORT_VERSION:
        raise ReportError(f"{path} was written by an older edgekd (report_version {version}; this edgekd reads "
                          f"{REPORT_VERSION})", "re-run the build with this edgekd")
    _check_fields(r, TOP, str(path))
    if "selected" not in r or not (r["selected"] is None or isinstance(r["selected"], str)):
        raise ReportError(f"{path}: 'selected' is missing or not a name", _FIX_RERUN)
    _check_fields(r["selection"], SELECTION, f"{path}: selection")
    for key in BUDGET:
        if not isinstance(r["budget"].get(key, ""), (*_NUM, type(None))):
            raise ReportError(f"{path}: budget lacks a numeric (or null) '{key}'", _FIX_RERUN)
    names = set()
    for i, c in enumerate(r["candidates"]):
        _check_candidate(c, f"{path}: candidates[{i}]")
        names.add(c["name"])
    if r.get("slowest_ops"):
        _check_fields(r["slowest_ops"], {} if "error" in r["slowest_ops"] else PROFILE, f"{path}: slowest_ops")
    if r["selected"] is not None and r["selected"] not in names:
        raise ReportError(f"{path}: the selected candidate {r['selected']!r} is not among the candidates", _FIX_RERUN)


def _check_candidate(c: Any, where: str) -> None:
    if not isinstance(c, dict):
        raise ReportError(f"{where} is not an object", _FIX_RERUN)
    _check_fields(c, CANDIDATE, where)
    for key in ("latency", "latency_fp32", "host_latency", "host_latency_fp32"):
        fig = c.get(key)
        if fig is None and key == "latency_fp32":
            continue  # a backend that runs int8 only
        _check_fields(fig, FIGURE, f"{where}.{key}")
        wanted = ("p50_ms", "p90_ms", "p99_ms") if fig["kind"] == "measured" else ("estimate_ms",)
        if not all(isinstance(fig.get(p), _NUM) for p in wanted):
            raise ReportError(f"{where}.{key} lacks a numeric {' / '.join(wanted)} ({fig['kind']} figure)",
                              _FIX_RERUN)
    if c.get("arm"):
        for prec in ("int8", "fp32"):
            _check_fields((c["arm"] if isinstance(c["arm"], dict) else {}).get(prec), ARM, f"{where}.arm.{prec}")
    if c.get("npu"):
        _check_fields(c["npu"], NPU, f"{where}.npu")
    prof = c.get("ops_profile")
    if prof and "error" not in prof:
        _check_fields(prof, PROFILE, f"{where}.ops_profile")
        for j, op in enumerate(prof["ops"]):
            _check_fields(op, OP, f"{where}.ops_profile.ops[{j}]")


def _check_fields(obj: Any, spec: dict[str, Any], where: str) -> None:
    if not isinstance(obj, dict):
        raise ReportError(f"{where} is missing or not an object", _FIX_RERUN)
    for key, kind in spec.items():
        if key not in obj:
            raise ReportError(f"{where} lacks '{key}' (incomplete or not an edgekd report)", _FIX_RERUN)
        if not isinstance(obj[key], kind) or (kind is int and isinstance(obj[key], bool)):
            raise ReportError(f"{where}: '{key}' is a {type(obj[key]).__name__}, expected "
                              f"{getattr(kind, '__name__', 'a number')}", _FIX_RERUN)


def regenerate(run_dir: str | Path) -> tuple[Run, dict[str, Path]]:
    """Re-validate the run's records and rewrite report.md and report.html from them (each atomically);
    the manifest's hashes of those two files are brought up to date."""
    from .html import to_html
    from .writer import to_markdown

    run = load_run(run_dir)
    try:
        pages = {"md": to_markdown(run.report), "html": to_html(run.report)}
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:  # a field the checks above don't cover
        raise ReportError(f"{run.path / 'report.json'} does not have the shape this edgekd writes "
                          f"({type(e).__name__}: {e})", _FIX_RERUN) from None
    paths = {kind: write_text_atomic(run.path / f"report.{kind}", text) for kind, text in pages.items()}
    if run.manifest is not None and isinstance(run.manifest.get("artifacts"), dict):
        artifacts = dict(run.manifest["artifacts"])
        fresh = {p.name: sha256_file(p) for p in paths.values()}
        if any(artifacts.get(k) != v for k, v in fresh.items()):
            write_json_atomic(run.path / "manifest.json", {**run.manifest, "artifacts": {**artifacts, **fresh}})
    return run, paths
