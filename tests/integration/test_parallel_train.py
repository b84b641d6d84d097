"""--jobs N and --ray: the candidates trained as parallel jobs (worker processes; tasks on a local Ray instance this
test starts) give bit-identical students to a serial build, land in the same shared store, and a killed worker's
candidate is trained by the build itself, never half-written into the store."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from tests.conftest import EDGEKD, REPO

GOLDEN_TARGETS = REPO / "tests" / "fixtures" / "golden" / "targets"
SIZES = ("0.5x1", "1x1")


def _args(tmp: Path, name: str, *extra: str, epochs: int = 2) -> list[str]:
    return [*EDGEKD, "build", "--target", "golden-host", "--targets-dir", str(GOLDEN_TARGETS), "--data", "digits",
            *[a for s in SIZES for a in ("--size", s)], "--epochs", str(epochs), "--bench-runs", "5",
            "--no-int8-search", "--no-search", "--out", str(tmp / name), "--cache-dir", str(tmp / f"cache-{name}"),
            *extra]


def _students(run: Path) -> dict[str, str]:
    return {p.parent.name: json.loads(p.read_text())["sha256"] for p in (run / "candidates").glob("*/student.json")}


def _store_is_whole(cache: Path) -> None:
    entries = [p for p in (cache / "students").iterdir() if not p.name.endswith(".lock")]
    assert entries and all((p / "record.json").is_file() and (p / "student.pt").is_file() for p in entries), entries
    assert not [p for p in entries if p.name.startswith(".tmp-")]


def _build(args: list[str]) -> subprocess.CompletedProcess:
    r = subprocess.run(args, capture_output=True, text=True, timeout=900, env={**os.environ})
    assert r.returncode in (0, 3), r.stderr[-3000:]
    return r


@pytest.fixture(scope="module")
def serial(tmp_path_factory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("serial")
    _build(_args(tmp, "serial"))
    return _students(tmp / "serial")


def test_jobs_2_gives_the_serial_students_bit_for_bit(tmp_path, serial):
    r = _build(_args(tmp_path, "jobs", "--jobs", "2"))
    assert len(re.findall(r"training in worker pid \d+", r.stderr)) == len(SIZES)
    assert _students(tmp_path / "jobs") == serial and len(serial) == len(SIZES)
    _store_is_whole(tmp_path / "cache-jobs")
    report = json.loads((tmp_path / "jobs" / "report.json").read_text())
    assert sorted(s for s in report["stages"]["ran"] if s.endswith("/distill")) == sorted(
        f"convnet_w{s.split('x')[0]}_d1/distill" for s in SIZES)  # adopted through the normal distill stage


def test_a_killed_worker_is_retried_by_the_build_and_nothing_half_written(tmp_path, serial):
    proc = subprocess.Popen(_args(tmp_path, "killed", "--jobs", "2"), stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True, env={**os.environ})
    seen, killed = [], None
    for line in proc.stderr:
        seen.append(line)
        m = re.search(r"training in worker pid (\d+)", line)
        if m and killed is None:
            killed = int(m.group(1))
            os.kill(killed, signal.SIGKILL)
    proc.wait(900)
    log = "".join(seen)
    assert killed and proc.returncode in (0, 3), log[-3000:]
    assert "its job failed" in log and "the build trains it itself" in log
    assert _students(tmp_path / "killed") == serial
    _store_is_whole(tmp_path / "cache-killed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(shutil.which("ray", path=str(REPO / ".venv" / "bin")) is None, reason="needs Ray (setup.sh --dev)")
def test_ray_tasks_on_a_local_instance_give_the_serial_students(tmp_path, serial):
    ray = str(REPO / ".venv" / "bin" / "ray")
    port = _free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    temp = Path("/tmp") / f"ray-edgekd-{port}"  # Ray's socket paths must stay short
    start = subprocess.run([ray, "start", "--head", "--port", str(port), "--num-cpus", "2", "--num-gpus", "0",
                            "--include-dashboard", "false", "--temp-dir", str(temp), "--disable-usage-stats"],
                           capture_output=True, text=True, timeout=180, env=env)
    assert start.returncode == 0, start.stderr[-2000:]
    try:
        r = _build(_args(tmp_path, "ray", "--ray", f"127.0.0.1:{port}"))
        assert "on Ray (127.0.0.1:" in r.stderr and r.stderr.count(": trained by pid") == len(SIZES)
        assert _students(tmp_path / "ray") == serial
        _store_is_whole(tmp_path / "cache-ray")
    finally:
        subprocess.run([ray, "stop", "--force"], capture_output=True, timeout=120, env=env)
        shutil.rmtree(temp, ignore_errors=True)


def test_no_ray_cluster_at_the_address_is_one_line_and_exit_2(tmp_path):
    r = subprocess.run(_args(tmp_path, "noray", "--ray", f"127.0.0.1:{_free_port()}"), capture_output=True,
                       text=True, timeout=300, env={**os.environ})
    assert r.returncode == 2, r.stderr[-2000:]
    assert "no Ray cluster at --ray" in r.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "noray").exists()  # refused before any work
