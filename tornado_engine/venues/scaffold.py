"""``tornado-engine plugin new NAME``: a venue plugin package whose tests pass before it is changed.

The files come from templates shipped with the engine (``plugin_template/``),
so the package a plugin author starts from is the one the engine's own test
suite generates and runs.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from pathlib import Path

TEMPLATES = Path(__file__).parent / "plugin_template"
_NAME = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*\Z")


class ScaffoldError(Exception):
    """The plugin cannot be written (a bad name, a directory already there); the message says why."""


@dataclass(frozen=True)
class PluginNames:
    """Every name a plugin has, derived from its venue kind (``my-dex``)."""

    kind: str

    @property
    def distribution(self) -> str:
        return f"tornado-engine-{self.kind}"

    @property
    def module(self) -> str:
        return "tornado_engine_" + self.kind.replace("-", "_")

    @property
    def class_name(self) -> str:
        return "".join(part.capitalize() for part in self.kind.split("-")) + "Venue"

    def substitutions(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "distribution": self.distribution,
            "module": self.module,
            "class_name": self.class_name,
            "underline": "=" * len(self.distribution),
        }


def plugin_names(name: str) -> PluginNames:
    if not _NAME.match(name):
        raise ScaffoldError(
            f"{name!r} is not a plugin name: use lower-case letters, digits and hyphens, "
            "starting with a letter (e.g. my-dex)"
        )
    return PluginNames(name)


def new_plugin(name: str, parent: Path) -> Path:
    """Write the plugin package for venue kind ``name`` into ``parent``; return its directory."""
    names = plugin_names(name)
    target = parent / names.distribution
    if target.exists():
        raise ScaffoldError(f"{target} already exists: choose another name, or remove it")
    values = names.substitutions()
    for template in sorted(TEMPLATES.rglob("*.tmpl")):
        relative = template.relative_to(TEMPLATES).with_suffix("")  # drop .tmpl
        if relative.name == "module.py":
            relative = relative.with_name(f"{names.module}.py")
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        text = string.Template(template.read_text(encoding="utf-8")).substitute(values)
        destination.write_text(text, encoding="utf-8")
    return target
