"""What the thread and asyncio helpers share: channels, codes, the join."""

from __future__ import annotations

import random
from typing import List, Optional, Sequence, Tuple

import grpc

from presence_client.v1 import presence_pb2

# Matches the server: it accepts keepalive pings every 5 s or slower.
KEEPALIVE_OPTIONS: List[Tuple[str, int]] = [
    ("grpc.keepalive_time_ms", 20000),
    ("grpc.keepalive_timeout_ms", 10000),
    ("grpc.keepalive_permit_without_calls", 1),
]

# Codes that end a session for good; every other code (UNAVAILABLE,
# DEADLINE_EXCEEDED, a lost connection...) makes the helper join again.
FINAL_CODES = frozenset({
    grpc.StatusCode.INVALID_ARGUMENT,  # a bad join
    grpc.StatusCode.FAILED_PRECONDITION,  # VS refused the join
    grpc.StatusCode.RESOURCE_EXHAUSTED,  # the gateway is full
    grpc.StatusCode.UNAUTHENTICATED,  # no or a wrong token
    grpc.StatusCode.PERMISSION_DENIED,  # VS booted the customer
})


class PresenceError(Exception):
    """The session cannot go on; `code` is the gRPC status code."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__("%s: %s" % (code.name, details))
        self.code = code
        self.details = details


def _read(path: Optional[str]) -> Optional[bytes]:
    if path is None:
        return None
    with open(path, "rb") as f:
        return f.read()


def channel_credentials(ca_file: Optional[str] = None, cert_file: Optional[str] = None,
                        key_file: Optional[str] = None,
                        token: Optional[str] = None) -> grpc.ChannelCredentials:
    """TLS credentials: `ca_file` verifies the server (None: the system roots);
    `cert_file` and `key_file` are the client certificate for a gateway that
    asks for one; `token` is sent as "authorization: Bearer <token>" on every
    call (a secret: never logged here)."""
    if (cert_file is None) != (key_file is None):
        raise ValueError("a client certificate needs both cert_file and key_file")
    creds = grpc.ssl_channel_credentials(root_certificates=_read(ca_file),
                                         private_key=_read(key_file),
                                         certificate_chain=_read(cert_file))
    if token:
        creds = grpc.composite_channel_credentials(creds, grpc.access_token_call_credentials(token))
    return creds


def uses_tls(ca_file: Optional[str], cert_file: Optional[str], key_file: Optional[str],
             token: Optional[str], tls: bool) -> bool:
    """Whether the connection options ask for TLS; a token alone is refused."""
    secure = tls or any(x is not None for x in (ca_file, cert_file, key_file))
    if token and not secure:
        raise ValueError("a bearer token is only sent over TLS: give ca_file or tls=True")
    return secure


def join_request(performer_id: int, nickname: str, ip_address: str, customer_id: Optional[int],
                 registered: bool, credits: int) -> presence_pb2.SessionRequest:
    join = presence_pb2.Join(performer_id=performer_id, nickname=nickname, ip_address=ip_address,
                             registered=registered, credits=credits)
    if customer_id is not None:
        join.customer_id = customer_id
    return presence_pb2.SessionRequest(join=join)


class Backoff:
    """Capped exponential backoff with jitter (each pause is 50-100 % of the step)."""

    def __init__(self, initial: float, maximum: float) -> None:
        self.initial = initial
        self.maximum = maximum
        self.step = initial
        self._random = random.Random()  # seeded from the OS

    def reset(self) -> None:
        self.step = self.initial

    def next(self) -> float:
        delay = self.step * (0.5 + self._random.random() / 2)
        self.step = min(self.step * 2, self.maximum)
        return delay


class SessionState:
    """What both helpers know of their session: the last Joined, and how they
    got there. The resume token is a secret: never log it."""

    def _init_state(self, initial_backoff: float, max_backoff: float) -> None:
        self._backoff = Backoff(initial_backoff, max_backoff)
        self.error: Optional[PresenceError] = None
        self.display_nickname: Optional[str] = None
        self.session_id: Optional[str] = None
        self.resume_token: Optional[str] = None
        self.resumed = False
        self.reconnects = 0

    def _record_joined(self, joined: presence_pb2.Joined) -> None:
        """A Joined arrived: the next reconnect sends its resume token."""
        self.display_nickname = joined.nickname
        self.session_id = joined.session_id
        self.resume_token = joined.resume_token
        self.resumed = joined.resumed
        self._backoff.reset()


def options_with_keepalive(extra: Sequence[Tuple[str, int]] = ()) -> List[Tuple[str, int]]:
    return KEEPALIVE_OPTIONS + list(extra)
