"""Measuring on a real board over SSH: a real OpenSSH server (Debian's openssh-server) on 127.0.0.1 with a
throwaway host key and client key on an unprivileged port, reached by edgekd through the real ssh client.

The board behind it: this machine running the real aarch64 Python, numpy and runtimes under ``qemu-aarch64 -cpu
cortex-a72`` with a Raspberry Pi 4's /proc/cpuinfo (edgekd's emulation environment), so the board reports an Arm
CPU part like a Pi does. Its timings are emulated, hence meaningless as latencies; the tests check that measured
figures come back, are judged and stored, and that each failure gives one line and exit 2.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import EDGEKD

SSHD = "/usr/sbin/sshd"
PI_TARGET = """
description = "Raspberry Pi 4 class board reached over SSH (test)"
arch = "aarch64"
core = "cortex-a72"
clock_ghz = 1.5
cores = 4
threads = 2
memory_mb = 1024
runtimes = ["onnxruntime"]
precisions = ["int8", "fp32"]
emulation = "qemu-user"
[budget]
p90_latency_ms = 100000
peak_memory_mb = 4096
model_size_mb = 4.0
min_accuracy = 0.1
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    """sshd on 127.0.0.1 and what a client needs: an ssh config (alias ``pi`` with the authorized key, alias
    ``pi-wrong-key`` with a key the server does not know), and 'board Pythons' (emulated Pi, no runtime, broken)."""
    if not Path(SSHD).is_file():
        pytest.fail("openssh-server is not installed: ./setup.sh --dev installs it")
    from edgekd.emu.env import find_env

    d = tmp_path_factory.mktemp("board")
    for name in ("host_key", "client_key", "stranger_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)], check=True)
    (d / "authorized_keys").write_text((d / "client_key.pub").read_text())
    port = _free_port()
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nAuthorizedKeysFile {d}/authorized_keys\n"
        f"PidFile {d}/sshd.pid\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n")
    user = getpass.getuser()
    common = f"  HostName 127.0.0.1\n  Port {port}\n  User {user}\n  IdentitiesOnly yes\n" \
             f"  StrictHostKeyChecking no\n  UserKnownHostsFile {d}/known_hosts\n"
    (d / "ssh_config").write_text(f"Host pi\n{common}  IdentityFile {d}/client_key\n"
                                  f"Host pi-wrong-key\n{common}  IdentityFile {d}/stranger_key\n")
    os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege-separation directory
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(d / "sshd_config")], stdout=subprocess.DEVNULL,
                            stderr=open(d / "sshd.log", "w"))
    for _ in range(50):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    env = find_env()
    view = env.view("cortex-a72", 4)
    pi = d / "pi-python"  # the board's own Python: aarch64, with numpy and the runtimes, on a Pi 4's cpuinfo
    pi.write_text(f'#!/bin/sh\nexec {env.qemu} -L {view} -cpu cortex-a72 {view}{env.python} -I "$@"\n')
    blocked = d / "no-runtime"  # a Python with numpy but none of the runtimes
    (blocked / "site").mkdir(parents=True)
    (blocked / "site" / "sitecustomize.py").write_text(
        "import sys\nclass _Block:\n    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('ai_edge_litert', 'tflite_runtime', 'tensorflow', 'onnxruntime'):\n"
        "            raise ImportError('not installed on this board')\nsys.meta_path.insert(0, _Block())\n")
    (d / "no-runtime-python").write_text(f'#!/bin/sh\nPYTHONPATH={blocked}/site exec {Path(sys.executable)} '
                                         f'"$@"\n')
    broken = d / "broken"  # a runtime whose outputs are wrong: the bundle must fail on this board
    (broken / "site").mkdir(parents=True)
    (broken / "site" / "sitecustomize.py").write_text(
        "import onnxruntime as ort\n_run = ort.InferenceSession.run\n"
        "def run(self, *a, **k):\n    out = _run(self, *a, **k)\n    return [o * 0 + 7 for o in out]\n"
        "ort.InferenceSession.run = run\n")
    (d / "broken-python").write_text(f'#!/bin/sh\nPYTHONPATH={broken}/site exec {Path(sys.executable)} "$@"\n')
    for name in ("pi-python", "no-runtime-python", "broken-python"):
        (d / name).chmod(0o755)
    yield d
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def board_env(board, tmp_path) -> dict[str, str]:
    """A private cache folder (local calibration store, count store) that still sees the emulation environment."""
    from edgekd.cache import default_cache_dir

    cache = tmp_path / "xdg" / "edgekd"
    cache.mkdir(parents=True)
    (cache / "arm").symlink_to(default_cache_dir() / "arm")
    return {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "xdg"), "EDGEKD_SSH_CONFIG": str(board / "ssh_config")}


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory, tiny_student, digits) -> Path:
    from edgekd.export.onnx import export_onnx

    out = tmp_path_factory.mktemp("model") / "student.onnx"
    export_onnx(tiny_student, digits.x_test[:4], out)
    return out


