"""The deployment examples keep the promises the README makes about them:
TLS and a token on a public listener, a journal on a kept volume, a memory
limit that covers --max_sessions, a drain that fits the grace period, and
no privileges. Read with PyYAML; no cluster needed."""

import configparser
import os
import re
import unittest

import yaml

BYTES_PER_SESSION = 18.5 * 1024  # BENCHMARKS.md, rounded up.
ROOT = os.path.join(os.environ.get("TEST_SRCDIR", "."), "presence_gateway")


def path(name):
    for base in (ROOT, "."):
        candidate = os.path.join(base, "deploy", name)
        if os.path.exists(candidate):
            return candidate
    raise FileNotFoundError(name)


def quantity(text):
    units = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3}
    match = re.fullmatch(r"(\d+)(Ki|Mi|Gi)?", str(text))
    return int(match.group(1)) * units.get(match.group(2), 1)


def seconds(flag_value):
    match = re.fullmatch(r"(\d+)s", flag_value)
    return int(match.group(1))


class KubernetesTest(unittest.TestCase):
    def setUp(self):
        with open(path("kubernetes.yaml")) as f:
            self.docs = [d for d in yaml.safe_load_all(f) if d]
        self.set = next(d for d in self.docs
                        if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "presence")
        self.pod = self.set["spec"]["template"]["spec"]
        self.container = self.pod["containers"][0]
        self.flags = dict(a[2:].split("=", 1) if "=" in a else (a[2:], "")
                          for a in self.container["args"])

    def test_a_public_listener_has_tls_and_a_token(self):
        self.assertTrue(self.flags["listen"].startswith("0.0.0.0:"))
        for flag in ("tls_cert", "tls_key", "auth_token_file"):
            self.assertIn(flag, self.flags)

    def test_the_journal_is_on_a_volume_the_pod_keeps(self):
        state_dir = self.flags["state_dir"]
        mounts = {m["mountPath"]: m["name"] for m in self.container["volumeMounts"]}
        claims = [c["metadata"]["name"] for c in self.set["spec"]["volumeClaimTemplates"]]
        self.assertIn(mounts[state_dir], claims)

    def test_the_memory_limit_covers_max_sessions(self):
        limit = quantity(self.container["resources"]["limits"]["memory"])
        self.assertGreater(limit, int(self.flags["max_sessions"]) * BYTES_PER_SESSION * 1.3)

    def test_the_drain_fits_the_grace_period(self):
        pre_stop = self.container["lifecycle"]["preStop"]["sleep"]["seconds"]
        drain = seconds(self.flags["drain_timeout"])
        self.assertGreater(self.pod["terminationGracePeriodSeconds"], pre_stop + drain)

    def test_a_rolling_restart_hands_viewers_over_in_grace(self):
        grace = seconds(self.flags["resume_grace"])
        self.assertGreater(grace, seconds(self.flags["drain_timeout"]))
        self.assertLessEqual(grace, 60)  # A held viewer is present at VS though gone.

    def test_no_privileges_and_one_replica_down_at_a_time(self):
        self.assertTrue(self.pod["securityContext"]["runAsNonRoot"])
        sc = self.container["securityContext"]
        self.assertFalse(sc["allowPrivilegeEscalation"])
        self.assertTrue(sc["readOnlyRootFilesystem"])
        self.assertEqual(sc["capabilities"]["drop"], ["ALL"])
        pdb = next(d for d in self.docs if d["kind"] == "PodDisruptionBudget")
        self.assertEqual(pdb["spec"]["maxUnavailable"], 1)


    def test_the_fleet_shares_a_redis_the_manifest_runs(self):
        self.assertGreaterEqual(self.set["spec"]["replicas"], 3)
        url = re.fullmatch(r"redis://([^:/]+):(\d+)", self.flags["redis_url"])
        self.assertIsNotNone(url, self.flags["redis_url"])
        service = next(d for d in self.docs
                       if d["kind"] == "Service" and d["metadata"]["name"] == url.group(1))
        self.assertEqual(service["spec"]["ports"][0]["port"], int(url.group(2)))
        redis = next(d for d in self.docs
                     if d["kind"] == "StatefulSet" and d["metadata"]["name"] == url.group(1))
        redis_container = redis["spec"]["template"]["spec"]["containers"][0]
        # No persistence: the replicas register again what they hold.
        self.assertIn('--save ""', redis_container["args"][0])
        self.assertIn("--appendonly no", redis_container["args"][0])
        # The password comes from the same Secret on both sides, never a flag value.
        self.assertIn("--requirepass \"$(cat /etc/redis/password)\"", redis_container["args"][0])
        mounts = {m["mountPath"]: m["name"] for m in self.container["volumeMounts"]}
        password_volume = mounts[os.path.dirname(self.flags["redis_password_file"])]
        secrets = {v["name"]: v["secret"]["secretName"] for v in self.pod["volumes"] if "secret" in v}
        redis_secrets = {v["name"]: v["secret"]["secretName"]
                         for v in redis["spec"]["template"]["spec"]["volumes"] if "secret" in v}
        self.assertEqual(secrets[password_volume], redis_secrets["password"])
        self.assertLessEqual(seconds(self.flags["replica_ttl"]), 30)


class SystemdTest(unittest.TestCase):
    def test_the_state_dir_is_writable_under_protect_system_strict(self):
        unit = configparser.ConfigParser(strict=False, interpolation=None)
        with open(path("presence.service")) as f:
            unit.read_string(f.read().replace("\\\n", " "))
        service = unit["Service"]
        self.assertEqual(service["ProtectSystem"], "strict")
        state_dir = re.search(r"--state_dir=(\S+)", service["ExecStart"]).group(1)
        self.assertEqual(state_dir, "/var/lib/" + service["StateDirectory"])
        drain = seconds(re.search(r"--drain_timeout=(\S+)", service["ExecStart"]).group(1))
        self.assertGreater(seconds(service["TimeoutStopSec"]), drain)


if __name__ == "__main__":
    unittest.main()
