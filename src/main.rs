//! The `paiid-alerts` binary: a thin CLI over the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use paiid_alerts::Application;
use paiid_alerts::Durability;
use paiid_alerts::RoutingConfig;
use paiid_alerts::Settings;

#[derive(Parser)]
#[command(
    name = "paiid-alerts",
    version,
    about = "Turns Sentry alerts into pages that people act on"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct Common {
    /// Routing file.
    #[arg(long, env = "ROUTING_CONFIG", default_value = "./routing.yaml")]
    config: PathBuf,
    /// SQLite database (created if missing; migrations applied at start).
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://paiid-alerts.db")]
    database_url: String,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service.
    Serve {
        #[command(flatten)]
        common: Common,
        /// Address to listen on.
        #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Base URL of links in messages (default: http://{listen}).
        #[arg(long, env = "PUBLIC_URL")]
        public_url: Option<String>,
        /// `full` (the default) has every 2xx on disk, also through power loss or a file system
        /// gone read-only; `normal` survives a process crash only, for faster commits.
        #[arg(long, env = "DATABASE_DURABILITY", default_value = "full")]
        durability: Durability,
        /// Accept unsigned webhooks on a non-loopback address.
        #[arg(long, env = "ALLOW_UNSIGNED_WEBHOOKS")]
        allow_unsigned_webhooks: bool,
        /// Seconds a connection may take to send a request's headers, idle keep-alive included.
        /// Keep it above your load balancer's idle timeout (60 s on AWS ALB and nginx).
        #[arg(long, env = "HTTP_HEADER_TIMEOUT", default_value_t = 65)]
        header_timeout: u64,
    },
    /// Send a real test message through one configured channel and print the outcome.
    SendTest {
        /// Channel name from routing.yaml (e.g. slack-alerts).
        #[arg(long)]
        channel: String,
        /// Routing file.
        #[arg(long, env = "ROUTING_CONFIG", default_value = "./routing.yaml")]
        config: PathBuf,
    },
    /// Send the current period's digest of Medium incidents (or the weekly summary) now.
    Digest {
        #[command(flatten)]
        common: Common,
        /// Required: send now rather than on the schedule.
        #[arg(long)]
        send_now: bool,
        /// The weekly ops summary instead of the daily digest.
        #[arg(long)]
        weekly: bool,
    },
    /// The real service on a temporary database with a fast clock (15 minutes in 15 seconds),
    /// fed by a simulated trading backend; narrates classification to digest, then exits.
    Demo {
        /// Stay up after the story (the web page stays reachable) until Ctrl-C or SIGTERM.
        #[arg(long)]
        keep: bool,
    },
    /// Which rule a Sentry payload would hit, who would be notified, and which silence holds it.
    Explain {
        /// The payload as Sentry sends it (JSON).
        payload: PathBuf,
        /// Its `Sentry-Hook-Resource` (default: from a Sentry-style file name such as
        /// `event_alert.triggered.1.json`, else the legacy plugin).
        #[arg(long)]
        resource: Option<String>,
        /// Routing file.
        #[arg(long, env = "ROUTING_CONFIG", default_value = "./routing.yaml")]
        config: PathBuf,
        /// The service's database, read for silences and rate windows if the file exists.
        #[arg(long, env = "DATABASE_URL", default_value = "sqlite://paiid-alerts.db")]
        database_url: String,
    },
    /// Validate a routing file; exits non-zero naming the file, line and problem.
    CheckConfig {
        /// Routing file (default: $ROUTING_CONFIG or ./routing.yaml).
        path: Option<PathBuf>,
        /// Also fail when a severity's `notify` or `escalate_to` names a channel that would
        /// only reach the log (its secret or SMTP_URL is unset).
        #[arg(long)]
        strict: bool,
    },
    /// Silences on the running service (add, list, expire), through its API with API_TOKEN.
    Silence(paiid_alerts::SilenceCli),
    /// Copy a SQLite database into an empty PostgreSQL database (the upgrade path to several
    /// replicas), then compare every table's row count. Stop the service first.
    MigrateDb {
        /// The SQLite database to copy (read-only; left as it was).
        #[arg(long)]
        from: String,
        /// The PostgreSQL database to fill: created tables, no rows.
        #[arg(long)]
        to: String,
    },
}

