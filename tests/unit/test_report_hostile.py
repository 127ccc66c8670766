"""Hostile names in every exporter: Markdown (tables, summary), rich (console), matplotlib and HTML.

A model's name, a failure's reason and an environment's error come from reports, and a
report is data anyone can write. Each exporter must produce its output (exit 0) and show
the text as text: no <script> or <b> in a page or a job summary, no extra table column
from "|", no link from "[x](y)", no heading from a newline, no rich markup from "[/x]" and
no TeX from "$\\foo{$". The Markdown is checked the way GitHub reads it, through a
CommonMark parser with tables (markdown-it-py, which rich itself depends on).
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import msgspec
import pytest
from conftest import REPO, harness
from markdown_it import MarkdownIt
from rich.console import Console

from harness.report import console, html, plots, summary, tables
from harness.report.format import md_code, md_text
from harness.result import (
    CellInfo,
    CellReport,
    EnvRecord,
    FailureKind,
    MatrixReport,
    Recommendation,
    Settings,
    read_report,
)

HOSTILE = "<script>alert(1)</script> | [x](http://e.invalid) <b>b</b> $\\foo{$ [/x] [bold red]r :x:\n# head"
REAL = REPO / "tests" / "data" / "warm-8runs.json"


@pytest.fixture(scope="module")
def hostile() -> MatrixReport:
    """A real report whose model, source, recommendation, failure and environment text are hostile."""
    real = read_report(REAL)
    cell = msgspec.structs.replace(real.cell, model=HOSTILE, source=f"path:{HOSTILE}")
    measured = msgspec.structs.replace(
        real, cell=cell, recommendations=[Recommendation(level="warn", text=HOSTILE)]
    )
    info = CellInfo(
        id="bad-torch9.9-warm-cpu", model=HOSTILE, source="path:x", mode="warm", device="cpu", torch="9.9"
    )
    failed = CellReport.failed(
        info,
        Settings(runs=2, warmups=0, timeout_s=60.0),
        FailureKind.LOAD,
        f"could not start: {HOSTILE}",
        detail=HOSTILE,
    )
    missing = CellInfo(
        id="gone-torch2.13.0-cold-cpu",
        model=HOSTILE,
        source="path:x",
        mode="cold",
        device="cpu",
        torch="2.13.0",
    )
    env = EnvRecord(torch="9.9", status="failed", error=HOSTILE, build_s=1.5)
    return MatrixReport(
        run_id="r-hostile",
        created=real.started,
        harness=real.harness,
        cells={measured.id: measured, failed.id: failed},
        missing=[missing],
        environments={"9.9": env},
    )


def github_html(markdown: str) -> str:
    return MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(markdown)


def assert_markdown_is_inert(markdown: str) -> None:
    rendered = github_html(markdown)
    for tag in ("<script", "<b>", "<a ", "<h1", "<img", "<code>alert"):
        assert tag not in rendered, f"{tag} reached the rendered Markdown"
    # Every row of every table has as many cells as its header: no "|" made a column.
    for table in re.findall(r"<table>.*?</table>", rendered, flags=re.S):
        header = len(re.findall(r"<th[ >]", table))
        for row in re.findall(r"<tr>(.*?)</tr>", table, flags=re.S)[1:]:
            assert len(re.findall(r"<td[ >]", row)) == header, row
    # The name is shown, as the text it is.
    assert "&lt;script&gt;alert(1)&lt;/script&gt; | [x](http://e.invalid)" in rendered


def test_markdown_tables_escape_every_name(hostile):
    text = tables.render(hostile, "md")
    assert_markdown_is_inert(text)
    assert "\n# head" not in text and "\n#head" not in text
    # A name's escapes are Markdown's own: the figures and the legend stay as they were.
    assert "median [95% interval] per cell" in text


def test_text_tables_keep_each_name_on_one_line(hostile):
    text = tables.render(hostile, "text")
    assert "\n# head" not in text
    assert not any(line.lstrip().startswith("# head") for line in text.splitlines())


def test_markdown_helpers():
    assert md_text("a|b\nc") == "a\\|b c"
    assert github_html(md_text("[x](http://e.invalid)")).strip() == "<p>[x](http://e.invalid)</p>"
    assert md_code("a`b") == "``a`b``"
    assert github_html(md_code("<b>x</b>")).strip() == "<p><code>&lt;b&gt;x&lt;/b&gt;</code></p>"


def test_summary_escapes_names(hostile, tmp_path):
    path = hostile.write(tmp_path / "matrix.json")
    proc = harness("summary", str(path), "--format", "md", env={"GITHUB_STEP_SUMMARY": ""})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("### ❌ 2 failed cells: bad-torch9.9-warm-cpu, gone-torch2.13.0-cold-cpu")
    assert_markdown_is_inert(proc.stdout)
    assert summary.markdown(hostile) == proc.stdout


def test_summary_file_that_cannot_be_written_is_one_line(hostile, tmp_path):
    path = hostile.write(tmp_path / "matrix.json")
    for target, status in (("/proc/no-such-folder/summary.md", 3), (str(tmp_path), 2)):
        proc = harness("summary", str(path), env={"GITHUB_STEP_SUMMARY": target})
        assert proc.returncode == status, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert f"GITHUB_STEP_SUMMARY={target}" in proc.stderr and "Traceback" not in proc.stderr


def test_console_prints_markup_as_text(hostile):
    cell = next(c for c in hostile.cells.values() if c.status == "complete")
    failed = next(c for c in hostile.cells.values() if c.status == "failed")
    out = io.StringIO()
    screen = Console(file=out, width=2000, color_system=None)  # no wrapping: lines are lines
    console.print_report(cell, screen)
    console.print_report(failed, screen)
    text = out.getvalue()
    assert "[/x] [bold red]r :x:" in text  # shown, not read as markup or an emoji code
    assert "\n# head" not in text  # one line per name


def test_progress_takes_a_hostile_name_and_error():
    real = read_report(REAL)
    broken = msgspec.structs.replace(real.samples[0], ok=False, error=HOSTILE, metrics={})
    out = io.StringIO()
    with console.sample_progress(2, HOSTILE, Console(file=out, width=200, color_system=None)) as on_sample:
        on_sample(real.samples[1], 1, 2)
        on_sample(broken, 2, 2)
    assert "[/x]" in out.getvalue()


def test_plots_draw_a_tex_looking_name_as_text():
    svg = plots.stage_bars([r"$\foo{$"], {"import torch": [1.0]}, 5.0, [1.0])
    assert r"$\foo{$" in svg


def test_html_page_escapes_every_name(hostile, tmp_path):
    path = hostile.write(tmp_path / "matrix.json")
    page = tmp_path / "page.html"
    proc = harness("report", str(path), "--html", str(page), "--history", str(tmp_path / "history"))
    assert proc.returncode == 0, proc.stderr
    text = page.read_text()
    assert "<script" not in text and "<b>b</b>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert r"$\foo{$" in text  # in the plots' labels, as text


def test_html_page_of_hostile_names_renders_in_process(hostile):
    text = html.render_page(hostile, HOSTILE)
    assert "<script" not in text and "<b>b</b>" not in text and "<h1>Load-time report" in text


def test_html_page_never_replaces_a_device(hostile, tmp_path):
    path = hostile.write(tmp_path / "matrix.json")
    proc = harness("report", str(path), "--html", "/dev/null", "--history", str(tmp_path / "history"))
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "/dev/null" in proc.stderr
    assert Path("/dev/null").is_char_device()


def test_merge_markdown_escapes_names(hostile, tmp_path):
    run_dir = tmp_path / "runs" / "r-hostile"
    measured = next(c for c in hostile.cells.values() if c.status == "complete")
    measured.write(run_dir / f"{measured.id}.json")
    proc = harness(
        "merge", str(run_dir), "--format", "md", "--output", str(tmp_path / "m.json"), "--no-history"
    )
    assert proc.returncode == 0, proc.stderr
    assert_markdown_is_inert(proc.stdout)
