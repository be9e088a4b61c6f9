"""parlab exercise chunk-the-imap: give Pool.imap a chunksize.

    parlab check chunk-the-imap imap_chunksize.py

The check imports this file, calls sequential() and parallel() once each as a warm-up, then times several runs
of each. parallel() must return exactly what sequential() returns, and be at least 0.6 x cores times faster
(1.2x on a 2-core machine).

parallel() already uses worker processes, and yet it is several times slower than the plain loop. Each item
takes only some microseconds of work. Pool.imap (like imap_unordered and ProcessPoolExecutor.map) sends one
item per message unless told otherwise, and every message costs pickling, a pipe write and a wake-up, both ways.
"""

from multiprocessing import Pool

ITEMS = range(30_000)


def work(x):
    # A few microseconds of arithmetic per item: more than pickling one int, less than one message.
    return sum(i * i for i in range(x % 200 + 100))


def sequential():
    return sum(map(work, ITEMS))


def parallel():
    with Pool() as pool:
        # TODO: one item per message. How many messages is that, and what does each one cost?
        return sum(pool.imap(work, ITEMS))


if __name__ == "__main__":
    import time

    for fn in (sequential, parallel):
        start = time.perf_counter()
        fn()
        print(f"{fn.__name__:10} {time.perf_counter() - start:.3f} s")
