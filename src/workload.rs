//! The kernels: pure, deterministic, allocation-free work that returns a checksum. Safe to run after fork.
//!
//! Every kernel calls `Hooks::step` between small steps of a few microseconds each (the simulated GIL's drop
//! check, like CPython's eval breaker) and waits through `Hooks::wait` (which releases the simulated GIL).
//!
//! Never imports: anything but the experiment's names (allocation-free, safe after fork).

use std::hint::black_box;
use std::time::Duration;

use crate::experiment::Workload;

/// What a kernel calls back into while it works.
pub(crate) trait Hooks {
    /// Called between small steps of work (a few microseconds apart).
    fn step(&mut self) {}
    /// A blocking wait (simulated I/O) of `ms` milliseconds.
    fn wait(&mut self, ms: u64) {
        std::thread::sleep(Duration::from_millis(ms));
    }
}

/// Hooks that do nothing extra (worker processes, the simulated reads of the async modes).
pub(crate) struct Plain;
impl Hooks for Plain {
    // Never inlined, like every other `step`: an empty inlined step would let the compiler delete the kernels'
    // step counters, and the same task would run faster in a worker process than in the lab's own threads.
    #[inline(never)]
    fn step(&mut self) {}
}

impl Workload {
    /// Roughly how long one task takes natively, in nanoseconds (measured on a 2-core EPYC VM with a release build;
    /// a debug build is slower). Only the lab's recording granularity uses it (`experiment::record_chunk`), so an
    /// estimate a few times off changes how many spans a run records, never what it measures.
    pub(crate) fn estimated_ns(&self) -> u64 {
        match *self {
            // ~2.2 ns per call; the cheapest task of a range sets the chunk.
            Workload::Fib { lo, .. } => {
                let (mut a, mut b) = (0u64, 1u64);
                for _ in 0..=lo {
                    (a, b) = (b, a.saturating_add(b));
                }
                a.saturating_mul(2).saturating_sub(1).saturating_mul(22) / 10
            }
            Workload::Squares(n) => n.saturating_mul(13) / 20,
            Workload::Count(n) => n / 2,
            Workload::Pi(n) => n.saturating_mul(9) / 2,
            // Trial division: about 0.22 ns x n^1.5.
            Workload::Primes(n) => ((n as f64).powf(1.5) * 0.22) as u64,
            Workload::Tiny => 2,
            Workload::Sleep(ms) => ms.saturating_mul(1_000_000).max(1_000),
            Workload::Logs(n) => n
                .saturating_mul(60)
                .saturating_add(n.div_ceil(LOG_LINES_PER_READ).saturating_mul(LOG_READ_MS * 1_000_000)),
        }
    }
}

/// Lines of the `logs` workload per simulated read.
pub(crate) const LOG_LINES_PER_READ: u64 = 50_000;
/// Milliseconds of waiting per simulated read.
pub(crate) const LOG_READ_MS: u64 = 1;

/// Runs task `index` of `workload` and returns its checksum.
pub(crate) fn run_task<H: Hooks>(workload: &Workload, index: u64, hooks: &mut H) -> u64 {
    let sum = match *workload {
        Workload::Fib { lo, hi } => {
            let n = lo + (index % u64::from(hi - lo + 1)) as u32;
            fib(n, &mut Stepper { calls: 0, hooks })
        }
        Workload::Squares(n) => squares(n, hooks),
        Workload::Count(n) => count(n, hooks),
        Workload::Pi(n) => pi_hits(n, index, hooks),
        Workload::Primes(n) => primes_below(n, hooks),
        Workload::Tiny => index.wrapping_mul(index),
        Workload::Sleep(ms) => {
            hooks.wait(ms);
            ms
        }
        Workload::Logs(n) => logs(n, index, hooks),
    };
    mix(index, sum)
}

/// Runs tasks `[first, first + count)` and returns the combined checksum.
pub(crate) fn run_chunk<H: Hooks>(workload: &Workload, first: u64, count: u64, hooks: &mut H) -> u64 {
    if *workload == Workload::Tiny {
        return tiny_chunk(first, count);
    }
    (first..first + count).fold(0u64, |acc, i| acc.wrapping_add(run_task(workload, i, hooks)))
}

/// A chunk of `tiny` tasks, in one function that is never inlined: a loop this short is compiled differently
/// inside each caller (the generic loop above ran about twice as fast in a worker process as in the lab's own
/// threads), so every mode calls this very same machine code.
#[inline(never)]
fn tiny_chunk(first: u64, count: u64) -> u64 {
    (first..first + count).fold(0u64, |acc, i| acc.wrapping_add(mix(i, i.wrapping_mul(i))))
}

/// Combines a task's result with its index so a task run twice or skipped changes the run's checksum.
pub(crate) fn mix(index: u64, sum: u64) -> u64 {
    let mut z = index.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) ^ sum
}

