"""Reference solution of beat-the-gil (used by parlab's tests): worker processes, each with its own GIL."""

from multiprocessing import Pool

NUMBERS = [27] * 16


def fib(n):
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)


def sequential():
    return [fib(n) for n in NUMBERS]


def parallel():
    # Pool() starts one worker per CPU; map keeps the order of NUMBERS, so the lists compare equal.
    with Pool() as pool:
        return pool.map(fib, NUMBERS)
