"""`edgekd verify RUN_DIR`: every artifact checked against manifest.json; a changed or missing file names itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgekd.cli import main
from edgekd.errors import IntegrityError
from edgekd.pipeline import BuildConfig, write_manifest
from edgekd.verify import verify_run


@pytest.fixture
def run(tmp_path) -> Path:
    """A run directory laid out like a build's, its manifest written by the build's own _write_manifest."""
    r = tmp_path / "run"
    for rel, text in {"report.json": "{}", "report.md": "# r", "candidates/a/model_int8.onnx": "onnx",
                      "candidates/a/.stages/distill.json": "{}", "smoke/a/manifest.json": "{}",
                      "smoke/a/model.onnx": "m", "smoke/a.tar.gz": "tgz"}.items():
        (r / rel).parent.mkdir(parents=True, exist_ok=True)
        (r / rel).write_text(text)
    (r / "candidates/a/.tmp-model_fp32.onnx.x1").write_text("half")  # a leftover temp file is no artifact
    write_manifest(r, BuildConfig(target="host"), {})
    return r


def _verify(capsys, path):
    rc = main(["verify", str(path)])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_intact_run_is_ok_and_every_artifact_is_in_the_manifest(run, capsys):
    listed = json.loads((run / "manifest.json").read_text())["artifacts"]
    assert "smoke/a/manifest.json" in listed and "candidates/a/.stages/distill.json" in listed
    assert not any(".tmp-" in k for k in listed) and "manifest.json" not in listed
    rc, out, err = _verify(capsys, run)
    assert rc == 0 and out.startswith(f"OK: {len(listed)} artifacts in {run} match manifest.json")


@pytest.mark.parametrize("change", ["edit", "delete", "truncate"])
def test_a_changed_or_missing_artifact_names_itself(run, capsys, change):
    f = run / "candidates/a/model_int8.onnx"
    if change == "edit":
        f.write_text("onnX")
    elif change == "delete":
        f.unlink()
    else:
        f.write_text("")
    rc, out, err = _verify(capsys, run)
    lines = err.strip().splitlines()
    assert rc == 2 and out == "" and len(lines) == 1 and "Traceback" not in err
    word = "is missing" if change == "delete" else "changed"
    assert lines[0].startswith("edgekd: error: 1 of ") and f"candidates/a/model_int8.onnx {word}" in lines[0]
    assert "Fix:" in lines[0]
    with pytest.raises(IntegrityError):
        verify_run(run)


def test_added_files_are_noted_not_failed(run, capsys):
    (run / "smoke/a/result.json").write_text("{}")
    rc, out, err = _verify(capsys, run)
    assert rc == 0 and err.startswith("note: 2 file(s) not in the manifest") and "smoke/a/result.json" in err
    assert "candidates/a/.tmp-model_fp32.onnx.x1" in err  # a leftover of an interrupted write is shown too


@pytest.mark.parametrize("manifest, match", [
    (None, "has no manifest.json"),
    ("{not json", "cannot be read as JSON"),
    ({"edgekd": "0.0.1", "config": {}}, "lists no artifact hashes"),  # an older edgekd's manifest
    ({"artifacts": {"../outside.txt": "0" * 64}}, "names a file outside the run directory"),
    ({"artifacts": {"/etc/passwd": "0" * 64}}, "names a file outside the run directory"),
    ({"artifacts": {"report.md": "abc"}}, "malformed sha256"),
    ([1, 2], "lists no artifact hashes"),
])
def test_bad_manifests_are_one_line_errors(run, capsys, manifest, match):
    m = run / "manifest.json"
    if manifest is None:
        m.unlink()
    else:
        m.write_text(manifest if isinstance(manifest, str) else json.dumps(manifest))
    rc, out, err = _verify(capsys, run)
    assert rc == 2 and match in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_link_to_outside_the_run_is_not_accepted(run, capsys, tmp_path):
    outside = tmp_path / "elsewhere.onnx"
    outside.write_text("onnx")  # same bytes: the hash alone would match
    target = run / "candidates/a/model_int8.onnx"
    target.unlink()
    target.symlink_to(outside)
    rc, _, err = _verify(capsys, run)
    assert rc == 2 and "a link to outside the run" in err


def test_not_a_directory(tmp_path, capsys):
    rc, _, err = _verify(capsys, tmp_path / "nope")
    assert rc == 2 and "is not a directory" in err
