"""Property tests (hypothesis, issue 9) for the data-spec parser, the target loader, the budget selector and the
report writer: for any input, a result that keeps its invariants or an EdgeKDError with one line — never another
exception."""

from __future__ import annotations

import copy
import json
import math
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from edgekd.data.checks import check_x, check_y
from edgekd.data.specs import SCHEMES, parse_spec
from edgekd.errors import DataError, EdgeKDError, TargetError
from edgekd.select import Figures, Violation, pareto_front, select, violations
from edgekd.targets import Budget, parse_target

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "reports"
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _one_line_error(e: EdgeKDError) -> None:
    assert "\n" not in str(e) and e.cause and e.exit_code in (2, 3)


# ------------------------------------------------------------------ data-spec parser

@SETTINGS
@given(st.text(max_size=40))
def test_parse_spec_any_text_parses_or_is_a_data_error(text):
    try:
        kind, arg = parse_spec(text)
    except DataError as e:
        _one_line_error(e)
        return
    assert kind in SCHEMES and kind == text.strip().partition(":")[0].strip().lower()
    assert SCHEMES.get(kind).takes_arg == bool(arg) and arg == arg.strip()


@SETTINGS
@given(st.sampled_from(["npz", "idx", "folder"]), st.text(min_size=1, max_size=30).filter(lambda s: s.strip()),
       st.sampled_from(["", " ", "  "]), st.booleans())
def test_parse_spec_round_trips_scheme_and_path(kind, arg, pad, upper):
    spec = f"{pad}{kind.upper() if upper else kind}:{arg}{pad}"
    assert parse_spec(spec) == (kind, arg.strip())


@SETTINGS
@given(st.sampled_from(["digits", "fashion-mnist", "basic-motions"]), st.text(max_size=10))
def test_builtin_specs_take_no_argument(kind, arg):
    if arg:
        with pytest.raises(DataError, match="takes no argument"):
            parse_spec(f"{kind}:{arg}")
    else:
        assert parse_spec(kind) == (kind, "")


_arrays = st.sampled_from([np.float32, np.float64, np.int64, np.uint8, np.bool_, np.complex64]).flatmap(
    lambda dt: st.tuples(st.just(dt), st.lists(st.integers(0, 5), min_size=1, max_size=5)))


@SETTINGS
@given(_arrays, st.sampled_from([None, math.nan, math.inf, -math.inf, 1e39]))
def test_sample_arrays_are_accepted_only_when_numeric_finite_and_shaped(dt_shape, poison):
    dt, shape = dt_shape
    x = np.ones(shape, dtype=dt)
    if poison is not None and x.size and np.issubdtype(dt, np.floating):
        x.flat[0] = poison
    try:
        out = check_x(x, "fuzz")
    except DataError as e:
        _one_line_error(e)
        return
    assert out.ndim in (2, 3, 4) and len(out) > 0 and out.size > 0
    if out.dtype.kind == "f":
        assert out.dtype == np.float32 and np.isfinite(out).all()


@SETTINGS
@given(st.lists(st.one_of(st.integers(-3, 12), st.floats(allow_nan=True, allow_infinity=True)), min_size=0,
                max_size=12), st.integers(0, 12))
def test_labels_are_non_negative_integers_one_per_sample(values, n):
    y = np.array(values)
    try:
        out = check_y(y, n, "fuzz")
    except DataError as e:
        _one_line_error(e)
        return
    assert out.dtype == np.int64 and out.shape == (n,) and (out >= 0).all()
    assert np.array_equal(out, np.asarray(values, dtype=np.float64).astype(np.int64))


# ------------------------------------------------------------------ target loader

BASE = tomllib.loads((Path(__file__).resolve().parents[2] / "edgekd" / "profiles" / "raspberrypi.toml").read_text())
_values = st.one_of(st.none(), st.booleans(), st.integers(-10, 10 ** 6), st.floats(allow_nan=True),
                    st.text(max_size=8), st.lists(st.sampled_from(["onnxruntime", "litert", "int8", "fp32", "x"]),
                                                  max_size=3), st.dictionaries(st.text(max_size=5), st.integers(),
                                                                                max_size=2))


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from(sorted(BASE) + ["budget.p90_latency_ms", "budget.min_accuracy",
                                                          "budget.model_size_mb", "budget.sram_kib", "extra"]),
                          st.one_of(st.just("<delete>"), _values)), max_size=4))
