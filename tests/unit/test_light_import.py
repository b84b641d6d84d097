"""`import edgekd` and `edgekd --help` must not load the heavy stacks."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "tensorflow", "onnxruntime", "onnx", "ai_edge_litert", "sklearn")


def _loaded_after(code: str) -> list[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_import_edgekd_is_light():
    assert _loaded_after("import edgekd") == []


def test_cli_help_is_light():
    code = ("from edgekd.cli import main\nimport contextlib, io\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n    rc = main(['--help'])\nassert rc == 0, rc\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n    rc = main(['build', '--help'])\nassert rc == 0, rc")
    assert _loaded_after(code) == []


def test_public_api_resolves_lazily():
    import edgekd

    assert edgekd.DistillConfig().temperature == 2.0
    assert callable(edgekd.build)
