"""Build and find the emulated aarch64 environment, under the user's cache dir.

One environment per (QEMU version, wheel versions, plugin source), in ``<cache>/arm/<key>/``:

  rootfs/        an arm64 Debian 12 Python 3.11 userland: the .debs of ``python3`` and ``libstdc++6`` downloaded
                 with a private apt configuration (its own lists, cache and status; nothing of the host's apt
                 state is touched) and unpacked with ``dpkg -x``; no binfmt, no chroot, no root needed for this
  rootfs/usr/local/lib/python3.11/dist-packages
                 the aarch64 wheels of numpy, onnxruntime and ai-edge-litert, at the host's versions, installed by
                 the host's pip (``--platform manylinux..._aarch64 --only-binary=:all:``)
  plugin/        ``libedgekd_insn.so``: edgekd's TCG plugin (``insn_count.c``), built with gcc against
                 ``qemu-plugin.h`` taken from Debian's qemu source package
  views/CORE-N/  what the guest sees as ``/``: links to the rootfs plus its own ``proc/cpuinfo`` and
                 ``sys/devices/system/cpu`` for N cores of CORE (``qemu -L`` looks there first)
  READY.json     written last: what was installed, and when

:func:`setup` builds it (idempotent: an existing READY environment is returned at once); :func:`find_env`
only looks, and raises :class:`EmulationError` with the set-up command when it is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..cache import content_key, default_cache_dir
from ..errors import EmulationError
from ..fsio import write_json_atomic
from .cores import get_core

ENV_FORMAT = 1
GUEST_PACKAGES = ("python3", "libstdc++6")
WHEELS = ("numpy", "onnxruntime", "ai-edge-litert")
DEBIAN = "http://deb.debian.org/debian"
SUITES = ("bookworm", "bookworm-updates")
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
PLUGIN_SOURCE = Path(__file__).with_name("insn_count.c")
SETUP_FIX = "run ./setup.sh (or: edgekd emu setup), which installs Debian's qemu-user and builds the environment"


@dataclass(frozen=True)
class ArmEnv:
    root: Path  # <cache>/arm/<key>
    qemu: str  # path of the dynamic qemu-aarch64 (the static build cannot load plugins)
    qemu_version: str
    wheels: dict  # distribution -> version installed in the guest

    @property
    def plugin(self) -> Path:
        return self.root / "plugin" / "libedgekd_insn.so"

    @property
    def python(self) -> str:
        return "/usr/bin/python3.11"  # as the guest sees it (inside the view)

    def view(self, core: str, n_cores: int) -> Path:
        """The guest root for ``n_cores`` of ``core`` (created on first use)."""
        spec = get_core(core)
        if not 1 <= n_cores <= 64:
            raise EmulationError(f"cannot emulate {n_cores} cores", "use a target with 1 to 64 cores")
        view = self.root / "views" / f"{core}-{n_cores}"
        if (view / "proc" / "cpuinfo").is_file():
            return view
        tmp = Path(tempfile.mkdtemp(prefix=f".{core}-", dir=self.root / "views"))
        for top in sorted((self.root / "rootfs").iterdir()):
            if top.name not in ("proc", "sys", "tmp"):
                (tmp / top.name).symlink_to(Path("..") / ".." / "rootfs" / top.name)
        (tmp / "proc").mkdir()
        (tmp / "proc" / "cpuinfo").write_text(spec.cpuinfo(n_cores))
        cpu = tmp / "sys" / "devices" / "system" / "cpu"
        cpu.mkdir(parents=True)
        for name in ("possible", "present", "online"):
            (cpu / name).write_text(f"0-{n_cores - 1}\n" if n_cores > 1 else "0\n")
        try:
            tmp.rename(view)
        except OSError:  # another process made it first
            shutil.rmtree(tmp, ignore_errors=True)
        return view


def qemu_binary() -> tuple[str, str]:
    """(path, version) of Debian's dynamic ``qemu-aarch64``; :class:`EmulationError` when it is missing."""
    path = shutil.which("qemu-aarch64")
    if not path:
        raise EmulationError("qemu-aarch64 (Debian package qemu-user, the build that loads TCG plugins) is not "
                             "installed", SETUP_FIX)
    out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout
    version = out.split("version", 1)[-1].split()[0] if "version" in out else "unknown"
    return path, version


