"""Nothing executes from data (issue 9): pickles refused unless --trust-pickle, target files are data, archives
cannot write outside their folder, and the smoke runner does not trust a manifest that cannot check the bundle."""

from __future__ import annotations

import ast
import contextlib
import io
import json
import re
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from edgekd.cli import main
from edgekd.errors import ConfigError, TeacherError
from edgekd.models.teachers import load_teacher

PACKAGE = Path(__file__).resolve().parents[2] / "edgekd"


class _WritesAFile:
    """Unpickling this runs ``open(marker, "w")``: the payload a hostile model file could carry."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _pickled_payload(path: Path, marker: Path) -> Path:
    torch.save({"model": _WritesAFile(marker), "w": torch.zeros(2)}, path)
    return path


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                               torch.nn.Flatten(), torch.nn.Linear(4, 10)).eval()


def _pt2_with_payload(tmp_path: Path, marker: Path) -> Path:
    """A real torch.export archive whose sample inputs are replaced by the payload: torch.export.load falls back to
    an unrestricted unpickle for them (checked: without edgekd's scan the marker file appears)."""
    good = tmp_path / "good.pt2"
    torch.export.save(torch.export.export(_net(), (torch.zeros(2, 1, 8, 8),)), good)
    buf = io.BytesIO()
    torch.save(_WritesAFile(marker), buf)
    evil = tmp_path / "evil.pt2"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(evil, "w") as zout:
        for info in zin.infolist():
            data = buf.getvalue() if info.filename.endswith("sample_inputs/model.pt") else zin.read(info.filename)
            zout.writestr(info, data)
    return evil


def test_pickled_payload_is_refused_by_cli_and_api_without_running(tmp_path, capsys):
    marker = tmp_path / "PWNED"
    evil = _pickled_payload(tmp_path / "teacher.pt", marker)
    rc = main(["distill", "--data", "digits", "--teacher", str(evil), "--epochs", "1", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "holds a pickled Python object" in err and "--trust-pickle" in err and "Traceback" not in err
    with pytest.raises(TeacherError, match="pickled Python object"):
        load_teacher(evil)
    from edgekd.pipeline import BuildConfig, build

    with pytest.raises(TeacherError, match="pickled Python object"):
        build(BuildConfig(target="host", data="digits", teacher=str(evil), out_dir=str(tmp_path / "run"),
                          cache_dir=str(tmp_path / "cache")))
    assert not marker.exists()
    assert not (tmp_path / "o" / "student.pt").exists()


def test_pt2_whose_archive_would_unpickle_a_payload_is_refused_before_torch_reads_it(tmp_path):
    marker = tmp_path / "PWNED"
    evil = _pt2_with_payload(tmp_path, marker)
    with pytest.raises(TeacherError, match=r"pickled Python object \(.*sample_inputs/model.pt"):
        load_teacher(evil)
    assert not marker.exists()
    ok = load_teacher(tmp_path / "good.pt2")  # the untouched export still loads
    assert ok.logits(np.zeros((3, 1, 8, 8), np.float32)).shape == (3, 10)
    # weights stored as pickles (use_pickle in the archive's config) are refused too
    cfg_name = next(n for n in zipfile.ZipFile(tmp_path / "good.pt2").namelist() if n.endswith("weights_config.json"))
    flagged = tmp_path / "flagged.pt2"
    with zipfile.ZipFile(tmp_path / "good.pt2") as zin, zipfile.ZipFile(flagged, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == cfg_name:
                cfg = json.loads(data)
                next(iter(cfg["config"].values()))["use_pickle"] = True
                data = json.dumps(cfg).encode()
            zout.writestr(info, data)
    with pytest.raises(TeacherError, match="stored as a pickle"):
        load_teacher(flagged)
    assert not marker.exists()
    # negative control: torch.export.load itself runs the payload (torch 2.13), which is why edgekd scans first
    with contextlib.suppress(Exception):
        torch.export.load(str(evil))
    assert marker.exists()


def test_trust_pickle_loads_a_full_pickled_module_and_is_documented_as_dangerous(tmp_path, capsys):
    net = _net()
    path = tmp_path / "whole.pt"
    torch.save(net, path)  # the whole nn.Module, pickled
    with pytest.raises(TeacherError, match="pickled Python object"):
        load_teacher(path)
    t = load_teacher(path, trust_pickle=True)
    x = np.random.default_rng(0).random((4, 1, 8, 8), dtype=np.float32)
    with torch.no_grad():
        np.testing.assert_allclose(t.logits(x), net(torch.from_numpy(x)).numpy(), atol=1e-6)
    for cmd in ("distill", "build"):
        assert main([cmd, "--help"]) == 0
        out = " ".join(capsys.readouterr().out.split())
        assert "--trust-pickle" in out and "DANGEROUS" in out and "runs any code" in out


def test_target_files_are_parsed_as_data_only(tmp_path):
    from edgekd.targets import load_target

    marker = tmp_path / "PWNED"
    text = (PACKAGE / "profiles" / "host.toml").read_text().replace(
        'description = "The host CPU edgekd runs on (x86_64), measured directly"',
        f'description = "__import__(\'os\').system(\'touch {marker}\')"')
    (tmp_path / "box.toml").write_text(text + '\n# {{ exec("open(\\"x\\",\\"w\\")") }}\n')
    t = load_target("box", tmp_path)
    assert t.description == f"__import__('os').system('touch {marker}')" and not marker.exists()


def _calls(tree: ast.AST) -> list[tuple[str, int]]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            out.append((f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", ""), node))
    return out


def test_no_code_path_in_the_package_unpickles_evaluates_or_extracts_unsafely():
    """A scan of edgekd's own source: no eval/exec/pickle, torch.load only with weights_only (or the user's
    --trust-pickle), np.load without pickles, torch.export.load only after the archive scan, and every archive
    extraction inside smoke.bundle.safe_extract."""
    extract_sites, export_loads = [], []
    for path in sorted(PACKAGE.rglob("*.py")):
        src = path.read_text()
        rel = path.relative_to(PACKAGE.parent).as_posix()
        for fn in [n for n in ast.walk(ast.parse(src)) if isinstance(n, (ast.FunctionDef, ast.Module))]:
            for name, node in _calls(fn):
                func, kw = ast.unparse(node.func), {k.arg: k.value for k in node.keywords}
                where = f"{rel}:{node.lineno}"
                assert func not in ("eval", "exec", "pickle.load", "pickle.loads", "marshal.loads", "yaml.load"), where
                if func == "torch.load":
                    v = kw.get("weights_only")
                    assert (isinstance(v, ast.Constant) and v.value is True) or \
                        ast.unparse(v) == "not trust_pickle", where
                if func in ("np.load", "numpy.load"):
                    v = kw.get("allow_pickle")
                    assert v is None or (isinstance(v, ast.Constant) and v.value is False), where
                if func == "torch.export.load" and isinstance(fn, ast.FunctionDef):
                    export_loads.append((where, any(n == "_refuse_pt2_pickles" for n, _ in _calls(fn))))
                if name in ("extractall", "extract", "unpack_archive") and isinstance(fn, ast.FunctionDef):
                    extract_sites.append(f"{rel}:{fn.name}")
    assert export_loads and all(scanned for _, scanned in export_loads), export_loads
    assert sorted(set(extract_sites)) == ["edgekd/smoke/bundle.py:safe_extract"]
    bundle_src = ast.parse((PACKAGE / "smoke" / "bundle.py").read_text())
    run_bundle = next(n for n in ast.walk(bundle_src) if isinstance(n, ast.FunctionDef) and n.name == "run_bundle")
    assert any(name == "safe_extract" for name, _ in _calls(run_bundle))  # where user archives are read


def _archive(path: Path, kind: str) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo({"parent": "b/../../evil.txt", "hardlink": "b/hl", "device": "b/dev",
                                "absolute": "/tmp/edgekd-evil.txt"}[kind])
        if kind == "hardlink":
            info.type, info.linkname = tarfile.LNKTYPE, "/etc/passwd"
            tar.addfile(info)
        elif kind == "device":
            info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
            tar.addfile(info)
        else:
            info.size = 4
            tar.addfile(info, io.BytesIO(b"evil"))
    return path


@pytest.mark.parametrize("kind", ["parent", "hardlink", "device", "absolute"])
def test_smoke_run_of_a_hostile_archive_writes_nothing_outside(tmp_path, capsys, kind):
    archive = _archive(tmp_path / "bundle.tar.gz", kind)
    before = {p for p in tmp_path.rglob("*")}
    rc = main(["smoke", "run", str(archive)])
    err = capsys.readouterr().err
    assert rc == 2 and "unsafe archive" in err and "Traceback" not in err
    assert {p for p in tmp_path.rglob("*")} == before
    assert not Path("/tmp/edgekd-evil.txt").exists() and not (tmp_path.parent / "evil.txt").exists()
    from edgekd.smoke.bundle import safe_extract

    with pytest.raises(ConfigError, match="unsafe archive"):
        safe_extract(archive, tmp_path / "x")
