"""The Python helper and example against the real gateway and VS simulator."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

import grpc

import harness
import presence_client
from presence_client import PresenceError, ViewerSession


class ViewerSessionTest(unittest.TestCase):
    def setUp(self):
        self.gw = harness.Gateway(ping_interval="300ms")

    def tearDown(self):
        self.gw.stop()

    def viewer(self, **kw):
        args = dict(performer_id=42, nickname="bob", ip_address="203.0.113.5", customer_id=7,
                    registered=True, credits=100, initial_backoff=0.05)
        args.update(kw)
        return ViewerSession(self.gw.address, **args)

    def test_join_pings_and_exactly_one_leave(self):
        with self.viewer() as v:
            self.assertEqual(v.display_nickname, "bob_1000")
            self.assertEqual(len(v.session_id), 16)
            time.sleep(1.05)
        joins = self.gw.requests("joinRoom")
        self.assertEqual(len(joins), 1)
        self.assertEqual(joins[0]["body"], "function=joinRoom&performerId=42&nickname=bob"
                         "&customerId=7&ipAddress=203.0.113.5&registered=1&credits=100")
        pings = self.gw.requests("pingRoom")
        self.assertGreaterEqual(len(pings), 2)
        self.assertLessEqual(len(pings), 4)
        self.assertEqual(pings[0]["body"],
                         "function=pingRoom&performerId=42&customerId=7&nickname=bob_1000")
        self.assertEqual(self.gw.wait_count("leaveRoom", 1), 1)

    def test_credits_update_reaches_vs(self):
        with self.viewer() as v:
            reply = v.update_credits(250)
            self.assertTrue(reply.success)
        self.assertEqual(self.gw.requests("updateCredits")[0]["body"],
                         "function=updateCredits&customerId=7&credits=250")

    def test_invalid_argument_is_raised_and_not_retried(self):
        with self.assertRaises(PresenceError) as ctx:
            self.viewer(nickname="").open()
        self.assertEqual(ctx.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("join.nickname", ctx.exception.details)
        self.assertEqual(self.gw.counts()["joinRoom"], 0)

    def test_failed_precondition_is_raised_and_not_retried(self):
        self._fault({"function": "joinRoom", "reject": True, "message": "performer offline"})
        with self.assertRaises(PresenceError) as ctx:
            self.viewer().open()
        self.assertEqual(ctx.exception.code, grpc.StatusCode.FAILED_PRECONDITION)
        self.assertEqual(ctx.exception.details, "performer offline")
        self.assertEqual(self.gw.counts()["joinRoom"], 1)

    def test_unavailable_reconnects_and_joins_again(self):
        self._fault({"function": "joinRoom", "http_status": 503, "times": 2})
        with self.viewer() as v:
            self.assertEqual(v.reconnects, 2)
            self.assertTrue(v.display_nickname.startswith("bob_"))
        self.assertEqual(self.gw.counts()["joinRoom"], 3)
        self.assertEqual(self.gw.wait_count("leaveRoom", 1), 1)

    def test_example_leaves_on_sigint(self):
        example = os.path.join(os.path.dirname(os.path.abspath(__file__)), "viewer_example.py")
        proc = subprocess.Popen(
            [sys.executable, example, "--server", self.gw.address, "--performer", "9",
             "--nickname", "zoe", "--ip", "2001:db8::1", "--customer", "3", "--credits", "5"],
            stdout=subprocess.PIPE, text=True, env=dict(os.environ))
        line = proc.stdout.readline()
        self.assertTrue(line.startswith("joined as zoe_1000"), line)
        time.sleep(0.7)
        proc.send_signal(signal.SIGINT)
        self.assertEqual(proc.wait(timeout=15), 0)
        self.assertEqual(proc.stdout.read().strip(), "left")
        self.assertEqual(self.gw.wait_count("leaveRoom", 1), 1)
        self.assertEqual(self.gw.requests("leaveRoom")[0]["body"],
                         "function=leaveRoom&performerId=9&customerId=3&nickname=zoe_1000")
        self.assertGreaterEqual(self.gw.counts()["pingRoom"], 1)

    def test_an_abandoned_credits_answer_does_not_reach_the_next_caller(self):
        with self.viewer() as v:
            self._fault({"function": "updateCredits", "latency_ms": 700, "reject": True,
                         "message": "slow no", "times": 1})
            with self.assertRaises(PresenceError) as ctx:
                v.update_credits(1, timeout=0.1)
            self.assertEqual(ctx.exception.code, grpc.StatusCode.DEADLINE_EXCEEDED)
            reply = v.update_credits(2)
            self.assertTrue(reply.success, "got the abandoned call's rejection: %s" % reply)

    def test_close_during_a_backoff_is_prompt(self):
        self._fault({"function": "joinRoom", "http_status": 503, "times": 1})
        v = self.viewer(initial_backoff=60.0, max_backoff=60.0, join_timeout=0.5)
        started = time.time()
        with self.assertRaises(PresenceError) as ctx:
            v.open()  # Times out during the first backoff (at least 30 s), then closes.
        self.assertEqual(ctx.exception.code, grpc.StatusCode.DEADLINE_EXCEEDED)
        self.assertLess(time.time() - started, 20.0)
        self.assertTrue(v.done)
        self.assertEqual(self.gw.counts()["joinRoom"], 1)

    def _fault(self, rule):
        req = urllib.request.Request(self.gw.sim_url + "/_sim/faults",
                                     data=json.dumps(rule).encode(), method="POST")
        urllib.request.urlopen(req, timeout=5).read()


class InstalledPackageTest(unittest.TestCase):
    def test_the_package_under_test_is_the_installed_one(self):
        where = os.environ.get("PRESENCE_CLIENT_SITE")
        if where is None:
            self.skipTest("run from the source tree (clients/python/package_test.sh installs)")
        self.assertTrue(presence_client.__file__.startswith(where), presence_client.__file__)
        self.assertTrue(os.path.exists(os.path.join(os.path.dirname(presence_client.__file__),
                                                    "py.typed")))


class SecureAndBootTest(unittest.TestCase):
    """TLS with a client certificate and a bearer token, as production runs,
    and a boot by VS ending the session for good."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
        self.pki = harness.make_pki(os.path.join(self.dir, "pki"))
        self.gw = harness.Gateway(ping_interval="300ms", extra_flags=[
            "--tls_cert=" + self.pki["server_cert"], "--tls_key=" + self.pki["server_key"],
            "--tls_client_ca=" + self.pki["ca"],
            "--auth_token_file=" + harness.secret_file(self.dir, "token", "py-token"),
            "--boot_listen=127.0.0.1:0",
            "--boot_secret_file=" + harness.secret_file(self.dir, "boot", "boot-key")])

    def tearDown(self):
        self.gw.stop()

    def viewer(self, token="py-token"):
        return ViewerSession(self.gw.address, performer_id=42, nickname="bob",
                             ip_address="203.0.113.5", customer_id=7, registered=True,
                             initial_backoff=0.05, ca_file=self.pki["ca"],
                             cert_file=self.pki["client_cert"], key_file=self.pki["client_key"],
                             token=token)

    def test_tls_client_certificate_and_token_then_a_boot(self):
        v = self.viewer()
        self.assertEqual(v.open(), "bob_1000")
        self.assertIn("removed: 1", self.gw.boot("boot-key", 7))
        error = v.wait(10)
        self.assertTrue(v.done)
        self.assertEqual(error.code, grpc.StatusCode.PERMISSION_DENIED)
        self.assertEqual(v.reconnects, 0)
        with self.assertRaises(PresenceError) as ctx:
            v.activity()  # Not dropped silently: the final error again.
        self.assertEqual(ctx.exception.code, grpc.StatusCode.PERMISSION_DENIED)
        with self.assertRaises(PresenceError):
            v.update_credits(5)
        v.close()
        self.assertEqual(self.gw.wait_count("leaveRoom", 1), 1)
        self.assertEqual(self.gw.counts()["joinRoom"], 1)

    def test_a_wrong_token_is_final(self):
        with self.assertRaises(PresenceError) as ctx:
            self.viewer(token="guess").open()
        self.assertEqual(ctx.exception.code, grpc.StatusCode.UNAUTHENTICATED)
        self.assertEqual(self.gw.counts()["joinRoom"], 0)

    def test_a_token_is_never_sent_in_plaintext(self):
        with self.assertRaises(ValueError):
            ViewerSession(self.gw.address, performer_id=1, nickname="x", ip_address="192.0.2.1",
                          token="py-token")



