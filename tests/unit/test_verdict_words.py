"""The answer first (issue 25): the verdict banner and what differs beside it, memory read
as larger/smaller everywhere, the change column named for its estimator, and compare's
default output within 100 columns.

Every report here is built with the real result types from the stored real cell report
(synthetic_pair): a known factor per metric on one side, and the resolved package sets of
a +cpu and a CUDA build. Nothing is measured, so nothing can fail by chance.
"""

from __future__ import annotations

import json
import re
import statistics

import pytest
from conftest import harness
from synthetic_pair import pair_report

from harness.analysis.environments import CUDA, torch_build
from harness.report import summary, tables
from harness.report.banner import banner_text, verdict_lines
from harness.report.comparison import render
from harness.report.facts import within_run
from harness.report.html import render_page
from harness.result import METRICS

BUILD_LINE = "Builds differ: 2.14.1 is a CUDA build (nvidia-*, triton), 2.13.0 is +cpu."
SPEED_WORDS = re.compile(r"\b(slower|faster)\b")


@pytest.fixture(scope="module")
def report():
    return pair_report(modes=("cold", "warm"))


@pytest.fixture(scope="module")
def merged(report, tmp_path_factory):
    path = tmp_path_factory.mktemp("pair") / "matrix-synthetic-pair.json"
    report.write(path)
    return path


def test_torch_builds_are_told_apart():
    assert torch_build({"torch": "2.13.0+cpu"}).describe() == "+cpu"
    assert torch_build({"torch": "2.5.1+cu121"}).kind == CUDA
    assert torch_build({"torch": "2.14.1", "nvidia-cublas-cu13": "1", "triton": "3"}).kind == CUDA
    assert torch_build({"numpy": "2"}) is None


def test_the_build_kind_line_stands_beside_its_verdict(report):
    lines = verdict_lines(report, [within_run(report)])
    assert [line.title for line in lines] == ["torch 2.14.1 vs 2.13.0, cold", "torch 2.14.1 vs 2.13.0, warm"]
    for line in lines:
        assert line.build == BUILD_LINE
        assert "nvidia-* (3 added)" in line.packages and "torch 2.13.0+cpu -> 2.14.1" in line.packages
        # The remedy names the CPU wheel index and quotes the run's own memory figures.
        memory = next(v for v in line.verdicts if v.metric == "memory_mb")
        assert "download.pytorch.org/whl/cpu" in line.advice
        assert f"{memory.current_median:.0f} MB against {memory.baseline_median:.0f} MB" in line.advice
    # The same lines, each followed by its build line, in the console's and the summary's text.
    for text in (banner_text(lines), summary.render(report, fmt="text"), summary.render(report, fmt="md")):
        rows = text.splitlines()
        for line in lines:
            at = next(i for i, row in enumerate(rows) if line.title in row)
            # The first item under the verdict (after its folded continuation lines).
            detail = next(row for row in rows[at + 1 :] if row.lstrip().startswith(("·", "- ")))
            assert "Builds differ: 2.14.1 is a CUDA build" in detail, rows[at : at + 5]


def test_no_build_line_where_the_builds_are_alike():
    alike = pair_report(cuda=False)
    (line,) = verdict_lines(alike, [within_run(alike)])
    assert line.build is None and line.advice is None
    assert line.packages == "Packages differ: torch 2.13.0+cpu -> 2.14.1+cpu."


def test_the_page_opens_with_the_banner_and_its_build_line(report):
    page = render_page(report, "synthetic")
    banner = page.index('id="verdicts"')
    assert banner < page.index('id="headline"') < page.index('id="stages"')
    assert page.index('id="within"') < page.index('id="stages"')  # verdicts before the charts
    first = page[banner : page.index("</li>\n", page.index('class="differs"'))]
    assert "torch 2.14.1 vs 2.13.0, cold" in first and BUILD_LINE in first
    assert "Remedy: the CUDA build" in first
    assert not re.search(r"https?://", page)  # still self-contained: the remedy names no URL
    # The contents list links every section of the page.
    nav = page[page.index('<nav id="contents">') : page.index("</nav>")]
    sections = set(re.findall(r'<section id="([^"]+)"', page))
    assert set(re.findall(r'href="#([^"]+)"', nav)) == sections


