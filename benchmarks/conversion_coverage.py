"""Which standard architectures does edgekd convert, with parity, and how fast do they run on this host?

    .venv/bin/python benchmarks/conversion_coverage.py --small                 # all architectures, 96 px inputs
    .venv/bin/python benchmarks/conversion_coverage.py --archs mlp,convnet_student --quick   # a smoke run
    .venv/bin/python benchmarks/conversion_coverage.py --small --routes both   # also each TFLite route alone

For every architecture in ``architectures.ARCHS`` (random weights, BN statistics re-estimated) and every cell:

  onnx_fp32    edgekd.export.onnx.export_onnx
  ort_int8     edgekd.quantize.ort_int8.quantize_onnx_int8 (static QDQ, MinMax, per-channel) of that ONNX file
  tflite_P     edgekd.export.tflite.export_tflite(precision=P, converter="auto") for P in fp32, fp16, int8
               (the route that produced the model is recorded; ``--routes both`` adds litert-torch and
               onnx2tf alone, as extra cells ``tflite_P@route``)

it records: converted (or the one-line reason it was not), parity against torch (argmax agreement and max abs
diff within edgekd's PARITY_DEFAULTS for the precision; int8 calibrated on 64 other random inputs), conversion time (includes edgekd's own checks), and host latency p50/p90/p99 (batch 1, measured
in a fresh process by edgekd.bench.host). ``converter="auto"`` itself already requires parity (it falls back to
onnx2tf when litert-torch's model fails it), so an auto cell that fails parity raises and is shown "parity ✗";
the per-route cells (``--routes both``) convert with parity checking off and are judged afterwards.

Parity inputs: random-weight nets have no classes to be sure of, and on random N(0, 1) inputs a 1000-class head
gives near-tied logits (median top-1/top-2 margin ~0.05 for MobileNet at 96 px, the size of fp16 rounding), so
argmax agreement on arbitrary inputs measures ties, not conversion errors. The 32 parity inputs are therefore
the 32 of 256 random inputs with the clearest top-1 margin in torch; the agreement over all 256 is recorded as
``pool_argmax_agreement`` (not judged). The difference limit is the product's own (scale-aware) one.

Each architecture runs in its own worker process; a cell that runs past ``--cell-timeout`` (or crashes the
worker) is recorded as such and the worker is restarted for the remaining cells. Writes
``results/conversion_coverage.json`` (all cells, plus the Markdown table as ``table_md``) and one RESULTS.md line.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import queue
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _results import record  # noqa: E402

BASE_CELLS = ["onnx_fp32", "ort_int8", "tflite_fp32", "tflite_fp16", "tflite_int8"]
ROUTE_ABBR = {"litert-torch": "lt", "onnx2tf": "o2t"}
N_PARITY, N_POOL, N_CALIB = 32, 256, 64
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def cells_for(routes: str) -> list[str]:
    cells = list(BASE_CELLS)
    if routes == "both":
        cells += [f"tflite_{p}@{r}" for p in ("fp32", "fp16", "int8") for r in ROUTE_ABBR]
    return cells


def one_line(e: BaseException, limit: int = 400) -> str:
    from edgekd.errors import EdgeKDError

    text = e.cause if isinstance(e, EdgeKDError) else f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]}"
    text = " ".join(_ANSI.sub("", text).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


# ---------------------------------------------------------------- worker (one process per architecture)


def arch_worker(name: str, small: bool, cells: list[str], opts: dict[str, Any], q: Any, log_path: str) -> None:
    """Convert, check and bench ``cells`` of one architecture; put ("start", cell) / ("done", cell, result)."""
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)  # converters print a lot: keep it out of the table
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import torch

    from architectures import build, input_shape

    torch.set_num_threads(opts["threads"])
    shape = input_shape(name, small)
    model = build(name, small)
    rng = np.random.default_rng(1)
    pool = rng.standard_normal((N_POOL, *shape)).astype(np.float32)
    calib = rng.standard_normal((N_CALIB, *shape)).astype(np.float32)
    with torch.no_grad():
        pool_ref = np.concatenate([model(torch.from_numpy(pool[i:i + 32])).numpy() for i in range(0, N_POOL, 32)])
    top2 = np.sort(pool_ref.reshape(N_POOL, -1), axis=1)[:, -2:]
    decisive = np.sort(np.argsort(top2[:, 1] - top2[:, 0])[-N_PARITY:])  # the clearest top-1 margins
    x, reference = pool[decisive], pool_ref[decisive]
    opts["pool"], opts["pool_reference"] = pool, pool_ref
    work = Path(opts["workdir"]) / name
    work.mkdir(parents=True, exist_ok=True)
    for cell in cells:
        q.put(("start", cell))
        q.put(("done", cell, run_cell(cell, model, shape, x, calib, reference, work, opts)))


def run_cell(cell: str, model, shape, x, calib, reference, work: Path, opts: dict[str, Any]) -> dict[str, Any]:
    from edgekd.errors import ParityError

    fmt, _, rest = cell.partition("_")
    precision, _, route = rest.partition("@")
    res: dict[str, Any] = {"format": {"onnx": "onnx", "ort": "onnx", "tflite": "tflite"}[fmt], "precision": precision,
                           "converter": route or ("auto" if fmt == "tflite" else None), "converted": False,
                           "route": None, "reason": None, "parity": None, "parity_passed": None, "convert_s": None,
                           "latency": None, "bench_error": None, "size_bytes": None, "notes": []}
    t0 = time.perf_counter()
    try:
        path, rec = convert(fmt, precision, route, model, x, calib, work, res)
    except Exception as e:  # one cell's failure never stops the run
        res["convert_s"] = time.perf_counter() - t0
        res["reason"] = one_line(e)
        parity_fail = isinstance(e, ParityError) or "parity failed" in str(e)
        res["converted"] = parity_fail  # a model was produced but no route passed the check
        res["parity_passed"] = False if parity_fail else None
        return res
    res["convert_s"] = time.perf_counter() - t0
    res["converted"], res["size_bytes"] = True, rec.size_bytes
    if fmt == "tflite":
        res["route"] = rec.config.get("route")
        res["fallback_reason"] = rec.config.get("fallback_reason")
        res["notes"] += [n for n in rec.config.get("notes", []) if "int8 tensor" in n]
    else:
        res["route"] = rec.tool
    judge(res, path, fmt, precision, reference, x, opts)
    bench(res, path, fmt, shape, opts)
    return res


def convert(fmt, precision, route, model, x, calib, work: Path, res: dict[str, Any]):
    from edgekd.export.onnx import export_onnx
    from edgekd.export.tflite import export_tflite
    from edgekd.quantize.ort_int8 import OrtInt8Config, quantize_onnx_int8

    fp32_onnx = work / "onnx_fp32.onnx"
    if fmt == "onnx":
        rec = export_onnx(model, x, fp32_onnx, atol=None, rtol=None, min_agreement=None)  # judged below, against torch
        return fp32_onnx, rec
    if fmt == "ort":
        if not fp32_onnx.is_file():
            raise RuntimeError("no ONNX fp32 model to quantize (the onnx_fp32 cell failed)")
        out = work / "ort_int8.onnx"
        rec = quantize_onnx_int8(fp32_onnx, calib, out, OrtInt8Config(calibration_samples=len(calib)),
                                 parity_data=x, min_agreement=None)
        return out, rec
    out = work / f"tflite_{precision}_{route or 'auto'}.tflite"
    kw: dict[str, Any] = {"converter": route or "auto", "calibration": calib if precision == "int8" else None}
    if fp32_onnx.is_file() and route != "litert-torch":  # the onnx2tf route starts from the same ONNX export instead of exporting again
        kw["onnx_path"] = fp32_onnx
        res["notes"].append("onnx2tf route fed the onnx_fp32 cell's file")
    if route:  # a single route: convert without parity gating, judge afterwards
        kw["tolerances"] = {"atol": None, "rtol": None, "min_agreement": None}
    return out, export_tflite(model, x, out, precision=precision, **kw)


def judge(res: dict[str, Any], path: Path, fmt: str, precision: str, reference, x, opts: dict[str, Any]) -> None:
    from edgekd.export.parity import PARITY_DEFAULTS, compare_outputs, run_onnx
    from edgekd.export.tflite_runtime import run_tflite

    try:
        got = run_onnx(path, x) if path.suffix == ".onnx" else run_tflite(path, x)
    except Exception as e:
        res["parity_passed"], res["reason"] = False, f"converted model does not run: {one_line(e)}"
        return
    rep = compare_outputs(reference, got, route=f"torch -> {fmt} {precision}", **PARITY_DEFAULTS[precision])
    res["parity"] = {k: v for k, v in rep.as_dict().items() if k not in ("output", "route")}
    try:  # for the record: argmax agreement over the whole random pool, near-ties included (not judged)
        pool, pool_ref = opts["pool"], opts["pool_reference"]
        got_pool = run_onnx(path, pool) if path.suffix == ".onnx" else run_tflite(path, pool)
        res["parity"]["pool_argmax_agreement"] = compare_outputs(pool_ref, got_pool, atol=None,
                                                                 min_agreement=None).argmax_agreement
    except Exception as e:
        res["notes"].append(f"pool agreement not measured: {one_line(e)}")
    res["parity_passed"] = rep.passed
    if not rep.passed:
        res["reason"] = (f"parity: max abs diff {rep.max_abs_diff:.3g} (atol {rep.atol}), argmax agreement "
                         f"{rep.argmax_agreement:.3f} (min {rep.min_agreement})")


def bench(res: dict[str, Any], path: Path, fmt: str, shape, opts: dict[str, Any]) -> None:
    from edgekd.bench.host import bench_onnx_host, bench_tflite_host

    kw = {"threads": opts["threads"], "runs": opts["runs"], "warmup": opts["warmup"], "timeout_s": opts["bench_timeout"]}
    try:
        b = bench_onnx_host(path, tuple(shape), **kw) if fmt != "tflite" else bench_tflite_host(path, **kw)
        res["latency"] = {"p50_ms": b.p50_ms, "p90_ms": b.p90_ms, "p99_ms": b.p99_ms,
                          "cold_start_ms": b.cold_start_ms, "runtime": b.backend}
    except Exception as e:
        res["bench_error"] = one_line(e)


# ---------------------------------------------------------------- parent: scheduling, timeouts, report


def run_arch(name: str, small: bool, cells: list[str], opts: dict[str, Any], timeout: float, log_dir: Path,
             say) -> dict[str, dict[str, Any]]:
    """All cells of one architecture, in worker processes; a timed-out or crashed cell restarts the worker."""
    ctx = mp.get_context("spawn")
    results: dict[str, dict[str, Any]] = {}
    todo = list(cells)
    while todo:
        q = ctx.Queue()
        log = log_dir / f"{name}.log"
        proc = ctx.Process(target=arch_worker, args=(name, small, todo, opts, q, str(log)), daemon=True)
        proc.start()
        current, started = None, time.monotonic()
        while todo:
            try:
                msg = q.get(timeout=1.0)
            except queue.Empty:
                msg = None
            if msg and msg[0] == "start":
                current, started = msg[1], time.monotonic()
                continue
            if msg and msg[0] == "done":
                results[msg[1]] = msg[2]
                todo.remove(msg[1])
                say(name, msg[1], msg[2])
                current = None
                continue
            waited = time.monotonic() - started
            limit = timeout + 120 if current is None else timeout  # model build + imports before the first cell
            if proc.is_alive() and waited < limit:
                continue
            cell = current or todo[0]
            why = (f"timed out after {waited:.0f} s (--cell-timeout {timeout:g})" if proc.is_alive()
                   else f"worker process died (exit code {proc.exitcode}); see the log")
            if proc.is_alive():
                proc.kill()
            proc.join(10)
            results[cell] = {"converted": False, "reason": why, "parity_passed": None, "latency": None,
                             "convert_s": waited, "timeout": "timed out" in why}
            todo.remove(cell)
            say(name, cell, results[cell])
            break
        else:
            proc.join(30)
            if proc.is_alive():
                proc.kill()
        q.close()
    return {c: results[c] for c in cells}


def status(r: dict[str, Any]) -> str:
    if r.get("converted") and r.get("parity_passed"):
        return "ok"
    if r.get("converted"):
        return "parity"
    return "fail"


def cell_text(r: dict[str, Any], width: int = 60) -> str:
    st = status(r)
    short = lambda s: (s if len(s) <= width else s[:width - 1] + "…").replace("|", "/")  # noqa: E731
    if st == "ok":
        lat = r.get("latency")
        text = f"ok {lat['p50_ms']:.2f} ms" if lat else f"ok (bench failed: {short(r.get('bench_error') or '?')})"
        route = r.get("route")
        if r.get("format") == "tflite" and r.get("converter") == "auto" and route:
            text += f" ({ROUTE_ABBR.get(route, route)})"
        return text
    if st == "parity":
        return "parity ✗"
    if r.get("timeout"):
        return f"timeout ({r.get('convert_s', 0):.0f} s)"
    return f"fail: {short(compact(r.get('reason') or 'unknown'))}"


def compact(reason: str) -> str:
    """A failure reason shortened for the table (the JSON keeps the full one)."""
    reason = re.sub(r"^no TFLite route could export the model at \w+ \((.*)\)$", r"\1", reason)
    reason = re.sub(r"\{\{.*?\}\}\s*", "", reason)
    reason = re.sub(r"\S+ could not convert the model to \w+ ", "", reason)
    for route, abbr in ROUTE_ABBR.items():
        reason = reason.replace(f"{route}:", f"{abbr}:")
    return reason.replace("onnx2tf failed ", "").strip()


def table_md(archs: list[str], cells: list[str], grid: dict[str, dict[str, dict]], shapes: dict[str, Any]) -> str:
    head = ["arch (input)"] + [c.replace("_", " ", 1) for c in cells]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for a in archs:
        row = [f"{a} ({'x'.join(map(str, shapes[a]))})"] + [cell_text(grid[a][c]) for c in cells]
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    lines.append("ok: converted, parity passed, host p50 latency (batch 1, 1 thread unless stated); "
                 "(lt) / (o2t): the TFLite route `auto` used, litert-torch / onnx2tf; parity ✗: converted but "
                 "failed parity (see the JSON for the numbers); fail: not converted.")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--archs", default="all", help="comma-separated names or prefixes (default: all)")
    ap.add_argument("--small", action="store_true", help="use each architecture's small input (224 -> 96 px)")
    ap.add_argument("--quick", action="store_true", help="small inputs and fewer timed runs (a smoke run)")
    ap.add_argument("--routes", choices=("auto", "both"), default="auto",
                    help="auto: converter='auto' only; both: also litert-torch and onnx2tf alone")
    ap.add_argument("--runs", type=int, default=None, help="timed runs per latency (default 50, --quick 20)")
    ap.add_argument("--warmup", type=int, default=None, help="warm-up runs (default 5, --quick 3)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cell-timeout", type=float, default=None, help="seconds per cell (default 900, --quick 300)")
    ap.add_argument("--workdir", default=None, help="keep models and worker logs here (default: a temp dir)")
    args = ap.parse_args()

    from architectures import ARCHS, input_shape, select

    archs = select(args.archs)
    small = args.small or args.quick
    cells = cells_for(args.routes)
    opts = {"threads": args.threads, "runs": args.runs or (20 if args.quick else 50),
            "warmup": args.warmup if args.warmup is not None else (3 if args.quick else 5), "bench_timeout": 300}
    timeout = args.cell_timeout or (300 if args.quick else 900)
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="edgekd-coverage-"))
    workdir.mkdir(parents=True, exist_ok=True)
    opts["workdir"] = str(workdir)
    shapes = {a: input_shape(a, small) for a in archs}

    def say(arch: str, cell: str, r: dict[str, Any]) -> None:
        t = r.get("convert_s")
        print(f"{arch:22s} {cell:26s} {cell_text(r, 200)}" + (f"  [convert {t:.1f}s]" if t is not None else ""),
              flush=True)

    t_start = time.perf_counter()
    grid: dict[str, dict[str, dict]] = {}
    try:
        for a in archs:
            grid[a] = run_arch(a, small, cells, opts, timeout, workdir, say)
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    wall = time.perf_counter() - t_start

    total = len(archs) * len(cells)
    ok = sum(status(grid[a][c]) == "ok" for a in archs for c in cells)
    failing = [{"arch": a, "cell": c, "status": status(grid[a][c]), "reason": grid[a][c].get("reason")}
               for a in archs for c in cells if status(grid[a][c]) != "ok"]
    table = table_md(archs, cells, grid, shapes)
    cmd = "python benchmarks/conversion_coverage.py " + " ".join(sys.argv[1:])
    fail_text = "; ".join(f"{f['arch']}/{f['cell']}: {f['status']}: "
                          f"{(f['reason'] or '')[:100]}" for f in failing) or "none"
    summary = (f"{ok}/{total} cells converted with parity ({100 * ok / total:.0f}%) over {len(archs)} architectures "
               f"x {len(cells)} formats ({'small' if small else 'standard'} inputs, routes {args.routes}, "
               f"{opts['runs']} runs, {args.threads} thread(s), {wall / 60:.1f} min); failing: {fail_text}")
    data = {"cells_ok": ok, "cells_total": total, "percent_ok": 100 * ok / total if total else math.nan,
            "archs": {a: {"input_shape": list(shapes[a]), "num_classes": ARCHS[a].num_classes, "note": ARCHS[a].note,
                          "cells": grid[a]} for a in archs},
            "cells": cells, "failing": failing, "small_inputs": small, "routes": args.routes,
            "parity": {"samples": N_PARITY, "calibration_samples": N_CALIB,
                       "inputs": f"the {N_PARITY} of {N_POOL} random N(0,1) inputs (seeded) with the clearest "
                                 "top-1 margin in torch; pool_argmax_agreement: over all of them",
                       "weights": "random (seed 0), BN statistics re-estimated on random inputs",
                       "tolerances": "edgekd.export.parity.PARITY_DEFAULTS per precision"},
            "bench": {k: opts[k] for k in ("threads", "runs", "warmup")}, "cell_timeout_s": timeout,
            "wall_seconds": wall, "table_md": table}
    out = record("conversion_coverage", data, summary, cmd.strip())
    print()
    print(table)
    print()
    print(summary)
    print(f"-> {out}")


if __name__ == "__main__":
    main()
