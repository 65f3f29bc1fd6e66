"""What is installed and what is running, as text for ``tornado-engine venues``.

The same report (:meth:`PluginHost.report`) is served as JSON by ``GET
/api/venues``, so the command line and HTTP never disagree.
"""

from __future__ import annotations

from typing import Any


def _table(rows: list[list[str]]) -> list[str]:
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]


def render_text(report: dict[str, Any]) -> str:
    """Two aligned tables, plugins then venues; each problem on its own line below its row."""
    plugin_rows = [
        [p["name"], p["state"], "kinds: " + (", ".join(p["kinds"]) or "-"), p["source"]]
        for p in report["plugins"]
    ]
    venue_rows = [
        [v["name"], v["state"], f"kind: {v['kind']}", "tokens: " + ", ".join(v["tokens"])]
        for v in report["venues"]
    ]
    lines = ["plugins:"]
    for line, plugin in zip(_table(plugin_rows), report["plugins"], strict=True):
        lines += [line, *(f"      ! {error}" for error in plugin["errors"])]
    lines.append("venues:")
    for line, venue in zip(_table(venue_rows), report["venues"], strict=True):
        lines += [line, *([f"      ! {venue['error']}"] if venue["error"] else [])]
    return "\n".join(lines)


def unavailable(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Venues the operator enabled that cannot run."""
    return [v for v in report["venues"] if v["state"] == "unavailable"]
