//! Test harnesses shared by simguard's crates. Dev-dependency only.
//!
//! `Nas`: FreeRADIUS 3.2 (`freeradius -X`) acting as the NAS that receives
//! our CoA and Disconnect requests (see ../shared/TESTING-PEERS.md), on an
//! ephemeral port, with what it received read back from its debug output.
//! `radclient_acct`: the PGW's accounting, sent with FreeRADIUS's radclient.
//! `peers`: what the tests against the notification peers share.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod peers;

use std::io::Read;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const FREERADIUS: &str = "/usr/sbin/freeradius";
const RADDB: &str = "/etc/freeradius/3.0";

/// Whether FreeRADIUS is installed; prints why a test skips when it is not.
pub fn have_freeradius() -> bool {
    if Path::new(FREERADIUS).exists() && Path::new(RADDB).exists() {
        return true;
    }
    eprintln!("SKIP: {FREERADIUS} is missing (apt-get install freeradius)");
    false
}

/// Sends `packets` (radclient's text form; packets separated by a blank
/// line) to `addr` as accounting with radclient, in order, and asserts that
/// every one was answered (that is, journaled). Blocking: call it from
/// `spawn_blocking` in async tests.
pub fn radclient_acct(
    dir: &Path,
    name: &str,
    packets: &str,
    addr: std::net::SocketAddr,
    secret: &str,
) {
    let file = dir.join(format!("{name}.radclient"));
    std::fs::write(&file, packets).unwrap();
    let sent = packets
        .split("\n\n")
        .filter(|p| !p.trim().is_empty())
        .count();
    let out = Command::new("radclient")
        .args(["-x", "-p", "1", "-r", "3", "-t", "2", "-f"])
        .arg(&file)
        .arg(addr.to_string())
        .arg("acct")
        .arg(secret)
        .output()
        .expect("radclient (apt-get install freeradius-utils)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let answered = stdout
        .lines()
        .filter(|l| l.starts_with("Received Accounting-Response"))
        .count();
    assert!(
        out.status.success() && answered == sent,
        "radclient: {}, {answered}/{sent} answered\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// FreeRADIUS acting as the NAS, on an ephemeral port; killed on drop.
pub struct Nas {
    child: Child,
    /// Its CoA/Disconnect port on 127.0.0.1.
    pub port: u16,
    out: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

impl Drop for Nas {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let t = to.join(e.file_name());
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            copy_dir(&e.path(), &t);
        } else if ft.is_symlink() {
            let target = std::fs::read_link(e.path()).unwrap();
            std::os::unix::fs::symlink(target, &t).unwrap();
        } else {
            std::fs::copy(e.path(), &t).unwrap();
        }
    }
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

const SITE: &str = r#"
listen {
  type = coa
  ipaddr = 127.0.0.1
  port = PORT
  virtual_server = coa-nas
}
server coa-nas {
  recv-coa {
    if (&Acct-Session-Id =~ /^unknown/) {
      update reply {
        &Error-Cause := Session-Context-Not-Found
      }
      reject
    }
    if (&Acct-Session-Id =~ /^prohibited/) {
      update reply {
        &Error-Cause := Administratively-Prohibited
        &Reply-Message := "not on this gateway"
      }
      reject
    }
    ok
  }
  send-coa {
    ok
  }
}
"#;

impl Nas {
    /// Starts FreeRADIUS with a CoA listener that ACKs every request except
    /// sessions named `unknown*` (NAK, Error-Cause 503) and `prohibited*`
    /// (NAK, 501), trusting 127.0.0.1 with `secret`.
    pub fn start(secret: &str) -> Nas {
        let dir = tempfile::tempdir().unwrap();
        let raddb: PathBuf = dir.path().join("raddb");
        copy_dir(Path::new(RADDB), &raddb);
        for sub in ["sites-enabled", "mods-enabled"] {
            let d = raddb.join(sub);
            std::fs::remove_dir_all(&d).unwrap();
            std::fs::create_dir(&d).unwrap();
        }
        std::os::unix::fs::symlink(
            "../mods-available/always",
            raddb.join("mods-enabled/always"),
        )
        .unwrap();
        std::fs::write(
            raddb.join("clients.conf"),
            format!(
                "client simguard {{\n  ipaddr = 127.0.0.1\n  secret = {secret}\n  require_message_authenticator = yes\n}}\n"
            ),
        )
        .unwrap();
        let port = free_udp_port();
        std::fs::write(
            raddb.join("sites-enabled/coa-nas"),
            SITE.replace("PORT", &port.to_string()),
        )
        .unwrap();
        // FreeRADIUS drops to its own user after reading the configuration.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut child = Command::new(FREERADIUS)
            .args(["-X", "-f", "-d"])
            .arg(&raddb)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = Arc::new(Mutex::new(String::new()));
        for pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let out = out.clone();
            std::thread::spawn(move || {
                let mut pipe = pipe;
                let mut buf = [0u8; 8192];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    out.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        let mut nas = Nas {
            child,
            port,
            out,
            _dir: dir,
        };
        let t0 = Instant::now();
        while !nas.output().contains("Ready to process requests") {
            if let Ok(Some(status)) = nas.child.try_wait() {
                panic!("freeradius exited with {status}:\n{}", nas.output());
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "freeradius did not start:\n{}",
                nas.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        nas
    }

    pub fn output(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    /// Attributes of each request FreeRADIUS received, as it printed them:
    /// (packet name, [(attribute, value)]).
    pub fn received(&self) -> Vec<(String, Vec<(String, String)>)> {
        let out = self.output();
        let mut v: Vec<(String, Vec<(String, String)>)> = Vec::new();
        let mut open: Option<String> = None;
        for line in out.lines() {
            // "(3) Received CoA-Request Id 7 from ..." then "(3)   Name = value".
            let Some((tag, rest)) = line.split_once(") ") else {
                open = None;
                continue;
            };
            if let Some(r) = rest.strip_prefix("Received ") {
                open = Some(tag.to_string());
                v.push((r.split_whitespace().next().unwrap_or("").into(), Vec::new()));
            } else if open.as_deref() == Some(tag) && rest.starts_with("  ") {
                match rest.trim().split_once(" = ") {
                    Some((k, val)) if !k.starts_with('#') => {
                        if let Some(last) = v.last_mut() {
                            last.1
                                .push((k.to_string(), val.trim_matches('"').to_string()));
                        }
                    }
                    _ => open = None,
                }
            } else {
                open = None;
            }
        }
        v
    }

    /// Waits until FreeRADIUS printed `needle` at least `n` times.
    pub fn wait_for(&self, needle: &str, n: usize) {
        let t0 = Instant::now();
        while self.output().matches(needle).count() < n {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "{needle:?} x{n} not in freeradius output:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
