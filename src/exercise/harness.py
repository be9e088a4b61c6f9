"""parlab's harness for Python exercises (written to a temporary folder and run as `python3 harness.py FILE REPS`).

It imports the learner's FILE by path, checks that it defines sequential() and parallel(), runs each once as a
warm-up, then REPS timed repetitions of each (alternating, timed with time.perf_counter), checks that every result
equals the first result of sequential(), and writes one line of JSON to a private pipe: the file descriptor named by
PARLAB_RESULT_FD, never stdout, so nothing the file prints can pass for a result. Any problem is reported the same
way with "ok": false, so parlab can say exactly what went wrong.
"""

import importlib.util
import json
import os
import sys
import time
import traceback

RESULT_FD_ENV = "PARLAB_RESULT_FD"


def open_results():
    """Takes the private result pipe out of sight of the learner's file: off the environment, so the processes it
    starts never hear of it, and moved to a descriptor they do not inherit when they exec."""
    raw = os.environ.pop(RESULT_FD_ENV, None)
    if raw is None or not raw.isdigit():
        sys.stderr.write("parlab's harness runs only under `parlab check` (%s is not set)\n" % RESULT_FD_ENV)
        sys.exit(2)
    fd = int(raw)
    private = os.dup(fd)  # os.dup makes a non-inheritable descriptor
    os.close(fd)
    return private


RESULTS = None


def emit(obj):
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:  # a file that closed or replaced stdout must not lose its report
        pass
    data = (json.dumps(obj) + "\n").encode()
    while data:
        data = data[os.write(RESULTS, data):]


def fail(what, **fields):
    emit(dict(ok=False, error=what, **fields))
    os._exit(0)


def last_line(exc):
    lines = traceback.format_exception_only(type(exc), exc)
    return lines[-1].strip() if lines else type(exc).__name__


def line_in(exc, path):
    """The line of the learner's file closest to where the exception was raised."""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if os.path.abspath(frame.filename) == path:
            return frame.lineno
    return None


def short(value, limit=160):
    try:
        text = repr(value)
    except Exception as exc:  # a broken __repr__ must not hide the real problem
        text = "<unprintable: %s>" % last_line(exc)
    return text if len(text) <= limit else text[:limit] + "..."


def main():
    global RESULTS
    RESULTS = open_results()
    path = os.path.abspath(sys.argv[1])
    reps = int(sys.argv[2])
    name = os.path.splitext(os.path.basename(path))[0]
    try:
        existing = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        existing = None
    if name in sys.modules or name in sys.builtin_module_names or existing is not None:
        # Registering the file under a name Python already uses would replace that module for everyone.
        fail("shadows", name=name)

    try:
        with open(path, "rb") as f:
            source = f.read()
        compile(source, path, "exec")
    except SyntaxError as exc:
        fail("syntax", line=exc.lineno, message=exc.msg, text=(exc.text or "").rstrip())
    except (ValueError, UnicodeDecodeError) as exc:
        fail("syntax", line=None, message=last_line(exc), text="")

    # Worker processes started with spawn or forkserver import the file by its name: let them find it.
    sys.path.insert(0, os.path.dirname(path))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        fail("exception", stage="import", message=last_line(exc), line=line_in(exc, path))

    for fn in ("sequential", "parallel"):
        value = getattr(module, fn, None)
        if value is None:
            fail("missing", name=fn)
        if not callable(value):
            fail("not-callable", name=fn, kind=type(value).__name__)

    def call(fn):
        start = time.perf_counter()
        try:
            result = getattr(module, fn)()
        except BaseException as exc:
            fail("exception", stage=fn, message=last_line(exc), line=line_in(exc, path))
        return result, time.perf_counter() - start

    def same(expected, got, who):
        try:
            equal = bool(expected == got)
        except BaseException as exc:
            fail("exception", stage="comparing the results", message=last_line(exc), line=line_in(exc, path))
        if not equal:
            fail("unequal", who=who, expected=short(expected), got=short(got))

    expected, _ = call("sequential")
    got, _ = call("parallel")
    same(expected, got, "parallel")
    seq, par, windows = [], [], []
    for _ in range(reps):
        result, seconds = call("sequential")
        same(expected, result, "sequential")
        seq.append(seconds)
        # CLOCK_MONOTONIC, parlab's clock: parlab draws what the scheduler saw in this window.
        began = time.monotonic_ns()
        result, seconds = call("parallel")
        windows.append([began, time.monotonic_ns()])
        same(expected, result, "parallel")
        par.append(seconds)
    emit(dict(ok=True, sequential_s=seq, parallel_s=par, parallel_ns=windows, python=sys.version.split()[0]))


if __name__ == "__main__":
    main()
