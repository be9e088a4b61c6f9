"""Reference solution of no-lost-updates (used by parlab's tests): count privately, add once under the lock."""

import os
from multiprocessing import Process, Value

LIMIT = 400_000
WORKERS = os.cpu_count() or 1


def lucky(x):
    return sum(map(int, str(x))) % 7 == 0


def sequential():
    return sum(1 for x in range(LIMIT) if lucky(x))


def count_into(counter, lo, hi):
    mine = sum(1 for x in range(lo, hi) if lucky(x))
    with counter.get_lock():
        counter.value += mine


def parallel():
    counter = Value("q", 0)
    bounds = [LIMIT * i // WORKERS for i in range(WORKERS + 1)]
    workers = [Process(target=count_into, args=(counter, bounds[i], bounds[i + 1])) for i in range(WORKERS)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return counter.value
