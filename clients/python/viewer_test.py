"""The Python helper and example against the real gateway and VS simulator."""

import json
import os
import signal
import subprocess
import time
import unittest
import urllib.request

import grpc

import harness
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
            ["/usr/bin/python3", example, "--server", self.gw.address, "--performer", "9",
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

    def _fault(self, rule):
        req = urllib.request.Request(self.gw.sim_url + "/_sim/faults",
                                     data=json.dumps(rule).encode(), method="POST")
        urllib.request.urlopen(req, timeout=5).read()



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
