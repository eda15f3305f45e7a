"""Nothing lost under faults: the real presence_server and VS simulator
processes, real gRPC clients, and VS or the clients misbehaving.

After each scenario the ledger at VS balances: every joinRoom VS accepted has
exactly one leaveRoom with its display nickname, no leave names a join that
failed outright, the server still serves, and its memory is back near its
baseline.
"""

import collections
import json
import queue
import threading
import time
import unittest
import urllib.request

import grpc

import harness
from presence.v1 import presence_pb2
from presence.v1 import presence_pb2_grpc


def join_request(i, performer=1):
    return presence_pb2.SessionRequest(join=presence_pb2.Join(
        performer_id=performer, nickname="f%d" % i, customer_id=1000 + i, registered=True,
        ip_address="203.0.113.5"))


class Stream:
    """A Session stream: requests from a queue, responses read in background."""

    def __init__(self, stub, first, timeout=None):
        self.requests = queue.Queue()
        self.requests.put(first)
        self.call = stub.Session(iter(self.requests.get, None), timeout=timeout)
        self.responses = []
        self.joined = threading.Event()
        self.ended = threading.Event()
        self.code = None
        self.details = None
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            for resp in self.call:
                self.responses.append(resp)
                if resp.HasField("joined"):
                    self.joined.set()
            self.code = grpc.StatusCode.OK
        except grpc.RpcError as err:
            self.code, self.details = err.code(), err.details()
        self.ended.set()
        self.joined.set()

    def send(self, request):
        self.requests.put(request)

    def leave(self):
        self.send(presence_pb2.SessionRequest(leave=presence_pb2.Leave()))
        self.requests.put(None)

    def half_close(self):
        self.requests.put(None)

    def notices(self):
        return [r.notice for r in self.responses if r.HasField("notice")]


