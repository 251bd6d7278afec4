"""Ratchet's own dispatch-py programs (suite.py, flavour "programs"): small realistic
applications in programs/, run unchanged as separate processes (`dispatch.run`, its aiohttp
endpoint) against `ratchet dev`, each checked by what it prints.

- fanout_one_fails.py: a gather with one failing branch; the child's KeyError reaches the
  coroutine with its type, and the coroutine carries on.
- retry_then_succeed.py: a step fails twice with a temporary error and then succeeds; a
  ValueError is not retried and is caught with its type.
- long_across_restart.py: ten steps; the server is killed (kill -9) while the coroutine's
  run before its fourth step is in flight, and started again on the same store, port and
  signing key; the restarted server sends that run again, and the program finishes with
  the right result, every step run once.

The kill lands while the coroutine runs, not while a step does: dispatch-py's endpoint
answers HTTP 500 to a second run of a call it has finished already (its result future is
set twice: InvalidStateError), so a call whose reply a killed server had not recorded
fails after --max-attempts. That is dispatch-py's defect (docs/dispatch-py.md).
"""

import os
import socket
import subprocess
import sys
import tempfile
import time
import unittest

from ratchet_dev import RatchetDev

HERE = os.path.dirname(os.path.abspath(__file__))
TIMEOUT = 60.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, what, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


class Programs(unittest.TestCase):
    settings = None  # suite.Settings, set by suite.py
    signing = "off"

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ratchet-programs-")
        self.endpoint_port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.endpoint_port}"
        self.key_file = self.settings.signing_key_file if self.signing == "on" else None
        self.servers = []

    def tearDown(self):
        # The latest server first: the first one's remove() drops a PostgreSQL database
        # the later ones use.
        statuses = [server.stop() for server in reversed(self.servers)]
        for server in self.servers:
            if self._outcome_failed():
                sys.stderr.write(f"--- ratchet dev's log:\n{server.logs()}\n")
            server.remove()
        if statuses and statuses[0] != 0:
            self.fail(f"ratchet dev exited with status {statuses[0]}")

    def _outcome_failed(self):
        result = getattr(self._outcome, "result", None)
        return result is not None and any(t is self for t, _ in result.failures + result.errors)

    def start_server(self, port=0, db=None):
        server = RatchetDev(self.settings.ratchet, self.endpoint, "test", self.key_file,
                            postgres=None if db else self.settings.postgres, port=port, db=db)
        self.servers.append(server)
        return server

    def start_program(self, name, server, env=None):
        environment = dict(os.environ, DISPATCH_API_URL=server.url, DISPATCH_API_KEY="test",
                           DISPATCH_ENDPOINT_URL=self.endpoint,
                           DISPATCH_ENDPOINT_ADDR=f"127.0.0.1:{self.endpoint_port}",
                           **(env or {}))
        environment.pop("DISPATCH_VERIFICATION_KEY", None)
        if self.signing == "on":
            environment["DISPATCH_VERIFICATION_KEY"] = server.verification_key
        self.out_path = os.path.join(self.dir, name + ".out")
        self.out = open(self.out_path, "wb")
        return subprocess.Popen([sys.executable, os.path.join(HERE, "programs", name + ".py")],
                                env=environment, stdout=self.out, stderr=subprocess.STDOUT)

    def finish(self, program):
        try:
            program.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            program.kill()
            program.wait()
        self.out.close()
        with open(self.out_path, "rb") as f:
            output = f.read().decode(errors="replace")
        self.assertEqual(program.returncode, 0, output)
        return output.strip().splitlines()[-1]

    def run_program(self, name):
        server = self.start_server()
        return self.finish(self.start_program(name, server))

    def test_fanout_with_one_failing_branch(self):
        self.assertEqual(self.run_program("fanout_one_fails"),
                         "{'total': 15.0, 'failed': \"KeyError 'durian'\"}")

    def test_retries_then_succeeds(self):
        self.assertEqual(self.run_program("retry_then_succeed"),
                         "42 after 3 attempts; caught ValueError: 21 is not valid "
                         "(invalid ran 1 time)")

    def test_long_coroutine_across_a_server_kill(self):
        steps_file = os.path.join(self.dir, "steps")
        release_file = os.path.join(self.dir, "release")
        server = self.start_server()
        port = int(server.url.rsplit(":", 1)[1])
        db = server.database.url if server.database else os.path.join(server.dir, "ratchet.db")
        program = self.start_program("long_across_restart", server, {
            "STEPS_FILE": steps_file, "HOLD_AT_STEP": "4", "RELEASE_FILE": release_file})

        def lines():
            try:
                with open(steps_file) as f:
                    return f.read().split()
            except OSError:
                return []

        wait_for(lambda: "held" in lines(), "the coroutine to reach its fourth step")
        server.process.kill()  # kill -9, the coroutine's run in flight
        server.process.wait()
        self.start_server(port=port, db=db)
        open(release_file, "w").close()
        self.assertEqual(self.finish(program), str(sum(n * n for n in range(1, 11))))
        steps = [int(line) for line in lines() if line != "held"]
        self.assertEqual(steps, list(range(1, 11)))
        # The run in flight at the kill was sent again by the restarted server.
        self.assertEqual(lines().count("held"), 2)


TESTS = ["test_fanout_with_one_failing_branch", "test_retries_then_succeeds",
         "test_long_coroutine_across_a_server_kill"]
