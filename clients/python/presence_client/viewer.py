"""Holds one viewer's presence through the presence gateway, on a thread.

    with ViewerSession("127.0.0.1:50051", performer_id=42, nickname="bob",
                       ip_address="203.0.113.5", customer_id=7, registered=True) as viewer:
        print(viewer.display_nickname)
        viewer.activity()
        viewer.update_credits(250)
    # Leaving the block sends leave and waits for `left`.

The stream runs on a background thread. A lost connection, UNAVAILABLE or any
other passing error makes the session reconnect with capped, jittered
exponential backoff and join again with the last resume token (a gateway
with --resume_grace takes the session back; VS sees nothing). The codes in
FINAL_CODES end it for good: `open()` raises them, and afterwards `error`
holds them and every call raises them. Thread-safe. For asyncio programs use
presence_client.aio.ViewerSession.
"""

from __future__ import annotations

import collections
import concurrent.futures
import queue
import threading
from typing import Any, Callable, Deque, Iterator, Optional

import grpc

from presence_client._common import (FINAL_CODES, PresenceError, SessionState,
                                     channel_credentials, join_request, options_with_keepalive,
                                     uses_tls)
from presence_client.v1 import presence_pb2, presence_pb2_grpc

NoticeCallback = Callable[[presence_pb2.Notice], None]


