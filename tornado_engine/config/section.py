"""One mapping of a config file, read key by key with typed getters.

Every getter names the file, line and key path when a value is wrong, and
:meth:`ConfigSection.finish` rejects keys nobody read, so a misspelt key is an
error with a did-you-mean rather than a setting silently ignored. Plugins read
their venue options through the same class, so their errors read the same way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from tornado_engine.config.errors import ConfigError
from tornado_engine.config.hints import did_you_mean

REQUIRED: Any = object()  # as a getter's default: the key must be written


def _describe(value: Any) -> str:
    return "nothing" if value is None else f"{value!r} ({type(value).__name__})"


class ConfigSection:
    """One mapping of a config file, read key by key; unread keys are errors."""

    def __init__(self, data: Any, file: str, path: str = "", line: int | None = None) -> None:
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ConfigError(file, path, f"expected a mapping of keys, got {_describe(data)}", line)
        self._data = data
        self._file = file
        self._path = path
        self._line = line
        self._read: set[str] = set()

    def _key(self, key: str) -> str:
        return f"{self._path}.{key}" if self._path else key

    @property
    def file(self) -> str:
        return self._file

    def line_of(self, key: str) -> int | None:
        return getattr(self._data, "key_lines", {}).get(key, self._line)

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(self._file, self._key(key), message, self.line_of(key))

    def as_dict(self) -> dict[str, Any]:
        """The raw mapping, as written (reload compares venue entries with it)."""
        return dict(self._data)

    def names(self) -> list[str]:
        return [str(k) for k in self._data]

    def raw(self, key: str, default: Any = REQUIRED) -> Any:
        self._read.add(key)
        if key in self._data and self._data[key] is not None:
            return self._data[key]
        if default is REQUIRED:
            raise self.error(key, "is required")
        return default

    def section(self, key: str) -> ConfigSection:
        value = self.raw(key, None)
        return ConfigSection(value, self._file, self._key(key), self.line_of(key))

    def get_str(
        self, key: str, default: Any = REQUIRED, choices: Iterable[str] = (), any_case: bool = False
    ) -> Any:
        """A non-empty string, one of ``choices`` if given.

        With ``any_case`` the value is matched, and returned, in upper case
        (operators write ``debug`` as often as ``DEBUG``).
        """
        value = self.raw(key, default)
        if value is default and default is not REQUIRED:
            return value
        if not isinstance(value, str) or not value:
            raise self.error(key, f"expected a non-empty string, got {_describe(value)}")
        choices = list(choices)
        chosen = value.upper() if any_case else value
        if choices and chosen not in choices:
            hint = did_you_mean(chosen, choices)
            raise self.error(key, f"expected one of {', '.join(choices)}, got {value!r}{hint}")
        return chosen

    def get_bool(self, key: str, default: Any = REQUIRED) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {_describe(value)}")
        return value

    def get_number(
        self,
        key: str,
        default: Any = REQUIRED,
        minimum: float | None = None,
        maximum: float | None = None,
        integer: bool = False,
        exclusive_minimum: bool = False,
    ) -> Any:
        value = self.raw(key, default)
        if value is None:
            return None
        kind = "an integer" if integer else "a number"
        ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok_type or not math.isfinite(value):
            raise self.error(key, f"expected {kind}, got {_describe(value)}")
        if minimum is not None and (value <= minimum if exclusive_minimum else value < minimum):
            bound = "greater than" if exclusive_minimum else "at least"
            raise self.error(key, f"expected {kind} {bound} {minimum}, got {value!r}")
        if maximum is not None and value > maximum:
            raise self.error(key, f"expected {kind} at most {maximum}, got {value!r}")
        return value

    def get_range(self, key: str, default: tuple[float, float], minimum: float = 0) -> tuple[float, float]:
        value = self.raw(key, default)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value, value]
        if (
            not isinstance(value, (list, tuple))
            or len(value) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        ):
            raise self.error(key, f"expected [low, high] (two numbers), got {_describe(value)}")
        low, high = value
        if low < minimum or high < low:
            raise self.error(key, f"expected {minimum} <= low <= high, got [{low}, {high}]")
        return (float(low), float(high))

    def get_str_list(self, key: str, default: Any = REQUIRED) -> Any:
        value = self.raw(key, default)
        if value is default and default is not REQUIRED:
            return value
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.error(key, f"expected a list of strings, got {_describe(value)}")
        return value

    def unread(self) -> list[str]:
        return [k for k in self.names() if k not in self._read]

    def finish(self) -> None:
        """Reject every key nobody read: a misspelt key must not be silently ignored."""
        for key in self.unread():
            known = sorted(self._read)
            hint = did_you_mean(key, known)
            raise self.error(key, f"unknown key{hint} (known keys: {', '.join(known)})")
