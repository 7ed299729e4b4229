"""``htflow serve``: the read-only HTTP API, the OPTIMADE mirror and the dashboard."""

from htflow.server.app import create_app, serve

__all__ = ["create_app", "serve"]
