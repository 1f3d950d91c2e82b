//! A real SMTP server for integration tests: `scripts/smtp_sink.py` (aiosmtpd) in a child process.
//!
//! Missing python3 or aiosmtpd fails the test with instructions instead of skipping it: CI
//! installs both, and a silently skipped email test would hide a broken email path.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// One message as the sink recorded it.
#[derive(Debug, Clone, Deserialize)]
pub struct ReceivedMail {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    pub subject: String,
    pub headers: BTreeMap<String, String>,
    /// Decoded text/plain part.
    pub text: Option<String>,
    /// Decoded text/html part.
    pub html: Option<String>,
    /// The message exactly as received (transfer-encoded).
    pub raw: String,
}

impl ReceivedMail {
    /// Header value by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Text part with CRLF normalised to LF.
    pub fn text(&self) -> String {
        self.text
            .as_deref()
            .unwrap_or_default()
            .replace("\r\n", "\n")
    }

    pub fn html(&self) -> String {
        self.html
            .as_deref()
            .unwrap_or_default()
            .replace("\r\n", "\n")
    }

    /// Everything a reader or a mail scanner could see: raw message, decoded parts, headers.
    pub fn everything(&self) -> String {
        let headers: Vec<String> = self
            .headers
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        format!(
            "{}\n{}\n{}\n{}",
            self.raw,
            self.text(),
            self.html(),
            headers.join("\n")
        )
    }
}

pub struct SmtpSink {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/smtp_sink.py")
}

/// A Python interpreter that can import aiosmtpd: `python3` when it can (CI installs the
/// package), otherwise a virtualenv under `target/` that is created once, so that a plain
/// `cargo test` works on a fresh clone. Tests in parallel processes share it through a lock.
fn python_with_aiosmtpd() -> PathBuf {
    static PYTHON: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let can_import = |py: &Path| {
                std::process::Command::new(py)
                    .args(["-c", "import aiosmtpd"])
                    .output()
                    .is_ok_and(|o| o.status.success())
            };
            let system = PathBuf::from("python3");
            if can_import(&system) {
                return system;
            }
            let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
            let venv = target.join("test-venv");
            let venv_python = venv.join("bin/python");
            let lock = target.join("test-venv.lock");
            let _ = std::fs::create_dir_all(&target);
            let deadline = std::time::Instant::now() + Duration::from_secs(300);
            loop {
                if can_import(&venv_python) {
                    return venv_python;
                }
                match std::fs::OpenOptions::new().write(true).create_new(true).open(&lock) {
                    Ok(_) => break,
                    Err(_) if std::time::Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
                    Err(_) => panic!("waited 5 min for {} (remove it if stale)", lock.display()),
                }
            }
            let run = |cmd: &mut std::process::Command| {
                let out = cmd.output().unwrap_or_else(|e| panic!("the SMTP tests need python3 on PATH: {e}"));
                if !out.status.success() {
                    let _ = std::fs::remove_file(&lock);
                    panic!(
                        "could not install aiosmtpd for the SMTP tests (run `pip install aiosmtpd`): {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            };
            run(std::process::Command::new("python3").args(["-m", "venv"]).arg(&venv));
            run(std::process::Command::new(&venv_python).args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "aiosmtpd"]));
            let _ = std::fs::remove_file(&lock);
            venv_python
        })
        .clone()
}

impl SmtpSink {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Extra arguments for the script, e.g. `["--reject-rcpt", "x@y", "--delay", "3"]`.
    pub async fn start_with(args: &[&str]) -> Self {
        let python = python_with_aiosmtpd();
        let dir = tempfile::tempdir().expect("temp dir for the SMTP sink");
        let mut child = Command::new(&python)
            .arg(script())
            .args(["--port", "0", "--dir"])
            .arg(dir.path())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", script().display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("smtp_sink.py did not print LISTENING within 20 s"))
            .unwrap_or_else(|e| panic!("reading smtp_sink.py stdout: {e}"))
            .unwrap_or_else(|| panic!("smtp_sink.py exited before listening (see stderr above)"));
        let port = first
            .strip_prefix("LISTENING ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from smtp_sink.py: {first:?}"));
        Self { child, port, dir }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Messages written so far, in arrival order.
    pub fn received(&self) -> Vec<ReceivedMail> {
        let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(self.dir.path())
            .expect("read sink dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter_map(|p| {
                let n = p
                    .file_name()?
                    .to_str()?
                    .strip_suffix(".json")?
                    .parse()
                    .ok()?;
                Some((n, p))
            })
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|(_, p)| {
                let body = std::fs::read_to_string(&p).expect("read mail json");
                serde_json::from_str(&body).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            })
            .collect()
    }

    /// Waits until at least `n` messages arrived; panics after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let deadline = Instant::now() + timeout;
        loop {
            let mails = self.received();
            if mails.len() >= n {
                return mails;
            }
            if Instant::now() >= deadline {
                panic!(
                    "expected {n} mail(s) within {timeout:?}, got {}",
                    mails.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}