/// `to_stderr`: the demo prints its story on stdout and leaves the log (what each channel would
/// have sent) to stderr.
fn init_tracing(to_stderr: bool) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    // Colours only on a terminal: a log redirected to a file or a journal stays plain text
    // that grep and log shippers read as written.
    let terminal = if to_stderr {
        std::io::stderr().is_terminal()
    } else {
        std::io::stdout().is_terminal()
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(terminal);
    match (json, to_stderr) {
        (true, true) => builder.json().with_writer(std::io::stderr).init(),
        (true, false) => builder.json().init(),
        (false, true) => builder.with_writer(std::io::stderr).init(),
        (false, false) => builder.init(),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(matches!(cli.command, Command::Demo { .. }));
    let result = match cli.command {
        Command::Serve {
            common,
            listen,
            public_url,
            durability,
            allow_unsigned_webhooks,
            header_timeout,
        } => {
            serve(
                common,
                listen,
                public_url,
                durability,
                allow_unsigned_webhooks,
                header_timeout,
            )
            .await
        }
        Command::CheckConfig { path, strict } => check_config(path, strict),
        Command::MigrateDb { from, to } => migrate_db(&from, &to).await,
        Command::Silence(cli) => paiid_alerts::run_silence_cli(cli).await,
        Command::Demo { keep } => paiid_alerts::run_demo(keep).await,
        Command::Explain {
            payload,
            resource,
            config,
            database_url,
        } => {
            paiid_alerts::explain_file(&payload, resource.as_deref(), &config, Some(&database_url))
                .await
                .map(|text| print!("{text}"))
        }
        Command::SendTest { channel, config } => send_test(&channel, &config).await,
        Command::Digest {
            common,
            send_now,
            weekly,
        } => digest(common, send_now, weekly).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

async fn migrate_db(from: &str, to: &str) -> anyhow::Result<()> {
    let counts = paiid_alerts::migrate_sqlite_to_postgres(from, to).await?;
    println!("{:<20} {:>12} {:>12}", "table", "sqlite", "postgres");
    for c in &counts {
        println!("{:<20} {:>12} {:>12}", c.table, c.source, c.target);
    }
    println!("copied and verified: every table holds as many rows as in SQLite");
    Ok(())
}

/// `outer: cause: root`, leaving out a cause that its parent's message already quotes (sqlx
/// and our own error types both print their source, so `{:#}` would say everything three times).
fn error_chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let msg = cause.to_string();
        if !out.contains(&msg) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&msg);
        }
    }
    out
}

