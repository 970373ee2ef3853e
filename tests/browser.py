"""Headless Chromium driven over the Chrome DevTools Protocol: load a file:// page, collect its
console errors, exceptions and every network request, count what each chart drew, and save a
screenshot. Used by the report tests; needs Debian's `chromium` (see `chromium_path`)."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

# Per chart container: how many SVG marks or canvases it holds, and whether vega-embed finished.
CHART_PROBE = """
JSON.stringify(Array.from(document.querySelectorAll('[data-figure]')).map(el => ({
  key: el.dataset.figure, missing: el.classList.contains('missing'),
  rendered: el.dataset.rendered === 'yes',
  svgs: el.querySelectorAll('svg').length,
  marks: el.querySelectorAll('svg path, svg rect, svg line, svg circle, svg text').length,
  canvases: el.querySelectorAll('canvas').length,
  width: el.getBoundingClientRect().width, height: el.getBoundingClientRect().height})))
"""


def chromium_path() -> str | None:
    """`chromium` on PATH, installed with apt-get where it is missing (None if it cannot be)."""
    found = shutil.which("chromium")
    if found:
        return found
    if shutil.which("apt-get") is None:
        return None
    for step in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        if subprocess.run(step, capture_output=True, timeout=900,
                          env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
                          ).returncode != 0:
            return None
    return shutil.which("chromium")


@dataclass
class PageCheck:
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)   # every URL but the page and data:
    charts: list[dict] = field(default_factory=list)
    page_width: int = 0     # the document's scroll width: wider than the window scrolls it
    dom: str = ""           # the page as drawn (document.documentElement.outerHTML)


class Cdp:
    def __init__(self, socket: aiohttp.ClientWebSocketResponse):
        self.socket, self.ids, self.events = socket, itertools.count(1), []

    async def call(self, method: str, **params) -> dict:
        call_id = next(self.ids)
        await self.socket.send_json({"id": call_id, "method": method, "params": params})
        async for message in self.socket:
            data = json.loads(message.data)
            if data.get("id") == call_id:
                if "error" in data:
                    raise RuntimeError(f"{method}: {data['error']}")
                return data.get("result", {})
            self.events.append(data)
        raise RuntimeError("the browser closed the connection")

    async def drain(self, seconds: float) -> None:
        try:
            async with asyncio.timeout(seconds):
                async for message in self.socket:
                    self.events.append(json.loads(message.data))
        except TimeoutError:
            pass


def _errors_and_requests(events: list[dict], page_url: str) -> tuple[list[str], list[str]]:
    errors, requests = [], []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            errors.append(" ".join(str(a.get("value", a.get("description")))
                                   for a in params.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            errors.append(details.get("exception", {}).get("description") or details.get("text"))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            errors.append(params["entry"].get("text"))
        elif method == "Network.requestWillBeSent":
            url = params.get("request", {}).get("url", "")
            if url != page_url and not url.startswith("data:"):
                requests.append(url)
    return errors, requests


async def _check(port: int, page: Path, screenshot: Path, settle_s: float,
                 width: int) -> PageCheck:
    async with aiohttp.ClientSession() as http:
        async with http.put(f"http://127.0.0.1:{port}/json/new?about:blank") as response:
            target = await response.json()
        async with http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as socket:
            cdp = Cdp(socket)
            for domain in ("Runtime", "Log", "Network", "Page"):
                await cdp.call(f"{domain}.enable")
            await cdp.call("Emulation.setDeviceMetricsOverride", width=width, height=1000,
                           deviceScaleFactor=1, mobile=width < 600)
            url = page.resolve().as_uri()
            await cdp.call("Page.navigate", url=url)
            charts = await _wait_for_charts(cdp, settle_s)
            measured = await cdp.call("Runtime.evaluate", returnByValue=True, expression=(
                "JSON.stringify([document.documentElement.scrollWidth, "
                "document.documentElement.outerHTML])"))
            page_width, dom = json.loads(measured["result"]["value"])
            shot = await cdp.call("Page.captureScreenshot", format="png",
                                  captureBeyondViewport=True)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
            errors, requests = _errors_and_requests(cdp.events, url)
            return PageCheck(errors, requests, charts, page_width, dom)


async def _wait_for_charts(cdp: Cdp, timeout_s: float) -> list[dict]:
    """Poll until every chart container reports vega-embed done (or the time is up), then
    wait a moment more for late requests and errors."""
    deadline = time.monotonic() + timeout_s
    while True:
        await cdp.drain(0.5)
        probe = await cdp.call("Runtime.evaluate", expression=CHART_PROBE, returnByValue=True)
        charts = json.loads(probe["result"].get("value") or "[]")
        done = charts and all(c["missing"] or c["rendered"] for c in charts)
        if done or time.monotonic() > deadline:
            await cdp.drain(1.0)
            return charts


def check_page(chromium: str, page: Path, screenshot: Path, settle_s: float = 60.0,
               width: int = 1500) -> PageCheck:
    """Open `page` in a fresh headless Chromium, `width` pixels wide (below 600: as a phone),
    and report what it did."""
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        process = subprocess.Popen(
            [chromium, "--headless=new", "--no-sandbox", "--disable-gpu",
             "--no-first-run", "--no-default-browser-check", "--disable-extensions",
             "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--remote-debugging-port=0", f"--user-data-dir={profile}",
             "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        try:
            port = _devtools_port(Path(profile), process)
            return asyncio.run(_check(port, page, screenshot, settle_s, width))
        finally:
            _stop_group(process)


def _stop_group(process: subprocess.Popen) -> None:
    """Stop chromium and its helpers (renderer, crashpad): its whole process group."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            continue
        time.sleep(0.2)  # helpers leave after the browser; then nothing is left to signal


def _devtools_port(profile: Path, process: subprocess.Popen, timeout_s: float = 60.0) -> int:
    """Chromium writes the port it chose into DevToolsActivePort in its profile."""
    marker, deadline = profile / "DevToolsActivePort", time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"chromium exited with {process.returncode}")
        if marker.exists() and marker.read_text().strip():
            return int(marker.read_text().splitlines()[0])
        time.sleep(0.1)
    raise RuntimeError("chromium did not open its DevTools port")
