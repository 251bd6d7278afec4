"""A coroutine whose step fails twice with a temporary error (ConnectionError,
TCP_ERROR: retried by the server) and then succeeds, and whose other step raises a
ValueError (INVALID_ARGUMENT: not retried) that the coroutine catches."""

import dispatch

attempts = {"flaky": 0, "invalid": 0}


@dispatch.function
def flaky(n: int) -> int:
    attempts["flaky"] += 1
    if attempts["flaky"] < 3:
        raise ConnectionError(f"attempt {attempts['flaky']} fails")
    return n * 2


@dispatch.function
def invalid(n: int) -> int:
    attempts["invalid"] += 1
    raise ValueError(f"{n} is not valid")


@dispatch.function
async def pipeline(n: int) -> str:
    doubled = await flaky(n)
    try:
        await invalid(n)
    except ValueError as e:
        return f"{doubled} after {attempts['flaky']} attempts; caught ValueError: {e}"
    return "no error"


if __name__ == "__main__":
    result = dispatch.run(pipeline(21))
    print(result, f"(invalid ran {attempts['invalid']} time)")
