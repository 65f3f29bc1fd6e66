"""The waiting store: orders accepted over HTTP whose client has not connected yet."""

from tornado_engine.waiting.base import CreateOrder, WaitingStore

__all__ = ["CreateOrder", "WaitingStore"]
