"""`ratchet dev` as a child process, for running dispatch-py against Ratchet.

A fresh server per use: its own store (a temporary SQLite file, or a fresh database on a
PostgreSQL server when given one's URL), a port it picks (--port 0, read from the
configuration block it prints), and an optional signing key file so that the endpoint's
DISPATCH_VERIFICATION_KEY can be set before the endpoint exists.
"""

import itertools
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.parse

_databases = itertools.count(1)


class PostgresDatabase:
    """A fresh database on the PostgreSQL server at `server_url` (psql makes and drops it)."""

    def __init__(self, server_url):
        self.server_url = server_url
        self.name = f"ratchet_py_{os.getpid()}_{next(_databases)}"
        self._psql(f"CREATE DATABASE {self.name}")
        self.url = urllib.parse.urlparse(server_url)._replace(path="/" + self.name).geturl()

    def drop(self):
        self._psql(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")

    def _psql(self, statement):
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", self.server_url,
                        "-c", statement], check=True, capture_output=True, timeout=30)


class RatchetDev:
    def __init__(self, ratchet, endpoint_url, api_key, signing_key_file=None, extra_args=(),
                 postgres=None, port=0, db=None):
        """`port` and `db` (a store to keep, which remove() leaves alone): to start a
        server again where a killed one was."""
        self.dir = tempfile.mkdtemp(prefix="ratchet-dev-py-")
        self.log_path = os.path.join(self.dir, "server.log")
        self.database = PostgresDatabase(postgres) if postgres else None
        if db is None:
            db = self.database.url if self.database else os.path.join(self.dir, "ratchet.db")
        args = [ratchet, "dev", endpoint_url, "--port", str(port), "--api-key", api_key,
                "--db", db]
        if signing_key_file:
            args += ["--signing-key", signing_key_file]
        args += list(extra_args)
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self._log)
        self.url, self.verification_key = self._read_configuration(timeout=15)

    def _read_configuration(self, timeout):
        """Reads the block `ratchet dev` prints once it listens."""
        deadline = time.monotonic() + timeout
        out = b""
        url = key = None
        while key is None:
            left = deadline - time.monotonic()
            if left <= 0 or self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"ratchet dev did not start: {out!r}\n{self.logs()}")
            ready, _, _ = select.select([self.process.stdout], [], [], left)
            if not ready:
                continue
            chunk = os.read(self.process.stdout.fileno(), 4096)
            if not chunk:
                continue
            out += chunk
            for line in out.decode().splitlines():
                if line.startswith("  export DISPATCH_API_URL="):
                    url = line.split("=", 1)[1].strip('"')
                if line.startswith("  export DISPATCH_VERIFICATION_KEY="):
                    key = line.split("=", 1)[1].strip('"')
        return url, key

    def logs(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def stop(self):
        """Stops the server with SIGTERM; its exit status (0: it stopped cleanly)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stdout.close()
        self._log.close()
        return self.process.returncode

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.database:
            self.database.drop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        self.remove()


def keygen(ratchet, path):
    """`ratchet keygen --out path`; the public key (base64) it prints."""
    out = subprocess.run([ratchet, "keygen", "--out", path], check=True, capture_output=True,
                         text=True).stdout
    for line in out.splitlines():
        if line.startswith("DISPATCH_VERIFICATION_KEY="):
            return line.split("=", 1)[1]
    raise RuntimeError(f"ratchet keygen printed no key: {out}")
