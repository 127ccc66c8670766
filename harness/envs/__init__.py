"""Environments: nox sessions' arguments, plan and locks; uv's build, record, resolve; baseline lock; merge.
Imports: stdlib, packaging, harness.result/matrix/pipconf/errors; nox, measure and analysis inside functions.
"""
