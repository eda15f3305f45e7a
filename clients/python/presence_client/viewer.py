"""Holds one viewer's presence through the presence gateway.

    with ViewerSession("127.0.0.1:50051", performer_id=42, nickname="bob",
                       ip_address="203.0.113.5", customer_id=7, registered=True) as viewer:
        print(viewer.display_nickname)
        viewer.activity()
        viewer.update_credits(250)
    # Leaving the block sends leave and waits for `left`.

The stream runs on a background thread. When the gateway answers UNAVAILABLE
(VS or the gateway briefly down), the session reconnects with capped, jittered
exponential backoff and joins again; INVALID_ARGUMENT and FAILED_PRECONDITION
are final and raised. Not thread-safe: use one ViewerSession from one thread.
"""

import queue
import random
import threading

import grpc

from presence.v1 import presence_pb2
from presence.v1 import presence_pb2_grpc

# Matches the server: it accepts keepalive pings every 5 s or slower.
KEEPALIVE_OPTIONS = [
    ("grpc.keepalive_time_ms", 20000),
    ("grpc.keepalive_timeout_ms", 10000),
    ("grpc.keepalive_permit_without_calls", 1),
]

_FINAL = (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION,
          grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAUTHENTICATED,
          grpc.StatusCode.PERMISSION_DENIED)


class PresenceError(Exception):
    """The gateway ended the session; `code` is the gRPC status code."""

    def __init__(self, code, details):
        super().__init__("%s: %s" % (code.name, details))
        self.code = code
        self.details = details


class ViewerSession:
    """One viewer's presence in one performer's room."""

    def __init__(self, target, performer_id, nickname, ip_address, customer_id=None,
                 registered=False, credits=0, on_notice=None, channel=None,
                 initial_backoff=0.5, max_backoff=15.0, join_timeout=10.0):
        self._channel = channel or grpc.insecure_channel(target, options=KEEPALIVE_OPTIONS)
        self._owns_channel = channel is None
        self._stub = presence_pb2_grpc.PresenceStub(self._channel)
        join = presence_pb2.Join(performer_id=performer_id, nickname=nickname,
                                 ip_address=ip_address, registered=registered, credits=credits)
        if customer_id is not None:
            join.customer_id = customer_id
        self._join = presence_pb2.SessionRequest(join=join)
        self._on_notice = on_notice or (lambda notice: None)
        self._initial_backoff = initial_backoff
        self._max_backoff = max_backoff
        self._join_timeout = join_timeout
        self._lock = threading.Lock()
        self._joined = threading.Event()
        self._done = threading.Event()
        self._closing = False
        self._requests = None
        self._credits_replies = queue.Queue()
        self._error = None
        self.display_nickname = None
        # The last Joined's resume token (never logged) and whether it resumed.
        self.resume_token = None
        self.resumed = False
        self.session_id = None
        self.reconnects = 0
        self._thread = None

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc):
        self.close()

    def open(self):
        """Joins; returns the display nickname or raises PresenceError."""
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._joined.wait(self._join_timeout)
        if self._error is not None:
            raise self._error
        if not self._joined.is_set():
            self.close()
            raise PresenceError(grpc.StatusCode.DEADLINE_EXCEEDED, "no joined within the timeout")
        return self.display_nickname

    def activity(self, kind=presence_pb2.ACTIVITY_KIND_CHAT):
        """Reports viewer activity: postpones the next pingRoom."""
        self._send(presence_pb2.SessionRequest(activity=presence_pb2.Activity(kind=kind)))

    def update_credits(self, credits, timeout=10.0):
        """Sends the customer's balance; returns the CreditsUpdated answer."""
        self._send(presence_pb2.SessionRequest(
            credits=presence_pb2.CreditsUpdate(credits=credits)))
        return self._credits_replies.get(timeout=timeout)

    def close(self, timeout=10.0):
        """Leaves (the gateway sends leaveRoom) and waits for the stream to end."""
        with self._lock:
            self._closing = True
            requests = self._requests
        if requests is not None:
            requests.put(presence_pb2.SessionRequest(leave=presence_pb2.Leave()))
            requests.put(None)
        self._done.wait(timeout)
        if self._owns_channel:
            self._channel.close()

    def _send(self, request):
        with self._lock:
            if self._requests is None or self._closing:
                raise PresenceError(grpc.StatusCode.FAILED_PRECONDITION, "the session is not open")
            self._requests.put(request)

    def _run(self):
        backoff = self._initial_backoff
        try:
            while True:
                requests = queue.Queue()
                # After the first join, every reconnect carries the session's
                # resume token: a server holding the session takes it back
                # without a leave or a join at VS.
                self._join.join.resume_token = self.resume_token or ""
                requests.put(self._join)
                with self._lock:
                    if self._closing:
                        return
                    self._requests = requests
                call = self._stub.Session(iter(requests.get, None))
                try:
                    for response in call:
                        self._handle(response)
                        if response.HasField("joined"):
                            backoff = self._initial_backoff
                    return  # Ended with OK after `left`.
                except grpc.RpcError as err:
                    code = err.code()
                    if self._closing and code in (grpc.StatusCode.CANCELLED, grpc.StatusCode.OK):
                        return
                    if code in _FINAL or self._closing:
                        self._error = PresenceError(code, err.details())
                        return
                finally:
                    requests.put(None)
                # UNAVAILABLE and the like: join again after a jittered pause.
                self._joined.clear()
                self.reconnects += 1
                delay = backoff * (0.5 + random.random() / 2)
                backoff = min(backoff * 2, self._max_backoff)
                if self._done.wait(delay):
                    return
        finally:
            self._done.set()
            self._joined.set()

    def _handle(self, response):
        kind = response.WhichOneof("event")
        if kind == "joined":
            self.display_nickname = response.joined.nickname
            self.session_id = response.joined.session_id
            self.resume_token = response.joined.resume_token
            self.resumed = response.joined.resumed
            self._joined.set()
        elif kind == "credits_updated":
            self._credits_replies.put(response.credits_updated)
        elif kind == "notice":
            self._on_notice(response.notice)
