"""The asyncio helper (presence_client.aio) against the real gateway and VS simulator."""

import asyncio
import json
import os
import tempfile
import time
import unittest
import urllib.request

import grpc

import harness
import presence_client.aio as aio
from presence_client import PresenceError


class AioViewerSessionTest(unittest.IsolatedAsyncioTestCase):
    def setUp(self):
        self.gw = harness.Gateway(ping_interval="300ms")

    def tearDown(self):
        self.gw.stop()

    def viewer(self, channel, **kw):
        args = dict(performer_id=42, nickname="bob", ip_address="203.0.113.5", customer_id=7,
                    registered=True, credits=100, initial_backoff=0.05)
        args.update(kw)
        return aio.ViewerSession(channel, **args)

    async def test_join_credits_activity_and_exactly_one_leave(self):
        async with aio.connect(self.gw.address) as channel:
            async with self.viewer(channel) as v:
                self.assertEqual(v.display_nickname, "bob_1000")
                self.assertEqual(len(v.session_id), 16)
                self.assertFalse(v.resumed)
                reply = await v.update_credits(250)
                self.assertTrue(reply.success)
                await v.activity()
            self.assertTrue(v.done)
            self.assertIsNone(v.error)
        self.assertEqual(self.gw.wait_count("leaveRoom", 1), 1)
        self.assertEqual(self.gw.requests("updateCredits")[0]["body"],
                         "function=updateCredits&customerId=7&credits=250")
        self.assertEqual(self.gw.counts()["joinRoom"], 1)

    async def test_many_viewers_share_one_channel(self):
        async with aio.connect(self.gw.address) as channel:
            viewers = [self.viewer(channel, nickname="v%d" % i, customer_id=None, registered=False,
                                   performer_id=100 + i % 3) for i in range(50)]
            await asyncio.gather(*(v.open() for v in viewers))
            self.assertEqual(len({v.session_id for v in viewers}), 50)
            await asyncio.gather(*(v.close() for v in viewers))
        self.assertEqual(self.gw.wait_count("leaveRoom", 50), 50)
        self.assertEqual(self.gw.counts()["joinRoom"], 50)

    async def test_unavailable_reconnects_and_final_codes_raise(self):
        self._fault({"function": "joinRoom", "http_status": 503, "times": 2})
        async with aio.connect(self.gw.address) as channel:
            async with self.viewer(channel) as v:
                self.assertEqual(v.reconnects, 2)
            with self.assertRaises(PresenceError) as ctx:
                await self.viewer(channel, nickname="").open()
            self.assertEqual(ctx.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(self.gw.counts()["joinRoom"], 3)
        self.assertEqual(self.gw.wait_count("leaveRoom", 1), 1)

    async def test_an_abandoned_credits_answer_does_not_reach_the_next_caller(self):
        async with aio.connect(self.gw.address) as channel:
            async with self.viewer(channel) as v:
                self._fault({"function": "updateCredits", "latency_ms": 700, "reject": True,
                             "message": "slow no", "times": 1})
                with self.assertRaises(PresenceError) as ctx:
                    await v.update_credits(1, timeout=0.1)
                self.assertEqual(ctx.exception.code, grpc.StatusCode.DEADLINE_EXCEEDED)
                reply = await v.update_credits(2)
                self.assertTrue(reply.success, "got the abandoned call's rejection: %s" % reply)

    async def test_close_during_a_backoff_is_prompt(self):
        self._fault({"function": "joinRoom", "http_status": 503, "times": 1})
        async with aio.connect(self.gw.address) as channel:
            v = self.viewer(channel, initial_backoff=60.0, max_backoff=60.0, join_timeout=0.5)
            started = time.monotonic()
            with self.assertRaises(PresenceError) as ctx:
                await v.open()  # Times out in the first backoff (at least 30 s), then closes.
            self.assertEqual(ctx.exception.code, grpc.StatusCode.DEADLINE_EXCEEDED)
            self.assertLess(time.monotonic() - started, 20.0)
            self.assertTrue(v.done)
        self.assertEqual(self.gw.counts()["joinRoom"], 1)

    def _fault(self, rule):
        req = urllib.request.Request(self.gw.sim_url + "/_sim/faults",
                                     data=json.dumps(rule).encode(), method="POST")
        urllib.request.urlopen(req, timeout=5).read()


class AioSecureResumeAndBootTest(unittest.IsolatedAsyncioTestCase):
    """TLS with a client certificate and a token; a cut connection resumed;
    a boot observed through wait()."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
        self.pki = harness.make_pki(os.path.join(self.dir, "pki"))
        self.gw = harness.Gateway(ping_interval="300ms", extra_flags=[
            "--tls_cert=" + self.pki["server_cert"], "--tls_key=" + self.pki["server_key"],
            "--tls_client_ca=" + self.pki["ca"],
            "--auth_token_file=" + harness.secret_file(self.dir, "token", "aio-token"),
            "--resume_grace=10s", "--boot_listen=127.0.0.1:0",
            "--boot_secret_file=" + harness.secret_file(self.dir, "boot", "boot-key")])
        self.proxy = harness.Proxy(self.gw.address)

    def tearDown(self):
        self.proxy.close()
        self.gw.stop()

    def connect(self, token="aio-token"):
        return aio.connect(self.proxy.address, ca_file=self.pki["ca"],
                           cert_file=self.pki["client_cert"], key_file=self.pki["client_key"],
                           token=token)

    async def test_resume_after_a_cut_then_a_boot(self):
        async with self.connect() as channel:
            v = aio.ViewerSession(channel, performer_id=42, nickname="bob",
                                  ip_address="203.0.113.5", customer_id=7, registered=True,
                                  initial_backoff=0.05)
            self.assertEqual(await v.open(), "bob_1000")
            session = v.session_id
            self.proxy.cut()
            deadline = time.monotonic() + 10
            while not (v.reconnects >= 1 and v.resumed) and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            self.assertTrue(v.resumed)
            self.assertEqual((v.display_nickname, v.session_id), ("bob_1000", session))
            self.assertIn("removed: 1", self.gw.boot("boot-key", 7))
            error = await asyncio.wait_for(v.wait(), 10)
            self.assertEqual(error.code, grpc.StatusCode.PERMISSION_DENIED)
            with self.assertRaises(PresenceError):
                await v.activity()
            await v.close()
        self.assertEqual(self.gw.wait_count("leaveRoom", 1), 1)
        self.assertEqual(self.gw.counts()["joinRoom"], 1)

    async def test_a_wrong_token_is_final(self):
        async with self.connect(token="guess") as channel:
            with self.assertRaises(PresenceError) as ctx:
                await aio.ViewerSession(channel, performer_id=1, nickname="x",
                                        ip_address="192.0.2.1").open()
            self.assertEqual(ctx.exception.code, grpc.StatusCode.UNAUTHENTICATED)
        self.assertEqual(self.gw.counts()["joinRoom"], 0)


if __name__ == "__main__":
    unittest.main()
