"""Load YAML and remember the line of every value, so errors can name file, path and line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class YamlDocument:
    """Parsed YAML data and the 1-based line of every path in it."""

    data: Any
    lines: dict[Path, int]

    def line_of(self, path: Path) -> int | None:
        """Line of the value at ``path``, or of its nearest enclosing value."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return None


def _walk(node: yaml.Node, path: Path, lines: dict[Path, int]) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = (*path, str(key_node.value))
            _walk(value_node, child, lines)
            lines[child] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), lines)


def load_yaml(text: str) -> YamlDocument:
    """Parse YAML (safe subset); raises yaml.YAMLError with a line on bad syntax."""
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    lines: dict[Path, int] = {}
    if node is not None:
        _walk(node, (), lines)
    return YamlDocument(yaml.safe_load(text), lines)
