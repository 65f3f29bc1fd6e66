"""The waiting store: orders accepted over HTTP whose client has not connected yet."""
