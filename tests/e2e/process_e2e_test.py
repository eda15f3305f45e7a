"""The presence_server binary as an operator runs it: SIGTERM drains, a second
signal exits at once, and a client that vanishes without closing is found by
keepalive and left."""

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import unittest
import urllib.request

import grpc

import harness
from presence.v1 import presence_pb2
from presence.v1 import presence_pb2_grpc


class Stream:
    """A raw Session stream held open by a background reader."""

    def __init__(self, stub, i):
        self.requests = queue.Queue()
        self.requests.put(presence_pb2.SessionRequest(join=presence_pb2.Join(
            performer_id=1 + i % 3, nickname="p%d" % i, ip_address="203.0.113.5")))
        self.call = stub.Session(iter(self.requests.get, None))
        self.joined = threading.Event()
        self.code = None
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            for resp in self.call:
                if resp.HasField("joined"):
                    self.joined.set()
            self.code = grpc.StatusCode.OK
        except grpc.RpcError as err:
            self.code = err.code()


class ProcessE2eTest(unittest.TestCase):
    def setUp(self):
        self.gw = harness.Gateway(ping_interval="1s")
        self.channel = grpc.insecure_channel(self.gw.address)
        self.stub = presence_pb2_grpc.PresenceStub(self.channel)

    def tearDown(self):
        self.channel.close()
        self.gw.stop()

    def _fault(self, rule):
        req = urllib.request.Request(self.gw.sim_url + "/_sim/faults",
                                     data=json.dumps(rule).encode(), method="POST")
        urllib.request.urlopen(req, timeout=5).read()

    def test_sigterm_sends_every_leave_before_exiting(self):
        streams = [Stream(self.stub, i) for i in range(20)]
        for s in streams:
            self.assertTrue(s.joined.wait(10))
        self.gw.server.send_signal(signal.SIGTERM)
        self.assertEqual(self.gw.server.wait(timeout=30), 0)
        # The process has exited: every leave was already at VS.
        self.assertEqual(self.gw.counts()["leaveRoom"], 20)
        deadline = time.time() + 5
        while time.time() < deadline and any(s.code is None for s in streams):
            time.sleep(0.05)
        self.assertEqual({s.code for s in streams}, {grpc.StatusCode.UNAVAILABLE})
        self.assertTrue(any(" drained complete=true" in line for line in self.gw.log))

    def test_second_signal_exits_at_once(self):
        streams = [Stream(self.stub, i) for i in range(3)]
        for s in streams:
            self.assertTrue(s.joined.wait(10))
        self._fault({"function": "leaveRoom", "latency_ms": 5000})
        self.gw.server.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        self.assertIsNone(self.gw.server.poll())  # Still draining: leaves are slow.
        start = time.time()
        self.gw.server.send_signal(signal.SIGTERM)
        self.assertEqual(self.gw.server.wait(timeout=5), 1)
        self.assertLess(time.time() - start, 2)

    def test_the_process_exits_within_the_drain_timeout_however_slow_vs_is(self):
        self.gw.stop()
        self.gw = harness.Gateway(ping_interval="1s", extra_flags=["--drain_timeout=2s"])
        self.channel = grpc.insecure_channel(self.gw.address)
        self.stub = presence_pb2_grpc.PresenceStub(self.channel)
        streams = [Stream(self.stub, i) for i in range(3)]
        for s in streams:
            self.assertTrue(s.joined.wait(10))
        # VS would take a minute to answer the leaves; the process does not wait.
        self._fault({"function": "leaveRoom", "latency_ms": 60000})
        self.gw.server.send_signal(signal.SIGTERM)
        self.gw.server.wait(timeout=20)
        self.assertTrue(any(" drained complete=false" in line or "drain_timeout_exit" in line
                            for line in self.gw.log), "".join(self.gw.log[-5:]))

    def test_kill_9_then_restart_leaves_every_open_session_once(self):
        state_dir = os.path.join(os.environ.get("TEST_TMPDIR", "/tmp"), "state-kill9")
        self.gw.stop()
        self.gw = harness.Gateway(ping_interval="1s", extra_flags=["--state_dir=" + state_dir])
        self.channel.close()
        self.channel = grpc.insecure_channel(self.gw.address)
        self.stub = presence_pb2_grpc.PresenceStub(self.channel)
        streams = [Stream(self.stub, i) for i in range(25)]
        for s in streams:
            self.assertTrue(s.joined.wait(10))
        # Five leave normally before the crash: they must not be left again.
        for s in streams[:5]:
            s.requests.put(presence_pb2.SessionRequest(leave=presence_pb2.Leave()))
            s.requests.put(None)
        self.assertEqual(self.gw.wait_count("leaveRoom", 5), 5)
        time.sleep(0.2)  # The journal's group commit is well under this.
        self.gw.server.send_signal(signal.SIGKILL)
        self.gw.server.wait(timeout=10)
        self.assertEqual(self.gw.counts()["leaveRoom"], 5)

        self.gw.start_server(["--state_dir=" + state_dir])
        # Serving means recovery is done: the 20 open sessions were left.
        self.assertEqual(self.gw.counts()["leaveRoom"], 25)
        joined = {r["answered_nickname"] for r in self.gw.requests("joinRoom")}
        left = [dict(r["fields"])["nickname"] for r in self.gw.requests("leaveRoom")]
        self.assertEqual(sorted(left), sorted(joined))
        self.assertTrue(any(" recovered " in line and "sessions_left_open_by_last_run=20" in line
                            for line in self.gw.log))

        # A clean stop and another start leave nothing more.
        self.gw.server.send_signal(signal.SIGTERM)
        self.assertEqual(self.gw.server.wait(timeout=30), 0)
        self.gw.start_server(["--state_dir=" + state_dir])
        time.sleep(0.5)
        self.assertEqual(self.gw.counts()["leaveRoom"], 25)

    def test_a_vanished_client_is_found_by_keepalive_and_left(self):
        example = harness.runfile("clients/python/viewer_example.py")
        env = dict(os.environ)
        client = subprocess.Popen(
            [sys.executable, example, "--server", self.gw.address, "--performer", "5",
             "--nickname", "ghost", "--ip", "203.0.113.9"],
            stdout=subprocess.PIPE, text=True, env=env)
        try:
            self.assertTrue(client.stdout.readline().startswith("joined as ghost_"))
            # Idle past two server keepalive pings, then vanish without a FIN:
            # the stopped process's socket stays open but nothing answers.
            time.sleep(25)
            self.assertEqual(self.gw.counts()["leaveRoom"], 0)
            client.send_signal(signal.SIGSTOP)
            stopped = time.time()
            while time.time() - stopped < 40 and self.gw.counts()["leaveRoom"] == 0:
                time.sleep(0.25)
            found_after = time.time() - stopped
            self.assertEqual(self.gw.counts()["leaveRoom"], 1)
            self.assertLess(found_after, 35)
            print("vanished client left after %.1fs" % found_after)
        finally:
            client.send_signal(signal.SIGCONT)
            client.kill()
            client.wait()
            client.stdout.close()


