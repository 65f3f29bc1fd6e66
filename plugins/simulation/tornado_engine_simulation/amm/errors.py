"""Errors the pool math raises; the venue maps them to final venue errors."""


class InsufficientLiquidity(ValueError):
    """The pool cannot pay out what the input asks for."""
