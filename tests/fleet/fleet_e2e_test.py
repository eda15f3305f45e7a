"""The fleet end to end: a real redis-server, a VS simulator and three gateway
processes sharing it (--redis_url), driven by real gRPC clients on loopback.

Every scenario ends with the ledger at VS: each accepted joinRoom has exactly
one leaveRoom, and no leaveRoom lacks its join.
"""

import os
import signal
import time
import unittest

import grpc

from fleet_harness import REPLICA_TTL, FleetCase, Viewer, wait_for


class FleetTest(FleetCase):
    def test_a_killed_replicas_viewers_are_left_by_a_survivor_once(self):
        a, b, _ = self.replicas
        on_a = [Viewer(a, 1, "guest%d" % i) for i in range(5)] + [Viewer(a, 2, "reg", customer=7)]
        on_b = [Viewer(b, 1, "other")]
        self.wait_recorded(a, len(on_a))
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
        self.wait_recorded(a, 2)
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
        d = self.replica("d", state)
        self.replicas.append(d)
        guests = [Viewer(d, 21, "hal%d" % i) for i in range(2)]
        joined = Viewer(d, 22, "ivy", customer=91)  # D joined it; B shares it.
        shared = Viewer(b, 22, "ivy", customer=91)
        self.assertEqual(shared.nickname, joined.nickname)
        self.wait_recorded(d, 3)
        d.stop(signal.SIGKILL)
        # Restarted at once on the same state directory: the successor takes
        # the dead run's presences over itself, before any survivor would.
        d2 = self.replica("d2", state)
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
        # Recorded in Redis (queued after the join's answer) before the kill.
        wait_for(lambda: self.redis.command("HEXISTS", "presence:{r:%s}:presences" % d2.id,
                                            late.joined.session_id) == ":1",
                 what="jon's record")
        d2.stop(signal.SIGKILL)
        wait_for(lambda: self.count("leaveRoom") == 3, what="the survivors' takeover")
        d3 = self.replica("d3", state)
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
