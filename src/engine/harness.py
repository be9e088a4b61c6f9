"""parlab's CPython engine: the lab's experiments run by a real python3, recorded on the lab's timeline.

Run as `python3 -I -u harness.py` (no shell). Standard library only, except the dask and ray modes, which import
their engine (only those runs, and a probe, import it); Python 3.9 or newer (older ones get a clear error; the file
parses on 3.6+ so that they can say so). `harness.py --guard PID DIR...` is the harness's own guard (see below).

REQUEST: one JSON object on one line on stdin. Keep stdin open: closing it cancels the run (the harness kills its
workers and exits with status 4). SIGTERM does the same (status 143).

    {"workload": "fib:27..30",   parlab's workload name (fib:N, fib:A..B, squares:N, count:N, pi:N, primes:N,
                                  tiny, sleep:MS, logs:N)
     "tasks": 8,                 1..=10000000
     "mode": "processes",        sequential | threads | processes | async | async-offload | interpreters |
                                  dask | ray (`gil` is refused: the threads mode runs under CPython's real GIL)
     "workers": 2,               1..=256; null = the cores this process may use (modes with a pool only; dask and
                                  ray on a running cluster: null = all of its workers / CPUs)
     "chunksize": null,          threads, processes, dask, ray; null = the API's default rule (Pool.map:
                                  ceil(tasks / (4 * workers)), CPython's rule, computed here and passed
                                  explicitly because workers tell chunk boundaries from task indexes; imap,
                                  imap_unordered, executor: 1; threads: one future per ceil(tasks / 4096) tasks,
                                  like the native engine; dask and ray: tasks per batch, Pool.map's rule)
     "start": "spawn",           spawn | fork | forkserver (processes)
     "api": "map",               map | imap | imap_unordered (multiprocessing.Pool) | executor
                                  (ProcessPoolExecutor.map) (processes)
     "warm": false,              processes: start the pool and do a no-op round trip before the clock starts;
                                  dask, ray: start the cluster (every worker ready) before the clock starts
     "scheduler": null,          dask: the address of a running scheduler ("tcp://host:8786"); null = a
                                  LocalCluster of `workers` worker processes started (and stopped) by the harness
     "address": null,            ray: the address of a running cluster ("host:6379", "ray://host:10001", "auto");
                                  null = a local Ray with `workers` CPUs started (and stopped) by the harness
     "payload": 0,               bytes sent to the worker with every task and sent back (0..=256 MiB, 4 GiB a run)
     "results_fd": 3}            an inherited file descriptor, open for writing, where events go
    Optional, for tests and bench only:
     "record": true              false: no spans are recorded (lanes still are), to measure what recording costs
     "fail_task": N              task N raises RuntimeError (every mode)
     "crash_task": N             the worker process running task N kills itself with SIGKILL (processes)
    {"probe": true, "results_fd": 3} writes the hello line only (interpreter detection), with "engines": whether
    dask.distributed and ray import here: {"dask": {"available": true, "version": "2026.8.0", "error": null},
    "ray": {"available": false, "version": null, "error": "ray is not installed for /usr/bin/python3: pip install
    ray"}}. A dask or ray run without its engine ends at once with that error line.
    Unknown fields are refused.

EVENTS: JSON lines on results_fd (never stdout: the worker's or the learner's prints may go there), written in
batches (at least every 30 ms while something happens). The first line is `hello`; every later line is one of
parlab's `LabEvent` exactly as serde writes it (externally tagged, snake_case), so the lab can parse it as one:

    {"hello": {"python": {"path": sys.executable, "version": "3.11.7", "implementation": "cpython",
               "gil_enabled": true, "start_methods": ["fork", "spawn", "forkserver"],
               "has_interpreter_pool": false}, "pid": 123, "cores": 2}}
    {"started": {"lab_pid": 123, "t0_ns": 0, "cores": 2}}
    {"lane": {"id": 0, "pid": 124, "tid": 124, "label": "p1"}}
    {"span": {"lane": 0, "task": 0, "count": 1, "kind": "run", "start_ns": 0, "end_ns": 0, "cpu_start": 0,
              "cpu_end": 1}}          kind: startup | run | serialize | ipc | idle | failed
    {"note": "warm pool: workers started before the clock"}
    {"finished": {"t0_ns": 0, "t_end_ns": 0, "checksum": 0, "tasks_done": 8, "error": null}}

Times are time.monotonic_ns() (CLOCK_MONOTONIC, the lab's clock); CPU cores come from sched_getcpu (through
ctypes), -1 when unknown. The dask and ray spans come from the engines' own records, which are wall-clock
(time.time) times: EngineClock is the one place where the harness converts a time, with an offset measured here
(the tightest of a few back-to-back monotonic/wall readings), and clamps what falls outside [t0, t_end] into it,
saying so in a note. Their CPU cores are -1 (the engines do not record them). `finished` is always the last line; a run that fails has `error` set (one line, with the
last frame of the Python traceback where there is one). Exit status: 0 once `finished` is written, 2 for a request
that names no usable results_fd, 4 when stdin closed or the reader went away, 143 on SIGTERM.

WHAT RUNS (the Python counterparts of the native modes):
- The eight workloads are the native kernels' arithmetic in Python: the same task-index rules and 64-bit wrapping
  checksums (task checksum = mix(index, result) + the checksum of its payload; the run's checksum is their sum
  mod 2**64, equal to the native engine's for the same experiment).
- sequential: a plain loop. threads: ThreadPoolExecutor(workers), under the real GIL. processes:
  multiprocessing.Pool(workers).map / imap / imap_unordered or ProcessPoolExecutor(workers).map with the start
  method's context; a cold pool's start-up and shutdown (close + join) are inside the timed region. async: a
  coroutine per chunk, gathered (asyncio.TaskGroup on 3.11+); `sleep` and the reads of `logs` are awaited, CPU work
  blocks the loop. async-offload: the CPU work goes to loop.run_in_executor on a ThreadPoolExecutor(workers), as the
  native async-offload models (tokio's blocking pool of `workers` threads).
- Lanes: "main" (sequential), "t1".."tN" (threads), "p1".."pN" (worker processes, by start order), "loop" and
  "task N" (coroutines in flight at once) and "exec N" (executor threads), "feeder" (the parent thread that pickles
  payloads). Run spans are per chunk (per task when there are <= 4096 tasks, as the native engine does), and per
  task when a process run carries a payload (the worker's unpickling is its own `serialize` span).
- Payloads: each task's payload is pickled by the harness in the parent (timed: `serialize`) and unpickled in the
  worker (timed: `serialize`), so every task really carries its own bytes (pickle's memo would otherwise send one
  copy per chunk). A task proves its payload arrived whole by reading every byte (zlib.crc32 against the parent's
  value), then adds the payload's word-sum checksum (computed in Python only when the bytes differ).
- Worker processes arm PR_SET_PDEATHSIG (SIGKILL) in their initializer, and leave if the harness is already gone.
- dask: dask.distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True) on 127.0.0.1, no
  dashboard, its logging at ERROR, its files in a private folder; or Client(scheduler). ray: ray.init(num_cpus=
  workers) on the loopback address, no dashboard, usage statistics off, its files in a private folder; or
  ray.init(address). A batch is one remote call (client.map / f.remote) running `chunksize` tasks with the same
  kernels (engine_batch, pickled by value: workers need no copy of the harness); each task carries its own payload.
  The cluster's start-up is a `startup` span on the "client" (dask) or "driver" (ray) lane, from before the cluster
  is made to when every worker has answered; a cold run's clock includes it, not the import of the engine. The
  clock stops when the last result is in: reading the engine's records and shutting the cluster down come after
  (a note says how long the shutdown took). Worker lanes are "w1".."wN" (by address / pid; "w1.2" for a second
  thread of one worker), with each worker's real pid and the native id of the thread that ran the batches.
- Dask's task stream (the scheduler's TaskStreamPlugin): compute -> run, transfer -> ipc, deserialize and
  disk-read/disk-write (spilling pickles) -> serialize, an erred task's compute -> failed; the client's
  client.map call is an `ipc` span on its lane. Ray's timeline (its task events): per batch, deserialize_arguments
  -> serialize, execute -> run (failed when the task raised), store_outputs -> serialize; the driver's submit_task
  events -> ipc. A batch's simulated waits (sleep, the reads of logs) are cut out of its run span as idle pieces
  (the batch times them in wall-clock ns). Like Pool.map's, these spans reach the stream when the run ends.
- Clean-up of a cluster the harness started: the harness becomes the subreaper of its descendants and starts a
  guard (`--guard`, its own session) that notes the harness's process tree every 200 ms; when the harness ends,
  however it ends, the guard stops and kills what is left of that tree and removes the folders. The harness does
  the same for itself on every way out (finished, failed, stdin closed, SIGTERM), after a graceful shutdown where
  there is one. multiprocessing's resource tracker is left to leave by itself (it unlinks the semaphores). A
  running cluster given by address is only disconnected from.
"""

import os
import sys
import threading
import time
from collections import deque

MIN_PYTHON = (3, 9)
MASK = (1 << 64) - 1
MAX_TASKS = 10000000
MAX_WORKERS = 256
MAX_PAYLOAD = 256 * 1024 * 1024
MAX_TOTAL_PAYLOAD = 4 * 1024 * 1024 * 1024
# In-process modes record one span per this many tasks at most (the native engine's rule).
SPAN_CHUNKS = 4096
FLUSH_NS = 30000000
TICK_S = 0.05
# How long a warm pool's workers may take to start before the run gives up.
START_TIMEOUT_S = 120.0
LOG_LINES_PER_READ = 50000
LOG_READ_MS = 1

MODES = ("sequential", "threads", "processes", "async", "async-offload", "interpreters", "dask", "ray")
STARTS = ("spawn", "fork", "forkserver")
APIS = ("map", "imap", "imap_unordered", "executor")
REQUEST_FIELDS = (
    "workload", "tasks", "mode", "workers", "chunksize", "start", "api", "warm", "payload", "results_fd",
    "scheduler", "address", "record", "fail_task", "crash_task", "probe",
)

try:
    now_ns = time.monotonic_ns
except AttributeError:  # Python < 3.7: only to say that it is too old
    def now_ns():
        return int(time.monotonic() * 1e9)


def _no_cpu():
    return -1


# The current CPU core; replaced by `init_cpu` (ctypes is imported only by the processes that record).
cpu = _no_cpu


def init_cpu():
    global cpu
    found = getattr(os, "sched_getcpu", None)
    if found is None:
        try:
            import ctypes

            found = ctypes.CDLL(None).sched_getcpu
            found.restype = ctypes.c_int
            found.argtypes = ()
            if found() < 0:
                found = None
        except Exception:
            found = None
    cpu = found or _no_cpu


class BadRequest(Exception):
    """A request the harness cannot run: the message says which value and what is allowed."""


class TaskFailed(Exception):
    def __init__(self, task, text):
        Exception.__init__(self, text)
        self.task = task
        self.text = text


class RunFailed(Exception):
    """A run that stopped: the message is the run's error."""