class ResumeTest(unittest.TestCase):
    """With --resume_grace, a helper whose connection dies reconnects with its
    token and takes its session back: VS sees no leave and no second join."""

    def setUp(self):
        self.gw = harness.Gateway(ping_interval="300ms", extra_flags=["--resume_grace=10s"])
        self.proxy = harness.Proxy(self.gw.address)

    def tearDown(self):
        self.proxy.close()
        self.gw.stop()

    def test_a_cut_connection_is_resumed_without_a_leave_or_a_join(self):
        with ViewerSession(self.proxy.address, performer_id=42, nickname="bob",
                           ip_address="203.0.113.5", customer_id=7, registered=True,
                           initial_backoff=0.05) as v:
            first_nickname, first_session = v.display_nickname, v.session_id
            self.assertEqual(len(v.resume_token), 32)
            self.assertFalse(v.resumed)
            self.proxy.cut()
            deadline = time.time() + 10
            while not (v.reconnects >= 1 and v.resumed) and time.time() < deadline:
                time.sleep(0.02)
            self.assertTrue(v.resumed)
            self.assertEqual(v.display_nickname, first_nickname)
            self.assertEqual(v.session_id, first_session)
        self.gw.wait_count("leaveRoom", 1)
        self.assertEqual(len(self.gw.requests("joinRoom")), 1)
        self.assertEqual(len(self.gw.requests("leaveRoom")), 1)


if __name__ == "__main__":
    unittest.main()
