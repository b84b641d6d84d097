"""Fuzz the target-profile loader and the smoke runner's manifest reader (issue 9); record what was found.

    .venv/bin/python benchmarks/fuzz.py [--targets N] [--manifests N] [--seed S] [--name fuzz] [--no-record]

Target loader: every built-in profile is the seed; each case mutates its TOML text (byte flips, cuts, inserted
junk, duplicated or deleted lines) or its parsed table (keys deleted, added, or given values of other types,
NaN/inf, negative, huge, empty; nested tables too) and writes it back as TOML. Oracle: ``load_target`` returns a
profile whose invariants hold (threads <= cores, finite positive budgets, fractions in 0..1) or raises a
``TargetError`` with one line that names a fix; anything else (another exception, a broken invariant) is a failure.

Smoke manifest reader: a real bundle (a tiny ONNX model, host onnxruntime reference) is the seed; each case
mutates ``manifest.json`` (keys deleted or retyped, file entries removed, renamed outside the bundle or given other
digests, ``files`` emptied, ``model`` pointed elsewhere, the text cut or flipped, the whole document replaced) and
runs the bundle's own ``run_smoke.py`` (``main``, in process, 1 timed run). Oracle: it returns 0/1 and writes
result.json (no exception escapes); it says PASS only when the mutation left the integrity data intact (the model
and its inputs, references and expected outputs still listed with their true sha256, ``model`` unchanged); a FAIL
names the problem in words rather than a raw Python exception.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib.util
import io
import json
import math
import random
import re
import shutil
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WEIRD = [None, True, False, 0, -1, 1, 2, 10 ** 12, -(10 ** 12), 0.0, -0.5, 0.5, 1.5, 1e308, math.nan, math.inf,
         -math.inf, "", "x", "../x", "/etc/passwd", "raspberrypi", "int8", "onnxruntime", [], [1], ["int8"],
         ["litert", "onnxruntime"], {}, {"a": 1}, {"p90_latency_ms": -1}]


# ---------------------------------------------------------------- target loader

def toml_dumps(data: dict[str, Any]) -> str:
    """A minimal TOML writer for the value kinds a mutated profile holds (tables, arrays, scalars)."""
    lines: list[str] = []

    def scalar(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v)
        if isinstance(v, float):
            return "nan" if math.isnan(v) else ("inf" if v == math.inf else "-inf" if v == -math.inf else repr(v))
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(scalar(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{json.dumps(k)} = {scalar(x)}" for k, x in v.items()) + "}"
        if v is None:
            return '"None"'  # TOML has no null; a string stands in (still the wrong type)
        raise TypeError(type(v))

    def table(prefix: str, d: dict[str, Any]) -> None:
        subs = {k: v for k, v in d.items() if isinstance(v, dict) and v}  # non-empty tables: [prefix.k]
        if prefix:
            lines.append(f"[{prefix}]")
        for k, v in d.items():
            if k not in subs:
                lines.append(f"{json.dumps(k)} = {scalar(v)}")
        for k, v in subs.items():
            table(f"{prefix}.{json.dumps(k)}" if prefix else json.dumps(k), v)

    table("", data)
    return "\n".join(lines) + "\n"


def mutate_table(d: dict[str, Any], rng: random.Random) -> None:
    """One structural mutation somewhere in the (nested) table ``d``."""
    path = [d]
    while rng.random() < 0.5:
        subs = [v for v in path[-1].values() if isinstance(v, dict)]
        if not subs:
            break
        path.append(rng.choice(subs))
    t = path[-1]
    op = rng.choice(["del", "set", "set", "add", "num"])
    keys = list(t)
    if op == "del" and keys:
        del t[rng.choice(keys)]
    elif op == "set" and keys:
        t[rng.choice(keys)] = copy.deepcopy(rng.choice(WEIRD))
    elif op == "num" and keys:
        k = rng.choice(keys)
        if isinstance(t[k], (int, float)) and not isinstance(t[k], bool):
            t[k] = rng.choice([-t[k], t[k] * 1e9, 0, t[k] / 1e9, math.nan, int(t[k]) if math.isfinite(t[k]) else 0])
    else:
        t[rng.choice(["foo", "budget", "npu", "threads", "sram", "max_reads", "name"])] = copy.deepcopy(rng.choice(WEIRD))


def mutate_text(text: str, rng: random.Random) -> str:
    b = bytearray(text.encode())
    op = rng.choice(["flip", "cut", "insert", "dupline", "delline"])
    if op == "flip" and b:
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
    elif op == "cut":
        b = b[:rng.randrange(len(b) + 1)]
    elif op == "insert":
        i = rng.randrange(len(b) + 1)
        b[i:i] = rng.choice([b"[", b"]", b"=", b'"', b"\n[budget]\n", b"\x00", b"\xff\xfe", b"= = =", b"[[npu]]\n"])
    else:
        lines = bytes(b).split(b"\n")
        i = rng.randrange(len(lines))
        lines = lines[:i] + ([lines[i]] if op == "dupline" else []) + lines[i:] if op == "dupline" else \
            lines[:i] + lines[i + 1:]
        b = bytearray(b"\n".join(lines))
    return bytes(b).decode("utf-8", errors="surrogateescape")


def check_profile(t: Any) -> str | None:
    """An invariant a loaded profile must hold; None when all hold."""
    if not 1 <= t.threads <= t.cores:
        return f"threads {t.threads} vs cores {t.cores}"
    if not (t.clock_ghz > 0 and t.memory_mb > 0 and math.isfinite(t.clock_ghz) and math.isfinite(t.memory_mb)):
        return f"clock/memory {t.clock_ghz}/{t.memory_mb}"
    for k, v in t.budget.as_dict().items():
        if v is not None and not (math.isfinite(v) and v >= 0):
            return f"budget {k} = {v}"
        if k in ("min_accuracy", "max_accuracy_drop") and v is not None and v > 1:
            return f"budget {k} = {v} > 1"
    if not t.runtimes or not t.precisions:
        return "empty runtimes/precisions"
    return None


def fuzz_targets(n: int, seed: int) -> dict[str, Any]:
    from edgekd.errors import TargetError
    from edgekd.targets import list_targets, load_target

    rng = random.Random(seed)
    seeds = {name: Path(load_target(name).path).read_text() for name in list_targets()}
    counts = {"loaded": 0, "refused": 0}
    failures: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="edgekd-fuzz-targets-") as tmp:
        for i in range(n):
            name, text = rng.choice(sorted(seeds.items()))
            if rng.random() < 0.5:
                text = mutate_text(text, rng)
            else:
                data = tomllib.loads(text)
                for _ in range(rng.randint(1, 3)):
                    mutate_table(data, rng)
                text = toml_dumps(data)
            d = Path(tmp) / f"c{i}"
            d.mkdir()
            (d / f"{name}.toml").write_bytes(text.encode("utf-8", errors="surrogateescape"))
            try:
                prof = load_target(name, d)
            except TargetError as e:
                msg = str(e)
                if "\n" in msg or "Fix:" not in msg:
                    failures.append({"case": i, "kind": "unclear error", "message": msg[:300], "input": text[:400]})
                counts["refused"] += 1
                continue
            except Exception as e:  # any other exception is a bug in the loader
                failures.append({"case": i, "kind": f"crash {type(e).__name__}", "message": str(e)[:300],
                                 "input": text[:400]})
                continue
            counts["loaded"] += 1
            broken = check_profile(prof)
            if broken:
                failures.append({"case": i, "kind": "accepted a bad profile", "message": broken, "input": text[:400]})
    return {"cases": n, **counts, "failures": failures}


# ---------------------------------------------------------------- smoke manifest reader

REQUIRED = ("inputs.npy", "reference_outputs.npy", "expected.json")


def make_seed_bundle(where: Path) -> Path:
    import numpy as np
    import torch

    from edgekd.export.onnx import export_onnx
    from edgekd.smoke.bundle import make_bundle
    from edgekd.targets import load_target

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(4, 3))
    x = np.random.default_rng(0).random((8, 1, 8, 8), dtype=np.float32)
    model = export_onnx(net, x, where / "m.onnx").path
    return make_bundle(model, load_target("host"), where / "bundle", x[:4], np.array([0, 1, 2, 0]))


def mutate_manifest(m: Any, rng: random.Random, names: list[str], log: list[str]) -> Any:
    op = rng.choice(["delkey", "setkey", "files_del", "files_digest", "files_rename", "files_set", "files_add",
                     "model", "whole", "threads"])
    if not isinstance(m, dict) or op == "whole":
        new = copy.deepcopy(rng.choice([[], [m], "manifest", 1, None, {"files": {}}, {"model": "model.onnx"}]))
        log.append(f"whole manifest -> {str(new)[:60]}")
        return new
    files = m.get("files")
    if op == "delkey" and m:
        k = rng.choice(list(m))
        del m[k]
        log.append(f"del {k}")
    elif op == "setkey" and m:
        k, v = rng.choice(list(m)), copy.deepcopy(rng.choice(WEIRD))
        m[k] = v
        log.append(f"{k} = {v!r}")
    elif op == "threads":
        m["threads"] = rng.choice([0, -1, "2", 2.5, 10 ** 9, None, [1]])
        log.append(f"threads = {m['threads']!r}")
    elif op.startswith("files") and isinstance(files, dict) and files:
        k = rng.choice(list(files))
        if op == "files_del":
            del files[k]
            log.append(f"files: del {k}")
        elif op == "files_digest":
            files[k] = rng.choice(["0" * 64, files[k][::-1], str(files[k])[:10], None, 5, str(files[k]).upper()])
            log.append(f"files[{k}] = {str(files[k])[:16]!r}")
        elif op == "files_rename":
            new = rng.choice(["../" + k, "/tmp/" + k, "./" + k, k + "/", "sub/../" + k, ""])
            files[new] = files.pop(k)
            log.append(f"files: rename {k} -> {new}")
        elif op == "files_set":
            m["files"] = copy.deepcopy(rng.choice([{}, [], None, "x", {k: files[k]}, 0]))
            log.append(f"files = {str(m['files'])[:40]}")
        else:
            extra = rng.choice(["extra.bin", "../../etc/passwd", "/etc/hostname"])
            files[extra] = "0" * 64
            log.append(f"files: add {extra}")
    elif op == "model":
        m["model"] = rng.choice(["../m.onnx", "/tmp/none.onnx", "inputs.npy", "missing.onnx", "", None, 3,
                                 "../bundle/model.onnx", "run_smoke.py", "expected.json"] + names)
        log.append(f"model = {m['model']!r}")
    return m


def benign(m: Any, orig: dict[str, Any]) -> bool:
    if not isinstance(m, dict) or m.get("model") != orig["model"] or not isinstance(m.get("files"), dict):
        return False
    return all(m["files"].get(k) == orig["files"][k] for k in (orig["model"], *REQUIRED))


def run_case(runner: Any, bundle: Path, argv: list[str]) -> tuple[int | None, str, str | None]:
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            rc = runner.main([str(bundle), *argv])
    except BaseException as e:  # noqa: BLE001 - the oracle: nothing may escape main()
        return None, out.getvalue(), f"{type(e).__name__}: {e}"
    return rc, out.getvalue(), None


def fuzz_manifests(n: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    counts = {"pass": 0, "fail": 0}
    failures: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="edgekd-fuzz-smoke-") as tmp:
        seed_bundle = make_seed_bundle(Path(tmp))
        orig_text = (seed_bundle / "manifest.json").read_text()
        orig = json.loads(orig_text)
        names = sorted(orig["files"])
        spec = importlib.util.spec_from_file_location("edgekd_fuzz_run_smoke", seed_bundle / "run_smoke.py")
        runner = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(runner)
        rc, out, crash = run_case(runner, seed_bundle, ["--runs", "1"])
        if rc != 0:
            raise SystemExit(f"the untouched seed bundle does not PASS: {out} {crash}")
        work = Path(tmp) / "case"
        for i in range(n):
            shutil.rmtree(work, ignore_errors=True)
            shutil.copytree(seed_bundle, work)
            log: list[str] = []
            if rng.random() < 0.2:
                text = mutate_text(orig_text, rng)
                log.append("text mutated (flip/cut/insert/dup/delete line)")
                try:
                    m = json.loads(text)
                except ValueError:
                    m = "unparsable"
            else:
                m = copy.deepcopy(orig)
                for _ in range(rng.randint(1, 3)):
                    m = mutate_manifest(m, rng, names, log)
                text = json.dumps(m, allow_nan=True)
            (work / "manifest.json").write_text(text, encoding="utf-8", errors="surrogateescape")
            rc, out, crash = run_case(runner, work, ["--runs", "1"])
            result = work / "result.json"
            desc = "; ".join(log)
            if crash or rc not in (0, 1) or not result.is_file():
                failures.append({"case": i, "kind": "crash", "message": crash or f"rc {rc}, result.json "
                                 f"{'present' if result.is_file() else 'missing'}", "input": desc})
                continue
            status = json.loads(result.read_text()).get("status")
            counts["pass" if status == "PASS" else "fail"] += 1
            if status == "PASS" and not benign(m, orig):
                failures.append({"case": i, "kind": "PASS on a tampered manifest", "message": out.strip()[:200],
                                 "input": desc})
            elif status != "PASS":
                reasons = json.loads(result.read_text()).get("reasons", [])
                raw = [r for r in reasons if re.match(r"^[A-Z][A-Za-z]*(Error|Exception)\b", r)]
                if raw:
                    failures.append({"case": i, "kind": "raw exception as the reason", "message": raw[0][:200],
                                     "input": desc})
    return {"cases": n, **counts, "failures": failures}


# ---------------------------------------------------------------- main

def _kinds(failures: list[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for f in failures:
        out[f["kind"]] = out.get(f["kind"], 0) + 1
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", type=int, default=2000, help="target-loader cases")
    ap.add_argument("--manifests", type=int, default=400, help="smoke-manifest cases")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--name", default="fuzz", help="results/NAME.json")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    targets = fuzz_targets(args.targets, args.seed)
    t1 = time.perf_counter()
    manifests = fuzz_manifests(args.manifests, args.seed)
    t2 = time.perf_counter()
    for label, res in (("target loader", targets), ("smoke manifest reader", manifests)):
        print(f"{label}: {res['cases']} cases, {len(res['failures'])} failures {_kinds(res['failures'])}")
        for f in res["failures"][:8]:
            print(f"  case {f['case']}: {f['kind']}: {f['message'][:160]}")
    data = {"seed": args.seed, "target_loader": {**targets, "seconds": round(t1 - t0, 1),
                                                 "failure_kinds": _kinds(targets["failures"]),
                                                 "failures": targets["failures"][:50]},
            "smoke_manifest_reader": {**manifests, "seconds": round(t2 - t1, 1),
                                      "failure_kinds": _kinds(manifests["failures"]),
                                      "failures": manifests["failures"][:50]}}
    summary = (f"target loader {targets['cases']} cases ({targets['loaded']} loaded, {targets['refused']} refused "
               f"with TargetError), {len(targets['failures'])} failures; smoke manifest reader {manifests['cases']} "
               f"cases ({manifests['pass']} PASS, {manifests['fail']} FAIL), {len(manifests['failures'])} failures "
               f"{_kinds(manifests['failures']) or ''}")
    if not args.no_record:
        from benchmarks._results import record

        cmd = f".venv/bin/python benchmarks/fuzz.py --targets {args.targets} --manifests {args.manifests} " \
              f"--seed {args.seed}" + (f" --name {args.name}" if args.name != "fuzz" else "")
        record(args.name, data, summary, cmd)
    print(summary)
    return 1 if targets["failures"] or manifests["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