def test_parse_target_gives_a_valid_profile_or_a_target_error(edits):
    data = copy.deepcopy(BASE)
    for key, value in edits:
        table, _, leaf = key.rpartition(".")
        where = data.get(table) if table else data
        if not isinstance(where, dict):
            continue
        if value == "<delete>":
            where.pop(leaf, None)
        elif value is not None:
            where[leaf] = value
    try:
        t = parse_target(data, "raspberrypi", "fuzz.toml")
    except TargetError as e:
        _one_line_error(e)
        assert "Fix:" in str(e)
        return
    assert 1 <= t.threads <= t.cores and 0 < t.clock_ghz < math.inf and 0 < t.memory_mb < math.inf
    assert t.runtimes and t.precisions and t.arch == data["arch"]
    for k, v in t.budget.as_dict().items():
        assert v is None or (math.isfinite(v) and v >= 0 and (k not in ("min_accuracy", "max_accuracy_drop")
                                                               or v <= 1))


@SETTINGS
@given(st.floats(0.001, 1e4), st.floats(0.001, 1e4), st.floats(0.01, 100), st.floats(0, 1), st.integers(1, 8))
def test_a_valid_profile_survives_toml_and_the_loader(p90, mem, size, acc, cores):
    import tempfile

    text = (f'description = "generated"\narch = "aarch64"\ncore = "cortex-a72"\nclock_ghz = 1.5\ncores = {cores}\n'
            f'memory_mb = 1024\nruntimes = ["onnxruntime"]\nprecisions = ["int8"]\nemulation = "qemu-user"\n'
            f"[budget]\np90_latency_ms = {p90!r}\npeak_memory_mb = {mem!r}\nmodel_size_mb = {size!r}\n"
            f"min_accuracy = {acc!r}\n")
    from edgekd.targets import load_target

    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "gen.toml").write_text(text)
        t = load_target("gen", d)
    assert t.budget == Budget(p90, mem, size, acc) and t.threads == cores


# ------------------------------------------------------------------ budget selector

_fig = st.builds(
    lambda i, acc, lat, mem, size, macs: Figures(f"c{i}", acc, lat, mem, size, macs, macs // 2),
    st.integers(0, 10 ** 6), st.floats(0, 1), st.floats(1e-3, 1e3), st.floats(0.1, 500), st.floats(1e-3, 50),
    st.integers(1, 10 ** 9))
_budget = st.builds(Budget, st.one_of(st.none(), st.floats(1e-3, 1e3)), st.one_of(st.none(), st.floats(0.1, 500)),
                    st.one_of(st.none(), st.floats(1e-3, 50)), st.one_of(st.none(), st.floats(0, 1)))


@SETTINGS
@given(st.lists(_fig, min_size=1, max_size=8, unique_by=lambda f: f.name), _budget)
def test_selection_picks_the_most_accurate_fitting_candidate(figs, budget):
    sel = select(figs, budget)
    viol = {f.name: violations(f, budget) for f in figs}
    fits = [f for f in figs if not viol[f.name]]
    assert (sel.selected is None) == (not fits)
    if fits:
        chosen = next(f for f in figs if f.name == sel.selected)
        assert not viol[chosen.name] and chosen.accuracy == max(f.accuracy for f in fits)
        tied = [f for f in fits if f.accuracy == chosen.accuracy]
        assert chosen.macs == min(f.macs for f in tied)
    else:
        assert sel.closest in {f.name for f in figs}
    for f in figs:
        for v in viol[f.name]:
            assert isinstance(v, Violation)
            assert (v.value < v.limit) if v.budget == "min_accuracy" else (v.value > v.limit)
    # order does not matter (up to exact ties, compared by figures)  [n_test 0 here: the exact-tie rule]
    again = select(list(reversed(figs)), budget)
    key = {f.name: (f.accuracy, f.macs, f.p90_latency_ms, f.model_size_mb) for f in figs}
    assert (again.selected is None) == (sel.selected is None)
    if sel.selected:
        assert key[again.selected] == key[sel.selected]


@SETTINGS
@given(st.lists(_fig, min_size=1, max_size=8, unique_by=lambda f: f.name))
def test_pareto_front_is_exactly_the_non_dominated_set(figs):
    front = pareto_front(figs)

    def dominated(f):
        return any(g.accuracy >= f.accuracy and g.p90_latency_ms <= f.p90_latency_ms
                   and (g.accuracy > f.accuracy or g.p90_latency_ms < f.p90_latency_ms) for g in figs)

    assert set(front) == {f.name for f in figs if not dominated(f)}
    lat = {f.name: f.p90_latency_ms for f in figs}
    assert [lat[n] for n in front] == sorted(lat[n] for n in front)


@SETTINGS
@given(st.lists(_fig, min_size=1, max_size=8, unique_by=lambda f: f.name), _budget)
def test_relaxing_the_budget_never_loses_the_choice(figs, budget):
    tight = select(figs, budget)
    loose = select(figs, Budget())
    acc = {f.name: f.accuracy for f in figs}
    assert loose.selected is not None and acc[loose.selected] == max(acc.values())
    if tight.selected:
        assert acc[loose.selected] >= acc[tight.selected]


# ------------------------------------------------------------------ report writer

_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)
_hostile = st.sampled_from(["<script>alert(1)</script>", "x\n## injected section", "```\n## out of the fence",
                            '"><img src=x onerror=1>', "a | b", "line\n# heading", "`code`", "&amp;", "**bold**",
                            "\u202e"])


