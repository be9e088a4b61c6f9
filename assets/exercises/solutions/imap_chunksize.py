"""Reference solution of chunk-the-imap (used by parlab's tests): a few big chunks per worker."""

import os
from multiprocessing import Pool

ITEMS = range(30_000)


def work(x):
    return sum(i * i for i in range(x % 200 + 100))


def sequential():
    return sum(map(work, ITEMS))


def parallel():
    workers = os.cpu_count() or 1
    with Pool(workers) as pool:
        # About four chunks per worker, as Pool.map would choose by itself.
        chunk = -(-len(ITEMS) // (4 * workers))
        return sum(pool.imap(work, ITEMS, chunksize=chunk))
