"""The --debug flag alone decides whether third-party output is shown: an EDGEKD_DEBUG left in the environment by an
earlier in-process call (or a parent) does not turn the quiet console off."""

from __future__ import annotations

import os

from edgekd.console import DEBUG_ENV, debugging, native_stderr_quiet, quiet_third_party


def test_without_the_flag_a_stale_debug_variable_is_cleared(monkeypatch):
    monkeypatch.setenv(DEBUG_ENV, "1")
    quiet_third_party(debug=False)
    assert not debugging() and DEBUG_ENV not in os.environ


def test_the_flag_sets_it_for_child_processes(monkeypatch):
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    quiet_third_party(debug=True)
    assert debugging() and os.environ[DEBUG_ENV] == "1"


def test_native_writes_to_fd2_are_hidden_only_without_debug(monkeypatch, capfd):
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    with native_stderr_quiet():
        os.write(2, b"hidden line\n")
    monkeypatch.setenv(DEBUG_ENV, "1")
    with native_stderr_quiet():
        os.write(2, b"shown line\n")
    err = capfd.readouterr().err
    assert "hidden line" not in err and "shown line" in err
