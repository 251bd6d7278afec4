"""A long coroutine: ten steps, each a child call. The test that runs it kills the
server (kill -9) while the coroutine runs (held before its fourth step) and starts it
again on the same store and port; the coroutine carries on from its stored state and
the program prints its result.

Each step appends its number to $STEPS_FILE, so that the test knows where the run is.
With $HOLD_AT_STEP set, the coroutine writes "held" there before that step and waits
until $RELEASE_FILE exists: the kill then lands while the coroutine's run is in flight,
a run the restarted server sends again."""

import os
import time

import dispatch


def note(text):
    with open(os.environ["STEPS_FILE"], "a") as f:
        f.write(f"{text}\n")


def hold_before(n):
    if os.environ.get("HOLD_AT_STEP") == str(n):
        note("held")
        while not os.path.exists(os.environ["RELEASE_FILE"]):
            time.sleep(0.01)


@dispatch.function
def step(n: int) -> int:
    note(n)
    return n * n


@dispatch.function
async def long_job(steps: int) -> int:
    total = 0
    for n in range(1, steps + 1):
        hold_before(n)
        total += await step(n)
    return total


if __name__ == "__main__":
    print(dispatch.run(long_job(10)))
