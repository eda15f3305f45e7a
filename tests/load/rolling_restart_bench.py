"""A rolling restart of a two-replica fleet, as VS sees it.

    bazel run //tests/load:rolling_restart_bench -- [--viewers=20000] [--grace=30s]

Starts a VS simulator, redis-server and two gateways (A, B) on fixed loopback
ports with --resume_grace, and holds --viewers viewers with the asyncio helper
(clients/python), half connecting to A first and half to B first, each with
a target list of both (pick_first: a viewer whose replica goes away
reconnects to the other, with its resume token). Then restarts A (SIGTERM,
wait until every viewer resumed, start A again on the same port), then B the
same way, and prints what VS saw meanwhile: joinRoom and leaveRoom for the
viewers, the longest gap between two pings of one presence, and how long each
restart took until every viewer had resumed. Finally every viewer leaves, and
the ledger is checked (one leave per join).

Every process is started and reaped here; loopback only.
"""

import argparse
import collections
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import harness
from fleet_harness import AsyncViewers, Redis, Replica, free_port, wait_for


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--viewers", type=int, default=20000)
    parser.add_argument("--grace", default="30s")
    parser.add_argument("--ping_interval", default="10s")
    parser.add_argument("--channels", type=int, default=8, help="per replica order")
    return parser.parse_args()


class Fleet:
    def __init__(self, args, directory):
        self.dir = directory
        self.sim = subprocess.Popen(
            [harness.runfile("server/vs_simulator/vs_simulator_main"), "--port=0",
             "--key=fleet-key"], stdout=subprocess.PIPE, text=True)
        self.sim_url = re.search(r"listening on (http://\S+)",
                                 self.sim.stdout.readline()).group(1)
        self.redis = Redis(directory)
        self.ports = {"a": free_port(), "b": free_port()}
        self.flags = ["--resume_grace=" + args.grace, "--ping_interval=" + args.ping_interval,
                      "--replica_ttl=10s", "--redis_timeout=1s", "--drain_timeout=20s"]
        self.replicas = {name: self.start(name) for name in "ab"}

    def start(self, name):
        return Replica(self.sim_url, self.redis.url, self.dir, name,
                       self.flags + ["--listen=127.0.0.1:%d" % self.ports[name]])

    def requests(self, function):
        with urllib.request.urlopen(self.sim_url + "/_sim/requests", timeout=60) as r:
            rows = [json.loads(line) for line in r.read().decode().splitlines() if line]
        return [row for row in rows if row["function"] == function]

    def stop(self):
        for r in self.replicas.values():
            r.stop()
        self.redis.kill()
        self.sim.terminate()
        self.sim.wait()


def longest_ping_gaps(pings):
    by_nickname = collections.defaultdict(list)
    for row in pings:
        by_nickname[dict(row["fields"])["nickname"]].append(row["at_unix_ms"] / 1000)
    gaps = []
    for times in by_nickname.values():
        times.sort()
        gaps.append(max((b - a for a, b in zip(times, times[1:])), default=0))
    return sorted(gaps)


def restart(fleet, viewers, name, moving):
    """SIGTERMs replica `name`, waits until its `moving` viewers resumed on
    the other, starts it again on its port; returns the seconds to the last
    resume."""
    before = [s.reconnects for s in viewers.sessions]
    start = time.time()
    old = fleet.replicas[name]
    stopper = threading.Thread(target=old.stop)
    stopper.start()
    wait_for(lambda: viewers.reconnected(before) >= moving, timeout=300,
             what="the viewers of %s to resume" % name)
    took = time.time() - start
    stopper.join()
    fleet.replicas[name] = fleet.start(name)
    return took


def main():
    args = parse_args()
    directory = tempfile.mkdtemp(prefix="rolling-")
    fleet = Fleet(args, directory)
    viewers = AsyncViewers()
    a, b = (fleet.replicas[n].address for n in "ab")
    try:
        targets = ["ipv4:%s,%s" % (a, b), "ipv4:%s,%s" % (b, a)] * args.channels
        t = time.time()
        viewers.open(targets, args.viewers, first_performer=1, performers=500,
                     first_customer=500000, backoff=(0.5, 2.0))
        print("opened %d viewers in %.1f s (half on A, half on B)"
              % (args.viewers, time.time() - t), flush=True)
        joins_before = len(fleet.requests("joinRoom"))
        time.sleep(2 * float(args.ping_interval.rstrip("s")))  # Pings settle into their rounds.
        began = time.time()
        took_a = restart(fleet, viewers, "a", args.viewers // 2)
        print("A restarted: its %d viewers resumed on B within %.1f s" % (args.viewers // 2, took_a),
              flush=True)
        took_b = restart(fleet, viewers, "b", args.viewers)
        print("B restarted: all %d viewers resumed on A within %.1f s" % (args.viewers, took_b),
              flush=True)
        time.sleep(2 * float(args.ping_interval.rstrip("s")))  # A round of pings after.
        ended = time.time()
        joins = len(fleet.requests("joinRoom")) - joins_before
        leaves = len(fleet.requests("leaveRoom"))
        pings = [r for r in fleet.requests("pingRoom") if began - 15 <= r["at_unix_ms"] / 1000 < ended]
        gaps = longest_ping_gaps(pings)
        resumed = sum(1 for s in viewers.sessions if s.resumed)
        print("during the rolling restart VS saw: joinRoom %d, leaveRoom %d; viewers resumed %d"
              % (joins, leaves, resumed))
        print("longest ping gap per presence: p50 %.1f s, p99 %.1f s, max %.1f s (interval %s)"
              % (gaps[len(gaps) // 2], gaps[int(len(gaps) * 0.99)], gaps[-1], args.ping_interval))
    finally:
        viewers.close()
    wait_for(lambda: len(fleet.requests("leaveRoom")) >= args.viewers, timeout=300,
             what="every leave")
    accepted = collections.Counter(r["answered_nickname"] for r in fleet.requests("joinRoom")
                                   if r["success"])
    left = collections.Counter(dict(r["fields"])["nickname"] for r in fleet.requests("leaveRoom"))
    balanced = accepted == left and all(n == 1 for n in left.values())
    print("after every viewer left: joinRoom %d, leaveRoom %d, ledger %s"
          % (sum(accepted.values()), sum(left.values()), "balanced" if balanced else "NOT balanced"))
    fleet.stop()
    shutil.rmtree(directory, ignore_errors=True)
    return 0 if balanced else 1


if __name__ == "__main__":
    sys.exit(main())
