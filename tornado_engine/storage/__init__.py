"""Redis: connections, key names, the order store, the queue, live updates, batching."""
