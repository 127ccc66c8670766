"""matrix.yaml: the loader with its line map, the model of a matrix, and its expansion into cells.
Imports: the standard library, pyyaml, packaging and harness.result.
"""