async fn serve(
    common: Common,
    listen: SocketAddr,
    public_url: Option<String>,
    durability: Durability,
    allow_unsigned_webhooks: bool,
    header_timeout: u64,
) -> anyhow::Result<()> {
    // First, so that a panic during start-up is reported too; held until the process ends.
    let _telemetry = paiid_alerts::init_telemetry(&paiid_alerts::TelemetryOptions::from_env()?)?;
    let mut settings = Settings::new(listen, common.database_url.clone(), common.config.clone());
    settings.public_url = public_url.or(settings.public_url);
    settings.durability = durability;
    settings.allow_unsigned_webhooks = allow_unsigned_webhooks;
    settings.header_read_timeout = std::time::Duration::from_secs(header_timeout.max(1));
    if !settings.secrets.webhooks_signed() {
        tracing::warn!(
            "SENTRY_CLIENT_SECRET and SENTRY_WEBHOOK_TOKEN are unset: UNSIGNED WEBHOOKS ARE ACCEPTED. \
             Set them before exposing this service."
        );
    }
    let app = Application::build(settings).await?;
    let cfg = app.state().cfg.load();
    tracing::info!(
        address = %app.local_addr(),
        config = %common.config.display(),
        rules = cfg.rules.len(),
        channels = cfg.channels.len(),
        database = %paiid_alerts::redact_url_password(&common.database_url),
        "paiid-alerts listening"
    );
    // SIGHUP re-reads the routing file (its default action would end the process).
    #[cfg(unix)]
    app.reload_on_hangup()?;
    app.run_until_stopped(shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down");
}

fn check_config(path: Option<PathBuf>, strict: bool) -> anyhow::Result<()> {
    let path = path
        .or_else(|| std::env::var_os("ROUTING_CONFIG").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("./routing.yaml"));
    let cfg = RoutingConfig::load(&path)?;
    // The channels as `serve` would build them from this environment: a channel whose secret
    // (or SMTP_URL) is unset only reaches the log. Built before the verdict, since a channel
    // that does not build (a malformed SMTP_URL) fails the check.
    let settings = Settings::new("127.0.0.1:0".parse()?, String::new(), path.clone());
    let templates = std::sync::Arc::new(paiid_alerts::Templates::from(cfg.templates.clone()));
    let channels =
        paiid_alerts::Channels::build(&cfg, &paiid_alerts::channel_env(&settings), templates)?;
    let refused: Vec<String> = if strict {
        channels
            .log_only_in_policies(&cfg)
            .iter()
            .map(ToString::to_string)
            .collect()
    } else {
        Vec::new()
    };
    if refused.is_empty() {
        println!(
            "{}: ok ({} rules, {} channels, {} severities)",
            path.display(),
            cfg.rules.len(),
            cfg.channels.len(),
            cfg.policies.len()
        );
    }
    for line in cfg.feature_lines() {
        println!("{line}");
    }
    let log_only: Vec<(&str, &str)> = channels.log_only().collect();
    if !log_only.is_empty() {
        println!("channels that only reach the log:");
        for (name, why) in &log_only {
            println!("  {name}: {why}");
        }
    }
    if !refused.is_empty() {
        anyhow::bail!(
            "--strict: {}; set the variables or change the policies",
            refused.join("; ")
        );
    }
    Ok(())
}

async fn send_test(channel: &str, config: &std::path::Path) -> anyhow::Result<()> {
    use paiid_alerts::Channels;
    use paiid_alerts::Templates;
    use paiid_alerts::{Outgoing, RemoteState, SendOutcome};

    let cfg = RoutingConfig::load(config)?;
    let settings = Settings::new("127.0.0.1:0".parse()?, String::new(), config.to_path_buf());
    let templates = std::sync::Arc::new(Templates::from(cfg.templates.clone()));
    let channels = Channels::build(&cfg, &paiid_alerts::channel_env(&settings), templates)?;
    let Some(ch) = channels.get(channel) else {
        anyhow::bail!(
            "no channel `{channel}` in {} (channels: {})",
            config.display(),
            channels.names().collect::<Vec<_>>().join(", ")
        );
    };
    let notification = paiid_alerts::Notification::test_message(chrono::Utc::now());
    let outcome = ch
        .send(Outgoing {
            notification: &notification,
            remote: &RemoteState::default(),
        })
        .await;
    println!("channel {channel} ({}):", ch.kind());
    match outcome {
        SendOutcome::Delivered {
            status, response, ..
        } if ch.is_real() => {
            println!(
                "  delivered (status {})\n  response: {response}",
                status.map_or("-".to_string(), |s| s.to_string())
            );
            Ok(())
        }
        SendOutcome::Delivered { response, .. } => {
            println!("{response}");
            anyhow::bail!(
                "channel `{channel}` is not configured, so nothing was sent (the message above went to the log); set {}",
                channels.missing_env(channel).join(" or ")
            )
        }
        SendOutcome::Skipped { reason } => anyhow::bail!("skipped: {reason}"),
        SendOutcome::Retry { status, reason, .. } => {
            anyhow::bail!(
                "failed (temporary, status {}): {reason}",
                status.map_or("-".to_string(), |s| s.to_string())
            )
        }
        SendOutcome::Permanent { status, reason } => {
            anyhow::bail!(
                "failed (permanent, status {}): {reason}",
                status.map_or("-".to_string(), |s| s.to_string())
            )
        }
    }
}

async fn digest(common: Common, send_now: bool, weekly: bool) -> anyhow::Result<()> {
    use paiid_alerts::Channels;
    use paiid_alerts::Templates;
    use paiid_alerts::{DigestKind, DigestRunner, DigestStatus};
    use std::sync::Arc;

    if !send_now {
        anyhow::bail!(
            "digests are sent by `serve` on their schedule; pass --send-now to send one by hand"
        );
    }
    let cfg = Arc::new(RoutingConfig::load(&common.config)?);
    let settings = Settings::new(
        "127.0.0.1:0".parse()?,
        common.database_url.clone(),
        common.config.clone(),
    );
    let store = paiid_alerts::Store::open(&common.database_url, Durability::Full).await?;
    let templates = Arc::new(Templates::from(cfg.templates.clone()));
    let channels = Arc::new(Channels::build(
        &cfg,
        &paiid_alerts::channel_env(&settings),
        templates,
    )?);
    let public_url: Arc<str> = settings
        .public_url
        .clone()
        .unwrap_or_else(|| "http://127.0.0.1:8080".into())
        .into();
    let clock: paiid_alerts::SharedClock = Arc::new(paiid_alerts::SystemClock);
    let runner = DigestRunner::new(store.clone(), cfg, channels.clone(), clock, public_url);
    let kind = if weekly {
        DigestKind::Weekly
    } else {
        DigestKind::Daily
    };
    let outcomes = runner.send_now(kind).await?;
    store.close().await;
    let mut failed = false;
    for o in &outcomes {
        println!("{o}");
        failed |= matches!(o.status, DigestStatus::Failed { .. });
    }
    if failed {
        anyhow::bail!("a digest could not be sent");
    }
    let logged_only: Vec<String> = outcomes
        .iter()
        .filter(|o| !channels.is_real(&o.recipient))
        .map(|o| {
            format!(
                "{} (set {})",
                o.recipient,
                channels.missing_env(&o.recipient).join(" or ")
            )
        })
        .collect();
    if !logged_only.is_empty() {
        anyhow::bail!("not mailed, only logged: {}", logged_only.join(", "));
    }
    Ok(())
}
