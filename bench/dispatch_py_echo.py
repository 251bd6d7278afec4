"""The Python echo endpoint of bench/dispatch_py_bench: dispatch-py 0.8.0's aiohttp endpoint
serving one function, echo(x) -> x.

It listens on 127.0.0.1 (a free port) and prints two lines: "listening on URL", and
"input HEX", the serialized google.protobuf.Any that calls echo("hello") (a pickled
dispatch.proto.Arguments: a Python function takes nothing else), so that a load generator
in any language can dispatch it. With DISPATCH_VERIFICATION_KEY set it verifies every
request's signature, as a production endpoint does.
"""

import asyncio

from dispatch.function import Client, Registry
from dispatch.http import Dispatch, Server


registry = Registry(name="bench", endpoint="http://127.0.0.1:1",
                    client=Client(api_key="unused", api_url="http://127.0.0.1:1"))


@registry.function
def echo(x):
    return x


async def main():
    server = Server("127.0.0.1", 0, Dispatch(registry))
    await server.start()
    call = echo.build_call("hello")
    print(f"listening on http://127.0.0.1:{server.port}", flush=True)
    print(f"input {call._as_proto().input.SerializeToString().hex()}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
