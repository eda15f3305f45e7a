"""Python helper for the presence gateway: see viewer.ViewerSession."""

from presence_client.viewer import KEEPALIVE_OPTIONS, PresenceError, ViewerSession

__all__ = ["KEEPALIVE_OPTIONS", "PresenceError", "ViewerSession"]
