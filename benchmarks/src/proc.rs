//! CPU time and peak memory of another process, from Linux's `/proc`.

use std::process::Command;
use std::sync::OnceLock;

use anyhow::{Context, bail};

/// CPU seconds (user and system, all threads) process `pid` has used so far.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    cpu_ticks(&stat)
        .map(|ticks| ticks as f64 / clock_ticks_per_second())
        .with_context(|| format!("{path}: {stat}"))
}

/// utime + stime of a `/proc/<pid>/stat` line.
fn cpu_ticks(stat: &str) -> anyhow::Result<u64> {
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        bail!("no ')' after the command name");
    };
    // rest starts at field 3 (state); utime and stime are fields 14 and 15.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> anyhow::Result<u64> {
        let text = fields.get(n - 3).context("too few fields")?;
        text.parse()
            .with_context(|| format!("field {n} is '{text}'"))
    };
    Ok(field(14)? + field(15)?)
}

/// The kernel's clock ticks per second (`getconf CLK_TCK`), 100 where it cannot be asked.
fn clock_ticks_per_second() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// The peak resident set size of process `pid` so far, in bytes (`VmHWM`).
pub fn peak_rss_bytes(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    vm_hwm(&status).with_context(|| format!("{path} has no VmHWM line"))
}

fn vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_fields_14_and_15_even_with_spaces_in_the_name() {
        let stat = "4242 (java (main) x) S 1 2 3 4 5 6 7 8 9 10 250 31 0 0 20 0 40 0 99";
        assert_eq!(cpu_ticks(stat).unwrap(), 281);
    }

    #[test]
    fn this_process_has_used_cpu_and_memory() {
        let pid = std::process::id();
        let started = std::time::Instant::now();
        let mut x = 0_u64;
        while cpu_seconds(pid).unwrap() == 0.0 {
            assert!(started.elapsed().as_secs() < 10, "no CPU time counted");
            x = (0..100_000_u64).fold(x, |acc, i| acc.wrapping_add(i * i));
        }
        std::hint::black_box(x);
        assert!(peak_rss_bytes(pid).unwrap() > 1024 * 1024);
    }

    #[test]
    fn vm_hwm_is_read_in_kib() {
        assert_eq!(vm_hwm("Name: x\nVmHWM:\t  2048 kB\n"), Some(2048 * 1024));
        assert_eq!(vm_hwm("Name: x\n"), None);
    }
}
