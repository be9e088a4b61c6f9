"""parlab exercise no-lost-updates: count in parallel without losing updates.

    parlab check no-lost-updates race_counter.py

The check imports this file, calls sequential() and parallel() once each as a warm-up, then times several runs
of each. parallel() must return exactly what sequential() returns, and be at least 0.6 x cores times faster
(1.2x on a 2-core machine).

parallel() splits the numbers between worker processes that add 1 to a shared counter for every number whose
digits add up to a multiple of 7. The counter is a multiprocessing.Value, which even comes with a lock, and yet
the total comes out short, by a different amount each run.
"""

import os
from multiprocessing import Process, Value

LIMIT = 400_000
WORKERS = os.cpu_count() or 1


def lucky(x):
    return sum(map(int, str(x))) % 7 == 0


def sequential():
    return sum(1 for x in range(LIMIT) if lucky(x))


def count_into(counter, lo, hi):
    for x in range(lo, hi):
        if lucky(x):
            # TODO: `+= 1` reads the value, adds one and writes it back: three steps, and the other
            # processes can write in between. The Value's lock is only used if you take it.
            counter.value += 1


def parallel():
    counter = Value("q", 0)
    bounds = [LIMIT * i // WORKERS for i in range(WORKERS + 1)]
    workers = [Process(target=count_into, args=(counter, bounds[i], bounds[i + 1])) for i in range(WORKERS)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return counter.value


if __name__ == "__main__":
    print("sequential", sequential())
    print("parallel  ", parallel())
