//! Builds the web console (`console/` at the repository root) with npm and
//! writes `assets.rs` into OUT_DIR: one `include_bytes!` per built file, its
//! gzip form when that is smaller, its content type and an ETag, so that the
//! binary carries the whole console and serves it without a file system.
//!
//! `npm ci` runs when `console/node_modules` was not made from the current
//! lock file, then `npm run build` (type check, then Vite) into OUT_DIR, so
//! that two target directories never write the same files. A file lock
//! serialises concurrent builds of one checkout (clippy and test side by side
//! would otherwise run `npm ci` into the same node_modules at once).
//!
//! `SIMGUARD_CONSOLE_DIST=/path/to/dist` embeds an already built console
//! instead (packagers who build the front-end in a separate step).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    if let Err(e) = run() {
        // A build script's stderr is shown when it fails; say what to do.
        eprintln!("\nerror: simguard-console: {e}\n");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let manifest = PathBuf::from(env("CARGO_MANIFEST_DIR")?);
    let out = PathBuf::from(env("OUT_DIR")?);
    let console = manifest.join("../../console");
    println!("cargo:rerun-if-env-changed=SIMGUARD_CONSOLE_DIST");
    println!("cargo:rerun-if-env-changed=SIMGUARD_NPM");

    let dist = match std::env::var_os("SIMGUARD_CONSOLE_DIST") {
        Some(d) => {
            let d = PathBuf::from(d);
            println!("cargo:rerun-if-changed={}", d.display());
            d
        }
        None => {
            for p in [
                "src",
                "public",
                "index.html",
                "package.json",
                "package-lock.json",
                "vite.config.ts",
                "tsconfig.json",
            ] {
                println!("cargo:rerun-if-changed={}", console.join(p).display());
            }
            let dist = out.join("console-dist");
            build_with_npm(&console, &dist)?;
            dist
        }
    };
    write_assets(&dist, &out.join("assets.rs"))
}

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set (run through cargo)"))
}

fn npm() -> String {
    std::env::var("SIMGUARD_NPM").unwrap_or_else(|_| "npm".into())
}

fn build_with_npm(console: &Path, dist: &Path) -> Result<(), String> {
    let npm = npm();
    match Command::new(&npm).arg("--version").output() {
        Ok(o) if o.status.success() => {}
        _ => {
            return Err(format!(
                "`{npm}` was not found, and the web console is built with npm.\n\
                 Install Node.js 18+ and npm (Debian: apt-get install nodejs npm),\n\
                 or set SIMGUARD_CONSOLE_DIST to an already built console (npm run build in console/)."
            ))
        }
    }
    let _lock = Lock::take(&console.join(".build-lock"))?;
    // node_modules is what `npm ci` made of this very lock file (by content:
    // a checkout can give an older lock a newer time, and the other way round).
    let lock = std::fs::read(console.join("package-lock.json"))
        .map_err(|e| format!("cannot read console/package-lock.json: {e}"))?;
    let want = format!("{:016x}", fnv(&lock));
    let stamp = console.join("node_modules").join(".simguard-lock");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(want.as_str()) {
        run_npm(console, &["ci", "--no-audit", "--no-fund"])?;
        std::fs::write(&stamp, &want)
            .map_err(|e| format!("cannot write {}: {e}", stamp.display()))?;
    }
    let out_dir = dist
        .to_str()
        .ok_or_else(|| format!("OUT_DIR {} is not UTF-8", dist.display()))?;
    run_npm(
        console,
        &["run", "build", "--", "--outDir", out_dir, "--emptyOutDir"],
    )?;
    if !dist.join("index.html").exists() {
        return Err(format!(
            "npm run build wrote no index.html into {}",
            dist.display()
        ));
    }
    Ok(())
}

fn run_npm(dir: &Path, args: &[&str]) -> Result<(), String> {
    let npm = npm();
    let o = Command::new(&npm)
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("cannot run {npm}: {e}"))?;
    if !o.status.success() {
        return Err(format!(
            "`{npm} {}` in {} failed ({}):\n{}\n{}",
            args.join(" "),
            dir.display(),
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ));
    }
    Ok(())
}

/// An exclusive `flock` on a file, released when dropped (or when the
/// process dies, so a killed build never leaves it held).
struct Lock(std::fs::File);

impl Lock {
    fn take(path: &Path) -> Result<Lock, String> {
        use std::os::unix::io::AsRawFd;
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        // SAFETY: flock on a file descriptor we own; no memory is involved.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(format!(
                "cannot lock {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            ));
        }
        Ok(Lock(f))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        use std::os::unix::io::AsRawFd;
        // SAFETY: as in `take`.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

fn content_type(path: &str) -> &'static str {
    let ext = path.rsplit_once('.').map_or("", |(_, e)| e);
    match ext {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        _ => "application/octet-stream",
    }
}

fn compressible(ct: &str) -> bool {
    ct.starts_with("text/") || ct.starts_with("application/json") || ct == "image/svg+xml"
}

/// FNV-1a: an ETag only has to change when the bytes do.
fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn walk(dir: &Path, rel: &str, out: &mut Vec<(String, PathBuf)>) -> Result<(), String> {
    let rd = std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut entries: Vec<_> = rd.filter_map(Result::ok).collect();
    // Sorted, so that the generated file (and the binary) is reproducible.
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        let r = format!("{rel}/{name}");
        if path.is_dir() {
            walk(&path, &r, out)?;
        } else {
            out.push((r, path));
        }
    }
    Ok(())
}

fn write_assets(dist: &Path, target: &Path) -> Result<(), String> {
    let mut files = Vec::new();
    walk(dist, "", &mut files)?;
    if !files.iter().any(|(r, _)| r == "/index.html") {
        return Err(format!("{} has no index.html", dist.display()));
    }
    let gz_dir = target.with_file_name("console-gz");
    std::fs::create_dir_all(&gz_dir)
        .map_err(|e| format!("cannot create {}: {e}", gz_dir.display()))?;
    let mut src = String::from("// Generated by build.rs: the built console.\n&[\n");
    for (i, (rel, path)) in files.iter().enumerate() {
        let bytes =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let ct = content_type(rel);
        let mut gz = "None".to_string();
        if compressible(ct) && bytes.len() > 512 {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            enc.write_all(&bytes).map_err(|e| e.to_string())?;
            let z = enc.finish().map_err(|e| e.to_string())?;
            if z.len() < bytes.len() * 9 / 10 {
                let p = gz_dir.join(format!("{i}.gz"));
                std::fs::write(&p, &z).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
                gz = format!("Some(include_bytes!({:?}))", p.display().to_string());
            }
        }
        // Vite names what it builds under /assets/ by content hash.
        let immutable = rel.starts_with("/assets/");
        let _ = writeln!(
            src,
            "    Asset {{ path: {rel:?}, body: include_bytes!({:?}), gzip: {gz}, content_type: {ct:?}, etag: \"\\\"{:016x}\\\"\", immutable: {immutable} }},",
            path.display().to_string(),
            fnv(&bytes),
        );
    }
    src.push_str("]\n");
    std::fs::write(target, src).map_err(|e| format!("cannot write {}: {e}", target.display()))
}
