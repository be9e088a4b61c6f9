"""A wrong answer to beat-the-gil (used by parlab's tests): correct results, but CPU-bound threads under the GIL
take turns, so parallel() is no faster than sequential()."""

from concurrent.futures import ThreadPoolExecutor

NUMBERS = [27] * 16


def fib(n):
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)


def sequential():
    return [fib(n) for n in NUMBERS]


def parallel():
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(fib, NUMBERS))
