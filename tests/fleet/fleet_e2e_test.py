"""The fleet end to end: a real redis-server, a VS simulator and three gateway
processes sharing it (--redis_url), driven by real gRPC clients on loopback.

Every scenario ends with the ledger at VS: each accepted joinRoom has exactly
one leaveRoom, and no leaveRoom lacks its join.
"""

import collections
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.request

import grpc

import harness
from presence.v1 import presence_pb2, presence_pb2_grpc

REPLICA_TTL = "2s"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, timeout=30.0, what="a condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting for %s" % what)


class Redis:
    """redis-server on a free loopback port, no persistence; kill() and
    start() again play "Redis crashed and came back empty"."""

    def __init__(self, directory):
        self.port = free_port()
        self.dir = directory
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir, "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: self.command("PING") == "+PONG", 10, "redis-server to start")

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def command(self, *args):
        """One command over a raw socket (RESP); the first reply line."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                wire = "*%d\r\n" % len(args) + "".join(
                    "$%d\r\n%s\r\n" % (len(a.encode()), a) for a in args)
                s.sendall(wire.encode())
                return s.makefile().readline().strip()
        except OSError:
            return None

    @property
    def url(self):
        return "redis://127.0.0.1:%d" % self.port


class Replica:
    """One presence_server process of the fleet."""

    def __init__(self, sim_url, redis_url, directory, name, extra_flags=()):
        self.log = []
        secret = os.path.join(directory, "boot-" + name)
        with open(secret, "w") as f:
            f.write("boot-key\n")
        self.proc = subprocess.Popen(
            [harness.runfile("server/presence_server"), "--listen=127.0.0.1:0",
             "--vs_url=" + sim_url, "--redis_url=" + redis_url, "--replica_ttl=" + REPLICA_TTL,
             "--redis_timeout=300ms", "--ping_interval=500ms", "--metrics_listen=127.0.0.1:0",
             "--boot_listen=127.0.0.1:0", "--boot_secret_file=" + secret, "--drain_timeout=10s"]
            + list(extra_flags),
            stderr=subprocess.PIPE, text=True, env=dict(os.environ, VS_KEY="fleet-key"))
        for line in self.proc.stderr:
            self.log.append(line)
            m = re.search(r"listening address=(\S+)", line)
            if m:
                self.address = m.group(1)
                self.metrics_port = int(re.search(r"metrics_port=(\d+)", line).group(1))
                self.boot_port = int(re.search(r"boot_port=(\d+)", line).group(1))
                self.id = re.search(r"replica=(\S+)", line).group(1)
                break
        else:
            raise RuntimeError("replica did not start:\n" + "".join(self.log))
        threading.Thread(target=self._drain, daemon=True).start()
        self.channel = grpc.insecure_channel(self.address)
        self.stub = presence_pb2_grpc.PresenceStub(self.channel)

    def _drain(self):
        for line in self.proc.stderr:
            self.log.append(line)

    def metric(self, name):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.metrics_port,
                                    timeout=5) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
        return None

    def room(self, performer):
        return self.stub.GetRoom(presence_pb2.GetRoomRequest(performer_id=performer),
                                 timeout=5).viewers

    def boot(self, customer):
        req = urllib.request.Request(
            "http://127.0.0.1:%d/boot?key=boot-key" % self.boot_port,
            data=("function=customerBoot&customerId=%d" % customer).encode(), method="POST")
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.read().decode()

    def stop(self, sig=signal.SIGTERM):
        # The signal first: closing the channel first would cancel the
        # streams, and the replica would leave them itself.
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.channel.close()


class Viewer:
    """One Session stream, driven by hand."""

    def __init__(self, replica, performer, nickname, customer=None):
        self.requests = queue.Queue()
        join = presence_pb2.Join(performer_id=performer, nickname=nickname,
                                 ip_address="203.0.113.5", registered=customer is not None)
        if customer is not None:
            join.customer_id = customer
        self.requests.put(presence_pb2.SessionRequest(join=join))
        self.call = replica.stub.Session(iter(self.requests.get, None))
        first = next(self.call)
        if not first.HasField("joined"):
            raise AssertionError("no joined: %s" % first)
        self.nickname = first.joined.nickname

    def leave(self):
        self.requests.put(presence_pb2.SessionRequest(leave=presence_pb2.Leave()))
        self.requests.put(None)
        for _ in self.call:
            pass

    def end_code(self, timeout=15):
        """Reads until the stream ends; returns its status code."""
        result = []

        def read():
            try:
                for _ in self.call:
                    pass
                result.append(grpc.StatusCode.OK)
            except grpc.RpcError as err:
                result.append(err.code())

        t = threading.Thread(target=read, daemon=True)
        t.start()
        t.join(timeout)
        return result[0] if result else None


class FleetTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
        self.sim = subprocess.Popen(
            [harness.runfile("server/vs_simulator/vs_simulator_main"), "--port=0",
             "--key=fleet-key"], stdout=subprocess.PIPE, text=True)
        self.sim_url = re.search(r"listening on (http://\S+)", self.sim.stdout.readline()).group(1)
        self.redis = Redis(self.dir)
        self.replicas = [Replica(self.sim_url, self.redis.url, self.dir, n) for n in "abc"]
        # Each replica has seen the others alive once (GetRoom lists those).
        wait_for(lambda: all(r.metric("presence_fleet_live_replicas") == 3 for r in self.replicas),
                 what="three live replicas")

    def tearDown(self):
        for r in self.replicas:
            r.stop()
        self.redis.kill()
        self.sim.terminate()
        self.sim.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def requests(self, function=None):
        with urllib.request.urlopen(self.sim_url + "/_sim/requests", timeout=5) as r:
            rows = [json.loads(line) for line in r.read().decode().splitlines() if line]
        return [row for row in rows if function is None or row["function"] == function]

    def count(self, function):
        return len(self.requests(function))

    def assert_ledger_balanced(self):
        """Every accepted join has exactly one leave; no leave lacks its join."""
        leaves = collections.Counter(
            dict(row["fields"])["nickname"] for row in self.requests("leaveRoom"))
        for join in self.requests("joinRoom"):
            if join["success"]:
                self.assertEqual(leaves.pop(join["answered_nickname"], 0), 1,
                                 join["answered_nickname"])
        self.assertEqual(dict(leaves), {}, "leaves without an accepted join")

    def test_a_killed_replicas_viewers_are_left_by_a_survivor_once(self):
        a, b, _ = self.replicas
        on_a = [Viewer(a, 1, "guest%d" % i) for i in range(5)] + [Viewer(a, 2, "reg", customer=7)]
        on_b = [Viewer(b, 1, "other")]
        killed = time.time()
        a.stop(signal.SIGKILL)
        wait_for(lambda: self.count("leaveRoom") >= len(on_a), what="the takeover leaves")
        took = time.time() - killed
        print("kill -9 to the last takeover leave: %.1f s (--replica_ttl=%s)" % (took, REPLICA_TTL))
        left = {dict(r["fields"])["nickname"] for r in self.requests("leaveRoom")}
        self.assertEqual(left, {v.nickname for v in on_a})
        self.assertEqual(sum(r.metric("presence_fleet_takeover_leaves_total")
                             for r in self.replicas[1:]), len(on_a))
        # The survivors' own viewers are untouched, and GetRoom forgets A's.
        wait_for(lambda: [v.nickname for v in b.room(1)] == [on_b[0].nickname],
                 what="GetRoom without the dead replica's viewers")
        on_b[0].leave()
        wait_for(lambda: self.count("leaveRoom") == len(on_a) + 1, what="B's leave")
        self.assert_ledger_balanced()

    def pings_between(self, start, end, nickname):
        return [r for r in self.requests("pingRoom")
                if dict(r["fields"])["nickname"] == nickname and start <= r["at_unix_ms"] / 1000 < end]

    def test_one_customer_on_two_replicas_is_one_presence(self):
        a, b, _ = self.replicas
        first = Viewer(a, 6, "erin", customer=42)
        second = Viewer(b, 6, "erin", customer=42)
        self.assertEqual(second.nickname, first.nickname)  # Shared: VS's one nickname.
        self.assertEqual(self.count("joinRoom"), 1)
        # One replica pings it: one ping per interval (500 ms), not two.
        start = time.time()
        wait_for(lambda: time.time() > start + 3, what="three seconds of pings")
        pings = len(self.pings_between(start, start + 3, first.nickname))
        self.assertGreaterEqual(pings, 4)
        self.assertLessEqual(pings, 8)
        # The first tab closes: VS sees no leave, and the pings go on from B.
        first.leave()
        handed = time.time()
        wait_for(lambda: len(self.pings_between(handed + 1, time.time(), first.nickname)) >= 3,
                 what="B to ping the presence")
        self.assertEqual(self.count("leaveRoom"), 0)
        self.assertEqual(len(b.room(6)), 1)
        second.leave()
        wait_for(lambda: self.count("leaveRoom") == 1, what="the one leave")
        # The customer comes back later: a fresh join, on either replica.
        again = Viewer(b, 6, "erin", customer=42)
        self.assertEqual(self.count("joinRoom"), 2)
        again.leave()
        wait_for(lambda: self.count("leaveRoom") == 2, what="the second leave")
        self.assert_ledger_balanced()

    def test_a_killed_replica_sharing_a_presence_leaves_it_to_the_others(self):
        a, b, c = self.replicas
        owner = Viewer(a, 11, "fay", customer=77)  # A joined: A pings it.
        other = Viewer(b, 11, "fay", customer=77)
        alone = Viewer(a, 12, "gus", customer=78)
        a.stop(signal.SIGKILL)
        # A's lone presence is left; the shared one is not (B holds it) and
        # its pings go on from B.
        wait_for(lambda: self.count("leaveRoom") == 1, what="the takeover leave")
        self.assertEqual(dict(self.requests("leaveRoom")[0]["fields"])["nickname"], alone.nickname)
        killed = time.time()
        wait_for(lambda: len(self.pings_between(killed, time.time(), owner.nickname)) >= 3,
                 what="B to ping the shared presence")
        self.assertEqual(self.count("leaveRoom"), 1)
        other.leave()
        wait_for(lambda: self.count("leaveRoom") == 2, what="the shared presence's leave")
        self.assertEqual(self.count("joinRoom"), 2)
        self.assert_ledger_balanced()

    def test_a_replica_restarted_on_its_state_dir_leaves_each_presence_once(self):
        _, b, _ = self.replicas
        state = ["--state_dir=" + os.path.join(self.dir, "state-d")]
        d = Replica(self.sim_url, self.redis.url, self.dir, "d", state)
        self.replicas.append(d)
        guests = [Viewer(d, 21, "hal%d" % i) for i in range(2)]
        joined = Viewer(d, 22, "ivy", customer=91)  # D joined it; B shares it.
        shared = Viewer(b, 22, "ivy", customer=91)
        self.assertEqual(shared.nickname, joined.nickname)
        d.stop(signal.SIGKILL)
        # Restarted at once on the same state directory: the successor takes
        # the dead run's presences over itself, before any survivor would.
        d2 = Replica(self.sim_url, self.redis.url, self.dir, "d2", state)
        self.replicas.append(d2)
        wait_for(lambda: self.count("leaveRoom") == 2, what="the guests' leaves")
        self.assertEqual({dict(r["fields"])["nickname"] for r in self.requests("leaveRoom")},
                         {g.nickname for g in guests})
        # The shared presence stays (B holds it) and is pinged by B now.
        since = time.time()
        wait_for(lambda: len(self.pings_between(since, time.time(), shared.nickname)) >= 3,
                 what="B to ping the shared presence")
        # Killed again after a survivor took over: the next start leaves nothing twice.
        late = Viewer(d2, 23, "jon")
        d2.stop(signal.SIGKILL)
        wait_for(lambda: self.count("leaveRoom") == 3, what="the survivors' takeover")
        d3 = Replica(self.sim_url, self.redis.url, self.dir, "d3", state)
        self.replicas.append(d3)
        wait_for(lambda: any("left_by_the_fleet=1" in line for line in d3.log),
                 what="d3's recovery")
        self.assertEqual(self.count("leaveRoom"), 3)
        self.assertIn(late.nickname,
                      {dict(r["fields"])["nickname"] for r in self.requests("leaveRoom")})
        shared.leave()
        wait_for(lambda: self.count("leaveRoom") == 4, what="the shared presence's leave")
        self.assert_ledger_balanced()

    def test_get_room_on_a_third_replica_lists_the_whole_fleet(self):
        a, b, c = self.replicas
        viewers = [Viewer(a, 7, "ann", customer=1), Viewer(b, 7, "bob"), Viewer(b, 8, "elsewhere")]
        names = wait_for(lambda: sorted(v.nickname for v in c.room(7)) if len(c.room(7)) == 2
                         else None, what="GetRoom on C")
        self.assertEqual(names, sorted([viewers[0].nickname, viewers[1].nickname]))
        room = {v.nickname: v for v in c.room(7)}
        self.assertEqual(room[viewers[0].nickname].customer_id, 1)
        self.assertTrue(room[viewers[0].nickname].registered)
        for v in viewers:
            v.leave()
        wait_for(lambda: len(c.room(7)) == 0, what="an empty room")
        wait_for(lambda: self.count("leaveRoom") == 3, what="the leaves")
        self.assert_ledger_balanced()

    def test_a_boot_at_one_replica_ends_the_stream_on_another(self):
        a, b, _ = self.replicas
        booted = Viewer(b, 3, "carol", customer=9)
        kept = Viewer(b, 3, "dave", customer=10)
        self.assertIn("success: true", a.boot(9))
        self.assertEqual(booted.end_code(), grpc.StatusCode.PERMISSION_DENIED)
        wait_for(lambda: self.count("leaveRoom") == 1, what="the booted viewer's leave")
        kept.leave()
        wait_for(lambda: self.count("leaveRoom") == 2, what="the other leave")
        self.assert_ledger_balanced()

    def test_redis_killed_and_restarted_empty(self):
        a, b, _ = self.replicas
        before = Viewer(a, 4, "before")
        self.redis.kill()
        wait_for(lambda: a.metric("presence_fleet_degraded") == 1, what="degraded mode")
        # Joins go on without Redis; the stream is served from this replica.
        during = Viewer(a, 4, "during")
        self.assertEqual(sorted(v.nickname for v in a.room(4)),
                         sorted([before.nickname, during.nickname]))
        self.redis.start()  # Same port, empty.
        wait_for(lambda: a.metric("presence_fleet_degraded") == 0, what="Redis back")
        # A registered again what it holds: both presences are recorded.
        wait_for(lambda: self.redis.command("HLEN", "presence:{r:%s}:presences" % a.id) == ":2",
                 what="A's records registered again")
        wait_for(lambda: len(b.room(4)) == 2, what="the room listed again on B")
        a.stop(signal.SIGKILL)
        wait_for(lambda: self.count("leaveRoom") == 2, what="the takeover of both")
        self.assert_ledger_balanced()

    def test_sigterm_leaves_its_own_viewers_and_nothing_is_taken_over(self):
        a, b, _ = self.replicas
        viewers = [Viewer(a, 5, "v%d" % i) for i in range(3)]
        self.assertEqual(self.count("leaveRoom"), 0)
        a.stop(signal.SIGTERM)  # Its drain leaves them.
        self.assertEqual({dict(r["fields"])["nickname"] for r in self.requests("leaveRoom")},
                         {v.nickname for v in viewers})
        self.assertEqual(self.count("leaveRoom"), 3)
        # The survivors have renewed since A left the fleet: a takeover, if
        # there were one to make, would have been made by then.
        wait_for(lambda: all(r.metric("presence_fleet_live_replicas") == 2
                             for r in self.replicas[1:]), what="the survivors to see A gone")
        self.assertEqual(self.count("leaveRoom"), 3)
        self.assertEqual(sum(r.metric("presence_fleet_takeover_leaves_total")
                             for r in self.replicas[1:]), 0)
        self.assert_ledger_balanced()


if __name__ == "__main__":
    unittest.main()
