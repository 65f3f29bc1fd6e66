"""The one exception a config mistake raises, so every caller catches one thing."""

from __future__ import annotations


class ConfigError(Exception):
    """A config file is wrong; the message says where and how to fix it."""

    def __init__(self, file: str, key: str, message: str, line: int | None = None) -> None:
        self.file, self.key, self.line, self.message = file, key, line, message
        where = f"{file}, line {line}" if line else file
        super().__init__(f"{where}: {key}: {message}" if key else f"{where}: {message}")