def _headings(md: str) -> list[str]:
    """Markdown headings outside fenced code blocks (a fence closes only with a run of as many backticks)."""
    out, fence = [], None
    for ln in md.splitlines():
        m = re.match(r"^(`{3,})", ln)
        if m and (fence is None or (m.group(1) == fence and ln.strip() == fence)):
            fence = None if fence else m.group(1)
        elif fence is None and ln.startswith("#"):
            out.append(ln)
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(["host.json", "arm.json", "npu.json"]), st.one_of(_text, _hostile), st.one_of(_text, _hostile),
       st.floats(0, 1), st.floats(0, 1e4))
def test_report_writer_round_trips_and_escapes_any_text(tmp_path, fixture, description, command, acc, lat):
    from edgekd.report.runs import load_run, regenerate, validate_report
    from edgekd.report.writer import write_reports

    r = json.loads((FIXTURES / fixture).read_text())
    r["target_description"], r["command"] = description, command
    r["candidates"][0]["accuracy_int8"] = acc
    c0 = r["candidates"][0]["host_latency"]
    c0["p99_ms"] = max(lat, c0["p90_ms"])
    validate_report(r)
    out = tmp_path / f"run-{abs(hash((fixture, description, command, acc, lat)))}"
    paths = write_reports(r, out)
    assert json.loads((out / "report.json").read_text()) == r  # report.json holds exactly the records
    html, md = paths["html"].read_text(), paths["md"].read_text()
    for s in (description, command):
        if re.search(r"[<>&\"]", s):
            assert s not in html or not re.search(r"[<>]", s)  # never raw markup in the page
    assert "<script" not in html.lower()  # the page runs no script, whatever the records hold
    clean = copy.deepcopy(r)
    clean["target_description"], clean["command"] = "x", "x"
    from edgekd.report.writer import to_markdown

    assert _headings(md) == _headings(to_markdown(clean))  # free text cannot add, end or hide a section
    before = {p: p.read_text() for p in paths.values()}
    run, again = regenerate(out)  # validated regeneration rewrites the same pages
    assert {p: p.read_text() for p in again.values()} == {p: t for p, t in before.items() if p.suffix != ".json"}
    assert load_run(out).report == r


@SETTINGS
@given(st.lists(_fig, min_size=1, max_size=8, unique_by=lambda f: f.name), _budget, st.integers(1, 100_000))
def test_with_a_test_split_the_choice_is_tied_with_the_best_and_has_the_most_headroom(figs, budget, n):
    from dataclasses import replace

    from edgekd.select import headroom
    from edgekd.stats import wilson_interval

    figs = [replace(f, n_test=n) for f in figs]
    sel = select(figs, budget)
    fits = [f for f in figs if not violations(f, budget)]
    assert (sel.selected is None) == (not fits)
    if fits:
        best = max(f.accuracy for f in fits)
        low, _high = wilson_interval(best, n)
        chosen = next(f for f in figs if f.name == sel.selected)
        tied = [f for f in fits if f.accuracy >= low]
        assert chosen in tied
        assert headroom(chosen, budget)[0] == max(headroom(f, budget)[0] for f in tied)
