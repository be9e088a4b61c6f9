"""parlab's CPython engine: the lab's experiments run by a real python3, recorded on the lab's timeline.

Run as `python3 -I -u harness.py` (no shell). Standard library only; Python 3.9 or newer (older ones get a clear
error; the file parses on 3.6+ so that they can say so).

REQUEST: one JSON object on one line on stdin. Keep stdin open: closing it cancels the run (the harness kills its
workers and exits with status 4). SIGTERM does the same (status 143).

    {"workload": "fib:27..30",   parlab's workload name (fib:N, fib:A..B, squares:N, count:N, pi:N, primes:N,
                                  tiny, sleep:MS, logs:N)
     "tasks": 8,                 1..=10000000
     "mode": "processes",        sequential | threads | processes | async | async-offload | interpreters
                                  (`gil` is refused: the threads mode runs under CPython's real GIL)
     "workers": 2,               1..=256; null = the cores this process may use (modes with a pool only)
     "chunksize": null,          threads and processes only; null = the API's default rule (Pool.map:
                                  ceil(tasks / (4 * workers)), CPython's rule, computed here and passed
                                  explicitly because workers tell chunk boundaries from task indexes; imap,
                                  imap_unordered, executor: 1; threads: one future per ceil(tasks / 4096) tasks,
                                  like the native engine)
     "start": "spawn",           spawn | fork | forkserver (processes)
     "api": "map",               map | imap | imap_unordered (multiprocessing.Pool) | executor
                                  (ProcessPoolExecutor.map) (processes)
     "warm": false,              processes: start the pool and do a no-op round trip before the clock starts
     "payload": 0,               bytes sent to the worker with every task and sent back (0..=256 MiB, 4 GiB a run)
     "results_fd": 3}            an inherited file descriptor, open for writing, where events go
    Optional, for tests and bench only:
     "record": true              false: no spans are recorded (lanes still are), to measure what recording costs
     "fail_task": N              task N raises RuntimeError (every mode)
     "crash_task": N             the worker process running task N kills itself with SIGKILL (processes)
    {"probe": true, "results_fd": 3} writes the hello line only (interpreter detection).
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
              "cpu_end": 1}}          kind: startup | run | serialize | idle | failed
    {"note": "warm pool: workers started before the clock"}
    {"finished": {"t0_ns": 0, "t_end_ns": 0, "checksum": 0, "tasks_done": 8, "error": null}}

Times are time.monotonic_ns() (CLOCK_MONOTONIC, the lab's clock); CPU cores come from sched_getcpu (through
ctypes), -1 when unknown. `finished` is always the last line; a run that fails has `error` set (one line, with the
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

MODES = ("sequential", "threads", "processes", "async", "async-offload", "interpreters")
STARTS = ("spawn", "fork", "forkserver")
APIS = ("map", "imap", "imap_unordered", "executor")
REQUEST_FIELDS = (
    "workload", "tasks", "mode", "workers", "chunksize", "start", "api", "warm", "payload", "results_fd",
    "record", "fail_task", "crash_task", "probe",
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
        pooled = mode in ("threads", "processes", "async-offload", "interpreters")
        cores = available_cores()
        self.workers = whole(req, "workers", 1, MAX_WORKERS, cores) if pooled else 1
        self.start = choice(req, "start", STARTS, "spawn")
        self.api = choice(req, "api", APIS, "map")
        self.warm = flag(req, "warm", False) and mode == "processes"
        self.payload = whole(req, "payload", 0, MAX_PAYLOAD, 0)
        if self.payload * self.tasks > MAX_TOTAL_PAYLOAD:
            raise BadRequest("payload %d x tasks %d would move %d MiB; the limit is %d MiB per run" % (
                self.payload, self.tasks, (self.payload * self.tasks) >> 20, MAX_TOTAL_PAYLOAD >> 20))
        self.record = flag(req, "record", True)
        self.fail_task = whole(req, "fail_task", 0, MAX_TASKS, None)
        self.crash_task = whole(req, "crash_task", 0, MAX_TASKS, None)
        if self.crash_task is not None and mode != "processes":
            raise BadRequest("crash_task applies only to mode processes (it kills a worker process)")
        given = whole(req, "chunksize", 1, MAX_TASKS, None)
        if mode == "processes":
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


def hello(out):
    try:
        methods = start_methods()
    except Exception:
        methods = []
    out.line({"hello": {
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
    }})


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
    hello(out)
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
    except BadRequest as exc:
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
    sys.exit(main())
