"""The verdict banner where a reader looks first, in a real headless Chromium at 1,280 px.

The page is the real renderer's, of a merged report of two torch versions built from the
stored real cell report (synthetic_pair): two modes, six metrics each, a CUDA build against
a +cpu one, so the banner carries its build-kind, package and remedy lines. A copy of the
page gets a small script that measures the layout after load and writes the figures into
the DOM, which ``--dump-dom`` returns; the page as shipped carries no script. Layout is
deterministic for a given page and window: these checks cannot fail by chance.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest
from synthetic_pair import pair_report

from harness.report.chromium import OFFLINE_FLAGS
from harness.report.html import render_page

# Measured in the page: where the banner is, whether the first verdict table's verdict
# column is within the window, and every element that reaches past the window's right edge
# outside a container that scrolls on purpose (.scroll).
PROBE = """
<script>
addEventListener("load", () => {
  const width = document.documentElement.clientWidth;
  const banner = document.getElementById("verdicts");
  const first = banner.querySelector("ul.verdicts > li");
  const table = document.querySelector("#within table");
  const heads = [...table.querySelectorAll("thead th")];
  const verdict = heads[heads.length - 1];
  const box = table.closest(".scroll").getBoundingClientRect();
  const over = [...document.body.querySelectorAll("*")]
    .filter(e => e.getBoundingClientRect().right > width + 1 && !e.closest(".scroll"))
    .map(e => e.tagName + (e.id ? "#" + e.id : ""));
  const out = {
    width,
    banner_top: banner.getBoundingClientRect().top + scrollY,
    first_line_bottom: first.getBoundingClientRect().bottom + scrollY,
    verdict_head: verdict.textContent,
    verdict_right: verdict.getBoundingClientRect().right,
    scroll_right: box.right,
    page_scroll_width: document.documentElement.scrollWidth,
    overflowing: over,
  };
  const pre = document.createElement("pre");
  pre.id = "layout";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>
"""

FLAGS = [
    *OFFLINE_FLAGS,
    "--hide-scrollbars",
]


@pytest.fixture(scope="module")
def layout(tmp_path_factory, chromium) -> dict:
    root = tmp_path_factory.mktemp("banner")
    page = root / "page.html"
    html = render_page(pair_report(modes=("cold", "warm")), "synthetic pair")
    assert "<script" not in html  # the page as shipped: no script
    page.write_text(html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    proc = subprocess.run(
        [
            chromium,
            *FLAGS,
            f"--user-data-dir={root / 'profile'}",
            "--window-size=1280,900",
            "--virtual-time-budget=5000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    found = re.search(r'<pre id="layout">(.*?)</pre>', proc.stdout, re.S)
    assert found, f"no layout measured; chromium said:\n{proc.stderr[-2000:]}"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))


def test_banner_is_within_the_first_900_px(layout):
    assert layout["width"] <= 1280
    assert layout["banner_top"] < 900
    assert layout["first_line_bottom"] <= 900, layout


def test_verdict_column_is_visible_without_scrolling(layout):
    assert layout["verdict_head"] == "verdict"
    assert layout["verdict_right"] <= min(layout["width"], layout["scroll_right"]) + 1, layout


def test_no_horizontal_overflow_outside_scrolling_tables(layout):
    assert layout["overflowing"] == [], layout
    assert layout["page_scroll_width"] <= layout["width"], layout
