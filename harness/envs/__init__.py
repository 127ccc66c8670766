"""Environments: nox sessions' arguments and plan, the uv build and its record, the baseline's lock, merge.
Imports: stdlib, packaging, harness.result/matrix/pipconf/errors; nox, measure and analysis inside functions.
"""