def describe(exc):
    """`Type: message (file.py:12 in fn)`: one line, with the last frame of the traceback."""
    import traceback

    head = traceback.format_exception_only(type(exc), exc)[-1].strip()
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        f = frames[-1]
        head += " (%s:%d in %s)" % (os.path.basename(f.filename), f.lineno, f.name)
    return head


# ---------------------------------------------------------------------------------------------------------------
# The kernels: the native engine's arithmetic (src/workload.rs), in Python.


def mix(index, s):
    z = (index + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return (z ^ (z >> 31)) ^ s


def fib(n):
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)


def squares(n):
    return sum(k * k for k in range(n)) & MASK


def count(n):
    c = 0
    while c < n:
        c += 1
    return c


def pi_hits(n, seed):
    state = mix(seed, 0x5EED) | 1
    m = MASK
    scale = float(1 << 53)
    hits = 0
    for _ in range(n):
        state ^= (state << 13) & m
        state ^= state >> 7
        state ^= (state << 17) & m
        x = (state >> 11) / scale
        state ^= (state << 13) & m
        state ^= state >> 7
        state ^= (state << 17) & m
        y = (state >> 11) / scale
        if x * x + y * y <= 1.0:
            hits += 1
    return hits


def primes_below(n):
    found = 0
    for k in range(2, n):
        d = 2
        prime = True
        while d * d <= k:
            if k % d == 0:
                prime = False
                break
            d += 1
        if prime:
            found += 1
    return found


LEVELS = ("INFO", "WARN", "ERROR", "DEBUG")
LEVEL_INDEX = {name: k for k, name in enumerate(LEVELS)}
COMPONENTS = ("api", "db", "cache", "auth", "worker")