def host_wheel_versions() -> dict[str, str]:
    """The host's versions of the runtimes: the guest gets the same ones, so both run the same kernels."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in WHEELS:
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            raise EmulationError(f"{dist} is not installed on the host", "run ./setup.sh first") from None
    return out


def env_dir(cache_dir: str | Path | None = None) -> tuple[Path, str, str, dict[str, str]]:
    qemu, qver = qemu_binary()
    wheels = host_wheel_versions()
    key = content_key(ENV_FORMAT, qver, wheels, GUEST_PACKAGES, SUITES, PLUGIN_SOURCE.read_bytes().hex())
    base = Path(cache_dir) if cache_dir else default_cache_dir()
    return base / "arm" / key, qemu, qver, wheels


def find_env(cache_dir: str | Path | None = None) -> ArmEnv:
    """The ready environment for this host's QEMU and wheels (in ``cache_dir``, else the user's default cache
    dir, where the set-up builds it), or :class:`EmulationError` naming the set-up command."""
    looked = []
    for base in ([cache_dir] if cache_dir else []) + [None]:
        root, qemu, qver, wheels = env_dir(base)
        if (root / "READY.json").is_file():
            return ArmEnv(root, qemu, qver, wheels)
        looked.append(str(root))
    raise EmulationError(f"the emulated ARM environment is not set up (looked in {' and '.join(looked)})",
                         SETUP_FIX)


def setup(cache_dir: str | Path | None = None, say=print) -> ArmEnv:
    """Build the environment unless it is ready; about a minute with a warm pip cache. Needs the network."""
    root, qemu, qver, wheels = env_dir(cache_dir)
    if (root / "READY.json").is_file():
        return ArmEnv(root, qemu, qver, wheels)
    root.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".building-", dir=root.parent))
    try:
        t0 = time.monotonic()
        say("emu: downloading the arm64 Python userland (Debian packages)")
        debs = _apt_download(work / "apt", "arm64", GUEST_PACKAGES)
        for deb in debs:
            _run(["dpkg-deb", "-x", str(deb), str(work / "rootfs")], "unpack " + deb.name)
        say(f"emu: installing aarch64 wheels {', '.join(f'{k}=={v}' for k, v in wheels.items())}")
        _pip_aarch64(work / "rootfs" / "usr" / "local" / "lib" / "python3.11" / "dist-packages", wheels)
        say("emu: building the instruction-counting QEMU plugin")
        _build_plugin(work, qver)
        shutil.rmtree(work / "apt", ignore_errors=True)
        (work / "views").mkdir()
        write_json_atomic(work / "READY.json", {"format": ENV_FORMAT, "qemu": qver, "wheels": wheels,
                                                "guest_packages": list(GUEST_PACKAGES), "suites": list(SUITES),
                                                "built_s": round(time.monotonic() - t0, 1)})
        try:
            work.rename(root)
        except OSError:  # built concurrently by another process: keep theirs
            if not (root / "READY.json").is_file():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return find_env(cache_dir)


def _apt_conf(state: Path, arch: str, source: bool = False) -> dict[str, str]:
    """Environment for apt-get with a private state under ``state`` (the host's apt state is not touched)."""
    for sub in ("lists/partial", "cache/archives/partial", "etc/preferences.d"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    (state / "status").touch()
    kind = "deb-src" if source else "deb"
    signed = f"[signed-by={KEYRING}] " if Path(KEYRING).is_file() else ""
    (state / "etc" / "sources.list").write_text("".join(f"{kind} {signed}{DEBIAN} {s} main\n" for s in SUITES))
    conf = "\n".join([
        f'APT::Architecture "{arch}";', f'APT::Architectures {{ "{arch}"; }};',
        f'Dir::Etc::SourceList "{state}/etc/sources.list";', 'Dir::Etc::SourceParts "/dev/null";',
        f'Dir::Etc::PreferencesParts "{state}/etc/preferences.d";', 'Dir::Etc::Preferences "/dev/null";',
        f'Dir::State "{state}";', f'Dir::State::Lists "{state}/lists";', f'Dir::State::status "{state}/status";',
        f'Dir::Cache "{state}/cache";', 'APT::Install-Recommends "false";', 'Debug::NoLocking "true";',
        'APT::Sandbox::User "root";' if os.geteuid() == 0 else "", ""])
    (state / "apt.conf").write_text(conf)
    return {**os.environ, "APT_CONFIG": str(state / "apt.conf"), "DEBIAN_FRONTEND": "noninteractive"}


def _apt_download(state: Path, arch: str, packages: tuple[str, ...]) -> list[Path]:
    env = _apt_conf(state, arch)
    _run(["apt-get", "update", "-qq"], "apt-get update (arm64 lists)", env=env)
    _run(["apt-get", "install", "-y", "-qq", "--download-only", *packages], "download arm64 packages", env=env)
    debs = sorted((state / "cache" / "archives").glob("*.deb"))
    if not debs:
        raise EmulationError("apt downloaded no arm64 packages", "check access to deb.debian.org and retry")
    return debs


def _pip_aarch64(target: Path, wheels: dict[str, str]) -> None:
    platforms = ["manylinux2014_aarch64"] + [f"manylinux_2_{v}_aarch64" for v in (17, 24, 27, 28, 31, 34, 35, 36)]
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-warn-conflicts",
           "--no-compile", "--target", str(target), "--only-binary=:all:", "--python-version", "3.11",
           "--implementation", "cp", "--abi", "cp311"]
    for p in platforms:
        cmd += ["--platform", p]
    _run(cmd + [f"{k}=={v}" for k, v in wheels.items()], "pip install of the aarch64 wheels")


def _build_plugin(work: Path, qemu_version: str) -> None:
    """Get ``qemu-plugin.h`` from Debian's qemu source package and build the plugin with gcc."""
    src = work / "qemu-src"
    src.mkdir()
    env = _apt_conf(work / "apt-src", "amd64", source=True)
    _run(["apt-get", "update", "-qq"], "apt-get update (source lists)", env=env)
    _run(["apt-get", "source", "--download-only", "-qq", "qemu"], "download Debian's qemu source", env=env, cwd=src)
    tarballs = sorted(src.glob("qemu_*.orig.tar.*"))
    if not tarballs:
        raise EmulationError("Debian's qemu source package has no upstream tarball", "retry the set-up")
    _run(["tar", "-xf", str(tarballs[0]), "-C", str(src), "--wildcards", "*/include/qemu/qemu-plugin.h"],
         "extract qemu-plugin.h")
    headers = sorted(src.glob("*/include/qemu/qemu-plugin.h"))
    if not headers:
        raise EmulationError("qemu-plugin.h is missing from Debian's qemu source", "retry the set-up")
    out = work / "plugin"
    out.mkdir()
    shutil.copy2(headers[0], out / "qemu-plugin.h")
    shutil.copy2(PLUGIN_SOURCE, out / PLUGIN_SOURCE.name)
    _run(["gcc", "-shared", "-fPIC", "-O2", "-Wall", "-I", str(out), str(out / PLUGIN_SOURCE.name), "-o",
          str(out / "libedgekd_insn.so")], "gcc build of the QEMU plugin")
    (out / "SOURCE").write_text(f"qemu-plugin.h from {tarballs[0].name}; host qemu-aarch64 {qemu_version}\n")
    shutil.rmtree(src, ignore_errors=True)


def _run(cmd: list[str], what: str, env: dict | None = None, cwd: Path | None = None) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=900)
    except FileNotFoundError:
        raise EmulationError(f"{what}: {cmd[0]} is not installed", SETUP_FIX) from None
    except subprocess.TimeoutExpired:
        raise EmulationError(f"{what} took longer than 15 minutes", "check the network and retry") from None
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or proc.stdout).strip().splitlines() if ln.strip()]
        raise EmulationError(f"{what} failed (exit {proc.returncode}: {lines[-1][:200] if lines else 'no output'})",
                             "check access to deb.debian.org and PyPI, then rerun the set-up")
