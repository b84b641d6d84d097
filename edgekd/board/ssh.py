"""A real board reached over SSH with the OpenSSH client: parse ``ssh://user@host[:port][?python=PATH]``, run a
command there, and turn what ``ssh`` says when it fails into one line naming the cause and the fix.

``ssh`` itself reads ``~/.ssh/config`` (host aliases, keys, jump hosts), so ``ssh://pi`` works for a host named
there; ``EDGEKD_SSH_CONFIG`` names another config file instead (``ssh -F``). edgekd never answers prompts:
``BatchMode=yes`` makes a missing key or an unknown host key an error, not a hang.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from ..errors import BoardError, ConfigError

CONNECT_TIMEOUT_S = 10
SSH_FAILED = 255  # ssh's own exit status when the connection (not the remote command) failed


@dataclass(frozen=True)
class SshDevice:
    host: str
    user: str = ""
    port: int | None = None
    python: str = "python3"  # the board's interpreter (with numpy and the runtime)

    @property
    def destination(self) -> str:
        return f"{self.user}@{self.host}" if self.user else self.host

    @property
    def url(self) -> str:
        port = f":{self.port}" if self.port else ""
        query = "" if self.python == "python3" else f"?python={self.python}"
        return f"ssh://{self.destination}{port}{query}"

    def ssh_command(self, remote: str) -> list[str]:
        cmd = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={CONNECT_TIMEOUT_S}", "-o", "LogLevel=ERROR"]
        config = os.environ.get("EDGEKD_SSH_CONFIG")
        if config:
            cmd += ["-F", config]
        if self.port:
            cmd += ["-p", str(self.port)]
        return cmd + [self.destination, remote]


def is_device_url(value: str) -> bool:
    return value.startswith("ssh://")


def parse_device(url: str) -> SshDevice:
    """``ssh://[user@]host[:port][?python=PATH]`` -> :class:`SshDevice`; :class:`ConfigError` otherwise."""
    fix = "pass --device ssh://user@host[:port] (optionally ?python=/path/to/python3 on the board)"
    if not is_device_url(url):
        raise ConfigError(f"--device {url!r} is not an ssh:// address", fix)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise ConfigError(f"--device {url!r} cannot be read ({e})", fix) from None
    host = parts.hostname or ""
    if not host or parts.path not in ("", "/") or parts.password is not None:
        raise ConfigError(f"--device {url!r} needs a host and nothing else besides user, port and ?python=", fix)
    query = parse_qs(parts.query)
    unknown = sorted(set(query) - {"python"})
    if unknown:
        raise ConfigError(f"--device {url!r}: unknown option(s) {', '.join(unknown)}", fix)
    python = query.get("python", ["python3"])[-1]
    return SshDevice(host, parts.username or "", port, python)


def run_remote(device: SshDevice, remote: str, *, stdin: bytes | None = None, timeout_s: float = 600,
               what: str = "run a command") -> subprocess.CompletedProcess:
    """Run ``remote`` (a shell command line) on the board; connection failures raise :class:`BoardError`."""
    try:
        proc = subprocess.run(device.ssh_command(remote), input=stdin, capture_output=True, timeout=timeout_s)
    except FileNotFoundError:
        raise BoardError("the OpenSSH client (ssh) is not installed here",
                         "install it (Debian: apt-get install openssh-client)") from None
    except subprocess.TimeoutExpired:
        raise BoardError(f"{device.url} did not finish '{what}' within {timeout_s:g} s",
                         "check the board (load, hung runtime) or use a smaller model") from None
    if proc.returncode == SSH_FAILED:
        raise connection_error(device, proc.stderr.decode(errors="replace"))
    return proc


def connection_error(device: SshDevice, stderr: str) -> BoardError:
    """What ssh's exit status 255 means, from what it printed."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    last = lines[-1][:200] if lines else "no message"
    text = stderr.lower()
    where = f"{device.destination}{f':{device.port}' if device.port else ''}"
    if "permission denied" in text:
        return BoardError(f"the board {where} refused the SSH login ({last})",
                          "add your public key to the board's ~/.ssh/authorized_keys, or name the key for this host "
                          "in ~/.ssh/config (IdentityFile)")
    if "host key verification failed" in text or "remote host identification has changed" in text:
        return BoardError(f"the SSH host key of {where} is not known or has changed ({last})",
                          f"connect once by hand (ssh {device.destination}) and check the key it shows")
    if any(s in text for s in ("could not resolve", "name or service not known", "connection refused",
                               "timed out", "no route to host", "network is unreachable", "connection closed",
                               "connection reset")):
        return BoardError(f"cannot reach the board {where} over SSH ({last})",
                          "check the address and port, that the board is on and that its SSH server runs")
    return BoardError(f"ssh to {where} failed ({last})", "run the same ssh command by hand to see why")


def quote(*parts: str) -> str:
    return " ".join(shlex.quote(p) for p in parts)
