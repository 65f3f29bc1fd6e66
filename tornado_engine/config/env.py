"""``${NAME}`` and ``${NAME:-default}`` in config values, filled from the environment.

Secrets (a ``rediss://`` URL with a password) and per-host values (a port)
stay out of the files. A value that is exactly one reference takes the type
its text has in YAML (``port: ${PORT:-3000}`` is the number 3000); a
reference inside a longer string is pasted in as text. ``$${`` writes a
literal ``${``. An unset variable with no default is a config error naming
the file, line and key.

A variable whose name says it holds a secret (a word ``PASSWORD``,
``PASSWD``, ``SECRET``, ``TOKEN``, ``CREDENTIAL(S)``, ``API_KEY``,
``ACCESS_KEY`` or ``PRIVATE_KEY`` between underscores or at either end, as
in ``REDIS_PASSWORD`` or ``VENUE_API_KEY``) is secret: its value, wherever it
ends up, is written ``***`` in the logs (:func:`secret_values`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import Any

import yaml

_REFERENCE = re.compile(r"\$(\$)?\{([^}]*)\}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_SECRET_NAME = re.compile(
    r"(^|_)(PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIALS?|API_KEY|ACCESS_KEY|PRIVATE_KEY)(_|$)", re.IGNORECASE
)
# Shorter values ("1", "true") are everywhere in logs and too short to be secrets worth the name.
MIN_SECRET_LENGTH = 4

# (file, key path, message, line) -> an exception to raise; yaml_file.py passes ConfigError.
ErrorFactory = Callable[[str, str, str, "int | None"], Exception]


def references(value: Any) -> list[str]:
    """The variable names a value refers to (``$${...}`` escapes are not references)."""
    if not isinstance(value, str):
        return []
    return [m.group(2).partition(":-")[0] for m in _REFERENCE.finditer(value) if not m.group(1)]


def substitute(
    data: Any,
    file: str,
    error: ErrorFactory,
    environ: Mapping[str, str] = os.environ,
    path: str = "",
    line: int | None = None,
) -> Any:
    """``data`` with every reference in its string values replaced; mappings keep their line numbers."""
    if isinstance(data, dict):
        lines = getattr(data, "key_lines", {})
        for key, value in data.items():
            key_path = f"{path}.{key}" if path else str(key)
            data[key] = substitute(value, file, error, environ, key_path, lines.get(str(key), line))
        return data
    if isinstance(data, list):
        return [substitute(item, file, error, environ, f"{path}[{i}]", line) for i, item in enumerate(data)]
    if isinstance(data, str) and "${" in data:
        return _fill(data, file, error, environ, path, line)
    return data


def _fill(
    text: str, file: str, error: ErrorFactory, environ: Mapping[str, str], path: str, line: int | None
) -> str | int | float | None:
    def replace(match: re.Match) -> str:
        if match.group(1):  # $${...}: an escaped, literal ${...}
            return "${" + match.group(2) + "}"
        name, has_default, default = match.group(2).partition(":-")
        if not _NAME.match(name):
            raise error(
                file,
                path,
                f"{match.group(0)!r} is not a valid reference: write ${{NAME}} or ${{NAME:-default}}",
                line,
            )
        value = environ.get(name)
        if value is None or (value == "" and has_default):
            if has_default:
                return default
            raise error(
                file,
                path,
                f"environment variable {name} is not set (set it, or write ${{{name}:-default}})",
                line,
            )
        return value

    filled = _REFERENCE.sub(replace, text)
    whole = _REFERENCE.fullmatch(text)
    if whole is None or whole.group(1):
        return filled
    try:  # a lone reference becomes what its text means in YAML: 3000 is a number
        parsed = yaml.safe_load(filled)
    except yaml.YAMLError:
        return filled
    return parsed if isinstance(parsed, (str, int, float, bool)) or parsed is None else filled


def is_secret_name(name: str) -> bool:
    """Whether a variable named ``name`` holds a secret (see the module's docstring)."""
    return _SECRET_NAME.search(name) is not None


def secret_values(environ: Mapping[str, str] = os.environ) -> list[str]:
    """The values of the secret variables in ``environ``: what logs must never show."""
    return sorted(
        {value for name, value in environ.items() if is_secret_name(name) and len(value) >= MIN_SECRET_LENGTH}
    )
