"""Finished results analysed: statistics, judgement, verdicts, baselines, history, merge, CI glue.
Imports: harness.result, numpy, scipy, and the run plan/matrix readers of measure and matrix; never report.
"""
