"""The HTTP and WebSocket surface: the URL table, handlers, the socket, the page, OpenAPI."""
