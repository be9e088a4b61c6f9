//! Every formatter of numbers for people: durations, sizes, counts, rates, ratios, plurals. Pure functions of
//! their arguments; imports nothing of parlab's, so every layer (model, lab, widgets, commands) may use it.

/// `1 worker`, `2 workers`.
pub(crate) fn plural(n: u64, word: &str) -> String {
    if n == 1 { format!("1 {word}") } else { format!("{n} {word}s") }
}

/// Milliseconds for tables and summaries: 412 ms, 12.5 ms, 0.31 ms.
pub(crate) fn fmt_ms(ms: f64) -> String {
    if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else if ms >= 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.2} ms")
    }
}

/// Bytes, exact where they are a round number: 64 KiB, 1.5 MiB, 2 GiB, 100 B.
pub(crate) fn format_bytes(b: u64) -> String {
    if b >= 1 << 30 && b.is_multiple_of(1 << 30) {
        format!("{} GiB", b >> 30)
    } else if b >= 1 << 20 {
        format!("{:.3} MiB", b as f64 / (1 << 20) as f64).replace(".000 ", " ")
    } else if b >= 1 << 10 {
        format!("{:.1} KiB", b as f64 / 1024.0).replace(".0 ", " ")
    } else {
        format!("{b} B")
    }
}

/// An interval as the flags spell it: 5ms, 1s, 2.5ms, 500us.
pub(crate) fn format_interval_us(us: u64) -> String {
    if us >= 1_000_000 && us.is_multiple_of(1_000_000) {
        format!("{}s", us / 1_000_000)
    } else if us.is_multiple_of(1_000) {
        format!("{}ms", us / 1_000)
    } else if us >= 1_000 {
        format!("{}ms", us as f64 / 1_000.0)
    } else {
        format!("{us}us")
    }
}

/// A duration given in milliseconds, with sensible digits and unit (µs below 1 ms).
pub(crate) fn fmt_duration_ms(ms: f64) -> String {
    if ms < 0.01 {
        format!("{:.2} µs", ms * 1000.0)
    } else if ms < 1.0 {
        format!("{:.0} µs", ms * 1000.0)
    } else if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 100.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

/// An integer with thousands separators: 1,234,567.
pub(crate) fn fmt_count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A rate per second: 12.3 M/s, 450 k/s.
pub(crate) fn fmt_rate(per_s: f64) -> String {
    if per_s >= 1e6 {
        format!("{:.2} M/s", per_s / 1e6)
    } else if per_s >= 1e3 {
        format!("{:.0} k/s", per_s / 1e3)
    } else {
        format!("{per_s:.0} /s")
    }
}

/// MiB from KiB, one decimal.
pub(crate) fn fmt_kib_as_mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// A ratio with two decimals, or two significant digits below 0.1 so a small figure never reads as 0.00.
pub(crate) fn fmt_ratio(v: f64) -> String {
    if v >= 0.1 || v == 0.0 || !v.is_finite() {
        format!("{v:.2}")
    } else {
        let digits = (1.0 - v.log10().floor()).clamp(2.0, 9.0) as usize;
        format!("{v:.digits$}")
    }
}

/// A number for messages: 1.8, 12, 0.25.
pub(crate) fn fmt_num(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A signed time offset for axis labels: 0ms, 1.5s, 12.5ms, 250µs.
pub(crate) fn format_ns(ns: i128) -> String {
    let neg = if ns < 0 { "-" } else { "" };
    let a = ns.unsigned_abs();
    if a == 0 {
        "0ms".into()
    } else if a >= 1_000_000_000 && a.is_multiple_of(100_000_000) {
        let s = format!("{neg}{:.1}s", a as f64 / 1e9);
        s.replace(".0s", "s")
    } else if a >= 1_000_000 {
        format!("{neg}{}ms", fmt_num(a as f64 / 1e6))
    } else {
        format!("{neg}{}µs", fmt_num(a as f64 / 1e3))
    }
}

/// Bytes, roughly: 1.2 MiB, 12 KiB, 800 bytes.
pub(crate) fn fmt_bytes_rough(n: usize) -> String {
    const KIB: f64 = 1024.0;
    match n as f64 {
        b if b >= KIB * KIB => format!("{:.1} MiB", b / KIB / KIB),
        b if b >= KIB => format!("{:.0} KiB", b / KIB),
        _ => format!("{n} bytes"),
    }
}

/// Bytes in MiB with one decimal from 1 MiB up, else in bytes.
pub(crate) fn fmt_bytes_mib(b: u64) -> String {
    if b >= 1 << 20 { format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64) } else { format!("{b} B") }
}

/// A duration for people: `850 ns`, `12.5 µs`, `3.20 ms`, `1.25 s`.
pub(crate) fn fmt_dur_ns(ns: u64) -> String {
    let v = ns as f64;
    if ns >= 1_000_000_000 {
        format!("{:.2} s", v / 1e9)
    } else if ns >= 1_000_000 {
        fmt_ms(v / 1e6)
    } else if ns >= 1_000 {
        format!("{:.1} µs", v / 1e3)
    } else {
        format!("{ns} ns")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_durations_read_well() {
        assert_eq!(fmt_count(1_234_567), "1,234,567");
        assert_eq!(fmt_count(12), "12");
        assert_eq!(fmt_duration_ms(0.062), "62 µs");
        assert_eq!(fmt_duration_ms(2.094), "2.09 ms");
        assert_eq!(fmt_rate(12_240_361.0), "12.24 M/s");
    }

    #[test]
    fn numbers_lose_their_trailing_zeros_and_tables_keep_three_digits() {
        assert_eq!(fmt_num(1.80), "1.8");
        assert_eq!(fmt_num(12.0), "12");
        assert_eq!(fmt_num(0.25), "0.25");
        assert_eq!(fmt_ms(412.3), "412 ms");
        assert_eq!(fmt_ms(12.54), "12.5 ms");
        assert_eq!(fmt_ms(0.314), "0.31 ms");
        assert_eq!(format_ns(-1_500_000), "-1.5ms");
        assert_eq!(format_ns(2_000_000_000), "2s");
        assert_eq!(format_bytes(64 << 10), "64 KiB");
        assert_eq!(format_interval_us(5_000), "5ms");
        assert_eq!(plural(1, "core"), "1 core");
        assert_eq!(plural(2, "core"), "2 cores");
    }
}
