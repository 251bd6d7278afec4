"""dispatch-py 0.8.0's own test suite, run against Ratchet instead of its test server.

dispatch-py's `dispatch.test.TestCase` starts its in-memory test server
(`dispatch.test.Service`) in setUp; here setUp starts a fresh `ratchet dev` per test
instead, and points the SDK's client at it. Everything else is dispatch-py's code,
unchanged: the tests of tests/test_http.py (the stdlib http.server and aiohttp endpoints),
tests/test_fastapi.py and tests/test_flask.py, each with and without signature
verification (DISPATCH_VERIFICATION_KEY set to the server's key, or not set), and
tests/test_client.py with its `server()` replaced by `ratchet dev`.

The tests that fail because of defects of dispatch-py itself are listed in KNOWN_DEFECTS
with the reason; they still run, and must fail (an unexpected success fails the suite, so
that the list stays true).

With --postgres URL, each `ratchet dev` keeps its calls in a fresh database on that
PostgreSQL server instead of a SQLite file.

Beside dispatch-py's tests, one of Ratchet's own with dispatch-py's aiohttp endpoint
(flavour "large", large_values.py): values over 64 KiB, which the store keeps out of line,
come back to dispatch-py byte for byte.

usage: suite.py --ratchet PATH --dispatch-py DIR [--flavour NAME]... [--signing on|off|both]
                [--postgres URL]
"""

import argparse
import asyncio
import fnmatch
import inspect
import os
import sys
import tempfile
import threading
import time
import unittest

from ratchet_dev import RatchetDev, keygen
from stub_internet import StubInternet

# (flavour, signing, test name pattern) -> why it fails with any server of the protocol.
# Tests listed here run as expected failures, under a short timeout when they hang.
KNOWN_DEFECTS = [
    (
        "*", "on", "test_call_function_missing",
        "the test posts an unsigned request straight to the endpoint and expects 404; an "
        "endpoint that verifies signatures answers 401 first (the test assumes no key)",
    ),
    (
        "http", "on", "test_call_*",
        "dispatch-py's stdlib http.server endpoint verifies the signature against the "
        "request line instead of the full URL, so it answers 403 to every correctly signed "
        "request: the call fails at the server and its caller waits forever",
    ),
    (
        "http", "on", "test_distributed_merge_sort_*",
        "same defect as above: the stdlib endpoint rejects every signed request",
    ),
]

# How long a test may take (dispatch-py's tests have no timeout: a lost result hangs).
TEST_TIMEOUT = 60.0
KNOWN_DEFECT_TIMEOUT = 3.0


def known_defect(flavour, signing, test_name):
    for f, s, pattern, reason in KNOWN_DEFECTS:
        if fnmatch.fnmatch(flavour, f) and s == signing and fnmatch.fnmatch(test_name, pattern):
            return reason
    return None


# dispatch-py resolves a caller's future from the endpoint's thread with Future.set_result,
# which is not thread-safe: it queues the caller's wake-up without waking the caller's
# event loop. In dispatch-py's own harness the test server runs in the caller's loop, and
# its I/O wakes the loop; with the server in another process nothing does, and a test
# would sit until its timeout. This tick stands in for the test server's I/O. (A
# dispatch-py application whose endpoint and caller share one loop, as with FastAPI or
# dispatch.run, does not need it.)
WAKE_INTERVAL = 0.01


def wake_periodically(loop):
    def tick():
        loop.call_later(WAKE_INTERVAL, tick)
    loop.call_soon(tick)


class Settings:
    ratchet = None
    signing_key_file = None
    verification_key = None
    postgres = None  # a PostgreSQL server's URL: each ratchet dev gets a database on it


