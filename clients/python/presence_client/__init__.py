"""Python helpers for the presence gateway.

- presence_client.ViewerSession: one viewer on a background thread.
- presence_client.aio.ViewerSession: one viewer as an asyncio task (grpc.aio).
- presence_client.v1: the stubs generated from the gateway's contract.
"""

from presence_client._common import (FINAL_CODES, KEEPALIVE_OPTIONS, PresenceError,
                                     channel_credentials)
from presence_client.viewer import ViewerSession

__version__ = "0.1.0"

__all__ = ["FINAL_CODES", "KEEPALIVE_OPTIONS", "PresenceError", "ViewerSession",
           "channel_credentials"]
