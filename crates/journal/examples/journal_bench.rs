//! Group-commit throughput and fsync latency.
//!
//! ```text
//! cargo run --release -p simguard-journal --example journal_bench [DIR] [SECONDS_PER_CASE]
//! ```
//!
//! DIR defaults to a temporary directory under the system temp dir; point it
//! at the disk the server will use, since fsync cost is a property of the device.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use simguard_journal::{Journal, JournalError, JournalOptions};

const PAYLOAD_LEN: usize = 200;

struct Case {
    group: usize,
    fsync: bool,
}

struct Outcome {
    records: u64,
    commits: usize,
    elapsed: Duration,
    fsync: Vec<Duration>,
}

fn run(dir: &Path, case: &Case, budget: Duration) -> Result<Outcome, JournalError> {
    let opts = JournalOptions {
        fsync: case.fsync,
        ..JournalOptions::default()
    };
    let (mut journal, _) = Journal::open(dir, opts)?;
    let mut payload = [0u8; PAYLOAD_LEN];
    let mut fsync = Vec::new();
    let mut records = 0u64;
    let started = Instant::now();
    while started.elapsed() < budget {
        for _ in 0..case.group {
            // Vary the content so nothing downstream can shortcut identical records.
            payload[..8].copy_from_slice(&records.to_le_bytes());
            journal.append(&payload)?;
            records += 1;
        }
        let stats = journal.commit()?;
        fsync.push(stats.fsync);
    }
    let elapsed = started.elapsed();
    Ok(Outcome {
        records,
        commits: fsync.len(),
        elapsed,
        fsync,
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let base: PathBuf = match args.next() {
        Some(dir) => PathBuf::from(dir),
        None => std::env::temp_dir(),
    };
    let seconds: f64 = match args.next() {
        Some(s) => s.parse()?,
        None => 3.0,
    };
    let budget = Duration::from_secs_f64(seconds);
    let root = base.join(format!("simguard-journal-bench-{}", std::process::id()));

    println!(
        "journal_bench: {PAYLOAD_LEN}-byte payloads, {seconds}s per case, dir {}",
        root.display()
    );
    println!(
        "{:>6} {:>6} {:>9} {:>10} {:>12} {:>11} {:>11} {:>11} {:>11}",
        "group",
        "fsync",
        "commits",
        "records",
        "records/s",
        "fsync mean",
        "fsync p50",
        "fsync p99",
        "fsync max"
    );
    let cases = [
        Case {
            group: 1,
            fsync: true,
        },
        Case {
            group: 16,
            fsync: true,
        },
        Case {
            group: 256,
            fsync: true,
        },
        Case {
            group: 256,
            fsync: false,
        },
    ];
    let mut replay_dir = None;
    for (i, case) in cases.iter().enumerate() {
        let dir = root.join(format!("case-{i}"));
        let mut out = run(&dir, case, budget)?;
        out.fsync.sort();
        let rate = out.records as f64 / out.elapsed.as_secs_f64();
        let (mean, p50, p99, max) = if case.fsync {
            let total: Duration = out.fsync.iter().sum();
            (
                format!("{:.0}us", us(total) / out.fsync.len().max(1) as f64),
                format!("{:.0}us", us(percentile(&out.fsync, 0.50))),
                format!("{:.0}us", us(percentile(&out.fsync, 0.99))),
                format!("{:.0}us", us(percentile(&out.fsync, 1.0))),
            )
        } else {
            ("-".into(), "-".into(), "-".into(), "-".into())
        };
        println!(
            "{:>6} {:>6} {:>9} {:>10} {:>12.0} {:>11} {:>11} {:>11} {:>11}",
            case.group, case.fsync, out.commits, out.records, rate, mean, p50, p99, max
        );
        if case.group == 256 && case.fsync {
            replay_dir = Some((dir, out.records));
        }
    }

    // Restart cost: how fast recovery scans and replay streams a journal.
    if let Some((dir, records)) = replay_dir {
        let started = Instant::now();
        let (journal, recovery) = Journal::open(&dir, JournalOptions::default())?;
        let open = started.elapsed();
        drop(journal);
        let started = Instant::now();
        let mut bytes = 0u64;
        let visited = Journal::replay(&dir, 1, |_, p| {
            bytes += p.len() as u64;
            Ok::<_, JournalError>(())
        })?;
        let replay = started.elapsed();
        println!(
            "recovery scan: {} records in {:.1} ms ({:.0} records/s); replay: {visited} records, \
             {:.1} MB in {:.1} ms ({:.0} records/s)",
            recovery.records,
            open.as_secs_f64() * 1e3,
            recovery.records as f64 / open.as_secs_f64(),
            bytes as f64 / 1e6,
            replay.as_secs_f64() * 1e3,
            visited as f64 / replay.as_secs_f64(),
        );
        if visited != records {
            return Err(format!("replay saw {visited} records, {records} were written").into());
        }
    }
    std::fs::remove_dir_all(&root)?;
    Ok(())
}
