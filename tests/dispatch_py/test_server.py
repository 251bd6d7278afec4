"""dispatch-py's in-memory test server, dispatch.test.Service, on a port of its own.

The other direction of the interop tests: Ratchet's C++ SDK against a server of the
protocol that Ratchet did not write (tests/sdk/dispatch_py_server_test.cpp). dispatch-py
0.8.0 has no command for it (`python -m dispatch.test URL` is gone since 0.5), so these
few lines start it. Its API key is dispatch.test.DISPATCH_API_KEY. It prints
"listening on URL" once it accepts connections, then serves until killed.
"""

import asyncio

import dispatch.test


async def main():
    server = dispatch.test.Server(dispatch.test.Service())  # 127.0.0.1, a free port
    await server.start()
    print(f"listening on {server.url}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
