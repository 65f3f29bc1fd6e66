"""An async client for the engine's contract, for trading bots and the command line.

``EngineClient`` submits, quotes, cancels and lists orders over HTTP and
watches one over its WebSocket, reconnecting with ``lastSeq`` so no frame is
missed or repeated; ``Frame`` is one frame, typed. Only Tornado is needed.
"""

from tornado_engine.client.api import EngineClient, EngineError, Submitted
from tornado_engine.client.frames import TERMINAL_STATUSES, Frame

__all__ = ["TERMINAL_STATUSES", "EngineClient", "EngineError", "Frame", "Submitted"]
