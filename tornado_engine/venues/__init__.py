"""The venue boundary: the adapter API, the hook specifications, the plugin host, reload."""
