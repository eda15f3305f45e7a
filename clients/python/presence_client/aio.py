"""Holds viewers' presence through the presence gateway with asyncio (grpc.aio).

One task per viewer and no thread: a process holds thousands of viewers on
one event loop and, best, one shared channel.

    channel = presence_client.aio.connect("gateway:50051")
    async with presence_client.aio.ViewerSession(
            channel, performer_id=42, nickname="bob", ip_address="203.0.113.5") as viewer:
        print(viewer.display_nickname)
        await viewer.activity()
        reply = await viewer.update_credits(250)
    # Leaving the block sends leave and waits for `left`.

Reconnects and final codes follow the thread helper (presence_client.ViewerSession).
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any, Callable, Deque, Optional

import grpc
import grpc.aio

from presence_client._common import (FINAL_CODES, PresenceError, SessionState,
                                     channel_credentials, join_request, options_with_keepalive,
                                     uses_tls)
from presence_client.v1 import presence_pb2, presence_pb2_grpc

NoticeCallback = Callable[[presence_pb2.Notice], None]

__all__ = ["ViewerSession", "connect"]


def connect(target: str, *, ca_file: Optional[str] = None, cert_file: Optional[str] = None,
            key_file: Optional[str] = None, token: Optional[str] = None,
            tls: bool = False) -> grpc.aio.Channel:
    """A grpc.aio channel with the keepalive the gateway accepts; TLS and the
    bearer token as in presence_client.ViewerSession. Share it between viewers."""
    if uses_tls(ca_file, cert_file, key_file, token, tls):
        return grpc.aio.secure_channel(target, channel_credentials(ca_file, cert_file, key_file,
                                                                   token),
                                       options=options_with_keepalive())
    return grpc.aio.insecure_channel(target, options=options_with_keepalive())


class ViewerSession(SessionState):
    """One viewer's presence in one performer's room, on the running event loop."""

    def __init__(self, channel: grpc.aio.Channel, performer_id: int, nickname: str,
                 ip_address: str, customer_id: Optional[int] = None, registered: bool = False,
                 credits: int = 0, *, on_notice: Optional[NoticeCallback] = None,
                 initial_backoff: float = 0.5, max_backoff: float = 15.0,
                 join_timeout: float = 10.0) -> None:
        """`on_notice` runs on the event loop for every notice; it must not block."""
        self._stub = presence_pb2_grpc.PresenceStub(channel)
        self._join = join_request(performer_id, nickname, ip_address, customer_id, registered,
                                  credits)
        self._on_notice = on_notice or (lambda notice: None)
        self._init_state(initial_backoff, max_backoff)
        self._join_timeout = join_timeout
        self._joined = asyncio.Event()
        self._closed = asyncio.Event()
        self._done = asyncio.Event()
        self._call: Any = None
        self._write_lock = asyncio.Lock()
        self._waiters: Deque[asyncio.Future[presence_pb2.CreditsUpdated]] = collections.deque()
        self._task: Optional[asyncio.Task[None]] = None

    async def __aenter__(self) -> ViewerSession:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def done(self) -> bool:
        """True once the session is over for good (closed or a final error)."""
        return self._done.is_set()

    async def wait(self) -> Optional[PresenceError]:
        """Waits until the session is over; returns the final error, if any."""
        await self._done.wait()
        return self.error

    async def open(self) -> Optional[str]:
        """Joins; returns the display nickname or raises PresenceError."""
        self._task = asyncio.get_running_loop().create_task(self._run())
        try:
            await asyncio.wait_for(self._joined.wait(), self._join_timeout)
        except asyncio.TimeoutError:
            await self.close()
            raise PresenceError(grpc.StatusCode.DEADLINE_EXCEEDED,
                                "no joined within the timeout") from None
        if self.error is not None:
            raise self.error
        if self._done.is_set():
            raise PresenceError(grpc.StatusCode.CANCELLED, "closed before joining")
        return self.display_nickname

    async def activity(self, kind: int = presence_pb2.ACTIVITY_KIND_CHAT) -> None:
        """Reports viewer activity: postpones the next pingRoom."""
        await self._write(presence_pb2.SessionRequest(activity=presence_pb2.Activity(kind=kind)))

    async def update_credits(self, credits: int,
                             timeout: float = 10.0) -> presence_pb2.CreditsUpdated:
        """Sends the customer's balance; returns the gateway's answer to it."""
        answer: asyncio.Future[presence_pb2.CreditsUpdated] = (
            asyncio.get_running_loop().create_future())
        # Retrieved here so that an answer nobody waits for any more is not
        # reported as an unretrieved exception.
        answer.add_done_callback(lambda f: f.cancelled() or f.exception())
        request = presence_pb2.SessionRequest(credits=presence_pb2.CreditsUpdate(credits=credits))
        await self._write(request, answer)
        try:
            # shield: a caller that gives up leaves its future in line for its answer.
            return await asyncio.wait_for(asyncio.shield(answer), timeout)
        except asyncio.TimeoutError:
            raise PresenceError(grpc.StatusCode.DEADLINE_EXCEEDED,
                                "no credits answer within %gs" % timeout) from None

    async def close(self, timeout: float = 10.0) -> None:
        """Leaves (the gateway sends leaveRoom) and waits for the stream to end.
        Returns at once during a reconnect's backoff or after the end."""
        self._closed.set()
        call = self._call
        if call is not None and not self._done.is_set():
            try:
                async with self._write_lock:
                    await call.write(presence_pb2.SessionRequest(leave=presence_pb2.Leave()))
                    await call.done_writing()
            except (grpc.aio.AioRpcError, grpc.aio.UsageError, asyncio.InvalidStateError):
                pass  # The stream is already over.
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except asyncio.TimeoutError:
            if call is not None:
                call.cancel()  # Cancelling also makes the gateway leave.
            await self._task

    async def _write(self, request: presence_pb2.SessionRequest,
                     answer: Optional[asyncio.Future[presence_pb2.CreditsUpdated]] = None) -> None:
        if self._done.is_set() and self.error is not None:
            raise self.error
        if self._closed.is_set() or self._done.is_set():
            raise PresenceError(grpc.StatusCode.FAILED_PRECONDITION, "the session is closed")
        call = self._call
        if call is None:
            raise PresenceError(grpc.StatusCode.UNAVAILABLE, "reconnecting")
        async with self._write_lock:
            if answer is not None:
                self._waiters.append(answer)
            try:
                await call.write(request)
            except (grpc.aio.AioRpcError, grpc.aio.UsageError, asyncio.InvalidStateError):
                if answer is not None and answer in self._waiters:
                    self._waiters.remove(answer)
                raise PresenceError(grpc.StatusCode.UNAVAILABLE, "the stream ended") from None

    async def _run(self) -> None:
        try:
            while not self._closed.is_set():
                if not await self._attempt():
                    return
                self._joined.clear()
                try:
                    await asyncio.wait_for(self._closed.wait(), self._backoff.next())
                    return  # Closed during the pause.
                except asyncio.TimeoutError:
                    pass
                self.reconnects += 1
        finally:
            self._done.set()
            self._joined.set()

    async def _attempt(self) -> bool:
        """One stream, from join to end; True when the session should reconnect."""
        self._join.join.resume_token = self.resume_token or ""
        call = self._stub.Session()
        self._call = call
        try:
            async with self._write_lock:
                await call.write(self._join)
            async for response in call:
                self._handle(response)
            return False  # Ended with OK after `left`.
        except grpc.aio.AioRpcError as err:
            if self._closed.is_set():
                return False
            if err.code() in FINAL_CODES:
                self.error = PresenceError(err.code(), err.details() or "")
                return False
            return True
        except (grpc.aio.UsageError, asyncio.InvalidStateError):
            return not self._closed.is_set()
        finally:
            self._call = None
            call.cancel()
            waiters, self._waiters = self._waiters, collections.deque()
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(PresenceError(grpc.StatusCode.UNAVAILABLE,
                                                       "the stream ended before the answer"))

    def _handle(self, response: presence_pb2.SessionResponse) -> None:
        kind = response.WhichOneof("event")
        if kind == "joined":
            self._record_joined(response.joined)
            self._joined.set()
        elif kind == "credits_updated":
            if self._waiters:
                waiter = self._waiters.popleft()
                if not waiter.done():
                    waiter.set_result(response.credits_updated)
        elif kind == "notice":
            self._on_notice(response.notice)
