//! What the tests against local peers (SMTP, SMSC, webhook receivers)
//! share: skipping or failing when a peer is missing, finding a Python that
//! has a module, free ports, and the JSON-lines logs the peers write.

use std::path::Path;
use std::process::{Command, Stdio};

/// Whether a missing peer fails the test (CI sets SIMGUARD_REQUIRE_PEERS)
/// rather than skipping it.
pub fn require_peers() -> bool {
    std::env::var_os("SIMGUARD_REQUIRE_PEERS").is_some()
}

/// Unwraps a peer, or skips the test (fails it when peers are required)
/// with the reason on stderr.
#[macro_export]
macro_rules! need_peer {
    ($opt:expr, $what:expr) => {
        match $opt {
            Some(v) => v,
            None => {
                if $crate::peers::require_peers() {
                    panic!("{} is missing and SIMGUARD_REQUIRE_PEERS is set", $what);
                }
                // Straight to stderr: libtest captures eprintln! of a
                // passing test, and a skip should be seen.
                let _ = std::io::Write::write_fmt(
                    &mut std::io::stderr(),
                    format_args!(
                        "SKIPPED {}: {} is missing (set SIMGUARD_REQUIRE_PEERS to fail instead)\n",
                        module_path!(),
                        $what
                    ),
                );
                return;
            }
        }
    };
}

/// A Python interpreter that can run `import <imports>`: `SIMGUARD_PYTHON`,
/// else `python3`, else Debian's `/usr/bin/python3`.
pub fn python_with(imports: &str) -> Option<String> {
    let mut candidates: Vec<String> = Vec::new();
    if let Ok(p) = std::env::var("SIMGUARD_PYTHON") {
        candidates.push(p);
    }
    candidates.push("python3".into());
    candidates.push("/usr/bin/python3".into());
    candidates.into_iter().find(|p| {
        Command::new(p)
            .args(["-c", &format!("import {imports}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// A TCP port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A peer's log: one JSON value per line (an absent file is empty).
pub fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
