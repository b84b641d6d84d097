"""The package's structure (issue 16): no import cycle, no cross-module import of a private name, the backend kind
of a target tested in one place, report/ free of selection and estimation, name tables that agree with the
registries."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "edgekd"


def _modules() -> dict[str, tuple[Path, bool]]:
    out = {}
    for p in PKG.rglob("*.py"):
        parts = list(p.relative_to(ROOT).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_pkg else parts)] = (p, is_pkg)
    return out


def _imports(mod: str, is_pkg: bool, tree: ast.AST, known: dict) -> list[tuple[str, list[str]]]:
    """(imported module, names) for every import anywhere in the module (inside functions too)."""
    out = []
    for n in ast.walk(tree):
        if isinstance(n, ast.ImportFrom):
            base = mod.split(".") if is_pkg else mod.split(".")[:-1]
            if n.level:
                base = base[:len(base) - (n.level - 1)] if n.level > 1 else base
                name = ".".join(base + ([n.module] if n.module else []))
            else:
                name = n.module or ""
            out.append((name, [a.name for a in n.names]))
        elif isinstance(n, ast.Import):
            out += [(a.name, []) for a in n.names]
    return out


def test_no_import_cycle():
    mods = _modules()
    edges = {}
    for m, (p, is_pkg) in mods.items():
        targets = set()
        for name, names in _imports(m, is_pkg, ast.parse(p.read_text()), mods):
            if not name.startswith("edgekd"):
                continue
            for a in names or [""]:
                cand = f"{name}.{a}" if a else name
                targets.add(cand if cand in mods else name)
        edges[m] = {t for t in targets if t in mods and t != m}
    seen, stack, cycles = {}, [], []

    def visit(v: str) -> None:
        seen[v] = "open"
        stack.append(v)
        for w in sorted(edges[v]):
            if seen.get(w) == "open":
                cycles.append(stack[stack.index(w):] + [w])
            elif w not in seen:
                visit(w)
        stack.pop()
        seen[v] = "done"

    for v in sorted(edges):
        if v not in seen:
            visit(v)
    assert not cycles, cycles[:3]


def test_no_module_imports_another_modules_private_name():
    """In the package and the benchmarks (unit tests of a private helper may import it)."""
    bad = []
    for p in [*PKG.rglob("*.py"), *(ROOT / "benchmarks").glob("*.py")]:
        for n in ast.walk(ast.parse(p.read_text())):
            if isinstance(n, ast.ImportFrom) and (n.module or "").split(".")[0] in ("edgekd", "tests", "") :
                for a in n.names:
                    if a.name.startswith("_") and not a.name.startswith("__"):
                        bad.append(f"{p.relative_to(ROOT)}: {a.name}")
    assert not bad, bad


def test_the_backend_kind_of_a_target_is_tested_in_one_place():
    """Only targets.py reads ``emulation``; nothing asks whether a target has an NPU to decide what serves it."""
    pattern = re.compile(r"\.emulation\b|npu is (not )?None|getattr\([a-z_]+, \"npu\"")
    hits = [f"{p.relative_to(ROOT)}:{i}" for p in PKG.rglob("*.py") if p.name != "targets.py"
            for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not hits, hits


def test_report_renders_without_selection_or_estimation_code():
    """report/ imports and renders a report with the selection, estimation and backend modules blocked."""
    fixtures = ROOT / "tests" / "fixtures" / "reports"
    code = f"""
import sys, json
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.startswith(("edgekd.select", "edgekd.search", "edgekd.backends", "edgekd.emu", "edgekd.judge",
                            "edgekd.quant_guard", "edgekd.bench")):
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
import edgekd.report.build_report, edgekd.report.writer, edgekd.report.html, edgekd.report.runs, edgekd.report.compare
from edgekd.report.writer import to_markdown
from edgekd.report.html import to_html
for f in ("host", "arm", "npu"):
    r = json.load(open({str(fixtures)!r} + "/" + f + ".json"))
    assert to_markdown(r) and to_html(r)
print("ok")
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


def test_name_tables_agree_with_the_registries():
    import inspect

    from edgekd.distill import names
    from edgekd.distill.losses import FEATURE_LOSSES, LOSSES
    from edgekd.distill.methods import METHODS

    assert set(METHODS.names()) == set(names.METHODS)
    assert set(LOSSES.names()) == set(names.LOSSES) and set(FEATURE_LOSSES.names()) == set(names.FEATURE_LOSSES)
    for name, info in names.LOSSES.items():
        assert ("warmup" in inspect.signature(LOSSES.get(name)).parameters) == info.warmup, name
    from edgekd.distill.config import DistillConfig

    assert DistillConfig(loss="ce").uses_kd_loss is False and DistillConfig().uses_kd_loss is True


# genuinely untyped inputs: a parsed TOML table, anything array-like
ANY_ALLOWED = {("edgekd/backends/npu_config.py", "parse_npu", "data"), ("edgekd/export/tflite.py", "_as_batch", "data")}
TORCH_FREE_NAMES = {"target", "data", "budget", "config", "profile", "spec"}


def test_torch_free_records_are_typed_not_any():
    """A parameter or field named for a torch-free record (TargetProfile, Dataset, Budget, a config, StudentSpec)
    is typed with it, not ``Any``."""
    bad = []
    for p in PKG.rglob("*.py"):
        rel = p.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
                pairs = [(node.name, a.arg, a.annotation) for a in args]
            elif isinstance(node, ast.ClassDef):
                pairs = [(node.name, s.target.id, s.annotation) for s in node.body
                         if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)]
            else:
                continue
            for owner, name, ann in pairs:
                if name in TORCH_FREE_NAMES and isinstance(ann, ast.Name) and ann.id == "Any" \
                        and (rel, owner, name) not in ANY_ALLOWED:
                    bad.append(f"{rel}: {owner}({name}: Any)")
    assert not bad, bad


def test_readme_design_section_names_every_module():
    design = (ROOT / "README.md").read_text().split("## Design", 1)[1]
    missing = [str(p.relative_to(ROOT)) for p in PKG.rglob("*.py")
               if p.name != "__init__.py" and not re.search(r"\b" + re.escape(p.stem) + r"\b", design)]
    assert not missing, missing
