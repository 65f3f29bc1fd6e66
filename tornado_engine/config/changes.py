"""What changed in engine.yaml between two configs, and which of it a reload can apply.

Settings read only when an order is admitted (through ``Engine.rules``) can
switch at run time; every other one was used to build something that lives
as long as the process (a pool, the worker, the URL table), so it needs a
restart.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from tornado_engine.config.loader import ENGINE_SECTIONS
from tornado_engine.config.model import EngineConfig, PluginsConfig
from tornado_engine.config.settings import setting_fields

APPLIED_ON_RELOAD = frozenset(
    {"orders.max_amount", "orders.default_slippage_bps", "orders.max_slippage_bps", "orders.max_wait_seconds"}
    # The per-client limits are read for each order too (web.orders asks limits.intake.policy_for).
    | {
        f"limits.{name}"
        for name in ("per_address", "orders_per_second", "burst", "max_in_flight", "max_waiting")
    }
)


@dataclass(frozen=True)
class EngineChanges:
    """``config``: the running config with the changes a reload can apply switched in."""

    config: EngineConfig
    applied: tuple[str, ...] = ()
    restart_needed: tuple[str, ...] = ()


def engine_changes(running: EngineConfig, fresh: EngineConfig) -> EngineChanges:
    """Each engine.yaml setting that differs, as ``"worker.concurrency (100 -> 50)"``, sorted by use."""
    applied: list[str] = []
    restart_needed: list[str] = []
    sections = {}
    for name, cls in {**ENGINE_SECTIONS, "plugins": PluginsConfig}.items():
        switched = {}
        for setting in setting_fields(cls):
            before = getattr(getattr(running, name), setting.name)
            after = getattr(getattr(fresh, name), setting.name)
            if before == after:
                continue
            key = f"{name}.{setting.name}"
            change = f"{key} ({_show(before)} -> {_show(after)})"
            if key in APPLIED_ON_RELOAD:
                applied.append(change)
                switched[setting.name] = after
            else:
                restart_needed.append(change)
        if switched:
            sections[name] = dataclasses.replace(getattr(running, name), **switched)
    return EngineChanges(running.replace(**sections), tuple(applied), tuple(restart_needed))


def _show(value: object) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(map(str, value)) + "]"
    return "empty" if value is None else str(value)
