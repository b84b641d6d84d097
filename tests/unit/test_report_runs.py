"""`edgekd report RUN_DIR` and `edgekd compare RUN_A RUN_B` on run directories holding real builds' report.json."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from edgekd.cli import main
from edgekd.errors import ReportError
from edgekd.fsio import sha256_file
from edgekd.report.compare import compare_html, compare_markdown, compare_reports, compare_text
from edgekd.report.html import to_html
from edgekd.report.runs import load_run, regenerate
from edgekd.report.view import judged_latency
from edgekd.report.writer import to_markdown
from tests.unit.test_report_pages import EVIL, load


def make_run(tmp_path: Path, kind: str, name: str | None = None, report: dict | None = None) -> Path:
    run = tmp_path / (name or kind)
    run.mkdir()
    (run / "report.json").write_text(json.dumps(report or load(kind), indent=2) + "\n")
    (run / "report.md").write_text("stale\n")
    (run / "manifest.json").write_text(json.dumps({"edgekd": "0.1.0", "config": {}, "artifacts": {
        "report.json": sha256_file(run / "report.json"), "report.md": sha256_file(run / "report.md")}}))
    return run


def cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(args))
    return rc, out.getvalue(), err.getvalue()


def test_report_regenerates_pages_from_the_records(tmp_path):
    run = make_run(tmp_path, "arm")
    rc, out, err = cli("report", str(run))
    assert rc == 0 and "report.html" in out and err == ""
    r = json.loads((run / "report.json").read_text())
    assert (run / "report.md").read_text() == to_markdown(r) and (run / "report.html").read_text() == to_html(r)
    manifest = json.loads((run / "manifest.json").read_text())
    for name in ("report.md", "report.html", "report.json"):  # hashes brought up to date, report.json untouched
        assert manifest["artifacts"][name] == sha256_file(run / name)
    assert manifest["edgekd"] == "0.1.0"  # the rest of the manifest is kept
    assert not [p for p in run.iterdir() if p.name.startswith(".tmp-")]
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    assert cli("report", str(run))[0] == 0
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before  # deterministic: a second run changes nothing


def test_report_notes_a_report_json_edited_after_the_build(tmp_path):
    r = load("host")
    run = make_run(tmp_path, "host", report=r)
    r["command"] = "edited"
    (run / "report.json").write_text(json.dumps(r))
    rc, _out, err = cli("report", str(run))
    assert rc == 0 and "note: report.json differs from the sha256 manifest.json recorded" in err
    (run / "manifest.json").unlink()
    assert "no manifest.json" in cli("report", str(run))[2]


def _bad_runs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """name -> (run dir, what the one-line error must say)."""
    cases = {"missing": (tmp_path / "nope", "is not a directory"), "empty": (tmp_path / "empty", "holds no report.json")}
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("x")
    cases["file"] = (tmp_path / "file", "is not a directory (it is a file)")
    text = json.dumps(load("host"))

    def run_with(name: str, body: str, says: str) -> None:
        d = tmp_path / name
        d.mkdir()
        (d / "report.json").write_text(body)
        cases[name] = (d, says)

    run_with("truncated", text[: len(text) // 2], "is not valid JSON at line 1")
    run_with("list", "[]", "holds a JSON list, not a report object")
    run_with("noversion", json.dumps({"target": "x"}), "has no report_version")
    run_with("newer", json.dumps({**load("host"), "report_version": 99}), "written by a newer edgekd (report_version 99")
    run_with("older", json.dumps({**load("host"), "report_version": 0}), "written by an older edgekd (report_version 0")
    r = load("host")
    del r["candidates"][1]["latency"]
    run_with("nolatency", json.dumps(r), "candidates[1] lacks 'latency'")
    run_with("badselected", json.dumps({**load("host"), "selected": "ghost"}), "'ghost' is not among the candidates")
    run_with("badtype", json.dumps({**load("host"), "candidates": {}}), "'candidates' is a dict, expected list")
    r = load("arm")
    del r["candidates"][2]["arm"]["int8"]["band_ms"]
    run_with("brokenarm", json.dumps(r), "candidates[2].arm.int8 lacks 'band_ms'")
    r = load("npu")
    r["candidates"][0]["npu"]["sram_kib"] = "big"
    run_with("brokennpu", json.dumps(r), "candidates[0].npu: 'sram_kib' is a str, expected a number")
    r = load("host")
    r["candidates"][1]["ops_profile"]["ops"][0].pop("node")
    run_with("brokenprofile", json.dumps(r), "candidates[1].ops_profile.ops[0] lacks 'node'")
    return cases


def test_bad_run_dirs_are_one_line_errors_with_a_fix(tmp_path):
    good = make_run(tmp_path, "host")
    for name, (run, says) in _bad_runs(tmp_path).items():
        with pytest.raises(ReportError, match="Fix: ") as e:
            load_run(run)
        assert says in str(e.value), name
        for args in (("report", str(run)), ("compare", str(good), str(run)), ("compare", str(run), str(good))):
            rc, out, err = cli(*args)
            assert rc == 2 and out == "" and err.count("\n") == 1 and err.startswith("edgekd: error: "), (name, err)
            assert says in err and "Traceback" not in err
    assert not (tmp_path / "nope").exists() and not list((tmp_path / "empty").iterdir())  # nothing written


def test_report_refuses_a_report_it_cannot_render(tmp_path):
    r = load("host")
    del r["distill"]["loss"]  # not among the checked fields, but report.md needs it
    run = make_run(tmp_path, "host", report=r)
    rc, out, err = cli("report", str(run))
    assert rc == 2 and out == "" and err.count("\n") == 1
    assert "does not have the shape this edgekd writes (KeyError: 'loss')" in err and "Fix: re-run the build" in err
    assert (run / "report.md").read_text() == "stale\n" and not (run / "report.html").exists()  # nothing written


def test_compare_side_by_side_with_deltas(tmp_path):
    a, b = load("host"), load("arm")
    cmp = compare_reports(a, b, "runs/host", "runs/arm")
    ca = next(c for c in a["candidates"] if c["name"] == a["selected"])
    cb = next(c for c in b["candidates"] if c["name"] == b["selected"])
    assert cmp["deltas"]["accuracy_int8"] == pytest.approx(cb["accuracy_int8"] - ca["accuracy_int8"])
    assert cmp["deltas"]["p90_ms"] == pytest.approx(judged_latency(cb) - judged_latency(ca))
    assert cmp["deltas"]["model_size_mb"] == pytest.approx(cb["model_size_mb"] - ca["model_size_mb"])
    assert [r["chosen"]["latency_kind"] for r in cmp["runs"]] == ["measured", "estimated"]
    names_a, names_b = {c["name"] for c in a["candidates"]}, {c["name"] for c in b["candidates"]}
    assert {c["name"] for c in cmp["candidates"]} == names_a | names_b
    for c in cmp["candidates"]:
        assert (c["in_a"], c["in_b"]) == (c["name"] in names_a, c["name"] in names_b)
    text = compare_text(cmp)
    assert a["target"] in text and b["target"] in text and "absent" in text and "delta (B - A)" in text
    assert f"{(cb['accuracy_int8'] - ca['accuracy_int8']) * 100:+.2f} pts" in text


def test_compare_cli_writes_md_and_html_and_escapes(tmp_path):
    r = load("npu")
    r["candidates"][0]["name"] = EVIL
    if r["selected"] == load("npu")["candidates"][0]["name"]:
        r["selected"] = EVIL
    if r["selection"].get("closest") == load("npu")["candidates"][0]["name"]:
        r["selection"]["closest"] = EVIL
    run_a, run_b = make_run(tmp_path, "host"), make_run(tmp_path, "npu", report=r)
    rc, out, err = cli("compare", str(run_a), str(run_b), "--out", str(tmp_path / "cmp"))
    assert rc == 0, err
    assert "testhost" in out and "ethos-u55-128" in out and "written:" in out
    md = (tmp_path / "cmp" / "compare.md").read_text()
    page = (tmp_path / "cmp" / "compare.html").read_text()
    assert md == compare_markdown(compare_reports(load_run(run_a).report, r, str(run_a), str(run_b)))
    assert page == compare_html(compare_reports(load_run(run_a).report, r, str(run_a), str(run_b)))
    assert "<script" not in page and "&lt;script&gt;" in page
