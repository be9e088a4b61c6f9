"""parlab exercise beat-the-gil: make recursive Fibonacci faster than a plain loop.

    parlab check beat-the-gil fib_pool.py

The check imports this file, calls sequential() and parallel() once each as a warm-up, then times several runs
of each. parallel() must return exactly what sequential() returns, and be at least 0.7 x cores times faster
(cores = the cores you have, at most one per task: 1.4x on a 2-core machine).

As given, parallel() uses threads. Run the check once and see what the GIL does to CPU-bound threads. Then
change parallel() so that the work really runs on every core.
"""

from concurrent.futures import ThreadPoolExecutor

# The tutorial this comes from used fib(35) to fib(38), which takes minutes in CPython. Sixteen fib(27) are
# enough to measure (about half a second in all) and split evenly over any number of workers.
NUMBERS = [27] * 16


def fib(n):
    """Deliberately slow: plain recursion, no cache."""
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)


def sequential():
    return [fib(n) for n in NUMBERS]


def parallel():
    # TODO: these threads share one GIL, so only one of them runs Python code at a time.
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(fib, NUMBERS))


if __name__ == "__main__":
    import time

    for fn in (sequential, parallel):
        start = time.perf_counter()
        fn()
        print(f"{fn.__name__:10} {time.perf_counter() - start:.3f} s")
