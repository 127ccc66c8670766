"""Measuring: the probe (one sample in a fresh process), the runner and its manager, cold cache,
CPU time and contention (contention.py), metadata.
Imports: the standard library and harness.result only, so that nothing here maps what the probe loads.
"""