/// The checksum of a payload's bytes, so the data really has to arrive.
pub(crate) fn payload_checksum(bytes: &[u8]) -> u64 {
    // Sum of 8-byte little-endian words: fast and still touches every byte.
    let mut words = bytes.chunks_exact(8);
    let mut acc = 0u64;
    for w in &mut words {
        acc = acc.wrapping_add(u64::from_le_bytes(w.try_into().unwrap_or([0; 8])));
    }
    for (i, b) in words.remainder().iter().enumerate() {
        acc = acc.wrapping_add(u64::from(*b) << (8 * i));
    }
    acc
}

/// A deterministic payload of `len` bytes.
pub(crate) fn make_payload(len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    for chunk in v.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let bytes = x.to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
    v
}

const STEP_MASK: u32 = 0x7ff; // about 2048 calls (a few microseconds) between steps

/// Carries the call counter and the hooks through the recursion. Not generic on purpose: every mode runs the very
/// same machine code for fib (a generic version let the compiler drop the counter for some hooks and not others,
/// which made the same task faster in a worker process than in the lab's threads).
struct Stepper<'a> {
    calls: u32,
    hooks: &'a mut dyn Hooks,
}

fn fib(n: u32, st: &mut Stepper<'_>) -> u64 {
    st.calls = st.calls.wrapping_add(1);
    if st.calls & STEP_MASK == 0 {
        st.hooks.step();
    }
    if n < 2 {
        return u64::from(n);
    }
    fib(n - 1, st).wrapping_add(fib(n - 2, st))
}

const BLOCK: u64 = 4096;

fn squares<H: Hooks>(n: u64, hooks: &mut H) -> u64 {
    let mut acc = 0u64;
    let mut i = 0u64;
    while i < n {
        let end = (i + BLOCK).min(n);
        for k in i..end {
            acc = acc.wrapping_add(black_box(k).wrapping_mul(k));
        }
        i = end;
        hooks.step();
    }
    acc
}

fn count<H: Hooks>(n: u64, hooks: &mut H) -> u64 {
    let mut c = 0u64;
    while c < n {
        let end = (c + BLOCK).min(n);
        while c < end {
            c = black_box(c) + 1;
        }
        hooks.step();
    }
    c
}

fn pi_hits<H: Hooks>(n: u64, seed: u64, hooks: &mut H) -> u64 {
    let mut state = mix(seed, 0x5EED) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut hits = 0u64;
    let mut i = 0u64;
    while i < n {
        let end = (i + BLOCK / 4).min(n);
        for _ in i..end {
            let (x, y) = (next(), next());
            hits += u64::from(x * x + y * y <= 1.0);
        }
        i = end;
        hooks.step();
    }
    hits
}

fn primes_below<H: Hooks>(n: u64, hooks: &mut H) -> u64 {
    let mut found = 0u64;
    for k in 2..n {
        let mut prime = true;
        let mut d = 2u64;
        while d * d <= k {
            if k % d == 0 {
                prime = false;
                break;
            }
            d += 1;
        }
        found += u64::from(prime);
        if k & 0xff == 0 {
            hooks.step();
        }
    }
    found
}

const LEVELS: [&[u8]; 4] = [b"INFO", b"WARN", b"ERROR", b"DEBUG"];
const COMPONENTS: [&[u8]; 5] = [b"api", b"db", b"cache", b"auth", b"worker"];

/// Writes log line `i` of task `seed` into `buf` and returns its length (no allocation).
fn log_line(seed: u64, i: u64, buf: &mut [u8; 96]) -> usize {
    let r = mix(seed.wrapping_mul(1_000_003).wrapping_add(i), 0);
    let mut len = 0;
    let mut put = |bytes: &[u8], len: &mut usize| {
        buf[*len..*len + bytes.len()].copy_from_slice(bytes);
        *len += bytes.len();
    };
    put(b"2026-11-22T10:", &mut len);
    let minute = (i / 60) % 60;
    let second = i % 60;
    let digits = [
        b'0' + (minute / 10) as u8,
        b'0' + (minute % 10) as u8,
        b':',
        b'0' + (second / 10) as u8,
        b'0' + (second % 10) as u8,
        b' ',
    ];
    put(&digits, &mut len);
    // Mostly INFO, some WARN, few ERROR, some DEBUG.
    let level = match r % 100 {
        0..=69 => 0,
        70..=84 => 1,
        85..=89 => 2,
        _ => 3,
    };
    put(LEVELS[level], &mut len);
    put(b" ", &mut len);
    put(COMPONENTS[((r >> 8) % 5) as usize], &mut len);
    put(b": request done latency=", &mut len);
    let mut ms = (r >> 16) % 2000;
    let mut tmp = [0u8; 4];
    let mut n = 0;
    loop {
        tmp[n] = b'0' + (ms % 10) as u8;
        n += 1;
        ms /= 10;
        if ms == 0 {
            break;
        }
    }
    tmp[..n].reverse();
    put(&tmp[..n], &mut len);
    put(b"ms", &mut len);
    len
}

