"""report.html / report.md from report.json files written by real builds (tests/fixtures/reports/*.json):
a host build (onnxruntime + LiteRT), an emulated ARM build and an Ethos-U (Vela) build, each on tiny data."""

from __future__ import annotations

import copy
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from edgekd.report.html import to_html
from edgekd.report.svg import pareto_svg
from edgekd.report.view import judged_latency
from edgekd.report.writer import to_markdown

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "reports"
SVG = "{http://www.w3.org/2000/svg}"
EVIL = '<script>alert("x")</script><img src=http://evil.example/x.png>'


def load(kind: str) -> dict:
    return json.loads((FIXTURES / f"{kind}.json").read_text())


def _svgs(html: str) -> list[ET.Element]:
    return [ET.fromstring(s) for s in re.findall(r"<svg\b.*?</svg>", html, flags=re.S)]


def test_fixtures_are_what_they_claim():
    host, arm, npu = load("host"), load("arm"), load("npu")
    assert {c["runtime"] for c in host["candidates"]} == {"onnxruntime", "litert"}
    assert all(c.get("arm") for c in arm["candidates"]) and all(c.get("npu") for c in npu["candidates"])
    assert all(c.get("ops_profile") for r in (host, arm, npu) for c in r["candidates"])


@pytest.mark.parametrize("kind", ["host", "arm", "npu"])
def test_page_is_self_contained_and_well_formed(kind):
    page = to_html(load(kind))
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<script" not in page and "<link" not in page and "@import" not in page and "url(" not in page
    assert not re.search(r"""\b(src|href)\s*=\s*["']?(https?:|//)""", page)  # nothing fetched from anywhere
    assert len(_svgs(page)) >= 3  # Pareto + size + memory, each parses as XML


def test_user_supplied_strings_are_escaped():
    r = load("host")
    r["target_description"] = r["command"] = r["teacher"]["origin"] = EVIL
    r["candidates"][0]["name"] = r["candidates"][0]["student"] = EVIL
    r["quantization_warnings"] = [EVIL]
    r["environment"]["cpu"] = EVIL
    r["search"]["considered"][0].update(name=EVIL, decision="skip", reasons=[EVIL])
    page = to_html(r)
    assert "<script" not in page and "<img" not in page and "&lt;script&gt;" in page
    assert page.count("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;") >= 7
    _svgs(page)  # the escaped name inside the SVG tooltips still parses


def _points(svg: ET.Element) -> list[tuple[str, float]]:
    """(class, x) of each candidate's marker, in candidate order."""
    out = []
    for g in svg.iter(f"{SVG}g"):
        if "point" in g.get("class", ""):
            shape = g.find(f"{SVG}circle")
            x = float(shape.get("cx")) if shape is not None else float(g.find(f"{SVG}path").get("d")[1:].split(",")[0]) + 5
            out.append((g.get("class").split()[1], x))
    return out


def test_pareto_plot_has_budget_lines_and_marks_fit_and_not_fit():
    r = load("host")
    lats = sorted(judged_latency(c) for c in r["candidates"])
    r["budget"]["p90_latency_ms"] = (lats[1] + lats[2]) / 2  # two candidates inside, two over
    for c in r["candidates"]:
        c["within_budget"] = judged_latency(c) <= r["budget"]["p90_latency_ms"]
    svg = ET.fromstring(pareto_svg(r))
    line = next(e for e in svg.iter(f"{SVG}line") if e.get("class") == "budget-p90")
    xb = float(line.get("x1"))
    assert line.get("x1") == line.get("x2")  # vertical
    acc = next(e for e in svg.iter(f"{SVG}line") if e.get("class") == "budget-accuracy")
    assert acc.get("y1") == acc.get("y2")  # horizontal
    pts = _points(svg)
    assert len(pts) == len(r["candidates"])
    for (cls, x), c in zip(pts, r["candidates"]):
        assert cls == ("fit" if c["within_budget"] else "miss")
        assert (x < xb) == c["within_budget"]  # left of the p90 line exactly when it meets the latency budget
    assert sum(1 for e in svg.iter(f"{SVG}circle") if e.get("class") == "chosen") == 1


def test_arm_page_shows_estimates_with_error_bands():
    r = load("arm")
    page = to_html(r)
    assert "Estimated on cortex-a72" in page and "error band" in page and "estimated; " in page
    svg = _svgs(page)[0]
    bands = [g for g in svg.iter(f"{SVG}g") if "point" in g.get("class", "") and len(g.findall(f"{SVG}line")) == 3]
    assert len(bands) == len(r["candidates"])  # every ARM point carries its error bar
    assert "host p50/p90/p99, cold start (reference)" in page and "not the target device" in page


def test_npu_page_judges_vela_time_and_lists_layers():
    r = load("npu")
    page = to_html(r)
    assert "NPU estimate: ethos-u55-128" in page and "Costliest layers" in page and "NPU SRAM" in page
    chosen = next(c for c in r["candidates"] if c["name"] == (r["selected"] or r["selection"]["closest"]))
    assert f"{chosen['npu']['time_ms']:.4f}" in page


def test_operator_profile_is_labelled_by_runtime():
    r = load("host")
    onnx_row = next(c for c in r["candidates"] if c["runtime"] == "onnxruntime")
    lite_row = next(c for c in r["candidates"] if c["runtime"] == "litert")
    for row, deployed in ((onnx_row, True), (lite_row, False)):
        r["selected"], r["slowest_ops"] = row["name"], {"candidate": row["name"], **row["ops_profile"]}
        page, md = to_html(r), to_markdown(r)
        top = row["ops_profile"]["ops"][0]["node"]
        assert top in page and top in md
        assert ("no per-operator profiler" in page) is (not deployed)
        assert ("no per-operator profiler" in md) is (not deployed)
    old = copy.deepcopy(r)
    old.pop("slowest_ops")
    for c in old["candidates"]:
        c.pop("ops_profile")
    assert "no operator profile" in to_html(old) and "No operator profile" in to_markdown(old)


def test_search_lists_each_candidate_considered_and_why_it_was_skipped():
    r = load("host")
    first = r["search"]["considered"][0]
    first.update(decision="skip", reasons=["int8 size 9 MB over the 1 MB budget"])
    r["search"]["trained"] = [c["name"] for c in r["search"]["considered"][1:]]
    page = to_html(r)
    n = len(r["search"]["considered"])
    assert f"Search: {n} candidate(s) considered, {n - 1} trained" in page
    assert "skipped: int8 size 9 MB over the 1 MB budget" in page and f"<code>{first['name']}</code>" in page
    assert f"{len(r['stages']['reused'])} reused from an earlier build" in page


def test_markdown_carries_environment_threads_seed_and_command():
    r = load("host")
    md = to_markdown(r)
    assert f"benchmark threads {r['threads']}, seed {r['distill']['seed']}" in md
    assert "## Slowest operators (runtime profiling)" in md and r["command"] in md
    page = to_html(r)
    assert f">{r['environment']['onnxruntime']}<" in page and "Reproduce" in page


def test_unlabelled_training_samples_are_stated_on_both_pages():
    r = load("host")
    assert "unlabelled" not in to_markdown(r) and "unlabelled" not in to_html(r)  # older reports: no such key
    r["data"]["unlabeled"] = 48000
    phrase = f"{r['data']['train']} train (48000 unlabelled, labelled by the teacher)"
    assert phrase in to_markdown(r) and phrase in to_html(r)