def on_ratchet(base, flavour, signing):
    """A subclass of one of dispatch-py's TestCase flavours that runs on `ratchet dev`."""
    import dispatch.test as dt

    class OnRatchet(base):
        def setUp(self):
            self.started = time.monotonic()
            timeout = TEST_TIMEOUT
            if known_defect(flavour, signing, self._testMethodName):
                timeout = KNOWN_DEFECT_TIMEOUT
            self.server_loop = asyncio.new_event_loop()
            run_until_complete = self.server_loop.run_until_complete
            self.server_loop.run_until_complete = lambda coro: run_until_complete(
                asyncio.wait_for(coro, timeout))
            wake_periodically(self.server_loop)
            # The endpoints read DISPATCH_VERIFICATION_KEY when they are made.
            if signing == "on":
                os.environ["DISPATCH_VERIFICATION_KEY"] = Settings.verification_key
            else:
                os.environ.pop("DISPATCH_VERIFICATION_KEY", None)
            dt._registry.client.api_key.value = dt.DISPATCH_API_KEY
            endpoint = self.dispatch_test_init(dt._registry)
            dt._registry.endpoint = endpoint
            key_file = Settings.signing_key_file if signing == "on" else None
            self.ratchet = RatchetDev(Settings.ratchet, endpoint, dt.DISPATCH_API_KEY, key_file,
                                      postgres=Settings.postgres)
            dt._registry.client.api_url.value = self.ratchet.url
            self.client_thread = threading.Thread(target=self.dispatch_test_run)
            self.client_thread.start()

        def tearDown(self):
            self.dispatch_test_stop()
            self.client_thread.join()
            loop = self.server_loop
            loop.run_until_complete = type(loop).run_until_complete.__get__(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            exit_status = self.ratchet.stop()
            if exit_status != 0:
                self.fail(f"ratchet dev exited with status {exit_status}:\n{self.ratchet.logs()}")
            if self._outcome_failed() and not known_defect(flavour, signing,
                                                           self._testMethodName):
                sys.stderr.write(f"--- ratchet dev's log for {self.id()}:\n{self.ratchet.logs()}\n")
            self.ratchet.remove()
            sys.stderr.write(f"({time.monotonic() - self.started:.2f} s) ")

        def _outcome_failed(self):
            outcome = getattr(self, "_outcome", None)
            errors = getattr(outcome, "errors", None) or []
            result = getattr(outcome, "result", None)
            if result is not None:
                return any(t is self for t, _ in result.failures + result.errors)
            return any(exc for _, exc in errors)

    OnRatchet.__name__ = OnRatchet.__qualname__ = f"{base.__name__}[{signing}]"
    for name in unittest.TestLoader().getTestCaseNames(base):
        if known_defect(flavour, signing, name):
            # A wrapper of its own: expectedFailure marks the function it is given.
            test = (lambda f: lambda self: f(self))(getattr(base, name))
            setattr(OnRatchet, name, unittest.expectedFailure(test))
    return OnRatchet


class RatchetApi:
    """What tests/test_client.py's server() gives: an async context manager with a url."""

    def __init__(self):
        import dispatch.test as dt
        self.dev = RatchetDev(Settings.ratchet, "http://127.0.0.1:9", dt.DISPATCH_API_KEY,
                              postgres=Settings.postgres)
        self.url = self.dev.url

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        exit_status = self.dev.stop()
        self.dev.remove()
        if exit_status != 0:
            raise AssertionError(f"ratchet dev exited with status {exit_status}")


def client_tests():
    """tests/test_client.py as unittest cases; its async tests run on asyncio.run (the
    pytest-asyncio plugin they are marked for is not in Debian)."""
    import tests.test_client as tc
    tc.server = RatchetApi
    cases = []
    for name, fn in sorted(vars(tc).items()):
        if not name.startswith("test_") or not callable(fn):
            continue
        if inspect.iscoroutinefunction(fn):
            run = (lambda f: lambda: asyncio.run(asyncio.wait_for(f(), TEST_TIMEOUT)))(fn)
        else:
            run = fn
        case = unittest.FunctionTestCase(run, description=f"test_client.{name}")
        cases.append(case)
    return unittest.TestSuite(cases)


def examples_tests(signing):
    """examples/test_examples.py, each example's test, on `ratchet dev`: its
    `dispatch.test.function` runs the example with dispatch.test.main, which starts the
    test server and an aiohttp endpoint in the caller's event loop; here main starts
    `ratchet dev` instead of the test server (the endpoint and caller still share a loop,
    as in a dispatch-py application). The examples that call the internet call
    stub_internet instead."""
    import dispatch.test as dt
    from dispatch.function import default_registry
    from dispatch.http import Dispatch

    async def main(coro):
        if signing == "on":
            os.environ["DISPATCH_VERIFICATION_KEY"] = Settings.verification_key
        else:
            os.environ.pop("DISPATCH_VERIFICATION_KEY", None)
        registry = default_registry()
        async with dt.Server(Dispatch(registry)) as endpoint:
            key_file = Settings.signing_key_file if signing == "on" else None
            dev = RatchetDev(Settings.ratchet, endpoint.url, dt.DISPATCH_API_KEY, key_file,
                             postgres=Settings.postgres)
            try:
                registry.client.api_key.value = dt.DISPATCH_API_KEY
                registry.client.api_url.value = dev.url
                registry.endpoint = endpoint.url
                await asyncio.wait_for(coro, TEST_TIMEOUT)
            except BaseException:
                sys.stderr.write(f"--- ratchet dev's log:\n{dev.logs()}\n")
                raise
            finally:
                exit_status = dev.stop()
                dev.remove()
            if exit_status != 0:
                raise AssertionError(f"ratchet dev exited with status {exit_status}")

    dt.main = main
    import examples.test_examples as te
    cases = []
    for name, fn in sorted(vars(te).items()):
        if name.startswith("test_") and callable(fn):
            cases.append(unittest.FunctionTestCase(fn, description=f"examples.{name}"))
    return unittest.TestSuite(cases)


def flavours():
    import dispatch.test  # noqa: F401 (test_fastapi.py uses it without importing it)
    import tests.test_fastapi as tfa
    import tests.test_flask as tfl
    import tests.test_http as th
    return {"http": th.TestHTTP, "aiohttp": th.TestAIOHTTP, "fastapi": tfa.TestFastAPI,
            "flask": tfl.TestFlask}


class Counts(unittest.TextTestResult):
    pass


def run(suite, label):
    started = time.monotonic()
    result = unittest.TextTestRunner(stream=sys.stderr, verbosity=2,
                                     resultclass=Counts).run(suite)
    counts = {
        "run": result.testsRun,
        "passed": result.testsRun - len(result.failures) - len(result.errors) -
                  len(result.skipped) - len(result.expectedFailures) -
                  len(result.unexpectedSuccesses),
        "failed": len(result.failures) + len(result.errors),
        "known defects": len(result.expectedFailures),
        "unexpected successes": len(result.unexpectedSuccesses),
        "skipped": len(result.skipped),
    }
    counts["seconds"] = round(time.monotonic() - started, 1)
    return label, counts


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratchet", required=True, help="the ratchet binary")
    parser.add_argument("--dispatch-py", required=True,
                        help="dispatch-py's source tree (with tests/), from setup.sh")
    parser.add_argument("--flavour", action="append",
                        choices=["http", "aiohttp", "fastapi", "flask", "client", "examples",
                                 "large", "programs"])
    parser.add_argument("--signing", choices=["on", "off", "both"], default="both")
    parser.add_argument("--test", help="only the tests whose name matches this pattern")
    parser.add_argument("--postgres", metavar="URL",
                        help="keep each server's calls in a fresh database on this PostgreSQL "
                             "server (default: a SQLite file)")
    args = parser.parse_args()
    Settings.postgres = args.postgres

    sys.path.insert(0, args.dispatch_py)
    Settings.ratchet = os.path.abspath(args.ratchet)
    keys = tempfile.mkdtemp(prefix="ratchet-dispatch-py-keys-")
    Settings.signing_key_file = os.path.join(keys, "signing.pem")
    Settings.verification_key = keygen(Settings.ratchet, Settings.signing_key_file)

    wanted = args.flavour or ["http", "aiohttp", "fastapi", "flask", "client", "examples",
                              "large", "programs"]
    signings = ["off", "on"] if args.signing == "both" else [args.signing]
    reports = []
    for flavour, base in flavours().items():
        if flavour not in wanted:
            continue
        for signing in signings:
            cls = on_ratchet(base, flavour, signing)
            names = unittest.TestLoader().getTestCaseNames(cls)
            if args.test:
                names = [n for n in names if fnmatch.fnmatch(n, args.test)]
            suite = unittest.TestSuite(cls(n) for n in names)
            signed = "signature verified" if signing == "on" else "no verification key"
            reports.append(run(suite, f"{flavour} endpoint, {signed}"))
    if "client" in wanted:
        reports.append(run(client_tests(), "client (tests/test_client.py)"))
    if "large" in wanted:
        import large_values
        for signing in signings:
            cls = on_ratchet(large_values.LargeValues, "large", signing)
            signed = "signature verified" if signing == "on" else "no verification key"
            suite = unittest.TestSuite(cls(n) for n in large_values.TESTS)
            reports.append(run(suite, f"large values (Ratchet's), {signed}"))
    if "programs" in wanted:
        import programs
        for signing in signings:
            cls = type(f"Programs[{signing}]", (programs.Programs,),
                       {"settings": Settings, "signing": signing})
            signed = "signature verified" if signing == "on" else "no verification key"
            suite = unittest.TestSuite(cls(n) for n in programs.TESTS)
            reports.append(run(suite, f"programs (Ratchet's), {signed}"))
    if "examples" in wanted:
        internet = StubInternet()
        internet.redirect()
        for signing in signings:
            signed = "signature verified" if signing == "on" else "no verification key"
            reports.append(run(examples_tests(signing), f"examples, {signed}"))
        internet.stop()

    store = "PostgreSQL" if args.postgres else "SQLite"
    print(f"\ndispatch-py 0.8.0's tests against ratchet dev ({store} store):")
    ok = True
    for label, c in reports:
        print(f"  {label:45} {c['passed']:3} passed, {c['failed']} failed, "
              f"{c['known defects']} known defects of dispatch-py, "
              f"{c['unexpected successes']} unexpected successes ({c['seconds']} s)")
        ok = ok and c["failed"] == 0 and c["unexpected successes"] == 0 and c["skipped"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