def log_line(seed, i):
    r = mix((seed * 1000003 + i) & MASK, 0)
    p = r % 100
    level = 0 if p < 70 else 1 if p < 85 else 2 if p < 90 else 3
    return "2026-11-22T10:%02d:%02d %s %s: request done latency=%dms" % (
        (i // 60) % 60, i % 60, LEVELS[level], COMPONENTS[(r >> 8) % 5], (r >> 16) % 2000)


def parse_log_line(line):
    """(level index, latency in ms), or None: the native parser's rules."""
    fields = line.split(" ")
    if len(fields) < 2:
        return None
    level = LEVEL_INDEX.get(fields[1])
    if level is None:
        return None
    latency = line.rpartition("=")[2]
    if not latency.endswith("ms"):
        return None
    digits = latency[:-2]
    if digits and not (digits.isascii() and digits.isdigit()):
        return None
    return level, int(digits) if digits else 0


class LogScan:
    __slots__ = ("counts", "latency")

    def __init__(self):
        self.counts = [0, 0, 0, 0]
        self.latency = 0

    def feed(self, seed, start, stop):
        counts = self.counts
        latency = self.latency
        for i in range(start, stop):
            got = parse_log_line(log_line(seed, i))
            if got is not None:
                counts[got[0]] += 1
                latency += got[1]
        self.latency = latency & MASK

    def checksum(self):
        acc = self.latency
        for k, c in enumerate(self.counts):
            r = 16 * k
            acc += ((c << r) | (c >> (64 - r))) & MASK if r else c
        return acc & MASK


def logs(n, seed, hooks):
    scan = LogScan()
    start = 0
    while start < n:
        hooks.wait(LOG_READ_MS)
        stop = min(start + LOG_LINES_PER_READ, n)
        scan.feed(seed, start, stop)
        start = stop
    return scan.checksum()


# name, min, max, default (src/experiment.rs WORKLOADS)
WORKLOADS = (
    ("fib", 1, 42, 32),
    ("squares", 1, 10000000000, 1000000),
    ("count", 1, 10000000000, 10000000),
    ("pi", 1, 1000000000, 1000000),
    ("primes", 2, 50000000, 200000),
    ("tiny", 0, 0, 0),
    ("sleep", 0, 60000, 100),
    ("logs", 1, 10000000, 100000),
)


class Workload:
    __slots__ = ("name", "lo", "size")

    def __init__(self, name, lo, size):
        self.name = name
        self.lo = lo
        self.size = size


def edit_distance(a, b):
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a):
        cur = [i + 1]
        for j, cb in enumerate(b):
            cur.append(min(prev[j] + (ca != cb), prev[j + 1] + 1, cur[j] + 1))
        prev = cur
    return prev[len(b)]


def did_you_mean(text, candidates):
    text = text.lower()
    best = None
    for c in candidates:
        d = edit_distance(text, c)
        if d <= max(2, len(c) // 4) and d < len(c) and (best is None or d < best[0]):
            best = (d, c)
    return " (did you mean '%s'?)" % best[1] if best else ""


def parse_size(name, text, lo, hi):
    cleaned = text.replace("_", "")
    if not (cleaned.isascii() and cleaned.isdigit()):
        raise BadRequest("workload size '%s' for %s is not a whole number (expected %d..=%d)" % (text, name, lo, hi))
    n = int(cleaned)
    if n < lo or n > hi:
        raise BadRequest("workload size %d for %s is out of range (allowed %d..=%d)" % (n, name, lo, hi))
    return n


def parse_workload(text):
    """parlab's workload names, with the native parser's messages."""
    if not isinstance(text, str):
        raise BadRequest("request field 'workload' must be a workload name like 'fib:30' (got '%s')" % (text,))
    text = text.strip()
    name, colon, size = text.partition(":")
    names = [w[0] for w in WORKLOADS]
    row = [w for w in WORKLOADS if w[0] == name]
    if not row:
        raise BadRequest("unknown workload '%s' (expected one of: %s)%s" % (name, ", ".join(names),
                                                                           did_you_mean(name, names)))
    _, lo, hi, default = row[0]
    if name == "tiny":
        if colon:
            raise BadRequest("workload 'tiny' takes no size (got ':%s')" % size)
        return Workload("tiny", 0, 0)
    if name == "fib" and ".." in size:
        a, _, b = size.partition("..")
        first, last = parse_size(name, a, lo, hi), parse_size(name, b, lo, hi)
        if first > last:
            raise BadRequest("fib range '%s..%s' is backwards (write the smaller number first)" % (a, b))
        return Workload("fib", first, last)
    n = parse_size(name, size, lo, hi) if colon else default
    return Workload(name, n, n)


def make_kernel(w, fail_task=None, crash_task=None):
    """`kernel(index, hooks) -> task checksum` for workload `w` (hooks.wait(ms) is the simulated I/O)."""
    name, n = w.name, w.size
    if name == "fib":
        lo, span = w.lo, w.size - w.lo + 1

        def kernel(i, hooks):
            return mix(i, fib(lo + i % span))
    elif name == "squares":
        def kernel(i, hooks):
            return mix(i, squares(n))
    elif name == "count":
        def kernel(i, hooks):
            return mix(i, count(n))
    elif name == "pi":
        def kernel(i, hooks):
            return mix(i, pi_hits(n, i))
    elif name == "primes":
        def kernel(i, hooks):
            return mix(i, primes_below(n))
    elif name == "tiny":
        def kernel(i, hooks):
            return mix(i, (i * i) & MASK)
    elif name == "sleep":
        def kernel(i, hooks):
            hooks.wait(n)
            return mix(i, n)
    else:
        def kernel(i, hooks):
            return mix(i, logs(n, i, hooks))
    if fail_task is None and crash_task is None:
        return kernel
    plain = kernel

    def kernel(i, hooks):
        if i == crash_task:
            import signal

            os.kill(os.getpid(), signal.SIGKILL)
        if i == fail_task:
            raise RuntimeError("task %d failed on purpose (fail_task in the request)" % i)
        return plain(i, hooks)
    return kernel


def check_fail(i, fail_task):
    if i == fail_task:
        raise RuntimeError("task %d failed on purpose (fail_task in the request)" % i)


# ---------------------------------------------------------------------------------------------------------------
# Payloads: the native engine's bytes (make_payload) and checksum (payload_checksum).


def make_payload(n):
    """xorshift64 words from 0x2545F4914F6CDD1D, little-endian, cut to n bytes. Many generators are stepped at
    once as 64-bit lanes of one big integer (a jump-ahead of sqrt(words) steps apart), so 100 MB takes about half a
    second instead of several."""
    words = (n + 7) // 8
    seed = 0x2545F4914F6CDD1D
    m = MASK
    if words < 4096:
        out = bytearray(words * 8)
        view = memoryview(out).cast("Q")
        x = seed
        for k in range(words):
            x ^= (x << 13) & m
            x ^= x >> 7
            x ^= (x << 17) & m
            view[k] = x
        return bytes(out[:n])
    import array

    lanes = max(1, int(words ** 0.5))
    rounds = (words + lanes - 1) // lanes

    def step(x):
        x ^= (x << 13) & m
        x ^= x >> 7
        return x ^ ((x << 17) & m)

    def apply(cols, x):
        r = 0
        i = 0
        while x:
            if x & 1:
                r ^= cols[i]
            x >>= 1
            i += 1
        return r

    # The step is linear over GF(2): jump `rounds` steps with the 64x64 matrix T**rounds (columns as ints).
    jump = [1 << i for i in range(64)]
    base = [step(1 << i) for i in range(64)]
    e = rounds
    while e:
        if e & 1:
            jump = [apply(base, c) for c in jump]
        base = [apply(base, c) for c in base]
        e >>= 1
    starts = []
    x = seed
    for _ in range(lanes):
        starts.append(x)
        x = apply(jump, x)
    state = int.from_bytes(array.array("Q", starts).tobytes(), "little")

    def every_lane(word):
        return int.from_bytes(word.to_bytes(8, "little") * lanes, "little")

    keep13 = every_lane(m ^ ((1 << 13) - 1))
    keep7 = every_lane((1 << 57) - 1)
    keep17 = every_lane(m ^ ((1 << 17) - 1))
    out = bytearray(lanes * rounds * 8)
    view = memoryview(out).cast("Q")
    width = 8 * lanes
    for r in range(rounds):
        state ^= (state << 13) & keep13
        state ^= (state >> 7) & keep7
        state ^= (state << 17) & keep17
        # Lane j holds word j * rounds + r.
        view[r::rounds] = memoryview(state.to_bytes(width, "little")).cast("Q")
    return bytes(memoryview(out)[:n])


def payload_checksum(b):
    """Sum of the 8-byte little-endian words (a short last word is zero-padded), mod 2**64."""
    full = len(b) // 8 * 8
    halves = memoryview(b)[:full].cast("I")
    acc = sum(halves[0::2]) + (sum(halves[1::2]) << 32)
    for k, byte in enumerate(b[full:]):
        acc += byte << (8 * k)
    return acc & MASK


def payload_sum(data, crc, checksum):
    import zlib

    if zlib.crc32(data) == crc:
        return checksum
    return payload_checksum(data)


# ---------------------------------------------------------------------------------------------------------------
# The event stream.

SPAN = ('{"span":{"lane":%d,"task":%d,"count":%d,"kind":"%s","start_ns":%d,"end_ns":%d,'
        '"cpu_start":%d,"cpu_end":%d}}')
WORKER_SPAN = SPAN.replace("%d", "@", 1)


class Out:
    """Events for results_fd. Any thread may append (a deque is safe for that); only the main thread flushes."""

    def __init__(self, fd):
        import json

        self.json = json
        self.fd = fd
        self.q = deque()
        self.lock = threading.Lock()
        self.flushing = threading.Lock()
        self.next_lane = 0
        self.last = now_ns()

    def line(self, obj):
        self.q.append(self.json.dumps(obj, separators=(",", ":")))

    def lane(self, label, pid, tid):
        with self.lock:
            lane = self.next_lane
            self.next_lane += 1
        self.line({"lane": {"id": lane, "pid": pid, "tid": tid, "label": label}})
        return lane

    def span(self, lane, task, count, kind, start, end, cpu_start, cpu_end):
        self.q.append((lane, task, count, kind, start, end, cpu_start, cpu_end))

    def note(self, text):
        self.line({"note": text})

    def flush(self):
        with self.flushing:
            parts = []
            pop = self.q.popleft
            while True:
                try:
                    item = pop()
                except IndexError:
                    break
                parts.append(item if type(item) is str else SPAN % item)
            if parts:
                write_all(self.fd, ("\n".join(parts) + "\n").encode())
            self.last = now_ns()

    def maybe_flush(self):
        if now_ns() - self.last > FLUSH_NS or len(self.q) > 4096:
            self.flush()


def write_all(fd, data):
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except InterruptedError:
            continue
        except OSError:
            # The reader is gone: nobody wants this run any more.
            abandon(4)
        view = view[n:]


class Tracker:
    """Records what one lane does, piece by piece: a chunk's `run`, cut at simulated waits (`idle`)."""

    __slots__ = ("sink", "lane", "task", "count", "t", "c")

    def __init__(self, sink, lane):
        self.sink = sink
        self.lane = lane
        self.task = 0
        self.count = 0
        self.t = 0
        self.c = -1

    def begin(self, task, count):
        self.task = task
        self.count = count
        self.t = now_ns()
        self.c = cpu()

    def close(self, kind):
        t = now_ns()
        c = cpu()
        self.sink.append((self.lane, self.task, self.count, kind, self.t, t, self.c, c))
        self.t = t
        self.c = c

    def end(self):
        self.close("run")

    def wait(self, ms):
        self.close("run")
        time.sleep(ms / 1000.0)
        self.close("idle")


class Quiet:
    """A tracker that records nothing (`"record": false`)."""

    __slots__ = ("sink",)

    def __init__(self, sink=None, lane=None):
        self.sink = sink

    def begin(self, task, count):
        pass

    def close(self, kind):
        pass

    def end(self):
        pass

    def wait(self, ms):
        time.sleep(ms / 1000.0)


# ---------------------------------------------------------------------------------------------------------------
# Stopping: the harness never leaves a worker behind.

_workers = {}  # pid -> multiprocessing.Process (or None when only the pid is known), of every pool worker seen
_abandoned = []  # killed pools, never collected (see Pool.kill)


def kill_workers():
    import signal

    procs = dict(_workers)
    mp = sys.modules.get("multiprocessing")
    if mp is not None:
        try:
            for p in mp.active_children():
                procs.setdefault(p.pid, p)
        except Exception:
            pass
    for pid in procs:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def abandon(code):
    kill_workers()
    kill_engine_processes()
    os._exit(code)


def watch_harness(pid):
    try:
        import select

        fd = os.pidfd_open(pid)
        select.select([fd], [], [])
    except (AttributeError, OSError):
        # No pidfd (Linux before 5.3): look every 100 ms.
        while True:
            time.sleep(0.1)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            except OSError:
                pass
    os._exit(3)


def watch_stdin():
    def run():
        try:
            while os.read(0, 4096):
                pass
        except OSError:
            pass
        abandon(4)

    threading.Thread(target=run, name="parlab-stdin", daemon=True).start()


def die_with_harness(harness_pid, watch):
    """In a worker: SIGKILL when our parent dies, and leave now if the harness is already gone. A forkserver
    worker's parent is the server, which outlives the harness (every worker holds the server's "alive" pipe open),
    so it also watches the harness itself (`watch`): a thread blocked on a pidfd, which costs no CPU."""
    if watch:
        threading.Thread(target=watch_harness, args=(harness_pid,), name="parlab-watch", daemon=True).start()
    try:
        import ctypes

        prctl = ctypes.CDLL(None).prctl
        prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
        prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG, SIGKILL
    except Exception:
        pass
    # A harness killed before the prctl above may still be a zombie (kill(pid, 0) succeeds on one) that nobody
    # reaps: a spawn or fork worker's parent is the harness, so a new parent means it is gone.
    if not watch and os.getppid() != harness_pid:
        os._exit(3)
    try:
        os.kill(harness_pid, 0)
    except ProcessLookupError:
        os._exit(3)
    except OSError:
        pass


# ---------------------------------------------------------------------------------------------------------------
# The run's configuration.


class Config:
    def __init__(self, req):
        self.workload = parse_workload(req.get("workload"))
        self.tasks = whole(req, "tasks", 1, MAX_TASKS, None)
        mode = req.get("mode")
        if mode == "gil":
            raise BadRequest("the python engine has no gil mode: its threads mode runs under CPython's real GIL")
        if mode not in MODES:
            raise BadRequest("unknown mode '%s' (expected one of: %s)%s" % (mode, ", ".join(MODES),
                                                                          did_you_mean(str(mode), MODES)))
        self.mode = mode
        engine = mode in ENGINES
        pooled = engine or mode in ("threads", "processes", "async-offload", "interpreters")
        cores = available_cores()
        self.workers_given = req.get("workers") is not None
        self.workers = whole(req, "workers", 1, MAX_WORKERS, cores) if pooled else 1
        self.start = choice(req, "start", STARTS, "spawn")
        self.api = choice(req, "api", APIS, "map")
        self.warm = flag(req, "warm", False) and (mode == "processes" or engine)
        self.scheduler = address(req, "scheduler", mode, "dask", "the address of a running dask scheduler")
        self.address = address(req, "address", mode, "ray", "the address of a running ray cluster")
        self.payload = whole(req, "payload", 0, MAX_PAYLOAD, 0)
        limit = MAX_ENGINE_PAYLOAD if engine else MAX_TOTAL_PAYLOAD
        if self.payload * self.tasks > limit:
            raise BadRequest("payload %d x tasks %d would move %d MiB; the limit is %d MiB per run%s" % (
                self.payload, self.tasks, (self.payload * self.tasks) >> 20, limit >> 20,
                " in mode %s (every batch's arguments exist at once)" % mode if engine else ""))
        self.record = flag(req, "record", True)
        self.fail_task = whole(req, "fail_task", 0, MAX_TASKS, None)
        self.crash_task = whole(req, "crash_task", 0, MAX_TASKS, None)
        if self.crash_task is not None and mode != "processes":
            raise BadRequest("crash_task applies only to mode processes (it kills a worker process)")
        given = whole(req, "chunksize", 1, MAX_TASKS, None)
        self.chunksize_given = given
        if engine:
            self.engine_workers(self.workers)
            if self.chunks > MAX_BATCHES:
                raise BadRequest("tasks %d at chunksize %d make %d batches; mode %s runs at most %d (a chunksize of "
                                 "%d or more)" % (self.tasks, self.chunksize, self.chunks, mode, MAX_BATCHES,
                                                  -(-self.tasks // MAX_BATCHES)))
        elif mode == "processes":
            if given is not None:
                self.chunksize = min(given, self.tasks)
            elif self.api == "map":
                self.chunksize = max(1, -(-self.tasks // (4 * self.workers)))
            else:
                self.chunksize = 1
        elif mode == "threads" and given is not None:
            self.chunksize = min(given, self.tasks)
        else:
            self.chunksize = max(1, -(-self.tasks // SPAN_CHUNKS))
        self.chunks = -(-self.tasks // self.chunksize)
        if mode == "processes" and self.start not in start_methods():
            raise BadRequest("start method '%s' is not available in this Python (it has: %s)" % (
                self.start, ", ".join(start_methods())))

    def engine_workers(self, workers):
        """dask and ray: tasks per batch, given or by Pool.map's rule (ceil(tasks / (4 * workers)))."""
        given = self.chunksize_given
        self.chunksize = min(given, self.tasks) if given else max(1, -(-self.tasks // (4 * workers)))
        self.chunks = -(-self.tasks // self.chunksize)

    def chunk_range(self, c):
        first = c * self.chunksize
        return first, min(self.chunksize, self.tasks - first)


def whole(req, key, lo, hi, default):
    value = req.get(key)
    if value is None:
        return default
    if type(value) is not int:
        raise BadRequest("request field '%s' must be a whole number (got '%s')" % (key, dumps(value)))
    if value < lo or value > hi:
        raise BadRequest("%s '%d' is out of range (allowed %d..=%d)" % (key, value, lo, hi))
    return value


def address(req, key, mode, owner, what):
    value = req.get(key)
    if value is None:
        return None
    if mode != owner:
        raise BadRequest("%s applies only to mode %s (%s)" % (key, owner, what))
    if not isinstance(value, str) or not value.strip():
        raise BadRequest("request field '%s' must be %s like '%s' (got '%s')" % (
            key, what, "tcp://127.0.0.1:8786" if owner == "dask" else "127.0.0.1:6379", dumps(value)))
    return value.strip()


def dumps(value):
    import json

    return json.dumps(value)


def flag(req, key, default):
    value = req.get(key)
    if value is None:
        return default
    if type(value) is not bool:
        raise BadRequest("request field '%s' must be true or false (got '%s')" % (key, dumps(value)))
    return value


def choice(req, key, allowed, default):
    value = req.get(key)
    if value is None:
        return default
    if value not in allowed:
        raise BadRequest("unknown %s '%s' (expected one of: %s)%s" % (
            key, value, ", ".join(allowed), did_you_mean(str(value), allowed)))
    return value


def available_cores():
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def start_methods():
    import multiprocessing

    return multiprocessing.get_all_start_methods()


def gil_enabled():
    probe = getattr(sys, "_is_gil_enabled", None)
    if probe is not None:
        return bool(probe())
    import sysconfig

    return not sysconfig.get_config_var("Py_GIL_DISABLED")


def has_interpreter_pool():
    import importlib.util

    try:
        return importlib.util.find_spec("concurrent.futures.interpreter") is not None
    except (ImportError, ValueError):
        return False


def hello(out, probe=False):
    try:
        methods = start_methods()
    except Exception:
        methods = []
    engines = {}
    if probe and sys.version_info >= MIN_PYTHON:
        engines = {"engines": {mode: engine_report(mode) for mode in ENGINES}}
    out.line({"hello": dict(engines, **{
        "python": {
            "path": sys.executable,
            "version": "%d.%d.%d" % sys.version_info[:3],
            "implementation": sys.implementation.name,
            "gil_enabled": gil_enabled(),
            "start_methods": methods,
            "has_interpreter_pool": has_interpreter_pool(),
        },
        "pid": os.getpid(),
        "cores": available_cores(),
    })})


def payload_parts(cfg):
    """(payload bytes, crc32, word-sum checksum), made before the clock starts, or None."""
    if not cfg.payload:
        return None
    import zlib

    data = make_payload(cfg.payload)
    return data, zlib.crc32(data), payload_checksum(data)


# ---------------------------------------------------------------------------------------------------------------
# In-process modes.


def run_chunk(kernel, tracker, first, count, pay):
    """Runs tasks [first, first + count) on the calling thread; returns the sum of their checksums."""
    tracker.begin(first, count)
    s = 0
    i = first
    try:
        if pay is None:
            for i in range(first, first + count):
                s += kernel(i, tracker)
        else:
            data, crc, checksum = pay
            for i in range(first, first + count):
                s += kernel(i, tracker) + payload_sum(data, crc, checksum)
    except Exception as exc:
        tracker.close("failed")
        raise TaskFailed(i, "task %d raised %s" % (i, describe(exc)))
    tracker.end()
    return s


def tracker_for(cfg, sink, lane):
    return Tracker(sink, lane) if cfg.record else Quiet(sink, lane)


def run_sequential(cfg, out):
    kernel = make_kernel(cfg.workload, cfg.fail_task)
    pay = payload_parts(cfg)
    t0 = now_ns()
    lane = out.lane("main", os.getpid(), threading.get_native_id())
    tracker = tracker_for(cfg, out.q, lane)
    total = 0
    done = 0
    try:
        for c in range(cfg.chunks):
            first, n = cfg.chunk_range(c)
            total += run_chunk(kernel, tracker, first, n, pay)
            done += n
            out.maybe_flush()
    except TaskFailed as failed:
        return finished(t0, total, done, failed.text)
    return finished(t0, total, done, None)


def run_threads(cfg, out):
    from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

    kernel = make_kernel(cfg.workload, cfg.fail_task)
    pay = payload_parts(cfg)
    pid = os.getpid()
    local = threading.local()
    started = [0]
    lock = threading.Lock()
    t0 = now_ns()
    created, created_cpu = now_ns(), cpu()

    def init():
        with lock:
            started[0] += 1
            n = started[0]
        lane = out.lane("t%d" % n, pid, threading.get_native_id())
        if cfg.record:
            out.span(lane, 0, 0, "startup", created, now_ns(), created_cpu, cpu())
        local.tracker = tracker_for(cfg, out.q, lane)

    def chunk(c):
        first, n = cfg.chunk_range(c)
        return run_chunk(kernel, local.tracker, first, n, pay)

    ex = ThreadPoolExecutor(max_workers=cfg.workers, initializer=init)
    futures = [ex.submit(chunk, c) for c in range(cfg.chunks)]
    pending = futures
    error = None
    while pending:
        done, pending = wait(pending, timeout=FLUSH_NS / 1e9, return_when=FIRST_EXCEPTION)
        out.flush()
        failed = [f for f in done if f.exception() is not None]
        if failed:
            exc = failed[0].exception()
            error = exc.text if isinstance(exc, TaskFailed) else "the threads mode failed: " + describe(exc)
            break
    ex.shutdown(wait=True, cancel_futures=True)
    total = 0
    tasks_done = 0
    for c, f in enumerate(futures):
        if f.done() and not f.cancelled() and f.exception() is None:
            total += f.result()
            tasks_done += cfg.chunk_range(c)[1]
    return finished(t0, total, tasks_done, error)


class Slots:
    """Coroutine lanes, reused lowest-first: as many lanes as coroutines were in flight at once."""

    def __init__(self, out):
        self.out = out
        self.lanes = []
        self.busy = []

    def acquire(self):
        for k, b in enumerate(self.busy):
            if not b:
                self.busy[k] = True
                return k
        self.lanes.append(self.out.lane("task %d" % (len(self.lanes) + 1), os.getpid(), threading.get_native_id()))
        self.busy.append(True)
        return len(self.lanes) - 1

    def release(self, k):
        self.busy[k] = False


def find_task_failure(exc):
    if isinstance(exc, TaskFailed):
        return exc
    for sub in getattr(exc, "exceptions", ()):
        found = find_task_failure(sub)
        if found is not None:
            return found
    return None


def run_async(cfg, out):
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    offload = cfg.mode == "async-offload"
    kernel = make_kernel(cfg.workload, cfg.fail_task)
    pay = payload_parts(cfg)
    record = cfg.record
    pid = os.getpid()
    w = cfg.workload
    t0 = now_ns()
    start, start_cpu = now_ns(), cpu()
    slots = Slots(out)
    local = threading.local()
    execs = [0]
    lock = threading.Lock()
    created = [0, -1]

    def exec_init():
        with lock:
            execs[0] += 1
            n = execs[0]
        lane = out.lane("exec %d" % n, pid, threading.get_native_id())
        if record:
            out.span(lane, 0, 0, "startup", created[0], now_ns(), created[1], cpu())
        local.tracker = tracker_for(cfg, out.q, lane)
        local.lane = lane

    def exec_chunk(first, n):
        return run_chunk(kernel, local.tracker, first, n, pay)

    def exec_feed(scan, i, a, b):
        t, c = now_ns(), cpu()
        scan.feed(i, a, b)
        if record:
            out.span(local.lane, i, 1, "run", t, now_ns(), c, cpu())
        return scan

    def paid():
        return payload_sum(*pay) if pay is not None else 0

    async def coroutine(c, loop, ex):
        first, n = cfg.chunk_range(c)
        s = 0
        if w.name in ("sleep", "logs"):
            k = slots.acquire()
            lane = slots.lanes[k]
            i = first
            t, tc = now_ns(), cpu()
            try:
                for i in range(first, first + n):
                    check_fail(i, cfg.fail_task)
                    if w.name == "sleep":
                        t, tc = now_ns(), cpu()
                        await asyncio.sleep(w.size / 1000.0)
                        if record:
                            out.span(lane, i, 1, "idle", t, now_ns(), tc, cpu())
                        s += mix(i, w.size) + paid()
                        continue
                    scan = LogScan()
                    a = 0
                    while a < w.size:
                        t, tc = now_ns(), cpu()
                        await asyncio.sleep(LOG_READ_MS / 1000.0)
                        if record:
                            out.span(lane, i, 1, "idle", t, now_ns(), tc, cpu())
                        b = min(a + LOG_LINES_PER_READ, w.size)
                        if offload:
                            scan = await loop.run_in_executor(ex, exec_feed, scan, i, a, b)
                        else:
                            t, tc = now_ns(), cpu()
                            scan.feed(i, a, b)
                            if record:
                                out.span(lane, i, 1, "run", t, now_ns(), tc, cpu())
                        a = b
                    s += mix(i, scan.checksum()) + paid()
            except Exception as exc:
                if record:
                    out.span(lane, first, n, "failed", t, now_ns(), tc, cpu())
                raise TaskFailed(i, "task %d raised %s" % (i, describe(exc)))
            finally:
                slots.release(k)
        elif offload:
            s = await loop.run_in_executor(ex, exec_chunk, first, n)
        else:
            k = slots.acquire()
            try:
                s = run_chunk(kernel, tracker_for(cfg, out.q, slots.lanes[k]), first, n, pay)
            finally:
                slots.release(k)
        out.maybe_flush()
        return s

    async def amain():
        loop = asyncio.get_running_loop()
        lane = out.lane("loop", pid, threading.get_native_id())
        if record:
            out.span(lane, 0, 0, "startup", start, now_ns(), start_cpu, cpu())
        ex = None
        if offload:
            created[0], created[1] = now_ns(), cpu()
            ex = ThreadPoolExecutor(max_workers=cfg.workers, initializer=exec_init)
        try:
            coros = [coroutine(c, loop, ex) for c in range(cfg.chunks)]
            if hasattr(asyncio, "TaskGroup"):
                async with asyncio.TaskGroup() as group:
                    tasks = [group.create_task(co) for co in coros]
                return [t.result() for t in tasks]
            return await asyncio.gather(*coros)
        finally:
            if ex is not None:
                ex.shutdown(wait=True, cancel_futures=True)

    try:
        results = asyncio.run(amain())
    except BaseException as exc:
        failed = find_task_failure(exc)
        if failed is None:
            raise
        return finished(t0, 0, 0, failed.text)
    return finished(t0, sum(results), cfg.tasks, None)


# ---------------------------------------------------------------------------------------------------------------
# The processes mode. Worker side: state set by the pool's initializer, one call of `work` per task.

_W = None


class WorkerState:
    def __init__(self, cfg, slot, current):
        self.slot = slot
        self.current = current
        self.tasks = cfg["tasks"]
        self.chunksize = cfg["chunksize"]
        self.payload = cfg["payload"]
        self.crc = cfg["crc"]
        self.checksum = cfg["payload_checksum"]
        self.kernel = make_kernel(parse_workload(cfg["workload"]), cfg["fail_task"], cfg["crash_task"])
        self.spans = []
        self.tracker = Tracker(self.spans, None) if cfg["record"] else Quiet()
        self.record = cfg["record"]

    def take_spans(self):
        """The spans recorded since the last call, as event lines with `@` for the lane (only the parent knows
        lane ids): formatting them here keeps that work off the parent, which a pool at chunksize 1 keeps busy."""
        spans = self.spans
        if not spans:
            return None
        self.spans = self.tracker.sink = []
        return "\n".join([WORKER_SPAN % sp[1:] for sp in spans]), spans[-1][5]


def worker_init(cfg, hellos, counter, current):
    global _W
    import signal

    # A forked worker inherits the harness's handler, which would kill the harness's other workers.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    die_with_harness(cfg["harness_pid"], cfg["watch"])
    if cfg["close_fd"] >= 0:
        try:
            os.close(cfg["close_fd"])
        except OSError:
            pass
    init_cpu()
    with counter.get_lock():
        slot = counter.value
        counter.value = slot + 1
    _W = WorkerState(cfg, slot, current)
    hellos.put((slot, os.getpid(), threading.get_native_id(), now_ns(), cpu()))


def noop(x):
    return x


def work(item):
    """One task in a worker. Returns its checksum (an int) in the middle of a chunk and when nothing else needs to
    go back; at a chunk's end, or with a payload, (checksum, payload or None, slot, spans); when the task raised,
    ("failed", task, message, slot, spans). `spans` is None or (event lines, end of the last span).
    Chunks are consecutive runs of `chunksize` tasks from 0 (how Pool and ProcessPoolExecutor cut them), so a task
    knows where its chunk starts and ends from its index alone."""
    w = _W
    tr = w.tracker
    c = w.chunksize
    if w.payload:
        i, blob = item
    else:
        i = item
    pos = i % c
    if pos == 0:
        w.current[w.slot] = i
    try:
        if w.payload:
            import pickle

            tr.begin(i, 1)
            data = pickle.loads(blob)
            tr.close("serialize")
            s = w.kernel(i, tr) + payload_sum(data, w.crc, w.checksum)
        else:
            if pos == 0:
                tr.begin(i, min(c, w.tasks - i))
            data = None
            s = w.kernel(i, tr)
    except Exception as exc:
        tr.close("failed")
        w.current[w.slot] = -1
        return ("failed", i, "task %d raised %s" % (i, describe(exc)), w.slot, w.take_spans())
    last = pos == c - 1 or i == w.tasks - 1
    if last:
        w.current[w.slot] = -1
    if w.payload:
        tr.end()
        return (s, data, w.slot, w.take_spans())
    if last:
        tr.end()
        spans = w.take_spans()
        if spans is not None:
            return (s, None, w.slot, spans)
    return s


class Items:
    """The tasks' arguments with a payload, made as the pool takes them: each task's payload is pickled here
    (timed, one `serialize` span per chunk on the thread that feeds the pool) and travels as its own bytes."""

    def __init__(self, cfg, data, out, pid):
        self.cfg = cfg
        self.data = data
        self.out = out
        self.pid = pid

    def __len__(self):
        return self.cfg.tasks

    def __iter__(self):
        import pickle

        cfg, out, data = self.cfg, self.out, self.data
        dumps, proto = pickle.dumps, pickle.HIGHEST_PROTOCOL
        lane = None
        if cfg.record:
            label = "main" if threading.current_thread() is threading.main_thread() else "feeder"
            lane = out.lane(label, self.pid, threading.get_native_id())
        for c in range(cfg.chunks):
            first, n = cfg.chunk_range(c)
            last = first + n - 1
            t, tc = now_ns(), cpu()
            for i in range(first, first + n):
                blob = dumps(data, proto)
                if i == last and lane is not None:
                    out.span(lane, first, n, "serialize", t, now_ns(), tc, cpu())
                yield (i, blob)


def signal_name(n):
    import signal

    try:
        return signal.Signals(n).name
    except ValueError:
        return "a signal"


class Pool:
    """One process pool of the run (multiprocessing.Pool or ProcessPoolExecutor) and what its workers said."""

    def __init__(self, cfg, out, pay):
        import multiprocessing

        self.mp = multiprocessing
        self.cfg = cfg
        self.out = out
        self.pid = os.getpid()
        ctx = multiprocessing.get_context(cfg.start)
        self.hellos = ctx.SimpleQueue()
        self.counter = ctx.Value("i", 0)
        # The first task of the chunk each worker is running (-1: none), to say what a dead worker was doing.
        self.current = ctx.RawArray("q", [-1] * (cfg.workers + 64))
        # The main thread (results) and the watchdog (hellos, deaths) both use what follows.
        self.lock = threading.RLock()
        self.lanes = {}  # slot -> lane
        self.pids = {}  # slot -> pid
        self.last_ns = {}  # slot -> end of the worker's last recorded span
        w = cfg.workload
        wcfg = {
            "workload": "tiny" if w.name == "tiny" else "fib:%d..%d" % (w.lo, w.size) if w.name == "fib" else
            "%s:%d" % (w.name, w.size),
            "tasks": cfg.tasks, "chunksize": cfg.chunksize, "payload": cfg.payload,
            "crc": pay[1] if pay else 0, "payload_checksum": pay[2] if pay else 0,
            "record": cfg.record, "fail_task": cfg.fail_task, "crash_task": cfg.crash_task,
            "harness_pid": self.pid, "close_fd": cfg.results_fd if cfg.start == "fork" else -1,
            "watch": cfg.start == "forkserver",
        }
        args = (wcfg, self.hellos, self.counter, self.current)
        self.created, self.created_cpu = now_ns(), cpu()
        if cfg.api == "executor":
            from concurrent.futures import ProcessPoolExecutor

            self.pool = ProcessPoolExecutor(max_workers=cfg.workers, mp_context=ctx, initializer=worker_init,
                                            initargs=args)
        else:
            self.pool = ctx.Pool(cfg.workers, initializer=worker_init, initargs=args)
        self.watch()

    def watch(self):
        """Remembers every child process the pool has now (they are checked for deaths on every tick)."""
        for p in self.mp.active_children():
            _workers.setdefault(p.pid, p)

    def drain(self):
        with self.lock:
            while not self.hellos.empty():
                slot, pid, tid, ready, ready_cpu = self.hellos.get()
                lane = self.out.lane("p%d" % (slot + 1), pid, tid)
                self.lanes[slot] = lane
                self.pids[slot] = pid
                self.last_ns[slot] = ready
                _workers.setdefault(pid, None)
                if self.cfg.record:
                    self.out.span(lane, 0, 0, "startup", self.created, ready, self.created_cpu, ready_cpu)

    def lane(self, slot):
        with self.lock:
            if slot not in self.lanes:
                self.drain()
            return self.lanes.get(slot, 0)

    def check(self):
        """Raises RunFailed when a worker died (Pool would silently replace it and wait forever for its chunk)."""
        with self.lock:
            self.watch()
            dead = [(pid, p.exitcode) for pid, p in _workers.items() if p is not None and p.exitcode is not None]
            if dead:
                # ProcessPoolExecutor SIGTERMs the survivors once one worker is gone: name the one that died first.
                dead.sort(key=lambda d: d[1] == -15)
                raise RunFailed(self.death(*dead[0]))
            if len(self.pids) > self.cfg.workers:
                raise RunFailed("a worker process died and the pool started another one in its place; the run "
                                "was stopped")

    def death(self, pid, code):
        how = "was killed by signal %d (%s)" % (-code, signal_name(-code)) if code < 0 else \
            "exited with status %d" % code
        self.drain()
        slots = [s for s, p in self.pids.items() if p == pid]
        if not slots:
            return "a worker process (pid %d) %s while starting; the run was stopped" % (pid, how)
        slot = slots[0]
        first = self.current[slot]
        during = ""
        task, n = 0, 0
        if first >= 0:
            task, n = first, min(self.cfg.chunksize, self.cfg.tasks - first)
            during = " while running chunk %d (tasks %d..%d)" % (first // self.cfg.chunksize, task, task + n)
        if self.cfg.record:
            self.out.span(self.lane(slot), task, n, "failed", self.last_ns.get(slot, self.created), now_ns(), -1, -1)
        return "worker p%d (pid %d) %s%s; the run was stopped" % (slot + 1, pid, how, during)

    def tick(self):
        self.drain()
        self.check()
        self.out.flush()

    def wait_ready(self):
        """Warm pools: every worker has started and answered before the clock starts."""
        if self.cfg.api == "executor":
            list(self.pool.map(noop, range(self.cfg.workers)))
        else:
            self.pool.map(noop, range(self.cfg.workers), chunksize=1)
        deadline = time.monotonic() + START_TIMEOUT_S
        while len(self.lanes) < self.cfg.workers:
            self.tick()
            if time.monotonic() > deadline:
                raise RunFailed("the %d worker processes did not all start within %d s" % (
                    self.cfg.workers, START_TIMEOUT_S))
            time.sleep(0.005)

    def shut_down(self):
        if self.cfg.api == "executor":
            self.pool.shutdown(wait=True)
        else:
            self.pool.close()
            self.pool.join()

    def kill(self):
        """Ends a failed run's pool at once. Not Pool.terminate(): it first takes the task queue's lock, which an idle
        worker holds while it waits for a task, so a worker killed while waiting would make it wait forever. The
        harness leaves with os._exit right after, so the pool's threads need no shutdown. The pool object is kept
        alive until then: collecting it would run Pool's finalizer, which is terminate()."""
        _abandoned.append(self.pool)
        kill_workers()


class Watchdog:
    """While the main thread waits on the pool's own blocking calls (Pool.map, the imap iterators,
    ProcessPoolExecutor.map), this thread reads the workers' hellos, flushes events and watches for a dead worker.
    Pool replaces a dead worker and waits forever for its chunk, so on a death the watchdog ends the run itself:
    the failed span, the finished event, the workers killed, exit."""

    def __init__(self, pool, st):
        self.pool = pool
        self.st = st
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, name="parlab-watchdog", daemon=True)
        self.thread.start()

    def run(self):
        pool = self.pool
        while not self.stopped.wait(TICK_S):
            with pool.lock:
                if self.stopped.is_set():
                    return
                try:
                    pool.tick()
                except RunFailed as failed:
                    st = self.st
                    pool.out.line({"finished": finished(st["t0"], st["sum"], st["done"], str(failed))})
                    pool.out.flush()
                    abandon(0)

    def stop(self):
        with self.pool.lock:
            self.stopped.set()
        self.thread.join()


def run_processes(cfg, out):
    pay = payload_parts(cfg)
    pid = os.getpid()
    items = Items(cfg, pay[0], out, pid) if pay else range(cfg.tasks)
    st = {"t0": now_ns(), "sum": 0, "done": 0}
    pool = None
    watchdog = None
    try:
        pool = Pool(cfg, out, pay)
        if cfg.warm:
            pool.wait_ready()
            out.note("warm pool: workers started before the clock")
            out.flush()
            st["t0"] = now_ns()
        watchdog = Watchdog(pool, st)
        run_pool(cfg, pool, items, st)
        watchdog.stop()
        if not cfg.warm:
            # A cold pool's shutdown is part of the measured time, as when a tutorial times `with Pool(...)`.
            pool.shut_down()
        end = finished(st["t0"], st["sum"], st["done"], None)
        if cfg.warm:
            pool.shut_down()
        pool.drain()
        return end
    except BaseException as exc:
        if watchdog is not None:
            watchdog.stop()
        error = str(exc) if isinstance(exc, RunFailed) else "the processes mode failed: " + describe(exc)
        if pool is not None:
            pool.drain()
            pool.kill()
        else:
            kill_workers()
        return finished(st["t0"], st["sum"], st["done"], error)


def run_pool(cfg, pool, items, st):
    """Hands the tasks to the pool through the API the request names and takes the results as they come."""
    q = pool.out.q
    payload = cfg.payload

    def take(r):
        if type(r) is int:
            st["sum"] += r
            st["done"] += 1
            return
        if type(r[0]) is str:
            _, task, text, slot, spans = r
            keep(slot, spans)
            raise RunFailed(text)
        s, data, slot, spans = r
        st["sum"] += s
        st["done"] += 1
        if data is not None and len(data) != payload:
            raise RunFailed("worker p%d returned %d payload bytes for a task, expected %d" % (
                slot + 1, len(data), payload))
        keep(slot, spans)

    def keep(slot, spans):
        if spans is not None:
            q.append(spans[0].replace("@", str(pool.lane(slot))))
            pool.last_ns[slot] = spans[1]

    p, c = pool.pool, cfg.chunksize
    if cfg.api == "executor":
        from concurrent.futures.process import BrokenProcessPool

        try:
            results = p.map(work, items, chunksize=c)
            pool.watch()
            for r in results:
                take(r)
        except BrokenProcessPool:
            # The executor noticed a dead worker before the watchdog did: give it a moment to be reaped.
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                pool.check()
                time.sleep(0.01)
            raise RunFailed("a worker process of the ProcessPoolExecutor ended abruptly; the run was stopped")
    elif cfg.api == "map":
        for r in p.map(work, items, chunksize=c):
            take(r)
    else:
        for r in (p.imap if cfg.api == "imap" else p.imap_unordered)(work, items, chunksize=c):
            take(r)


# ---------------------------------------------------------------------------------------------------------------
# The dask and ray modes: the kernels in batches on an engine's worker processes, timed by the engine itself.

ENGINES = {
    # mode: (the module the mode imports, how a learner installs it)
    "dask": ("dask.distributed", "pip install 'dask[distributed]'"),
    "ray": ("ray", "pip install ray"),
}
# Dask's task stream and Ray's GCS keep the records of 100000 tasks by default, and at the engines' cost of about
# a millisecond a task, 100000 batches are already minutes of scheduling.
MAX_BATCHES = 100000
# Every batch's arguments exist at once (client.map, a list of remote calls), so a run may carry less.
MAX_ENGINE_PAYLOAD = 1024 * 1024 * 1024
# How long the engines' records may take to arrive after the last result (Ray reports its task events every
# 100 ms on a cluster the harness starts, every second by default on others).
RECORDS_TIMEOUT_S = 5.0
CONNECT_TIMEOUT_S = 10
# The engines' own names for a task's phases, as parlab's span kinds. Dask spills by pickling to disk, so its
# disk-write and disk-read are (de)serialization; Ray's store_outputs serializes the result into its object store.
DASK_KINDS = {"compute": "run", "transfer": "ipc", "deserialize": "serialize", "disk-read": "serialize",
              "disk-write": "serialize"}
RAY_KINDS = {"task:deserialize_arguments": "serialize", "task:execute": "run", "task:store_outputs": "serialize"}

_engine_run = {}  # the cluster this harness started: "dirs", "guard"
# The name of the harness's copy on Dask's workers (and in the client): functions pickled by reference to it cost
# the scheduler a name per task, where by value (cloudpickle's way for __main__) every task would carry the code of
# the kernels and all they call.
DASK_MODULE = "parlab_harness"


def import_engine(mode, local=False):
    """The engine's module, imported only by the run (or probe) that uses it; RunFailed with the install hint."""
    import importlib

    name, hint = ENGINES[mode]
    if mode == "ray":
        # Ray reports usage statistics to its makers unless told not to; the lab talks to nobody.
        os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
        if local:
            # Ray replaces a node address of 127.0.0.1 by this machine's network address and listens there, unless
            # clusters are "disabled", as on macOS and Windows: then the node is the loopback address (read when
            # ray is imported).
            os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] in ("dask", "distributed", "ray"):
            raise RunFailed("%s is not installed for %s: %s" % (mode, sys.executable, hint))
        raise RunFailed("%s does not import in %s: %s" % (name, sys.executable, describe(exc)))
    except Exception as exc:
        raise RunFailed("%s does not import in %s: %s" % (name, sys.executable, describe(exc)))


def engine_report(mode):
    """For the probe: whether the engine imports here, its version, and otherwise the line that says why."""
    try:
        import_engine(mode)
    except RunFailed as exc:
        return {"available": False, "version": None, "error": str(exc)}
    module = sys.modules["dask" if mode == "dask" else "ray"]
    return {"available": True, "version": getattr(module, "__version__", None), "error": None}


class EngineClock:
    """The one place where the harness converts times. The engines record wall-clock time (Dask: time.time()
    seconds; Ray's timeline: microseconds) and the lab's spans are CLOCK_MONOTONIC ns: the offset between the two
    clocks is measured once, from the tightest of a few back-to-back readings. Engine spans are clamped into the
    run's [t0, t_end] (a worker's wall clock, or a remote machine's, may be a little off) and counted."""

    def __init__(self):
        best = None
        for _ in range(7):
            a = time.monotonic_ns()
            w = time.time_ns()
            b = time.monotonic_ns()
            if best is None or b - a < best[0]:
                best = (b - a, w - (a + b) // 2)
        self.offset = best[1]
        self.records = 0
        self.clamped = 0
        self.worst = 0

    def s(self, seconds):
        return int(round(seconds * 1e9)) - self.offset

    def us(self, micros):
        return int(round(micros * 1e3)) - self.offset

    def ns(self, wall_ns):
        return wall_ns - self.offset

    def clamp(self, a, b, t0, t_end):
        self.records += 1
        ca = min(max(a, t0), t_end)
        cb = min(max(b, ca), t_end)
        if ca != a or cb != b:
            self.clamped += 1
            self.worst = max(self.worst, abs(ca - a), abs(cb - b))
        return ca, cb

    def note(self, out, engine):
        if self.clamped:
            out.note("%d of %d spans from %s's records fell outside the run (by up to %.0f us) and were clamped to it: "
                     "the engine's wall clock, read against the lab's monotonic one" % (
                         self.clamped, self.records, engine, self.worst / 1e3))


class WallWaits:
    """A batch's hooks on an engine's worker: the simulated waits, in wall-clock ns (the engines' clock, which
    also holds on another machine, where this machine's monotonic clock means nothing)."""

    __slots__ = ("waits",)

    def __init__(self):
        self.waits = []

    def wait(self, ms):
        a = time.time_ns()
        time.sleep(ms / 1000.0)
        self.waits.append((a, time.time_ns()))


def engine_batch(first, n, spec, blobs):
    """One batch on a Dask or Ray worker: tasks [first, first + n), each with its own payload (`blobs`, or None).
    Returns (checksum, pid, native thread id, thread ident, waits, the payloads back). A task that raises ends the
    batch with RuntimeError("task N raised ..."), which the engine records as an error and hands to the client.
    Pickled by value (cloudpickle, the harness being __main__), so workers need no copy of the harness."""
    kernel = make_kernel(parse_workload(spec["workload"]), spec["fail_task"])
    hooks = WallWaits()
    s = 0
    for i in range(first, first + n):
        try:
            s += kernel(i, hooks)
            if blobs is not None:
                s += payload_sum(blobs[i - first], spec["crc"], spec["payload_checksum"])
        except Exception as exc:
            # On Dask the harness runs as its copy parlab_harness.py; on Ray (pickled by value) as itself.
            text = describe(exc).replace("(%s.py:" % DASK_MODULE, "(%s:" % spec["file"])
            raise RuntimeError("task %d raised %s" % (i, text)) from None
    return s & MASK, os.getpid(), threading.get_native_id(), threading.get_ident(), hooks.waits, blobs


def worker_facts(dask_worker):
    """On a Dask worker (client.run): its threads' native ids by ident (the task stream names threads by ident),
    and the offset it adds to the times it records (its estimate of the scheduler's clock minus its own)."""
    return {t.ident: t.native_id for t in threading.enumerate()}, dask_worker.scheduler_delay


def ray_who(delay):
    import ray

    time.sleep(delay)
    return ray.get_runtime_context().get_worker_id(), os.getpid(), threading.get_native_id()


def short_tmp(prefix):
    """A private folder for the engine's files (Ray's socket paths must stay under 108 bytes)."""
    import tempfile

    base = tempfile.gettempdir()
    return tempfile.mkdtemp(prefix=prefix, dir=base if len(base) <= 40 else "/tmp")


def start_engine_run(dirs):
    """Before the harness starts a cluster: makes the harness the subreaper of its descendants (a process whose
    parent dies, like Ray's agents when the raylet goes, is adopted by the harness instead of init, so the
    harness's own clean-up still finds it), and starts the guard, which outlives a SIGKILLed harness to kill
    what is left of its process tree and remove `dirs`."""
    import subprocess

    try:
        import ctypes

        prctl = ctypes.CDLL(None).prctl
        prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
        prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except Exception:
        pass
    guard = subprocess.Popen(
        [sys.executable, "-I", os.path.abspath(__file__), "--guard", str(os.getpid())] + list(dirs),
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, close_fds=True, start_new_session=True)
    _engine_run.update(dirs=list(dirs), guard=guard)


def proc_table():
    """pid -> (parent pid, start time, state) of every process, from /proc."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name, "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            table[int(name)] = (int(fields[1]), int(fields[19]), fields[0])
        except (OSError, IndexError, ValueError):
            continue
    return table


def tree_of(table, roots):
    """`roots` (pids, when alive) and all their descendants, from a proc_table()."""
    children = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found = set()
    frontier = [p for p in roots if p in table]
    while frontier:
        p = frontier.pop()
        if p not in found:
            found.add(p)
            frontier.extend(children.get(p, ()))
    return found


def is_resource_tracker(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return b"multiprocessing.resource_tracker" in f.read()
    except OSError:
        return False


def kill_tree(known, skip):
    """Kills every process in `known` (pid -> start time; the same process only, never a reused pid) that is still
    alive, and every descendant each has by then, except `skip` and multiprocessing's resource tracker (it leaves
    by itself once nobody holds its pipe, unlinking the semaphores of the cluster). Each is stopped first, so that
    none can start another (nor be replaced by its supervisor) between the look and the kill."""
    import signal

    stopped = set()
    for _ in range(100):
        table = proc_table()
        roots = [p for p, start in known.items() if p in table and table[p][1] == start]
        new = [p for p in tree_of(table, roots)
               if p not in stopped and p not in skip and table[p][2] != b"Z" and not is_resource_tracker(p)]
        if not new:
            break
        for p in new:
            known.setdefault(p, table[p][1])
            try:
                os.kill(p, signal.SIGSTOP)
            except OSError:
                pass
            stopped.add(p)
    for p in stopped:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass


def kill_engine_processes():
    """Kills what is left of the cluster this harness started (every descendant but the guard) and removes its
    folders."""
    if not _engine_run:
        return
    import shutil

    me = os.getpid()
    table = proc_table()
    known = {p: table[p][1] for p in tree_of(table, [me]) if p != me}
    kill_tree(known, {me, _engine_run["guard"].pid})
    for d in _engine_run["dirs"]:
        shutil.rmtree(d, ignore_errors=True)


def guard(argv):
    """`harness.py --guard HARNESS_PID DIR...`: while the harness lives, notes its process tree every 200 ms;
    once it has ended, however it ended (a SIGKILLed harness runs nothing), kills whatever is left of that tree
    (orphans adopted by init included) and removes the folders. Without it, Ray's dashboard and runtime-env agents
    outlive a SIGKILLed harness, forever."""
    import select
    import shutil

    harness, dirs = int(argv[0]), argv[1:]
    me = os.getpid()
    known = {}
    try:
        fd = os.pidfd_open(harness)
    except (AttributeError, OSError):
        fd = None
    while True:
        table = proc_table()
        if harness not in table or table[harness][2] == b"Z":
            break
        for p in tree_of(table, [harness]):
            if p != me:
                known.setdefault(p, table[p][1])
        if fd is not None:
            if select.select([fd], [], [], 0.2)[0]:
                break
        else:
            time.sleep(0.2)
    known.pop(harness, None)
    kill_tree(known, {me})
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)
    return 0


def engine_spec(cfg, pay):
    w = cfg.workload
    return {
        "workload": "tiny" if w.name == "tiny" else "fib:%d..%d" % (w.lo, w.size) if w.name == "fib" else
        "%s:%d" % (w.name, w.size),
        "fail_task": cfg.fail_task, "crc": pay[1] if pay else 0, "payload_checksum": pay[2] if pay else 0,
        "file": os.path.basename(__file__),
    }


def engine_blobs(cfg, pay, c):
    """Batch c's payloads: one object per task (one shared object would be sent once)."""
    if not pay:
        return None
    first, n = cfg.chunk_range(c)
    return [bytes(bytearray(pay[0])) for _ in range(n)]


def one_line(text):
    """An engine's message on one line (Dask's and Ray's span several)."""
    return " ".join(text.split())


def task_error(exc, engine):
    """A failed batch's error line: the task's own message when a task raised, else the engine's."""
    text = str(exc)
    if isinstance(exc, RuntimeError) and text.startswith("task "):
        return text.splitlines()[0]
    return one_line("the %s mode failed: %s" % (engine, describe(exc)))


def cut_at_waits(a, b, waits, clock):
    """A batch's run span [a, b] cut into run and idle pieces at its simulated waits (wall-clock ns)."""
    pieces = []
    t = a
    for wa, wb in waits:
        wa, wb = max(clock.ns(wa), t), min(clock.ns(wb), b)
        if wb <= wa:
            continue
        pieces.append(("run", t, wa))
        pieces.append(("idle", wa, wb))
        t = wb
    pieces.append(("run", t, b))
    return [p for p in pieces if p[2] > p[1] or len(pieces) == 1]


def take_results(cfg, results, pay):
    """(checksum, tasks done) of the batches that returned; RunFailed when a payload came back short."""
    total = 0
    done = 0
    for c, r in results.items():
        total += r[0]
        done += cfg.chunk_range(c)[1]
        if pay and any(len(b) != cfg.payload for b in r[5]):
            raise RunFailed("batch %d came back with a payload of the wrong size (expected %d bytes)" % (
                c, cfg.payload))
    return total, done


def emit_engine_spans(cfg, out, clock, pieces, lanes, t0, t_end):
    """Declares the workers' lanes (`lanes`: key -> (label, pid, tid)) and writes the spans (key, first, n, kind,
    start, end, counted), clamped into the run. Batches that were still running when a failed run ended (not
    counted) may have records wholly after its end: those are left out."""
    late = 0
    used = {}
    for key, first, n, kind, a, b, counted in pieces:
        if not counted and (a >= t_end or b <= t0):
            late += 1
            continue
        used.setdefault(key, []).append((first, n, kind, a, b))
    ids = {}
    for key in sorted(used, key=lambda k: lanes[k][0]):
        label, pid, tid = lanes[key]
        ids[key] = out.lane(label, pid, tid)
    for key, spans in used.items():
        for first, n, kind, a, b in spans:
            a, b = clock.clamp(a, b, t0, t_end)
            out.span(ids[key], first, n, kind, a, b, -1, -1)
    if late:
        out.note("%d records of batches still running when the run stopped are not drawn (they ended after it)" % late)


def label_workers(keys, order):
    """w1..wN by the workers' order; a worker with several threads gets w1.1, w1.2..."""
    workers = sorted({k[0] for k in keys}, key=order)
    labels = {}
    for k, worker in enumerate(workers):
        threads = sorted(key for key in keys if key[0] == worker)
        for j, key in enumerate(threads):
            labels[key] = "w%d" % (k + 1) if len(threads) == 1 else "w%d.%d" % (k + 1, j + 1)
    return labels


def dask_module(client, folder):
    """The harness as module parlab_harness in this process and on every worker of the cluster (Client.upload_file
    sends a file to the scheduler and the workers, present and future, and puts it on their sys.path)."""
    import importlib.util
    import shutil

    path = os.path.join(folder, DASK_MODULE + ".py")
    shutil.copyfile(os.path.abspath(__file__), path)
    spec = importlib.util.spec_from_file_location(DASK_MODULE, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[DASK_MODULE] = module
    spec.loader.exec_module(module)
    client.upload_file(path)
    return module


def run_dask(cfg, out):
    import logging

    distributed = import_engine("dask")
    logging.getLogger("distributed").setLevel(logging.ERROR)
    clock = EngineClock()
    pay = payload_parts(cfg)
    lane = out.lane("client", os.getpid(), threading.get_native_id())
    local = cfg.scheduler is None
    t0 = now_ns()
    cluster = client = None
    tmp = short_tmp("parlab-dask-")
    try:
        if local:
            start_engine_run([tmp])
        started, started_cpu = now_ns(), cpu()
        if local:
            cluster = distributed.LocalCluster(
                n_workers=cfg.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                dashboard_address=None, silence_logs=logging.ERROR, local_directory=tmp,
                # Without a dashboard the scheduler still serves its HTTP routes (health, metrics), on 8787 unless
                # told otherwise, with a warning on stderr when another cluster has that port.
                scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})
            client = distributed.Client(cluster)
        else:
            try:
                client = distributed.Client(cfg.scheduler, timeout=CONNECT_TIMEOUT_S)
            except Exception as exc:
                raise RunFailed("cannot connect to the dask scheduler at '%s': %s" % (cfg.scheduler, describe(exc)))
        want = cfg.workers if local or cfg.workers_given else 1
        try:
            client.wait_for_workers(want, timeout=START_TIMEOUT_S)
        except Exception:
            raise RunFailed("the dask cluster did not have %d workers within %d s" % (want, START_TIMEOUT_S))
        pids = client.run(os.getpid)
        ready = now_ns()
        if cfg.record:
            out.span(lane, 0, 0, "startup", started, ready, started_cpu, cpu())
        if not local:
            cfg.engine_workers(len(pids))
            out.note("dask scheduler %s: %d workers" % (cfg.scheduler, len(pids)))
        module = dask_module(client, tmp)
        if cfg.record:
            client.get_task_stream(count=0)  # the scheduler records the task stream from now on
        if cfg.warm:
            out.note("warm cluster: the dask workers started before the clock")
            t0 = now_ns()
        out.flush()
        token = os.urandom(4).hex()
        keys = ["parlab-batch-%s-%d" % (token, c) for c in range(cfg.chunks)]
        spec = engine_spec(cfg, pay)
        ranges = [cfg.chunk_range(c) for c in range(cfg.chunks)]
        wall_submitted = time.time()
        t_sub, cpu_sub = now_ns(), cpu()
        futures = client.map(module.engine_batch, [r[0] for r in ranges], [r[1] for r in ranges], [spec] * cfg.chunks,
                             [engine_blobs(cfg, pay, c) for c in range(cfg.chunks)], key=keys, pure=False)
        if cfg.record:
            out.span(lane, 0, 0, "ipc", t_sub, now_ns(), cpu_sub, cpu())
        out.flush()
        for f in distributed.as_completed(futures):
            if f.status == "error":
                break
        finished_f = [(c, f) for c, f in enumerate(futures) if f.status == "finished"]
        erred = [(c, f) for c, f in enumerate(futures) if f.status == "error"]
        gathered = client.gather([f for _, f in finished_f]) if finished_f else []
        results = {c: r for (c, _), r in zip(finished_f, gathered)}
        error = task_error(erred[0][1].exception(), "dask") if erred else None
        total, done = take_results(cfg, results, pay)
        end = finished(t0, total, done, error)
        if cfg.record:
            records = client.get_task_stream(start=wall_submitted - 1.0)
            facts = client.run(module.worker_facts)
            dask_spans(cfg, out, clock, records, keys, pids, facts, results, end, local)
        t_close = now_ns()
        if cluster is not None:
            # Workers first: closed with the scheduler, a worker whose heartbeat is on its way logs a
            # "Failed to communicate with scheduler" traceback.
            cluster.scale(0)
            deadline = time.monotonic() + 10.0
            while client.scheduler_info(n_workers=-1)["workers"] and time.monotonic() < deadline:
                time.sleep(0.01)
        client.close()
        if cluster is not None:
            cluster.close()
        out.note("the dask %s in %.0f ms after the clock stopped" % (
            "cluster shut down" if local else "client disconnected", (now_ns() - t_close) / 1e6))
        return end
    except BaseException as exc:
        error = str(exc) if isinstance(exc, RunFailed) else "the dask mode failed: " + describe(exc)
        end = finished(t0, 0, 0, one_line(error))
        # A cluster closed in order unlinks its semaphores (killed, it leaves the resource tracker to warn).
        for part in (client, cluster):
            try:
                if part is not None:
                    part.close(timeout=10)
            except BaseException:
                pass
        return end
    finally:
        kill_engine_processes()
        if not local:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)


def dask_spans(cfg, out, clock, records, keys, pids, facts, results, end, local):
    """Spans from Dask's task stream: each record is one batch on one worker thread, with its phases
    (startstops: compute, transfer, deserialize, disk-read, disk-write) in wall-clock seconds. A worker shifts the
    times it records onto the scheduler's clock by its own estimate of the difference (scheduler_delay, from its
    heartbeats, off by milliseconds on a loaded machine); a cluster the harness started shares this machine's
    clock, so that estimate is taken back out."""
    ours = {k: c for c, k in enumerate(keys)}
    pieces = []
    skipped = set()
    for rec in records:
        c = ours.get(rec.get("key"))
        if c is None:
            continue
        first, n = cfg.chunk_range(c)
        where = (rec.get("worker"), rec.get("thread"))
        failed = rec.get("status") == "error"
        delay = facts.get(where[0], ({}, 0.0))[1] if local else 0.0
        counted = c in results or failed
        for ss in rec.get("startstops", ()):
            kind = DASK_KINDS.get(ss.get("action"))
            if kind is None:
                skipped.add(str(ss.get("action")))
                continue
            a, b = clock.s(ss["start"] - delay), clock.s(ss["stop"] - delay)
            if kind == "run" and failed:
                pieces.append((where, first, n, "failed", a, b, counted))
            elif kind == "run" and c in results:
                for k, pa, pb in cut_at_waits(a, b, results[c][4], clock):
                    pieces.append((where, first, n, k, pa, pb, counted))
            else:
                pieces.append((where, first, n, kind, a, b, counted))
    keys_seen = {p[0] for p in pieces}
    labels = label_workers(keys_seen, lambda w: (str(w)))
    lanes = {}
    for key in keys_seen:
        worker, ident = key
        pid = pids.get(worker) or 0
        tid = facts.get(worker, ({}, 0.0))[0].get(ident) or pid
        lanes[key] = (labels[key], pid, tid)
    emit_engine_spans(cfg, out, clock, pieces, lanes, end["t0_ns"], end["t_end_ns"])
    clock.note(out, "Dask")
    missing = len(ours) - len({rec.get("key") for rec in records if rec.get("key") in ours})
    if missing and results:
        out.note("Dask's task stream has no record of %d of the %d batches" % (missing, len(ours)))
    if skipped:
        out.note("Dask recorded phases parlab does not draw: %s" % ", ".join(sorted(skipped)))


def run_ray(cfg, out):
    import logging
    import signal

    ray = import_engine("ray", local=cfg.address is None)
    clock = EngineClock()
    pay = payload_parts(cfg)
    lane = out.lane("driver", os.getpid(), threading.get_native_id())
    local = cfg.address is None
    t0 = now_ns()
    inited = False
    try:
        if local:
            tmp = short_tmp("parlab-ray-")
            start_engine_run([tmp])
        started, started_cpu = now_ns(), cpu()
        handler = signal.getsignal(signal.SIGTERM)
        try:
            if local:
                ray.init(num_cpus=cfg.workers, include_dashboard=False, _temp_dir=tmp,
                         log_to_driver=False, logging_level=logging.ERROR, namespace="parlab",
                         _system_config={"task_events_report_interval_ms": 100})
            else:
                ray.init(address=cfg.address, log_to_driver=False, logging_level=logging.ERROR, namespace="parlab")
        except Exception as exc:
            if local:
                raise
            raise RunFailed("cannot connect to the ray cluster at '%s': %s" % (cfg.address, describe(exc)))
        inited = True
        # ray.init replaces the SIGTERM handler; the harness's own one kills the cluster and exits 143.
        signal.signal(signal.SIGTERM, handler)
        want = cfg.workers
        if not local and not cfg.workers_given:
            want = max(1, int(ray.cluster_resources().get("CPU", 1)))
            cfg.engine_workers(want)
        workers = ray_workers(ray, want)
        ready = now_ns()
        if cfg.record:
            out.span(lane, 0, 0, "startup", started, ready, started_cpu, cpu())
        if not local:
            out.note("ray cluster %s: %d CPUs" % (cfg.address, want))
        if cfg.warm:
            out.note("warm cluster: the ray workers started before the clock")
            t0 = now_ns()
        out.flush()
        spec = engine_spec(cfg, pay)
        remote = ray.remote(engine_batch)
        refs = []
        for c in range(cfg.chunks):
            first, n = cfg.chunk_range(c)
            refs.append(remote.remote(first, n, spec, engine_blobs(cfg, pay, c)))
        index = {r: c for c, r in enumerate(refs)}
        results = {}
        failures = {}  # batch -> (error line, pid)
        pending = refs
        while pending and not failures:
            ready_refs, pending = ray.wait(pending, num_returns=len(pending), timeout=TICK_S)
            for r in ready_refs:
                try:
                    results[index[r]] = ray.get(r)
                except ray.exceptions.RayTaskError as exc:
                    failures[index[r]] = (task_error(getattr(exc, "cause", None) or exc, "ray"),
                                          getattr(exc, "pid", 0))
                except Exception as exc:
                    failures[index[r]] = ("the ray mode failed: " + describe(exc), 0)
            out.maybe_flush()
        error = failures[min(failures)][0] if failures else None
        total, done = take_results(cfg, results, pay)
        end = finished(t0, total, done, error)
        if cfg.record:
            ids = {r.task_id().hex(): c for c, r in enumerate(refs)}
            driver = ray.get_runtime_context().get_worker_id()
            ray_spans(ray, cfg, out, clock, ids, driver, workers, results, failures, ready, end, lane)
        t_close = now_ns()
        ray.shutdown()
        inited = False
        out.note("ray %s in %.0f ms after the clock stopped" % (
            "shut down" if local else "disconnected", (now_ns() - t_close) / 1e6))
        return end
    except BaseException as exc:
        error = str(exc) if isinstance(exc, RunFailed) else "the ray mode failed: " + describe(exc)
        return finished(t0, 0, 0, one_line(error))
    finally:
        if inited and not local:
            try:
                ray.shutdown()
            except Exception:
                pass
        kill_engine_processes()


def ray_workers(ray, want):
    """Waits until `want` distinct worker processes have answered (Ray starts them as tasks need them): worker id
    -> (pid, tid)."""
    who = ray.remote(ray_who)
    seen = {}
    delay = 0.0
    deadline = time.monotonic() + START_TIMEOUT_S
    while len(seen) < want:
        for wid, pid, tid in ray.get([who.remote(delay) for _ in range(want)]):
            seen[wid] = (pid, tid)
        if time.monotonic() > deadline:
            raise RunFailed("only %d of the %d ray workers started within %d s" % (len(seen), want,
                                                                                 START_TIMEOUT_S))
        # Fast answers let one worker take every call: slow them down until each worker has one.
        delay = min(0.2, delay * 2 or 0.01)
    return seen


def ray_spans(ray, cfg, out, clock, ids, driver, workers, results, failures, ready, end, driver_lane):
    """Spans from Ray's timeline (its task events, chrome-trace style: ts and dur in wall-clock microseconds, tid
    "worker:ID"): per batch a `task::NAME` event with its task id, and inside it, on the same worker, its phases
    (deserialize_arguments, execute, store_outputs); the driver's `submit_task` events. They reach the GCS a little
    after the tasks end: the harness waits for every batch's events, RECORDS_TIMEOUT_S at most."""
    deadline = time.monotonic() + RECORDS_TIMEOUT_S
    driver_tid = "driver:" + driver
    while True:
        events = ray.timeline()
        tasks = {}  # worker tid -> [(ts, end, batch)]
        for e in events:
            tid = e.get("tid", "")
            if str(e.get("cat", "")).startswith("task::"):
                c = ids.get((e.get("args") or {}).get("task_id"))
                if c is not None:
                    tasks.setdefault(tid, []).append((e["ts"], e["ts"] + e.get("dur", 0), c))
        phases = []
        executed = set()
        submits = []
        for e in events:
            tid = e.get("tid", "")
            name = e.get("cat")
            if name in RAY_KINDS and tid in tasks:
                ts, te = e["ts"], e["ts"] + e.get("dur", 0)
                for a, b, c in tasks[tid]:
                    if a <= ts and te <= b + 1:
                        kind = RAY_KINDS[name]
                        if kind == "run":
                            executed.add(c)
                            if (e.get("args") or {}).get("type") or c in failures:
                                kind = "failed"
                        phases.append((tid, c, kind, ts, te))
                        break
            elif name == "submit_task" and tid == driver_tid and clock.us(e["ts"]) >= ready:
                submits.append((e["ts"], e["ts"] + e.get("dur", 0)))
        batches = {c for spans in tasks.values() for _, _, c in spans}
        complete = len(batches) == len(ids) and executed >= batches and len(submits) >= len(ids)
        if complete or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    by_pid = {}
    for wid, (pid, tid) in workers.items():
        by_pid["worker:" + wid] = (pid, tid)
    pieces = []
    for tid, c, kind, ts, te in phases:
        first, n = cfg.chunk_range(c)
        a, b = clock.us(ts), clock.us(te)
        counted = c in results or c in failures
        if kind == "run" and c in results:
            for k, pa, pb in cut_at_waits(a, b, results[c][4], clock):
                pieces.append(((tid, 0), first, n, k, pa, pb, counted))
        else:
            pieces.append(((tid, 0), first, n, kind, a, b, counted))
    # A worker's pid and thread: from its answer before the run, from a batch it returned, or from its error.
    where = {}
    for tid, spans in tasks.items():
        for _, _, c in spans:
            if c in results:
                where[tid] = (results[c][1], results[c][2])
            elif c in failures and failures[c][1] and tid not in where:
                where[tid] = (failures[c][1], failures[c][1])
    where.update({t: v for t, v in by_pid.items() if t in tasks})
    keys_seen = {p[0] for p in pieces}
    labels = label_workers(keys_seen, lambda w: where.get(w, (0, 0))[0])
    lanes = {}
    for key in keys_seen:
        pid, tid = where.get(key[0], (0, 0))
        if not pid:
            continue
        lanes[key] = (labels[key], pid, tid)
    unknown = [p for p in pieces if p[0] not in lanes]
    pieces = [p for p in pieces if p[0] in lanes]
    emit_engine_spans(cfg, out, clock, pieces, lanes, end["t0_ns"], end["t_end_ns"])
    t0, t_end = end["t0_ns"], end["t_end_ns"]
    for ts, te in submits:
        a, b = clock.clamp(clock.us(ts), clock.us(te), t0, t_end)
        out.span(driver_lane, 0, 0, "ipc", a, b, -1, -1)
    clock.note(out, "Ray")
    if len(batches) < len(ids) and results:
        out.note("Ray's timeline has no events for %d of the %d batches after %.0f s" % (
            len(ids) - len(batches), len(ids), RECORDS_TIMEOUT_S))
    if unknown:
        out.note("%d spans from Ray's timeline are on workers whose pid is unknown; they are not drawn" % len(unknown))


# ---------------------------------------------------------------------------------------------------------------


def finished(t0, total, done, error):
    return {"t0_ns": t0, "t_end_ns": now_ns(), "checksum": total & MASK, "tasks_done": done, "error": error}


def run(cfg, out):
    if cfg.mode == "interpreters":
        if sys.version_info < (3, 14):
            raise BadRequest("the interpreters mode needs Python 3.14 (this is %d.%d.%d)" % sys.version_info[:3])
        raise BadRequest("the python engine's interpreters mode is not written yet: it has not been tested on a "
                         "Python 3.14")
    if cfg.mode == "sequential":
        return run_sequential(cfg, out)
    if cfg.mode == "threads":
        return run_threads(cfg, out)
    if cfg.mode == "processes":
        return run_processes(cfg, out)
    if cfg.mode == "dask":
        return run_dask(cfg, out)
    if cfg.mode == "ray":
        return run_ray(cfg, out)
    return run_async(cfg, out)


def read_request():
    buf = b""
    while b"\n" not in buf:
        chunk = os.read(0, 65536)
        if not chunk:
            break
        buf += chunk
        if len(buf) > 1 << 20:
            break
    return buf.split(b"\n", 1)[0]


def main():
    import json
    import signal

    try:
        req = json.loads(read_request().decode("utf-8"))
    except (ValueError, OSError) as exc:
        sys.stderr.write("parlab python harness: the request on stdin is not one line of JSON: %s\n" % exc)
        return 2
    fd = req.get("results_fd") if isinstance(req, dict) else None
    if type(fd) is not int or fd < 0:
        sys.stderr.write("parlab python harness: the request names no results_fd (got %r)\n" % (fd,))
        return 2
    try:
        os.set_inheritable(fd, False)
    except OSError as exc:
        sys.stderr.write("parlab python harness: results_fd %d is not open: %s\n" % (fd, exc))
        return 2
    out = Out(fd)
    hello(out, req.get("probe") is True)
    if sys.version_info < MIN_PYTHON:
        out.line({"finished": finished(0, 0, 0, "the python engine needs Python 3.9 or newer (%s is %d.%d.%d)" % (
            (sys.executable,) + tuple(sys.version_info[:3])))})
        out.flush()
        return 0
    if req.get("probe"):
        out.flush()
        return 0
    watch_stdin()
    signal.signal(signal.SIGTERM, lambda *_: abandon(143))
    init_cpu()
    out.line({"started": {"lab_pid": os.getpid(), "t0_ns": now_ns(), "cores": available_cores()}})
    t0 = now_ns()
    try:
        unknown = sorted(k for k in req if k not in REQUEST_FIELDS)
        if unknown:
            raise BadRequest("unknown request field '%s' (expected: %s)" % (unknown[0], ", ".join(REQUEST_FIELDS)))
        cfg = Config(req)
        cfg.results_fd = fd
        end = run(cfg, out)
    except (BadRequest, RunFailed) as exc:
        end = finished(t0, 0, 0, str(exc))
    except Exception as exc:
        kill_workers()
        end = finished(t0, 0, 0, "the python engine's harness failed: " + describe(exc))
    out.line({"finished": end})
    out.flush()
    # Everything is joined or killed by now; leaving without the interpreter's shutdown means nothing a failed run
    # left half-done (a pool's handler threads, a broken executor) can hold the exit up.
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--guard"]:
        sys.exit(guard(sys.argv[2:]))
    sys.exit(main())
