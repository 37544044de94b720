//! The cost of hostile input: runs every case of the hostile corpus (`tests/hostile/cases.rs`)
//! once, then its full-size variants (`cases::large`: 8 GiB bombs, a million entries, 10 000
//! layers), and prints each one's wall time and the process's peak resident memory
//! (`VmHWM`), then the largest of each. A measurement, not a test: nothing here asserts a
//! time. Outcomes are checked as `tests/hostile.rs` checks them, and a case that does not
//! match is flagged.
//!
//! Run: `cargo bench --bench hostile` (the cases whose name contains NAME:
//! `cargo bench --bench hostile -- NAME`). The inputs of the large cases that live on disk
//! are made once into the temporary directory and kept (`layercake-hostile-*`, 520 MB).
//!
//! `VmHWM` is a high-water mark: it never goes down by itself. Where the kernel allows it
//! (`echo 5 > /proc/self/clear_refs`, Linux 4.0+), it is reset before each case, so each line
//! shows the case's own peak above the memory in use when it started (`case +MiB`); the
//! `running peak` column is the highest mark so far, as a process that never resets it would
//! see. Building a case's input is neither timed nor counted in its own peak.

#[path = "../tests/hostile/cases.rs"]
mod cases;

use std::time::{Duration, Instant};

/// A field of `/proc/self/status`, in KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Resets `VmHWM` to the current RSS; false if the kernel does not allow it.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn main() {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let start_peak = status_kib("VmHWM:");
    let resets = reset_peak();
    println!(
        "{:<13} {:<56} {:>10} {:>13} {:>18}  outcome",
        "category", "case", "time (ms)", "case +MiB", "running peak MiB"
    );
    let mut running_peak = start_peak;
    let mut max_case = (0, String::new());
    let mut max_time = (Duration::ZERO, String::new());
    let mut mismatches = 0;
    let mut count = 0;
    for case in cases::all().into_iter().chain(cases::large()) {
        if filter
            .as_ref()
            .is_some_and(|f| !case.name.contains(f.as_str()))
        {
            continue;
        }
        count += 1;
        let prepared = (case.build)();
        let before = if resets && reset_peak() {
            status_kib("VmRSS:")
        } else {
            status_kib("VmHWM:")
        };
        let started = Instant::now();
        let ran = prepared.op.run();
        let elapsed = started.elapsed();
        let after = status_kib("VmHWM:");
        running_peak = running_peak.max(after);
        let growth = after.saturating_sub(before);
        if growth > max_case.0 {
            max_case = (growth, format!("{}/{}", case.category, case.name));
        }
        let verdict = match (&ran.outside_changed, &ran.result) {
            (Some(_), _) => "CHANGED OUTSIDE ITS DIRECTORY".to_owned(),
            (None, Err(panic)) => format!("PANICKED: {panic}"),
            (None, Ok(_)) => match prepared.verdict(&ran) {
                Ok(()) => "as expected".to_owned(),
                Err(why) => format!("MISMATCH: {}", cases::shorten(&why)),
            },
        };
        if verdict != "as expected" {
            mismatches += 1;
        }
        println!(
            "{:<13} {:<56} {:>10.3} {:>13.1} {:>18.1}  {verdict}",
            case.category,
            case.name,
            elapsed.as_secs_f64() * 1e3,
            growth as f64 / 1024.0,
            running_peak as f64 / 1024.0,
        );
        if elapsed > max_time.0 {
            max_time = (elapsed, format!("{}/{}", case.category, case.name));
        }
    }
    println!();
    println!(
        "{count} cases, {mismatches} not as expected; max time {:.3} ms ({}); max peak growth of one case {:.1} MiB ({}); running peak RSS {:.1} MiB (at start {:.1} MiB){}",
        max_time.0.as_secs_f64() * 1e3,
        max_time.1,
        max_case.0 as f64 / 1024.0,
        max_case.1,
        running_peak as f64 / 1024.0,
        start_peak as f64 / 1024.0,
        if resets { "" } else { "; VmHWM could not be reset: per-case growth is growth of the running peak" },
    );
}
