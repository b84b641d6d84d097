"""Training progress (pure): the in-place bar on a terminal, nothing drawn elsewhere, and the ETA's text."""

from __future__ import annotations

import io

from edgekd.progress import EpochBar, eta_text


def test_eta_text():
    assert [eta_text(s) for s in (0, 9.6, 75, 3600 + 120, -5)] == ["0s", "10s", "1m15s", "1h02m", "0s"]


def test_the_bar_draws_in_place_on_a_terminal_and_erases_itself():
    out = io.StringIO()
    bar = EpochBar(2, 4, steps=10, seconds_per_epoch=30.0, stream=out, enabled=True)
    for step in range(10):
        bar.update(step, 0.5)
    text = out.getvalue()
    assert text.startswith("\r    epoch 2/4 [") and "100%" in text and "loss 0.5000" in text
    assert "ETA 1m00s" in text.split("\r")[-1]  # at the end of epoch 2 of 4: two more epochs of 30 s
    assert "\n" not in text  # rewritten in place, never a new line
    bar.clear()
    assert out.getvalue().endswith("\r\x1b[K")


def test_nothing_is_drawn_off_a_terminal():
    out = io.StringIO()  # not a TTY: the epoch lines carry the ETA instead
    bar = EpochBar(1, 3, steps=5, seconds_per_epoch=None, stream=out)
    for step in range(5):
        bar.update(step, 1.0)
    bar.clear()
    assert out.getvalue() == ""