class ViewerSession(SessionState):
    """One viewer's presence in one performer's room."""

    def __init__(self, target: Optional[str], performer_id: int, nickname: str, ip_address: str,
                 customer_id: Optional[int] = None, registered: bool = False, credits: int = 0,
                 on_notice: Optional[NoticeCallback] = None,
                 channel: Optional[grpc.Channel] = None, initial_backoff: float = 0.5,
                 max_backoff: float = 15.0, join_timeout: float = 10.0, *,
                 ca_file: Optional[str] = None, cert_file: Optional[str] = None,
                 key_file: Optional[str] = None, token: Optional[str] = None,
                 tls: bool = False) -> None:
        """`target` is "host:port" (ignored when `channel` is given). TLS is on
        when `tls` or any of `ca_file`, `cert_file`, `key_file` is given;
        `token` (needs TLS) is the gateway's bearer token. `on_notice` runs on
        the session's thread with no lock held; it may call the session."""
        if channel is None:
            if target is None:
                raise ValueError("give a target or a channel")
            if uses_tls(ca_file, cert_file, key_file, token, tls):
                channel = grpc.secure_channel(
                    target, channel_credentials(ca_file, cert_file, key_file, token),
                    options=options_with_keepalive())
            else:
                channel = grpc.insecure_channel(target, options=options_with_keepalive())
            self._owns_channel = True
        else:
            self._owns_channel = False
        self._channel = channel
        self._stub = presence_pb2_grpc.PresenceStub(channel)
        self._join = join_request(performer_id, nickname, ip_address, customer_id, registered,
                                  credits)
        self._on_notice = on_notice or (lambda notice: None)
        self._init_state(initial_backoff, max_backoff)
        self._join_timeout = join_timeout
        self._lock = threading.Lock()
        self._joined = threading.Event()
        self._closed = threading.Event()
        self._done = threading.Event()
        self._requests: Optional[queue.Queue[Optional[presence_pb2.SessionRequest]]] = None
        self._call: Any = None
        # One per credits update sent on the current stream, in sending order:
        # the gateway answers in that order.
        self._waiters: Deque[concurrent.futures.Future[presence_pb2.CreditsUpdated]] = (
            collections.deque())
        self._thread: Optional[threading.Thread] = None

    def __enter__(self) -> ViewerSession:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def done(self) -> bool:
        """True once the session is over for good (closed or a final error)."""
        return self._done.is_set()

    def wait(self, timeout: Optional[float] = None) -> Optional[PresenceError]:
        """Waits until the session is over; returns the final error, if any."""
        self._done.wait(timeout)
        return self.error

    def open(self) -> Optional[str]:
        """Joins; returns the display nickname or raises PresenceError."""
        self._thread = threading.Thread(target=self._run, name="presence-viewer", daemon=True)
        self._thread.start()
        self._joined.wait(self._join_timeout)
        if self.error is not None:
            raise self.error
        if not self._joined.is_set() or self._done.is_set():
            self.close()
            raise PresenceError(grpc.StatusCode.DEADLINE_EXCEEDED, "no joined within the timeout")
        return self.display_nickname

    def activity(self, kind: int = presence_pb2.ACTIVITY_KIND_CHAT) -> None:
        """Reports viewer activity: postpones the next pingRoom."""
        with self._lock:
            self._current().put(
                presence_pb2.SessionRequest(activity=presence_pb2.Activity(kind=kind)))

    def update_credits(self, credits: int, timeout: float = 10.0) -> presence_pb2.CreditsUpdated:
        """Sends the customer's balance; returns the gateway's answer to it."""
        answer: concurrent.futures.Future[presence_pb2.CreditsUpdated] = (
            concurrent.futures.Future())
        with self._lock:
            requests = self._current()
            self._waiters.append(answer)
            requests.put(presence_pb2.SessionRequest(
                credits=presence_pb2.CreditsUpdate(credits=credits)))
        try:
            return answer.result(timeout)
        except concurrent.futures.TimeoutError:
            # The answer, when it comes, goes to this future, not to the next caller.
            raise PresenceError(grpc.StatusCode.DEADLINE_EXCEEDED,
                                "no credits answer within %gs" % timeout) from None

    def close(self, timeout: float = 10.0) -> None:
        """Leaves (the gateway sends leaveRoom) and waits for the stream to end.
        Returns at once during a reconnect's backoff or after the end."""
        self._closed.set()
        with self._lock:
            requests, call = self._requests, self._call
        if requests is not None:
            requests.put(presence_pb2.SessionRequest(leave=presence_pb2.Leave()))
            requests.put(None)
        if not self._done.wait(timeout) and call is not None:
            call.cancel()  # Cancelling also makes the gateway leave.
            self._done.wait(timeout)
        if self._owns_channel:
            self._channel.close()

    def _current(self) -> queue.Queue[Optional[presence_pb2.SessionRequest]]:
        """The open stream's request queue; raises if there is none. Locked."""
        if self._done.is_set() and self.error is not None:
            raise self.error
        if self._closed.is_set() or self._done.is_set():
            raise PresenceError(grpc.StatusCode.FAILED_PRECONDITION, "the session is closed")
        if self._requests is None:
            raise PresenceError(grpc.StatusCode.UNAVAILABLE, "reconnecting")
        return self._requests

    def _run(self) -> None:
        try:
            while not self._closed.is_set():
                if not self._attempt():
                    return
                # A passing error: join again after a jittered pause, unless closed.
                self._joined.clear()
                if self._closed.wait(self._backoff.next()):
                    return
                self.reconnects += 1
        finally:
            self._done.set()
            self._joined.set()

    def _attempt(self) -> bool:
        """One stream, from join to end; True when the session should reconnect."""
        requests: queue.Queue[Optional[presence_pb2.SessionRequest]] = queue.Queue()
        # Every reconnect carries the last session's resume token.
        self._join.join.resume_token = self.resume_token or ""
        requests.put(self._join)
        call = self._stub.Session(_until_none(requests))
        with self._lock:
            if self._closed.is_set():
                call.cancel()
                return False
            self._requests, self._call = requests, call
        try:
            for response in call:
                self._handle(response)
            return False  # Ended with OK after `left`.
        except grpc.RpcError as err:
            code = err.code()
            if self._closed.is_set():
                return False
            if code in FINAL_CODES:
                self.error = PresenceError(code, err.details() or "")
                return False
            return True
        finally:
            requests.put(None)
            with self._lock:
                self._requests = self._call = None
                waiters, self._waiters = self._waiters, collections.deque()
            for waiter in waiters:
                waiter.set_exception(
                    PresenceError(grpc.StatusCode.UNAVAILABLE, "the stream ended before the answer"))

    def _handle(self, response: presence_pb2.SessionResponse) -> None:
        kind = response.WhichOneof("event")
        if kind == "joined":
            self._record_joined(response.joined)
            self._joined.set()
        elif kind == "credits_updated":
            with self._lock:
                waiter = self._waiters.popleft() if self._waiters else None
            if waiter is not None:
                waiter.set_result(response.credits_updated)
        elif kind == "notice":
            self._on_notice(response.notice)


def _until_none(requests: queue.Queue[Optional[presence_pb2.SessionRequest]]
                ) -> Iterator[presence_pb2.SessionRequest]:
    while True:
        request = requests.get()
        if request is None:
            return
        yield request
