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


class _LineLoader(yaml.SafeLoader):
    def construct_mapping(self, node: Any, deep: bool = False) -> _LineDict:
        mapping = _LineDict(super().construct_mapping(node, deep=deep))
        mapping.key_lines = {str(key_node.value): key_node.start_mark.line + 1 for key_node, _ in node.value}
        return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _LineLoader.construct_mapping)


def read_yaml_file(path: Path) -> ConfigSection:
    """The file's top-level mapping; a missing, unreadable or malformed file is a :class:`ConfigError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), "", "file not found") from None
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot read: {exc.strerror}") from None
    try:
        data = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(
            str(path), "", f"not valid YAML: {problem}", mark.line + 1 if mark else None
        ) from None
    data = substitute_env(data, str(path), ConfigError)
    return ConfigSection(data, str(path))
