"""matrix.yaml: the loader with its line map and limits, the model of a matrix, and its
checking and expansion into cells. Imports: the standard library, pyyaml, packaging and harness.result.
"""

from harness.matrix.expand import DEFAULT_PATH, load_matrix, parse_matrix
from harness.matrix.model import Cell, EnvSpec, Matrix, MatrixError, ModelSpec, TorchSpec, session_name

__all__ = [
    "DEFAULT_PATH",
    "Cell",
    "EnvSpec",
    "Matrix",
    "MatrixError",
    "ModelSpec",
    "TorchSpec",
    "load_matrix",
    "parse_matrix",
    "session_name",
]
