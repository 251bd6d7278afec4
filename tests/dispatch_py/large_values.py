"""Ratchet's test of values over 64 KiB with dispatch-py (suite.py, flavour "large").

The store keeps a value over 64 KiB out of line, once, by digest (docs/storage.md,
"blobs"); dispatch-py must get every such value back byte for byte: here a coroutine
whose pickled state holds 256 KiB of random bytes, and five children with those bytes
as their input (aiohttp refuses request bodies over 1 MiB). The functions are at module
level, as dispatch-py pickles a coroutine's frame and a closure cannot be pickled.
"""

import hashlib
import random

import dispatch
import dispatch.test as dt
import tests.test_http as th


@dt._registry.function
def fingerprint(value: bytes) -> str:
    return hashlib.sha256(value).hexdigest()


@dt._registry.function
async def large_fanout(children: int) -> list:
    # Random bytes, so that the pickled state cannot be rebuilt: it must come back.
    # Loops, not comprehensions: a comprehension would make `big` a closure cell,
    # which pickle refuses.
    big = random.randbytes(256 << 10)
    calls = []
    for _ in range(children):
        calls.append(fingerprint(big))
    prints = await dispatch.gather(*calls)
    expected = hashlib.sha256(big).hexdigest()
    intact = []
    for p in prints:
        intact.append(p == expected)
    return intact + [len(big)]


class LargeValues(th.TestAIOHTTP):
    @dt.aiotest
    async def test_large_values_come_back_exactly(self):
        self.assertEqual(await large_fanout(5), [True] * 5 + [256 << 10])


TESTS = ["test_large_values_come_back_exactly"]
