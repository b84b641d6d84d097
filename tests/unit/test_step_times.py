"""Training-step times are measured once per machine and architecture, so the search's plan does not follow load."""

from __future__ import annotations

import json

from edgekd.search import decide, size_candidates
from edgekd.step_times import FILE_NAME, StepTimes
from edgekd.targets import Budget


def test_a_step_time_is_measured_once_then_read_back_until_retime(tmp_path):
    calls = []

    def measure(value):
        def m():
            calls.append(value)
            return value
        return m

    first = StepTimes(tmp_path)
    assert first.get("a", "key-a", measure(0.5)) == 0.5 and first.measured == ["a"]
    first.save()
    again = StepTimes(tmp_path)
    assert again.get("a", "key-a", measure(9.0)) == 0.5  # a loaded machine now would measure 9 s: not asked
    assert again.reused == ["a"] and calls == [0.5]
    assert again.get("b", "key-b", measure(2.0)) == 2.0  # another architecture (or machine) is measured
    retimed = StepTimes(tmp_path, retime=True)
    assert retimed.get("a", "key-a", measure(0.7)) == 0.7
    retimed.save()
    assert StepTimes(tmp_path).get("a", "key-a", measure(5.0)) == 0.7


def test_a_damaged_or_foreign_store_only_costs_a_measurement(tmp_path):
    for text in ["{not json", json.dumps({"format": 99, "entries": {"k": {"step_s": 1.0}}}),
                 json.dumps({"format": 1, "entries": {"k": {"step_s": -1}}}), "[]"]:
        (tmp_path / FILE_NAME).write_text(text)
        store = StepTimes(tmp_path)
        assert store.get("a", "k", lambda: 0.25) == 0.25 and store.measured == ["a"]
        store.save()
        assert json.loads((tmp_path / FILE_NAME).read_text())["entries"]["k"]["step_s"] == 0.25


def test_saving_keeps_entries_another_build_stored_meanwhile(tmp_path):
    a, b = StepTimes(tmp_path), StepTimes(tmp_path)
    a.get("a", "ka", lambda: 1.0)
    b.get("b", "kb", lambda: 2.0)
    a.save()
    b.save()
    entries = json.loads((tmp_path / FILE_NAME).read_text())["entries"]
    assert set(entries) == {"ka", "kb"}


def test_the_plan_is_the_same_when_the_machine_is_slower_the_second_time(tmp_path, monkeypatch):
    """Real torch steps, timed once; then every later measurement would be 100x slower (a loaded machine)."""
    import edgekd.search as search
    from edgekd.models.students import ladder

    specs = ladder((1, 8, 8), 10, None, ((0.25, 1), (0.5, 1), (1.0, 1)))
    first = size_candidates(specs, 16, 10, 2, StepTimes(tmp_path))
    assert all(c.train_step_s > 0 for c in first)
    real = search._train_step_seconds
    monkeypatch.setattr(search, "_train_step_seconds", lambda *a: 100 * real(*a))
    second = size_candidates(specs, 16, 10, 2, StepTimes(tmp_path))
    assert [c.est_train_s for c in second] == [c.est_train_s for c in first]
    budget = sum(c.est_train_s for c in first[1:]) * 1.01
    plan_a = [c.decision for c in decide(first, Budget(), None, 3, budget)]
    plan_b = [c.decision for c in decide(second, Budget(), None, 3, budget)]
    assert plan_a == plan_b
    slow = size_candidates(specs, 16, 10, 2, StepTimes(tmp_path, retime=True))  # --retime follows the machine
    assert all(s.train_step_s > 10 * f.train_step_s for s, f in zip(slow, first))
    unstored = size_candidates(specs, 16, 10, 2)  # no store: measured every time
    assert all(u.train_step_s > 10 * f.train_step_s for u, f in zip(unstored, first))
