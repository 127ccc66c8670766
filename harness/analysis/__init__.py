"""Analysis of finished samples: statistics, comparison verdicts, history, baselines, judgement, merge.
Imports: harness.result, numpy and scipy; never harness.report or harness.commands.
"""
