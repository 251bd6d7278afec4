"""A fan-out where one branch fails: gather raises the failing child's own exception
(KeyError, PERMANENT_ERROR), the coroutine catches it and carries on with the rest."""

import dispatch

PRICES = {"apple": 3, "pear": 5, "plum": 7}


@dispatch.function
def price(item: str) -> int:
    return PRICES[item]  # KeyError for an unknown item


@dispatch.function
async def basket(items: list) -> dict:
    try:
        await dispatch.gather(*[price(i) for i in items])
        failed = None
    except KeyError as e:
        failed = f"KeyError {e}"
    known = [i for i in items if i in PRICES]
    prices = await dispatch.gather(*[price(i) for i in known])
    return {"total": sum(prices), "failed": failed}


if __name__ == "__main__":
    print(dispatch.run(basket(["apple", "durian", "pear", "plum"])))