class FlagValidationTest(unittest.TestCase):
    """Nonsense flags stop the binary at start (exit 2) with a message naming
    the flag; nothing is listened on."""

    def run_server(self, flags, env_key="k"):
        env = dict(os.environ, VS_KEY=env_key)
        return subprocess.run(
            [harness.runfile("server/presence_server"), "--listen=127.0.0.1:0",
             "--metrics_listen="] + flags,
            env=env, capture_output=True, text=True, timeout=30)

    def test_nonsense_flags_are_refused_naming_the_flag(self):
        for flag in ["--vs_timeout=0", "--ping_interval=0s", "--vs_connect_timeout=-1s",
                     "--leave_retry_window=0", "--drain_timeout=0",
                     "--max_messages_per_second=-1", "--max_sessions=0",
                     "--vs_max_connections=0", "--replica_ttl=0s", "--redis_timeout=0",
                     "--redis_url=http://redis:6379", "--redis_url=redis://:pw@redis:6379",
                     "--redis_url=redis://redis:0"]:
            with self.subTest(flag=flag):
                done = self.run_server([flag])
                self.assertEqual(done.returncode, 2, done.stderr)
                self.assertIn(flag.split("=")[0], done.stderr)
                self.assertNotIn("listening", done.stderr)

    def test_a_vs_key_of_only_whitespace_is_no_key(self):
        done = self.run_server(["--vs_url=http://127.0.0.1:1"], env_key="  \n")
        self.assertNotEqual(done.returncode, 0)
        self.assertIn("no VS key", done.stderr)


if __name__ == "__main__":
    unittest.main()
