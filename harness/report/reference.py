"""A reference run's verdicts as text or GitHub markdown (harness.analysis.reference
computes them): per environment, the stack did not change, the packages that differ, or why
the lock was not rebuilt; the paired tables; the suspects beside each slower verdict; failed
A/A checks; the fallback comparison with stored numbers; the overall line."""

from __future__ import annotations

from harness.analysis.reference import FALLBACK, SAME_STACK, EnvReference, ReferenceComparison
from harness.report.comparison import render as render_comparison
from harness.report.format import md_text, one_line


def environment_line(env: EnvReference, text=one_line) -> str:
    """What one current environment was compared against: its rebuilt lock (the stack did
    not change, or the packages that differ), or why it was not rebuilt."""
    where = f" (lock of {text(env.baseline)})" if env.baseline else ""
    if env.how == FALLBACK:
        return (
            f"{text(env.env_id)}: not rebuilt: {text(env.reason, 400)}; "
            "compared with the stored numbers instead"
        )
    if env.same_stack:
        return (
            f"{text(env.env_id)}: {SAME_STACK}{where}; its cells are measured as an A/A check "
            "(expected: no change or inconclusive)"
        )
    changed = ", ".join(text(change.text) for change in env.changes)
    return f"{text(env.env_id)}: {len(env.changes)} package(s) differ{where}: {changed}"


def render(result: ReferenceComparison, fmt: str = "text") -> str:
    """The environments (rebuilt, what differs, or why not), the paired verdicts with their
    suspects, the fallback comparison, and the overall line."""
    md = fmt == "md"
    text = md_text if md else one_line
    title = f"Reference run {text(result.run_id)}: each cell against its baseline environment, same rounds"
    lines = [f"## {title}" if md else title, ""]
    lines.extend(f"- {environment_line(env, text)}" for env in result.envs)
    lines.append("")
    for comparison in (result.aa, result.paired):
        if comparison.verdicts or comparison.failed or comparison.missing_in_baseline:
            # Every column and full ids, as before: a reference run's rows pair a cell with its
            # <cell id>@baseline, which the short labels of compare's narrow table would hide.
            body = render_comparison(comparison, fmt, wide=True)
            lines.append(body.replace("## ", "### ", 1) if md else body)
    suspects = result.slower_suspects()
    if suspects:
        lines.append("**Suspects** (versions that differ from the reference):" if md else "Suspects:")
        lines.extend(
            f"- {text(v.cell_id)} {v.metric} {v.word}: {', '.join(text(c.text) for c in s)}"
            for v, s in suspects
        )
        lines.append("")
    for v in result.aa_failures():
        lines.append(
            f"A/A CHECK FAILED: {text(v.cell_id)} {v.metric} {v.word} although {SAME_STACK}: the "
            "runner's noise exceeds the threshold here (not gated; add rounds or raise --threshold)"
        )
    if result.numbers is not None:
        body = render_comparison(result.numbers, fmt, wide=True)
        lines.append(body.replace("## ", "### ", 1) if md else body)
    elif any(env.how == FALLBACK for env in result.envs):
        lines.append("No stored numbers of this machine to fall back on: those cells are not compared.")
        lines.append("")
    regressions = result.regressions()
    if regressions:
        verdict = f"REGRESSION: {len(regressions)} gated metric(s) slower: " + ", ".join(
            f"{text(v.cell_id)} {v.metric}" for v in regressions
        )
    else:
        verdict = f"No regression on the gated metrics ({', '.join(result.paired.gated_metrics) or 'none'})."
    lines.append(f"**{verdict}**" if md else verdict)
    return "\n".join(lines) + "\n"
