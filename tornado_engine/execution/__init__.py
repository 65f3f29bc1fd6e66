"""Executing orders: the queue worker, the executor (stages, retries), quoting and routing."""
