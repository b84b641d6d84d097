"""Load a local HTML file in Debian's real headless Chromium and report what a user's browser would show.

Chromium is driven over the DevTools protocol on ``--remote-debugging-pipe`` (file descriptors 3 and 4,
NUL-separated JSON), with the standard library only. Console messages, uncaught exceptions and the browser's
own log errors (e.g. a resource that failed to load) are collected while the page loads; then the page is
asked which images are broken and which resources it fetched, and a full-page PNG screenshot is written.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--no-default-browser-check",
         "--disable-extensions", "--remote-debugging-pipe"]

# evaluated in the loaded page: broken images, fetched resources, embedded plots
_PROBE = """JSON.stringify({
  title: document.title,
  broken_images: Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0)
                      .map(i => i.getAttribute('src') || '(no src)'),
  images: document.images.length,
  svgs: document.querySelectorAll('svg').length,
  resources: performance.getEntriesByType('resource').map(e => e.name),
  height: document.documentElement.scrollHeight,
  width: document.documentElement.scrollWidth,
  text: document.body ? document.body.innerText : ''
})"""


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class PageCheck:
    """What the page did in the browser."""

    console: list[dict[str, str]] = field(default_factory=list)  # {"level", "text"} from console.* calls
    exceptions: list[str] = field(default_factory=list)  # uncaught JavaScript exceptions
    log: list[dict[str, str]] = field(default_factory=list)  # browser log entries {"level", "source", "text", "url"}
    probe: dict[str, Any] = field(default_factory=dict)

    @property
    def errors(self) -> list[str]:
        """Everything a developer console would show in red."""
        return ([f"console.{m['level']}: {m['text']}" for m in self.console if m["level"] in ("error", "assert")]
                + [f"exception: {e}" for e in self.exceptions]
                + [f"{m['source']}: {m['text']} {m.get('url', '')}".strip() for m in self.log if m["level"] == "error"])


class _Pipe:
    def __init__(self, write_fd: int, read_fd: int) -> None:
        self.w, self.r, self.buf, self.next_id = write_fd, read_fd, b"", 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30) -> dict:
        self.next_id += 1
        msg: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.w, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._read(timeout)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str, timeout: float) -> dict:
        for i, e in enumerate(self.events):
            if e.get("method") == method:
                return self.events.pop(i)
        while True:
            e = self._read(timeout)
            if e.get("method") == method:
                return e
            self.events.append(e)

    def _read(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.r], [], [], left)[0]:
                raise TimeoutError("no answer from Chromium")
            chunk = os.read(self.r, 1 << 16)
            if not chunk:
                raise EOFError("Chromium closed the DevTools pipe")
            self.buf += chunk
        raw, self.buf = self.buf.split(b"\0", 1)
        return json.loads(raw)


def check_page(html: Path, screenshot: Path, width: int = 1280, height: int = 2000, timeout: float = 60) -> PageCheck:
    """Open ``html`` (a local file) in headless Chromium, collect errors, write a full-page PNG screenshot."""
    exe = chromium_path()
    if exe is None:
        raise FileNotFoundError("chromium not found: ./setup.sh installs Debian's chromium package")
    to_chrome, from_chrome = os.pipe(), os.pipe()
    # Chromium reads commands on fd 3 and writes replies on fd 4; park our ends above 9 first so that putting
    # them on 3 and 4 in the child cannot overwrite one with the other (these copies close at exec)
    child_in = fcntl.fcntl(to_chrome[0], fcntl.F_DUPFD_CLOEXEC, 10)
    child_out = fcntl.fcntl(from_chrome[1], fcntl.F_DUPFD_CLOEXEC, 10)
    for fd in (to_chrome[0], from_chrome[1]):
        os.close(fd)

    def on_fds_3_and_4() -> None:
        os.dup2(child_in, 3)
        os.dup2(child_out, 4)

    with tempfile.TemporaryDirectory(prefix="edgekd-chromium-") as profile:
        args = [*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}", "about:blank"]
        proc = subprocess.Popen([exe, *args], close_fds=False, preexec_fn=on_fds_3_and_4,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(child_in)
        os.close(child_out)
        pipe = _Pipe(to_chrome[1], from_chrome[0])
        try:
            return _drive(pipe, html, screenshot, width, height, timeout)
        finally:
            try:
                pipe.send("Browser.close", timeout=10)
            except (OSError, TimeoutError, EOFError, RuntimeError):
                pass
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            os.close(to_chrome[1])
            os.close(from_chrome[0])


def _drive(pipe: _Pipe, html: Path, screenshot: Path, width: int, height: int, timeout: float) -> PageCheck:
    target = pipe.send("Target.createTarget", {"url": "about:blank"}, timeout=timeout)["targetId"]
    session = pipe.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Page", "Runtime", "Log"):
        pipe.send(f"{domain}.enable", session=session)
    pipe.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                     "mobile": False}, session=session)
    pipe.events.clear()  # only what the report itself causes
    pipe.send("Page.navigate", {"url": html.resolve().as_uri()}, session=session)
    pipe.wait_event("Page.loadEventFired", timeout)
    value = pipe.send("Runtime.evaluate", {"expression": _PROBE, "returnByValue": True}, session=session)
    probe = json.loads(value["result"]["value"])
    shot = pipe.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session=session,
                     timeout=timeout)
    screenshot.write_bytes(base64.b64decode(shot["data"]))
    check = PageCheck(probe=probe)
    for e in pipe.events:
        p = e.get("params", {})
        if e.get("method") == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
            check.console.append({"level": p.get("type", ""), "text": text})
        elif e.get("method") == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            check.exceptions.append(d.get("exception", {}).get("description") or d.get("text", ""))
        elif e.get("method") == "Log.entryAdded":
            entry = p.get("entry", {})
            check.log.append({k: str(entry.get(k, "")) for k in ("level", "source", "text", "url")})
    return check
