"""Embedding-model load-time harness.

Kept import-free on purpose: the probe runs as ``python -m harness.measure.probe`` inside the
process being measured, so anything imported here would be charged to the model's load.
"""

__version__ = "0.1.0"
