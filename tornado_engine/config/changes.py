"""What changed between two configs' engine.yaml settings, key by key (a reload reports them)."""

from __future__ import annotations

from tornado_engine.config.loader import ENGINE_SECTIONS
from tornado_engine.config.model import EngineConfig, PluginsConfig
from tornado_engine.config.settings import setting_fields


def changed_engine_settings(old: EngineConfig, new: EngineConfig) -> list[str]:
    """``"worker.concurrency (100 -> 50)"`` for every engine.yaml setting whose value differs."""
    changes = []
    for name, cls in {**ENGINE_SECTIONS, "plugins": PluginsConfig}.items():
        for setting in setting_fields(cls):
            before = getattr(getattr(old, name), setting.name)
            after = getattr(getattr(new, name), setting.name)
            if before != after:
                changes.append(f"{name}.{setting.name} ({_show(before)} -> {_show(after)})")
    return changes


def _show(value: object) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(map(str, value)) + "]"
    return "empty" if value is None else str(value)
