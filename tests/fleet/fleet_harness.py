"""The fleet's test fixture: a real redis-server, a VS simulator and gateway
processes sharing it (--redis_url), each started and reaped by the test, and
a hand-driven Session stream."""

import asyncio
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
from presence_client import aio as presence_aio

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
             "--appendonly", "no", "--dir", self.dir, "--loglevel", "warning",
             "--enable-debug-command", "local"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: self.command("PING") == "+PONG", 10, "redis-server to start")

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def stalled(self):
        """True while Redis does not answer a PING within 50 ms (DEBUG SLEEP)."""
        return self.command("PING", timeout=0.05) is None

    def command(self, *args, timeout=2):
        """One command over a raw socket (RESP); the first reply line."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
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
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
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
        self._reader.join(5)  # The pipe ends with the process.
        if not self._reader.is_alive():
            self.proc.stderr.close()


class Viewer:
    """One Session stream, driven by hand."""

    def __init__(self, replica, performer, nickname, customer=None, resume_token=""):
        self.requests = queue.Queue()
        join = presence_pb2.Join(performer_id=performer, nickname=nickname,
                                 ip_address="203.0.113.5", registered=customer is not None,
                                 resume_token=resume_token)
        if customer is not None:
            join.customer_id = customer
        self.requests.put(presence_pb2.SessionRequest(join=join))
        self.call = replica.stub.Session(iter(self.requests.get, None))
        first = next(self.call)
        if not first.HasField("joined"):
            raise AssertionError("no joined: %s" % first)
        self.joined = first.joined
        self.nickname = first.joined.nickname

    def cancel(self):
        """The stream breaks without a leave (a lost connection, to the gateway)."""
        self.call.cancel()

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


class FleetCase(unittest.TestCase):
    """Three replicas, Redis and the simulator per test; REPLICA_FLAGS for all."""

    REPLICA_FLAGS = ()

    def setUp(self):
        self.dir = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
        self.sim = subprocess.Popen(
            [harness.runfile("server/vs_simulator/vs_simulator_main"), "--port=0",
             "--key=fleet-key"], stdout=subprocess.PIPE, text=True)
        self.sim_url = re.search(r"listening on (http://\S+)", self.sim.stdout.readline()).group(1)
        self.redis = Redis(self.dir)
        self.replicas = [self.replica(n) for n in "abc"]
        # Each replica has seen the others alive once (GetRoom lists those).
        wait_for(lambda: all(r.metric("presence_fleet_live_replicas") == 3 for r in self.replicas),
                 what="three live replicas")

    def replica(self, name, extra_flags=()):
        return Replica(self.sim_url, self.redis.url, self.dir, name,
                       tuple(self.REPLICA_FLAGS) + tuple(extra_flags))

    def tearDown(self):
        if os.environ.get("FLEET_TEST_LOGS"):
            for r in self.replicas:
                print("==== replica", r.id, "\n" + "".join(r.log))
        for r in self.replicas:
            r.stop()
        self.redis.kill()
        self.sim.terminate()
        self.sim.wait()
        self.sim.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def requests(self, function=None):
        with urllib.request.urlopen(self.sim_url + "/_sim/requests", timeout=30) as r:
            rows = [json.loads(line) for line in r.read().decode().splitlines() if line]
        return [row for row in rows if function is None or row["function"] == function]

    def count(self, function):
        return len(self.requests(function))

    def wait_recorded(self, replica, records):
        """Until `replica`'s presence records reached Redis (they are queued
        after the join's answer): a kill -9 before would lose them, and the
        survivors would have nothing to leave."""
        wait_for(lambda: self.redis.command("HLEN", "presence:{r:%s}:presences" % replica.id)
                 == ":%d" % records, what="%d records of %s" % (records, replica.id))

    def pings_between(self, start, end, nickname):
        return [r for r in self.requests("pingRoom")
                if dict(r["fields"])["nickname"] == nickname and start <= r["at_unix_ms"] / 1000 < end]

    def assert_ledger_balanced(self):
        """Every accepted join has exactly one leave; no leave lacks its join."""
        leaves = collections.Counter(
            dict(row["fields"])["nickname"] for row in self.requests("leaveRoom"))
        for join in self.requests("joinRoom"):
            if join["success"]:
                self.assertEqual(leaves.pop(join["answered_nickname"], 0), 1,
                                 join["answered_nickname"])
        self.assertEqual(dict(leaves), {}, "leaves without an accepted join")


class AsyncViewers:
    """Many viewers held by the asyncio helper (clients/python) on an event
    loop of their own thread: each reconnects by itself, with its resume
    token. Viewer k: nickname fan<k>, spread over the channels in turn; odd k
    are registered customers (first_customer + k), even k guests."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.channels = []
        self.sessions = []

    def run(self, coroutine, timeout=600):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def open(self, targets, count, first_performer, performers, first_customer,
             backoff=(0.2, 1.0)):
        self.run(self._open(targets, count, first_performer, performers, first_customer,
                            backoff))

    async def _open(self, targets, count, first_performer, performers, first_customer, backoff):
        self.channels = [presence_aio.connect(t) for t in targets]
        opening = asyncio.Semaphore(500)  # Joins outstanding at once.

        async def open_one(session):
            async with opening:
                await session.open()

        for k in range(count):
            registered = k % 2 == 1
            self.sessions.append(presence_aio.ViewerSession(
                self.channels[k % len(self.channels)], performer_id=first_performer + k % performers,
                nickname="fan%d" % k, ip_address="203.0.113.7",
                customer_id=first_customer + k if registered else None, registered=registered,
                initial_backoff=backoff[0], max_backoff=backoff[1], join_timeout=120))
        await asyncio.gather(*(open_one(s) for s in self.sessions))

    def reconnected(self, since_counts):
        """Viewers that reconnected since `since_counts` and resumed."""
        return sum(1 for s, before in zip(self.sessions, since_counts)
                   if s.reconnects > before and s.resumed and s.display_nickname)

    async def _close(self):
        await asyncio.gather(*(s.close(timeout=60) for s in self.sessions))
        for channel in self.channels:
            await channel.close()

    def close(self):
        self.run(self._close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
