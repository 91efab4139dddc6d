"""The HTTP side: the ASGI app, the API, live push, and the static UI."""