class FaultSuiteTest(unittest.TestCase):
    def setUp(self):
        self.gw = harness.Gateway(ping_interval="500ms",
                                  extra_flags=["--vs_timeout=1s", "--leave_retry_window=30s"])
        self.channel = grpc.insecure_channel(self.gw.address)
        self.stub = presence_pb2_grpc.PresenceStub(self.channel)
        self.baseline_rss = self.gw.rss_kib()

    def tearDown(self):
        self.channel.close()
        self.gw.stop()

    def fault(self, **rule):
        req = urllib.request.Request(self.gw.sim_url + "/_sim/faults",
                                     data=json.dumps(rule).encode(), method="POST")
        urllib.request.urlopen(req, timeout=5).read()

    def clear_faults(self):
        req = urllib.request.Request(self.gw.sim_url + "/_sim/reset", data=b"", method="POST")
        # Reset also forgets requests: keep them for the ledger.
        self.gw.history.extend(self.gw.requests())
        urllib.request.urlopen(req, timeout=5).read()

    def open_many(self, n, start=0):
        streams = [Stream(self.stub, join_request(start + i, performer=1 + i % 5))
                   for i in range(n)]
        for s in streams:
            self.assertTrue(s.joined.wait(15))
        return streams

    def ledger(self, best_effort):
        joins = [r for r in self.gw.all_requests("joinRoom") if r["success"]]
        accepted = collections.Counter(r["answered_nickname"] for r in joins)
        leaves = collections.Counter(
            dict(r["fields"]).get("nickname") for r in self.gw.all_requests("leaveRoom")
            if r["status"] == 200 and r["success"])
        for nickname in best_effort:
            leaves[nickname] -= 1
        return accepted, +leaves

    def assert_ledger_balances(self, best_effort=(), settle=20.0):
        """Every accepted join has exactly one leave, and no leave is for a
        join that failed outright. `best_effort` names the joins whose outcome
        was unknown (sent, no readable answer): each gets one leave with the
        nickname as sent. Waits up to `settle` seconds for leaves in flight."""
        deadline = time.time() + settle
        while True:
            accepted, leaves = self.ledger(best_effort)
            if leaves == accepted or time.time() > deadline:
                break
            time.sleep(0.2)
        time.sleep(0.5)
        accepted, leaves = self.ledger(best_effort)
        self.assertEqual(dict(accepted - leaves), {}, "accepted joins without a leave")
        self.assertEqual(dict(leaves - accepted), {}, "leaves without an accepted join")
        self.assertTrue(all(n == 1 for n in accepted.values()), accepted)

    def assert_still_serves(self):
        s = Stream(self.stub, join_request(99999))
        self.assertTrue(s.joined.wait(10))
        self.assertIsNone(s.code)
        s.leave()
        self.assertTrue(s.ended.wait(10))
        self.assertEqual(s.code, grpc.StatusCode.OK)

    def assert_memory_near_baseline(self):
        # A few hundred sessions come and go; what stays is allocator slack.
        grown = self.gw.rss_kib() - self.baseline_rss
        self.assertLess(grown, 64 * 1024, "RSS grew by %d KiB" % grown)

    def finish(self, best_effort=()):
        self.assert_still_serves()
        self.assert_ledger_balances(best_effort)
        self.assert_memory_near_baseline()

    def test_vs_down_during_a_wave_of_sessions(self):
        streams = self.open_many(30)
        self.gw.stop_sim()
        # Joins fail with UNAVAILABLE while VS is down.
        down = [Stream(self.stub, join_request(100 + i)) for i in range(10)]
        for s in down:
            self.assertTrue(s.ended.wait(15))
            self.assertEqual(s.code, grpc.StatusCode.UNAVAILABLE)
        # Pings fail: the open sessions get UPSTREAM_UNAVAILABLE notices.
        time.sleep(1.5)
        self.assertTrue(all(
            any(n.kind == presence_pb2.NOTICE_KIND_UPSTREAM_UNAVAILABLE for n in s.notices())
            for s in streams))
        # Leaves sent while VS is down wait, and arrive once it is back.
        for s in streams[:15]:
            s.leave()
        for s in streams[15:]:
            s.call.cancel()
        time.sleep(2)
        self.gw.restart_sim()
        self.finish()

    def test_vs_slow(self):
        self.fault(latency_ms=600)
        streams = self.open_many(20)
        for s in streams:
            s.leave()
        self.finish()

    def test_vs_answering_500_resetting_and_sending_garbage(self):
        streams = self.open_many(20)
        self.fault(function="pingRoom", http_status=500, times=20)
        self.fault(function="leaveRoom", http_status=500, times=5)
        self.fault(function="leaveRoom", drop_connection=True, times=5)
        self.fault(function="leaveRoom", garbage=True, times=3)
        time.sleep(1.2)
        for s in streams:
            s.leave()
        # A join answered 500 failed outright and is not left; one whose
        # connection dropped mid-answer, or answered 2xx with a body that does
        # not parse, may have reached VS, so it gets a best-effort leave with
        # the nickname as sent.
        for i, rule in enumerate(({"http_status": 500}, {"drop_connection": True},
                                  {"garbage": True})):
            self.fault(function="joinRoom", times=1, **rule)
            s = Stream(self.stub, join_request(500 + i))
            self.assertTrue(s.ended.wait(10))
            self.assertEqual(s.code, grpc.StatusCode.UNAVAILABLE)
        self.finish(best_effort=["f501", "f502"])

    def test_vs_refusing_leaves(self):
        streams = self.open_many(10)
        self.fault(function="leaveRoom", reject=True, message="no such presence")
        for s in streams:
            s.leave()
        for s in streams:
            self.assertTrue(s.ended.wait(10))
            self.assertEqual(s.code, grpc.StatusCode.OK)
        time.sleep(1)
        # VS said no: each leave was sent exactly once and not retried.
        leaves = self.gw.all_requests("leaveRoom")
        self.assertEqual(len(leaves), 10)
        self.assertEqual(len({dict(r["fields"])["nickname"] for r in leaves}), 10)
        self.clear_faults()
        self.assert_still_serves()

    def test_clients_cancelling_mid_join(self):
        self.fault(function="joinRoom", latency_ms=400)
        streams = [Stream(self.stub, join_request(i)) for i in range(30)]
        time.sleep(0.15)
        for s in streams:
            s.call.cancel()
        time.sleep(1)
        self.clear_faults()
        self.finish()

    def test_messages_after_leave_and_malformed_messages(self):
        streams = self.open_many(10)
        for s in streams[:5]:
            s.send(presence_pb2.SessionRequest(leave=presence_pb2.Leave()))
            s.send(presence_pb2.SessionRequest(activity=presence_pb2.Activity()))
            s.send(presence_pb2.SessionRequest(credits=presence_pb2.CreditsUpdate(credits=5)))
            s.requests.put(None)
        for s in streams[5:]:
            s.send(presence_pb2.SessionRequest())  # Empty: INVALID_ARGUMENT, and left.
        for s in streams:
            self.assertTrue(s.ended.wait(10))
        self.assertEqual({s.code for s in streams[:5]}, {grpc.StatusCode.OK})
        self.assertEqual({s.code for s in streams[5:]}, {grpc.StatusCode.INVALID_ARGUMENT})
        # Oversized: past the 16 KiB message limit.
        big = Stream(self.stub, presence_pb2.SessionRequest(join=presence_pb2.Join(
            performer_id=1, nickname="x" * 20000, ip_address="203.0.113.5")))
        self.assertTrue(big.ended.wait(10))
        self.assertEqual(big.code, grpc.StatusCode.RESOURCE_EXHAUSTED)
        # Not UTF-8: the server cannot parse it.
        raw = self.channel.stream_stream("/presence.v1.Presence/Session")
        garbage = raw(iter([b"\x0a\x06\x12\x04\xff\xfe\xfd\xfc"]))
        with self.assertRaises(grpc.RpcError) as ctx:
            list(garbage)
        self.assertEqual(ctx.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.finish()

    def test_streams_opened_and_abandoned_at_a_high_rate(self):
        deadline = time.time() + 5
        opened = 0
        while time.time() < deadline and opened < 600:
            s = Stream(self.stub, join_request(opened, performer=7))
            if opened % 2:
                s.call.cancel()  # Abandoned at once, maybe before the join.
            else:
                s.joined.wait(5)
                s.call.cancel()  # Abandoned right after joining.
            opened += 1
        self.finish()


if __name__ == "__main__":
    unittest.main()
