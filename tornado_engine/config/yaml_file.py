"""Reading one YAML config file into a :class:`ConfigSection` that knows its line numbers.

Errors name the line a key was written on, so the loader records it for every
mapping key; ``${NAME}`` references are filled from the environment here, before
any value is checked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tornado_engine.config.env import substitute as substitute_env
from tornado_engine.config.errors import ConfigError
from tornado_engine.config.section import ConfigSection


class _LineDict(dict):
    """A mapping that remembers the line each key was written on."""

    key_lines: dict[str, int]


class DuplicateKey(Exception):
    """A key written twice in one mapping: YAML would keep the last one silently."""

    def __init__(self, key: str, first_line: int, second_line: int) -> None:
        super().__init__(key, first_line, second_line)
        self.key, self.first_line, self.second_line = key, first_line, second_line


MERGE_TAG = "tag:yaml.org,2002:merge"  # ``<<: *defaults``: keys written beside it override it, by design


class _LineLoader(yaml.SafeLoader):
    def construct_mapping(self, node: Any, deep: bool = False) -> _LineDict:
        first_lines: dict[str, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == MERGE_TAG:
                continue
            key, line = str(key_node.value), key_node.start_mark.line + 1
            if key in first_lines:
                raise DuplicateKey(key, first_lines[key], line)
            first_lines[key] = line
        mapping = _LineDict(super().construct_mapping(node, deep=deep))
        mapping.key_lines = {str(key_node.value): key_node.start_mark.line + 1 for key_node, _ in node.value}
        return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _LineLoader.construct_mapping)


def _parse_error(path: Path, text: str, exc: yaml.YAMLError) -> ConfigError:
    """The parser's complaint, at its line, with a hint for the mistake everyone makes: a tab."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    line = mark.line + 1 if mark else None
    lines = text.splitlines()
    hint = ""
    if "\t" in problem or (line is not None and line <= len(lines) and "\t" in lines[line - 1]):
        hint = " (a tab: YAML indents with spaces only; use spaces)"
    return ConfigError(str(path), "", f"not valid YAML: {problem}{hint}", line)


def read_yaml_file(path: Path) -> ConfigSection:
    """The file's top-level mapping; a missing, unreadable or malformed file is a :class:`ConfigError`."""
    data = substitute_env(read_yaml_as_written(path), str(path), ConfigError)
    return ConfigSection(data, str(path))


def read_yaml_as_written(path: Path) -> Any:
    """The parsed file before ``${NAME}`` references are filled: mappings know their key lines."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), "", "file not found") from None
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot read: {exc.strerror}") from None
    try:
        return yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except DuplicateKey as exc:
        raise ConfigError(
            str(path),
            exc.key,
            f"written twice, at lines {exc.first_line} and {exc.second_line} "
            "(YAML would silently keep the last one); keep one",
            exc.second_line,
        ) from None
    except yaml.YAMLError as exc:
        raise _parse_error(path, text, exc) from None