def _edgekd(args: list[str], env: dict[str, str], timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([*EDGEKD, *args], capture_output=True, text=True, env=env, timeout=timeout)


def _errors(r: subprocess.CompletedProcess) -> list[str]:
    return [ln for ln in r.stderr.splitlines() if ln.startswith("edgekd: error")]


def test_bench_on_the_board_measures_estimates_stores_and_calibrate_refits(board, board_env, onnx_model, tmp_path):
    url = f"ssh://pi?python={board}/pi-python"
    out = tmp_path / "bench.json"
    r = _edgekd(["bench", str(onnx_model), "--target", "raspberrypi", "--device", url, "--runs", "5", "--json",
                 str(out)], board_env)
    assert r.returncode == 0, r.stderr[-2000:]
    m = json.loads(out.read_text())
    assert 0 < m["p50_ms"] <= m["p90_ms"] <= m["p99_ms"] and m["cold_start_ms"] > m["p50_ms"]
    assert m["peak_rss_mb"] > 0 and m["runs"] == 5 and m["threads"] == 4  # the --target's threads
    assert m["board"]["machine"] == "aarch64" and "0xd08" in m["board"]["cpu_parts"]
    assert m["core"] == "cortex-a72" and m["runtime"].startswith("onnxruntime")
    assert m["board"]["runtimes"]["onnxruntime"] and m["board"]["runtimes"]["numpy"]
    lo, hi = m["estimate_band_ms"]  # the emulated estimate for the same model and core, beside it
    assert lo < m["estimate_ms"] < hi
    assert "measured on the board" in r.stdout and "estimate beside it" in r.stdout
    stored = (tmp_path / "xdg" / "edgekd" / "calibration" / "measurements.jsonl").read_text().splitlines()
    row = json.loads(stored[0])
    assert len(stored) == 1 and row["core"] == "cortex-a72" and row["latency_ms"] == pytest.approx(m["mean_ms"])
    assert row["instructions"] > 0 and row["dram_bytes"] >= 0 and row["model"] == onnx_model.name

    r = _edgekd(["calibrate"], board_env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "1 local row(s)" in r.stdout and "before" in r.stdout and "after" in r.stdout
    refit = json.loads((tmp_path / "xdg" / "edgekd" / "calibration" / "calibration.json").read_text())
    assert refit["rows"][-1]["source"] == "local board measurement" and "local board measurement" in refit["fitted_on"]
    r = _edgekd(["bench", str(onnx_model), "--target", "raspberrypi"], board_env)  # later estimates use the refit
    assert r.returncode == 0 and "refit with local board measurements" in r.stdout, r.stdout + r.stderr[-1500:]


def test_build_judges_the_measured_figures_with_the_estimate_beside(board, board_env, tmp_path):
    tdir = tmp_path / "targets"
    tdir.mkdir()
    (tdir / "pi-over-ssh.toml").write_text(PI_TARGET)
    r = _edgekd(["build", "--target", "pi-over-ssh", "--targets-dir", str(tdir), "--data", "digits", "--size",
                 "0.25x1", "--epochs", "1", "--bench-runs", "5", "--no-int8-search", "--out", str(tmp_path / "run"),
                 "--cache-dir", str(tmp_path / "cache"), "--device", f"ssh://pi?python={board}/pi-python"],
                board_env, timeout=1500)
    assert r.returncode == 0, r.stderr[-3000:]
    rep = json.loads((tmp_path / "run" / "report.json").read_text())
    c = rep["candidates"][0]
    assert c["latency"]["kind"] == "measured" and c["latency"]["backend"] == "board"
    assert "measured on the board" in c["latency"]["source"] and c["latency"]["judged_ms"] == c["latency"]["p90_ms"]
    b8 = c["board"]["int8"]
    assert b8["estimate_ms"] > 0 and b8["core"] == "cortex-a72" and b8["p90_ms"] == c["latency"]["p90_ms"]
    assert rep["selected"] == c["name"]
    md = (tmp_path / "run" / "report.md").read_text()
    assert "## Measured on the board ssh://pi" in md and "MEASURED ON THE BOARD" in md
    stored = (tmp_path / "xdg" / "edgekd" / "calibration" / "measurements.jsonl").read_text().splitlines()
    assert {json.loads(s)["precision"] for s in stored} == {"int8", "fp32"}


@pytest.mark.parametrize("case", ["unreachable", "refused-key", "no-runtime", "bundle-fails"])
def test_board_failures_give_one_line_and_exit_2(board, board_env, onnx_model, case):
    port = _free_port()  # nothing listens there
    url = {"unreachable": f"ssh://127.0.0.1:{port}",
           "refused-key": "ssh://pi-wrong-key",
           "no-runtime": f"ssh://pi?python={board}/no-runtime-python",
           "bundle-fails": f"ssh://pi?python={board}/broken-python"}[case]
    r = _edgekd(["bench", str(onnx_model), "--device", url, "--runs", "3"], board_env, timeout=300)
    errors = _errors(r)
    assert r.returncode == 2 and len(errors) == 1, r.stderr[-2000:]
    expected = {"unreachable": "cannot reach the board", "refused-key": "refused the SSH login",
                "no-runtime": "has no runtime for student.onnx", "bundle-fails": "failed on pi"}[case]
    assert expected in errors[0] and "Fix:" in errors[0], errors[0]
    assert not (Path(board_env["XDG_CACHE_HOME"]) / "edgekd" / "calibration" / "measurements.jsonl").exists()


def test_a_malformed_device_address_is_refused_before_any_work(board_env, onnx_model):
    r = _edgekd(["bench", str(onnx_model), "--device", "ssh://user@host:notaport"], board_env, timeout=60)
    assert r.returncode == 2 and "--device" in r.stderr and "ssh://user@host" in r.stderr
    r = _edgekd(["build", "--device", "cuda", "--device", "cpu"], board_env, timeout=60)
    assert r.returncode == 2 and "--device" in r.stderr