def test_memory_never_reads_slower_or_faster(report, merged):
    within = within_run(report)
    memory = [v for v in within.verdicts if v.metric == "memory_mb"]
    assert {v.verdict for v in memory} == {"slower"}  # the gate's word, kept
    assert {v.word for v in memory} == {"larger"}
    texts = {f"compare {fmt}": render(within, fmt) for fmt in ("text", "md")}
    texts["compare --wide"] = render(within, wide=True)
    for name, text in texts.items():
        rows = [row for row in text.splitlines() if "memory_mb" in row]
        assert rows, name
        for row in rows:
            assert "larger" in row and not SPEED_WORDS.search(row), (name, row)
    # JSON keeps "verdict" for what reads it, and adds the word shown.
    data = json.loads(render(within, "json"))
    words = {(v["verdict"], v["word"]) for v in data["verdicts"] if v["metric"] == "memory_mb"}
    assert words == {("slower", "larger")}
    # The tables' paired change, the banner and the summary.
    for text in (banner_text(verdict_lines(report, [within])), summary.render(report, fmt="text")):
        flat = " ".join(text.split())  # the console folds long lines
        parts = [p for p in re.split(r";|\. ", flat) if "memory delta (RSS)" in p]
        assert parts
        for part in parts:
            assert "larger" in part and not SPEED_WORDS.search(part), part
    memory_table = tables.render(report).split("Memory delta (RSS)")[1].split("\n\n")[0]
    assert "larger" in memory_table and not SPEED_WORDS.search(memory_table), memory_table
    # The page: the table rows of memory, and the forest plot's own panel and axis for it.
    page = render_page(report, "synthetic")
    rows = re.findall(r"<tr>(?:(?!</tr>).)*memory_mb(?:(?!</tr>).)*</tr>", page, re.S)
    assert rows
    for row in rows:
        shown = re.sub(r"<[^>]+>", " ", row)  # what a reader sees (the colour's class is no word)
        assert "larger" in shown and not SPEED_WORDS.search(shown), shown
    paired = page[page.index('id="plot-paired"') :]
    paired = paired[: paired.index("</svg>")]
    assert "Sizes (memory)" in paired and "Times" in paired and "larger" in paired


def test_the_change_column_is_named_and_the_median_ratio_stands_beside_it(report):
    within = within_run(report)
    text = render(within)
    header = next(row for row in text.splitlines() if row.startswith("cell"))
    assert "Δ geo-mean [95% CI]" in header and "Δ median" in header
    assert "Δ geo-mean: geometric mean of the per-round ratios" in text
    verdict = next(v for v in within.verdicts if v.metric == "total_s")
    pairs = zip(
        sorted(report.cells[verdict.reference_id].counted, key=lambda s: s.round),
        sorted(report.cells[verdict.cell_id].counted, key=lambda s: s.round),
    )
    ratios = [b.metrics["total_s"] / a.metrics["total_s"] for a, b in pairs]
    assert verdict.median_ratio == pytest.approx(statistics.median(ratios))


def test_compare_fits_100_columns_by_default_and_wide_keeps_every_column(merged):
    narrow = harness("compare", str(merged), "--within", "torch")
    assert narrow.returncode == 1, narrow.stderr  # gated slower: the gate still fails
    assert max(len(row) for row in narrow.stdout.splitlines()) <= 100, narrow.stdout
    assert "all-MiniLM-L6-v2-torch2.14.1-warm-cpu" not in narrow.stdout  # cells by what differs
    assert "torch2.14.1-warm" in narrow.stdout
    wide = harness("compare", str(merged), "--within", "torch", "--wide")
    header = next(row for row in wide.stdout.splitlines() if row.startswith("cell"))
    for column in ("against", "p", "rounds", "detects ≥", "Δ geo-mean", "Δ median", "verdict"):
        assert column in header
    assert "all-MiniLM-L6-v2-torch2.14.1-warm-cpu" in wide.stdout


def test_summary_in_a_terminal_has_no_markdown_escapes(merged):
    plain = harness("summary", str(merged), env={"GITHUB_STEP_SUMMARY": ""})
    assert plain.returncode == 0, plain.stderr
    assert "total_s" in plain.stdout and "\\_" not in plain.stdout and "###" not in plain.stdout
    md = harness("summary", str(merged), "--format", "md", env={"GITHUB_STEP_SUMMARY": ""})
    assert "total\\_s" in md.stdout and md.stdout.startswith("### ")


def test_summary_explains_the_slower_count_beside_the_gated_one(report):
    text = summary.render(report, fmt="text")
    assert "12 verdicts (6 metrics of 2 cells)" in text
    assert "4 of the slower are on gated metrics (total_s, process_wall_s) and fail the check" in text


def test_memory_is_a_size_in_the_catalogue():
    assert METRICS["memory_mb"].kind == "size" and METRICS["total_s"].kind == "time"


def test_the_memory_recommendation_names_the_cpu_wheel_index_not_onnx():
    from synthetic_pair import CPU_SET, CUDA_SET, cell

    # The stored cell grew memory by ~477 MB: over a 400 MB target, the memory advice shows.
    def advice(packages):
        report = cell("2.14.1", "warm", packages, {})
        report.targets = {**report.targets, "memory_mb": 400.0}
        from harness.analysis.judge import recommendations

        return next(r.text for r in recommendations(report) if "Memory grows" in r.text)

    cuda = advice(CUDA_SET)
    assert "CPU wheel index" in cuda and "download.pytorch.org/whl/cpu" in cuda and "ONNX" not in cuda
    cpu = advice(CPU_SET)
    assert "ONNX" not in cpu and "CPU wheel index" not in cpu


def test_the_spread_plot_says_where_a_target_below_its_axis_is():
    from harness.report import plots

    title = "Total load time (total_s)"
    above = plots.spread(["a", "b"], {title: [[8.0, 8.2], [8.1, 8.4]]}, {title: 5.0})
    assert "target 5 s (below the axis)" in above
    around = plots.spread(["a", "b"], {title: [[4.0, 4.2], [5.1, 5.4]]}, {title: 5.0})
    assert "target 5 s" in around and "below the axis" not in around
