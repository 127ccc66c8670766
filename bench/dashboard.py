"""The dashboard at scale: build time, front-page weight and render time in Chromium for a
generated history (issue 26's limits: 1,000 runs x 50 cells build in 30 s or less, the front
page weighs 2 MB or less and renders in Chromium in 2 s or less).

The history is synthetic, of the real result types (harness.dashboard.synthetic: merged
reports of seeded figures with three injected steps, one recovering), recorded line by line
as ``history.record`` encodes them; the newest ``--kept`` runs also keep their merged
reports, as the nightly workflow keeps them, so the build makes their comparisons too. The
build is the real command (``python -m harness dashboard``, a fresh process, timed whole).
Chromium opens the front page and one cell page headless, driven over the DevTools protocol
(``--remote-debugging-pipe``); the render time is the later of the load event's end and the
first contentful paint, from the page's own performance timeline.

    .venv/bin/python bench/dashboard.py [--runs 1000] [--cells 50] [--kept 14] [--no-browser]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.analysis import history  # noqa: E402
from harness.dashboard import synthetic  # noqa: E402
from harness.report.chromium import OFFLINE_FLAGS  # noqa: E402
from harness.result import write_atomic  # noqa: E402

LIMITS = {"build_s": 30.0, "front_mb": 2.0, "render_s": 2.0}
CHROMIUM_FLAGS = [
    *OFFLINE_FLAGS,
    "--window-size=1280,900",
]


def generate(root: Path, runs: int, cells: int, kept: int) -> tuple[Path, Path]:
    """A history index of ``runs`` runs and the merged reports of the newest ``kept``."""
    envs = synthetic.TORCH_VERSIONS
    steps = [
        synthetic.InjectedStep(
            envs[0], runs // 5, 1.3, "transformers", "5.17.0", "5.18.0", runs // 3, "5.18.1"
        ),
        synthetic.InjectedStep(envs[2 % len(envs)], runs // 2, 1.25, "tokenizers", "0.22.1", "0.23.0"),
        synthetic.InjectedStep(envs[-1], runs - 10, 1.4, "huggingface-hub", "1.0.3", "1.1.0"),
    ]
    hist, reports = root / "history", root / "reports"
    lines = []
    for k, report in enumerate(synthetic.runs(runs, cells, steps=steps)):
        path = reports / f"matrix-{report.run_id}.json"
        if k >= runs - kept:
            report.write(path)
        lines.append(history.encode_entry(history.entry_of(report, path)))
    write_atomic(hist / history.INDEX, b"".join(lines))
    return hist, reports


class DevTools:
    """Chromium's DevTools protocol over --remote-debugging-pipe (fd 3 in, fd 4 out)."""

    def __init__(self, chromium: str, profile: Path):
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def fds():
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        self.proc = subprocess.Popen(
            [
                chromium,
                *CHROMIUM_FLAGS,
                "--remote-debugging-pipe",
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            pass_fds=(3, 4),
            preexec_fn=fds,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next = 0

    def _read(self) -> dict:
        while b"\0" not in self._buffer:
            chunk = os.read(self._from_chrome, 65536)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._next += 1
        message = {"id": self._next, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def wait_for(self, event: str, session: str) -> None:
        while True:
            message = self._read()
            if message.get("method") == event and message.get("sessionId") == session:
                return

    def render_s(self, url: str) -> float:
        """Open ``url`` in a new tab; the later of its load event's end and first contentful paint."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.send("Page.enable", session=session)
        self.send("Page.navigate", {"url": url}, session=session)
        self.wait_for("Page.loadEventFired", session)
        expression = (
            "JSON.stringify({load: performance.getEntriesByType('navigation')[0].loadEventEnd,"
            " paint: performance.getEntriesByType('paint').map(e => e.startTime)})"
        )
        for _ in range(50):  # loadEventEnd is set just after the event's handlers return
            value = self.send(
                "Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=session
            )
            timing = json.loads(value["result"]["value"])
            if timing["load"] > 0:
                break
            time.sleep(0.02)
        self.send("Target.closeTarget", {"targetId": target})
        return max([timing["load"], *timing["paint"]]) / 1000

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, OSError):  # it may close the pipe before replying
            self.send("Browser.close")
        self.proc.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--cells", type=int, default=50)
    parser.add_argument("--kept", type=int, default=14, help="newest runs whose merged reports are kept")
    parser.add_argument("--no-browser", action="store_true", help="skip the render time")
    parser.add_argument("--keep", type=Path, help="build here and keep it (default: a temporary folder)")
    args = parser.parse_args()

    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    try:
        started = time.perf_counter()
        hist, reports = generate(root, args.runs, args.cells, min(args.kept, args.runs))
        print(f"generated {args.runs} runs x {args.cells} cells in {time.perf_counter() - started:.1f} s")
        site = root / "site"
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "harness",
                "dashboard",
                "--history",
                str(hist),
                "--runs",
                str(reports),
                "--out",
                str(site),
            ],
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        figures = {"build_s": time.perf_counter() - started}
        front = site / "index.html"
        assets = sum(p.stat().st_size for p in (site / "assets").iterdir())
        figures["front_mb"] = (front.stat().st_size + assets) / 1e6
        files = sum(1 for p in site.rglob("*") if p.is_file())
        print(f"build: {figures['build_s']:.1f} s, {files} files")
        print(
            f"front page: {front.stat().st_size / 1e6:.3f} MB, "
            f"with its script and style {figures['front_mb']:.3f} MB"
        )
        chromium = shutil.which("chromium")
        if not args.no_browser and chromium:
            tools = DevTools(chromium, root / "profile")
            try:
                tools.render_s((site / "environments.html").resolve().as_uri())  # the browser's own start-up
                figures["render_s"] = tools.render_s(front.resolve().as_uri())
                cell = next((site / "cells").iterdir())
                cell_s = tools.render_s(cell.resolve().as_uri())
            finally:
                tools.close()
            print(f"render in Chromium: front page {figures['render_s']:.2f} s, a cell page {cell_s:.2f} s")
        elif not args.no_browser:
            print("render: chromium is not on PATH (make browser installs it); not measured")
        for key, value in figures.items():
            print(f"  {key} {value:.2f} (limit {LIMITS[key]:g}): {'ok' if value <= LIMITS[key] else 'OVER'}")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
