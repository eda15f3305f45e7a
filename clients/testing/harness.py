"""Starts the real VS simulator and presence_server for client tests.

Both are Bazel-built binaries passed in as runfiles. The simulator prints its
URL on stdout; the server logs "listening address=HOST:PORT" on stderr. The
simulator's control API tells tests what VS saw.
"""

import json
import os
import socket
import re
import struct
import subprocess
import threading
import time
import urllib.request


def runfile(path):
    base = os.environ.get("RUNFILES_DIR") or os.path.join(os.getcwd(), "..")
    for candidate in (os.path.join(base, "presence_gateway", path), os.path.join(base, path), path):
        if os.path.exists(candidate):
            return candidate
    raise FileNotFoundError(path)


class Gateway:
    """A VS simulator and a presence_server in front of it, on loopback."""

    def __init__(self, ping_interval="300ms", extra_flags=()):
        self.sim = None
        self.history = []
        self.start_sim(port=0)
        self.ping_interval = ping_interval
        self.server = None
        self.log = []
        self.start_server(extra_flags)

    def start_server(self, extra_flags=()):
        """Starts presence_server in front of the simulator (again, after a
        crash or stop, when called a second time)."""
        if self.server is not None and self.server.stderr is not None:
            self.server.stderr.close()
        env = dict(os.environ, VS_KEY="client-test-key")
        self.server = subprocess.Popen(
            [runfile("server/presence_server"), "--listen=127.0.0.1:0",
             "--vs_url=" + self.sim_url, "--ping_interval=" + self.ping_interval,
             "--metrics_listen=127.0.0.1:0"] + list(extra_flags),
            stderr=subprocess.PIPE, text=True, env=env)
        self.address = None
        deadline = time.time() + 60
        while time.time() < deadline:
            line = self.server.stderr.readline()
            if not line:
                break
            self.log.append(line)
            match = re.search(r"listening address=(\S+)", line)
            if match:
                self.address = match.group(1)
                boot = re.search(r"boot_port=(\d+)", line)
                self.boot_port = int(boot.group(1)) if boot else None
                break
        if not self.address:
            self.stop()
            raise RuntimeError("presence_server did not start:\n" + "".join(self.log))
        threading.Thread(target=self._drain_log, args=(self.server,), daemon=True).start()

    def start_sim(self, port):
        """Starts the simulator (again, on the same port when `port` is given)."""
        self.sim = subprocess.Popen(
            [runfile("server/vs_simulator/vs_simulator_main"), "--port=%d" % port,
             "--key=client-test-key"],
            stdout=subprocess.PIPE, text=True)
        line = self.sim.stdout.readline()
        match = re.search(r"listening on (http://\S+)", line)
        if not match:
            self.sim.kill()
            raise RuntimeError("simulator did not start: %r" % line)
        self.sim_url = match.group(1)
        self.sim_port = int(self.sim_url.rsplit(":", 1)[1])

    def stop_sim(self):
        """Takes VS down: connections are refused until start_sim(port). What it
        saw so far is kept for all_requests()."""
        self.history.extend(self.requests())
        self.sim.terminate()
        self.sim.wait(timeout=30)
        self.sim.stdout.close()

    def restart_sim(self):
        """Brings VS back on the same port. Its request log starts empty."""
        self.start_sim(port=self.sim_port)

    def boot(self, secret, customer_id):
        """Posts VS's customerBoot for `customer_id` to the boot endpoint;
        returns the answer's text (VS's style: "{ success: true, ... }")."""
        req = urllib.request.Request(
            "http://127.0.0.1:%d/boot?key=%s" % (self.boot_port, secret),
            data=("function=customerBoot&customerId=%d" % customer_id).encode(), method="POST")
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.read().decode()

    def rss_kib(self):
        with open("/proc/%d/status" % self.server.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def _drain_log(self, server):
        try:
            for line in server.stderr:
                self.log.append(line)
        except ValueError:
            pass  # Closed by a restart.

    def counts(self):
        with urllib.request.urlopen(self.sim_url + "/_sim/counts", timeout=5) as r:
            return json.load(r)

    def requests(self, function=None):
        with urllib.request.urlopen(self.sim_url + "/_sim/requests", timeout=5) as r:
            rows = [json.loads(line) for line in r.read().decode().splitlines() if line]
        return [row for row in rows if function is None or row["function"] == function]

    def all_requests(self, function=None):
        """Every request VS saw, across simulator restarts."""
        rows = self.history + self.requests()
        return [row for row in rows if function is None or row["function"] == function]

    def wait_count(self, function, n, timeout=10.0):
        """Waits until VS saw `n` calls of `function`; then checks it stays `n`."""
        deadline = time.time() + timeout
        while time.time() < deadline and self.counts()[function] < n:
            time.sleep(0.05)
        time.sleep(0.2)
        return self.counts()[function]

    def stop(self):
        for proc in (self.server, self.sim):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=25)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if not self.sim.stdout.closed:
            self.sim.stdout.close()
        self.server.stderr.close()


def make_pki(directory):
    """A throwaway CA, a server certificate for 127.0.0.1 and a client
    certificate, made with the openssl tool. Returns a dict of PEM paths:
    ca, server_cert, server_key, client_cert, client_key."""
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")

    def openssl(*args):
        subprocess.run(["openssl"] + list(args), cwd=directory, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-ca",
            "-keyout", "ca.key", "-out", "ca.pem")
    for who in ("server", "client"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
                "-keyout", who + ".key", "-out", who + ".csr")
        openssl("x509", "-req", "-in", who + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "1", "-extfile", "san.ext", "-out", who + ".pem")
    paths = {"ca": "ca.pem", "server_cert": "server.pem", "server_key": "server.key",
             "client_cert": "client.pem", "client_key": "client.key"}
    return {k: os.path.join(directory, v) for k, v in paths.items()}


def secret_file(directory, name, secret):
    """Writes a secret (a token, a boot key) to a file of its own; returns its path."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write(secret + "\n")
    os.chmod(path, 0o600)
    return path


class Proxy:
    """A TCP proxy on loopback in front of `target` ("host:port") whose
    connections a test can cut at once, as a network blip or a restarted
    load balancer would: both ends see the connection die."""

    def __init__(self, target):
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.address = "127.0.0.1:%d" % self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.sockets = []
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [client, upstream]
                self.accepted += 1
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        """Resets every connection through the proxy (new ones still work)."""
        with self.lock:
            sockets, self.sockets = self.sockets, []
        for s in sockets:
            try:
                # shutdown wakes the pipe threads blocked in recv (close alone
                # would not); linger 0 makes the close a reset.
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass

    def close(self):
        self.listener.close()
        self.cut()
