//! The machine facts a recording carries: the cores parlab may use, the CPU model, the OS and the kernel.
//! `Machine::detect` reads them from the system (the only I/O here); the parsers of /proc/cpuinfo and os-release
//! are pure.

use serde::{Deserialize, Serialize};

use crate::experiment::available_cores;
use crate::units::plural;

/// Where a recording was made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Machine {
    /// The cores parlab could use (`available_parallelism`: affinity and cgroup limits respected).
    pub cores: u32,
    /// From /proc/cpuinfo, e.g. `AMD EPYC 7B13`.
    pub cpu_model: String,
    /// From os-release, e.g. `Ubuntu 24.04.1 LTS`.
    pub os: String,
    /// From uname: system, release and machine, e.g. `Linux 6.8.0-1019-gcp x86_64`.
    pub kernel: String,
}

impl Machine {
    /// This machine, now. A fact that cannot be read says `unknown ...` rather than failing the recording.
    pub(crate) fn detect() -> Machine {
        let read = |p: &str| std::fs::read_to_string(p).ok();
        Machine {
            cores: available_cores(),
            cpu_model: read("/proc/cpuinfo").and_then(|t| cpu_model(&t)).unwrap_or_else(|| "unknown CPU".to_string()),
            os: read("/etc/os-release")
                .or_else(|| read("/usr/lib/os-release"))
                .and_then(|t| os_name(&t))
                .unwrap_or_else(|| "unknown OS".to_string()),
            kernel: uname().unwrap_or_else(|| "unknown kernel".to_string()),
        }
    }

    /// One line: `AMD EPYC 7B13 · 2 cores · Ubuntu 24.04.1 LTS · Linux 6.8.0 x86_64`.
    pub(crate) fn describe(&self) -> String {
        format!("{} · {} · {} · {}", self.cpu_model, plural(u64::from(self.cores), "core"), self.os, self.kernel)
    }
}

fn squash(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The CPU model from /proc/cpuinfo: `model name` on x86, else what other architectures call it (keys are case
/// sensitive: `processor` is a core's number, `Processor` an ARM model).
pub(crate) fn cpu_model(cpuinfo: &str) -> Option<String> {
    let field = |key: &str| {
        cpuinfo.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == key && !v.trim().is_empty()).then(|| squash(v))
        })
    };
    ["model name", "cpu model", "Model", "Hardware", "Processor", "cpu"].into_iter().find_map(field)
}

/// The OS from os-release: `PRETTY_NAME`, else `NAME VERSION`. Values may be quoted with `"` or `'` and escape
/// `"`, `\`, `$` and `` ` `` with a backslash (os-release(5)).
pub(crate) fn os_name(os_release: &str) -> Option<String> {
    let value = |key: &str| {
        os_release.lines().find_map(|l| {
            let v = l.trim().strip_prefix(key)?.strip_prefix('=')?;
            let v = unquote(v.trim());
            (!v.is_empty()).then_some(v)
        })
    };
    value("PRETTY_NAME").or_else(|| {
        let name = value("NAME")?;
        Some(match value("VERSION") {
            Some(v) => format!("{name} {v}"),
            None => name,
        })
    })
}

fn unquote(v: &str) -> String {
    let inner = match (v.chars().next(), v.chars().last()) {
        (Some(q @ ('"' | '\'')), Some(e)) if v.len() >= 2 && q == e => &v[1..v.len() - 1],
        _ => v,
    };
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    squash(&out)
}

/// `Linux 6.8.0-1019-gcp x86_64`, from uname(2).
fn uname() -> Option<String> {
    // SAFETY: `utsname` is plain bytes, valid when zeroed; uname fills it and NUL-terminates every field.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, writable utsname.
    if unsafe { libc::uname(&mut u) } != 0 {
        return None;
    }
    let field = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f.iter().take_while(|c| **c != 0).map(|c| *c as u8).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Some(squash(&format!("{} {} {}", field(&u.sysname), field(&u.release), field(&u.machine))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_model_is_read_from_model_name_on_x86_and_other_fields_elsewhere() {
        let x86 =
            "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel\t\t: 1\nmodel name\t: AMD EPYC  7B13 64-Core Processor\n";
        assert_eq!(cpu_model(x86).as_deref(), Some("AMD EPYC 7B13 64-Core Processor"));
        let arm = "processor\t: 0\nBogoMIPS\t: 50.00\nCPU implementer\t: 0x41\nHardware\t: BCM2835\nModel\t: Raspberry Pi 4\n";
        assert_eq!(cpu_model(arm).as_deref(), Some("Raspberry Pi 4"));
        assert_eq!(cpu_model("processor : 0\n"), None);
    }

    #[test]
    fn the_os_is_the_pretty_name_unquoted_or_name_and_version() {
        let ubuntu = "NAME=\"Ubuntu\"\nVERSION=\"24.04.1 LTS (Noble Numbat)\"\nPRETTY_NAME=\"Ubuntu 24.04.1 LTS\"\n";
        assert_eq!(os_name(ubuntu).as_deref(), Some("Ubuntu 24.04.1 LTS"));
        assert_eq!(os_name("NAME=Alpine\nVERSION='3.20'\n").as_deref(), Some("Alpine 3.20"));
        assert_eq!(os_name("PRETTY_NAME=\"Say \\\"hi\\\"\"\n").as_deref(), Some("Say \"hi\""));
        assert_eq!(os_name("ID=debian\n"), None);
    }

    #[test]
    fn this_machine_is_described_with_its_cores_and_kernel() {
        let m = Machine::detect();
        assert_eq!(m.cores, available_cores());
        assert!(m.kernel.starts_with("Linux "), "{}", m.kernel);
        assert!(m.describe().contains(&plural(u64::from(m.cores), "core")), "{}", m.describe());
    }
}