/// Parses one line: (level index, latency in ms).
fn parse_log_line(line: &[u8]) -> Option<(usize, u64)> {
    let mut fields = line.split(|b| *b == b' ');
    let _stamp = fields.next()?;
    let level = fields.next()?;
    let level = LEVELS.iter().position(|l| *l == level)?;
    let latency = line.rsplit(|b| *b == b'=').next()?;
    let digits = latency.strip_suffix(b"ms")?;
    let mut v = 0u64;
    for d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u64::from(d - b'0');
    }
    Some((level, v))
}

/// Level counts and latency sum of log lines parsed so far (the `logs` workload, fed in segments so the async
/// modes can await the simulated read between them).
#[derive(Default)]
pub(crate) struct LogScan {
    counts: [u64; 4],
    latency: u64,
}

impl LogScan {
    /// Parses lines `[from, to)` of task `seed`'s log.
    pub(crate) fn feed<H: Hooks>(&mut self, seed: u64, from: u64, to: u64, hooks: &mut H) {
        let mut buf = [0u8; 96];
        for i in from..to {
            let len = log_line(seed, i, &mut buf);
            if let Some((level, ms)) = parse_log_line(&buf[..len]) {
                self.counts[level] += 1;
                self.latency = self.latency.wrapping_add(ms);
            }
            if i & 0x3f == 0 {
                hooks.step();
            }
        }
    }

    pub(crate) fn checksum(&self) -> u64 {
        self.counts.iter().enumerate().fold(self.latency, |acc, (k, c)| acc.wrapping_add(c.rotate_left(16 * k as u32)))
    }
}

fn logs<H: Hooks>(n: u64, seed: u64, hooks: &mut H) -> u64 {
    let mut scan = LogScan::default();
    let mut from = 0;
    while from < n {
        hooks.wait(LOG_READ_MS);
        let to = (from + LOG_LINES_PER_READ).min(n);
        scan.feed(seed, from, to, hooks);
        from = to;
    }
    scan.checksum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(w: &str, i: u64) -> u64 {
        run_task(&w.parse().unwrap(), i, &mut Plain)
    }

    struct Counting(u64, u64);
    impl Hooks for Counting {
        fn step(&mut self) {
            self.0 += 1;
        }
        fn wait(&mut self, ms: u64) {
            self.1 += ms;
        }
    }

    #[test]
    fn fib_computes_fibonacci() {
        assert_eq!(fib(20, &mut Stepper { calls: 0, hooks: &mut Plain }), 6765);
        assert_eq!(fib(30, &mut Stepper { calls: 0, hooks: &mut Plain }), 832_040);
    }

    #[test]
    fn fib_ranges_cycle_through_the_sizes() {
        let w: Workload = "fib:10..12".parse().unwrap();
        let vals: Vec<u64> = (0..4).map(|i| run_task(&w, i, &mut Plain) ^ mix(i, 0)).collect();
        assert_eq!(vals, vec![55, 89, 144, 55]);
    }

    #[test]
    fn kernels_are_deterministic_and_task_dependent() {
        for w in ["fib:15", "squares:10000", "count:10000", "pi:1000", "primes:1000", "tiny", "logs:500"] {
            assert_eq!(plain(w, 3), plain(w, 3), "{w}");
            assert_ne!(plain(w, 3), plain(w, 4), "{w}");
        }
    }

    #[test]
    fn known_answers() {
        let raw = |w: &str| plain(w, 0) ^ mix(0, 0);
        assert_eq!(raw("squares:4"), 1 + 4 + 9);
        assert_eq!(raw("count:12345"), 12_345);
        assert_eq!(raw("primes:100"), 25);
        let hits = raw("pi:100000") as f64;
        assert!((4.0 * hits / 100_000.0 - std::f64::consts::PI).abs() < 0.05);
    }

    #[test]
    fn kernels_step_often_and_logs_wait_per_read() {
        let mut h = Counting(0, 0);
        run_task(&"fib:25".parse().unwrap(), 0, &mut h);
        assert!(h.0 > 100, "fib:25 stepped only {} times", h.0);
        let mut h = Counting(0, 0);
        run_task(&"logs:125000".parse().unwrap(), 0, &mut h);
        assert_eq!(h.1, 3 * LOG_READ_MS);
        let mut h = Counting(0, 0);
        run_task(&"sleep:7".parse().unwrap(), 0, &mut h);
        assert_eq!(h.1, 7);
    }

    #[test]
    fn every_generated_log_line_parses() {
        let mut buf = [0u8; 96];
        for i in 0..5_000 {
            let len = log_line(9, i, &mut buf);
            assert!(parse_log_line(&buf[..len]).is_some(), "{}", String::from_utf8_lossy(&buf[..len]));
        }
    }

    #[test]
    fn payload_checksum_sees_every_byte() {
        let mut p = make_payload(1001);
        let before = payload_checksum(&p);
        p[1000] ^= 1;
        assert_ne!(before, payload_checksum(&p));
    }
}
