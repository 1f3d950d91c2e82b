//! The real binary as an operator starts it (`paiid-alerts serve`), for the tests that kill it,
//! restart it or read its log.
//!
//! The service binds port 0 and the harness reads the address from its "listening" log line.
//! Picking a free port first and handing it over raced with every other test doing the same:
//! the port was free when picked, another test's fake Slack took it, and this service then
//! failed to bind while its readiness probe talked to that fake (and spent its scripted hang).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

pub const BIN: &str = env!("CARGO_BIN_EXE_paiid-alerts");

/// How long a start may take: the binary is a debug build, and the machine may be busy with
/// every other test binary.
const START_WITHIN: Duration = Duration::from_secs(30);

pub struct Service {
    pub child: Child,
    pub base: String,
    pub log: PathBuf,
}

impl Service {
    /// `serve` on `dir/alerts.db` and `dir/routing.yaml`, on a loopback port of its own choosing,
    /// with an empty environment plus `envs` (which may override `RUST_LOG`); its output goes
    /// to `dir/service-{run}.log`.
    pub async fn start(dir: &Path, envs: &[(&str, String)], run: u32) -> Service {
        let mut cmd = Command::new(BIN);
        cmd.arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("LISTEN_ADDR", "127.0.0.1:0")
            .env(
                "DATABASE_URL",
                format!("sqlite://{}", dir.join("alerts.db").display()),
            )
            .env("ROUTING_CONFIG", dir.join("routing.yaml"))
            .env(
                "RUST_LOG",
                "debug,hyper=info,h2=info,rustls=info,reqwest=info",
            );
        for (k, v) in envs {
            cmd.env(k, v);
        }
        Self::spawn(cmd, dir.join(format!("service-{run}.log"))).await
    }

    /// Runs `cmd` (a `serve` whose listen address has port 0) with its output in `log`, and
    /// returns once it answers `/readyz`. Fails with the log when it exits first or is not
    /// ready in time.
    pub async fn spawn(mut cmd: Command, log: PathBuf) -> Service {
        let out = std::fs::File::create(&log).unwrap();
        cmd.stdout(out.try_clone().unwrap())
            .stderr(out)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("spawn service");
        let client = paiid_alerts::testing::http_client::client().unwrap();
        let deadline = tokio::time::Instant::now() + START_WITHIN;
        let mut base = None;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "the service exited ({status}) before it was ready:\n{}",
                    read(&log)
                );
            }
            if base.is_none() {
                base = listening_on(&read(&log)).map(|a| format!("http://{a}"));
            }
            if let Some(base) = &base {
                let ready = client.get(format!("{base}/readyz")).send().await;
                if ready.is_ok_and(|r| r.status() == 200) {
                    return Service {
                        child,
                        base: base.clone(),
                        log,
                    };
                }
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "the service was not ready within {START_WITHIN:?} (address {base:?}):\n{}",
                    read(&log)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn log(&self) -> String {
        read(&self.log)
    }

    pub fn kill9(&mut self) {
        let pid = self.child.id().expect("pid");
        let status = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGTERM, then up to 15 s for a clean stop. Returns the log.
    pub async fn stop(mut self) -> String {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        let _ = tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await;
        self.log()
    }
}

fn read(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

/// The address from the "paiid-alerts listening address=…" line; an unspecified IP (the
/// service bound every interface) is reached on loopback.
fn listening_on(log: &str) -> Option<SocketAddr> {
    let line = log.lines().find(|l| l.contains("paiid-alerts listening"))?;
    let value = line.split_once("address=")?.1.split_whitespace().next()?;
    let mut addr: SocketAddr = value.trim_matches('"').parse().ok()?;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    Some(addr)
}
