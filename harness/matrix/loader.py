"""Reading matrix.yaml: YAML with a line for every key path, and limits a hostile file cannot pass.

``load_yaml`` returns the document (plain dicts, lists and scalars, as PyYAML's safe loader
builds them) and a line map, ``("torch", 1, "version") -> 9``, so that every problem found
later can say where it is. A key given twice in one mapping is refused here: YAML would
silently keep the last.

The limits (size, nesting depth, aliases, and the size of the document once aliases are
expanded) keep a small file from growing past memory (an alias bomb), from recursing past
Python's stack (a list nested 5,000 deep) or from hanging the reader (a FIFO). A file over
one is refused in one line that names the limit.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from harness.matrix.model import MatrixError
from harness.result import read_bytes

# A real matrix.yaml is a few kilobytes, five levels deep, with a handful of aliases if any.
MAX_BYTES = 1024 * 1024
MAX_DEPTH = 32
MAX_ALIASES = 100
MAX_NODES = 100_000  # values in the document once every alias is expanded

Lines = dict[tuple, int]


def format_path(parts) -> str:
    """``("torch", 1, "version")`` -> ``torch[1].version``."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


def read_text(path: Path) -> str:
    """The file's text: a regular UTF-8 file of at most MAX_BYTES, else one line."""
    hint = "; write one (see matrix.yaml in the repository) or pass --matrix FILE"
    data = read_bytes(path, MAX_BYTES, error=MatrixError, noun="matrix file", missing_hint=hint)
    return data.decode("utf-8")


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, counting nesting and aliases while it composes, and refusing
    a key given twice in one mapping."""

    def __init__(self, text: str, path: Path):
        super().__init__(text)
        self.path = path
        self.depth = 0
        self.aliases = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                line = self.peek_event().start_mark.line + 1
                raise MatrixError(
                    f"{self.path}: more than {MAX_ALIASES} aliases (line {line}); write the values out"
                )
            return super().compose_node(parent, index)
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                _too_deep(self.path, self.peek_event().start_mark.line + 1)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, (str, int, float, bool)):
                if key in seen:
                    raise MatrixError(
                        f"{self.path}: line {line}: key {_quoted(key)} appears twice in one mapping "
                        f"(first on line {seen[key]}); YAML would silently keep only the last"
                    )
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _too_deep(path: Path, line: int):
    raise MatrixError(
        f"{path}: nested more than {MAX_DEPTH} levels deep (line {line}); a matrix needs only a few"
    )


def _quoted(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value)


def _line_map(path: Path, root: yaml.Node) -> Lines:
    """Key path -> line, walking the node graph as the document will be, aliases expanded;
    a graph that expands past MAX_NODES or MAX_DEPTH (or into itself) is refused."""
    lines: Lines = {}
    count = 0

    def walk(node: yaml.Node, at: tuple) -> None:
        nonlocal count
        count += 1
        if count > MAX_NODES:
            raise MatrixError(
                f"{path}: more than {MAX_NODES} values once its aliases are expanded "
                f"(line {node.start_mark.line + 1}); an alias bomb is not a matrix"
            )
        if len(at) > MAX_DEPTH:
            _too_deep(path, node.start_mark.line + 1)
        lines.setdefault(at, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else "?"
                lines.setdefault(at + (key,), key_node.start_mark.line + 1)
                walk(value_node, at + (key,))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, at + (index,))

    walk(root, ())
    return lines


def load_yaml(path: str | os.PathLike) -> tuple[Any, Lines]:
    """The document of a YAML file and its line map; MatrixError (one line) when the file
    cannot be read, is not YAML, or breaks a limit."""
    path = Path(path)
    loader = _Loader(read_text(path), path)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        lines = _line_map(path, node)
        return loader.construct_document(node), lines
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        what = exc.problem or exc.context or "not valid YAML"
        raise MatrixError(f"{path}: YAML syntax error at {where}: {what}") from None
    except yaml.YAMLError as exc:
        raise MatrixError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    finally:
        loader.dispose()
