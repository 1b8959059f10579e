//! What benchmarks and load examples read of their own process from Linux's `/proc`: CPU
//! time (the clock that stays fair when another process holds the core, where wall time
//! counts that time too) and memory (`VmRSS`, `VmHWM`). On other systems every reading is 0.

/// Linux reports CPU time in clock ticks of 1/100 s (`USER_HZ`) on every platform Rust
/// supports.
const TICKS_PER_SECOND: f64 = 100.0;

/// User + system CPU time of this process so far, in seconds.
pub fn cpu_seconds() -> f64 {
    stat_cpu_seconds("/proc/self/stat")
}

/// User + system CPU time of process `pid` so far, in seconds (0 when it is gone).
pub fn process_cpu_seconds(pid: u32) -> f64 {
    stat_cpu_seconds(&format!("/proc/{pid}/stat"))
}

/// User + system CPU time of the calling thread so far, in seconds.
pub fn thread_cpu_seconds() -> f64 {
    stat_cpu_seconds("/proc/thread-self/stat")
}

fn stat_cpu_seconds(path: &str) -> f64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: u64 = rest.split_whitespace().skip(11).take(2).filter_map(|v| v.parse::<u64>().ok()).sum();
    ticks as f64 / TICKS_PER_SECOND
}

/// A memory field of this process's `/proc/self/status` in KiB: `"VmRSS"` (resident now),
/// `"VmHWM"` (peak resident), ...
pub fn memory_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let rss = memory_kib("VmRSS");
        assert!(rss > 0);
        // Read after it, the peak is at least what was resident then.
        assert!(memory_kib("VmHWM") >= rss);
        assert_eq!(memory_kib("NoSuchField"), 0);
        // Burn CPU until the clock moves a tick: it must, and the thread's clock with it.
        let (process, thread) = (cpu_seconds(), thread_cpu_seconds());
        let mut x = 1u64;
        while thread_cpu_seconds() == thread {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        assert!(cpu_seconds() > process);
    }
}
