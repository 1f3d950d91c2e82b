//! Wiring. `Application::build` loads the routing file, opens the database, starts the writer and
//! binds the listener (port 0 in tests); `run_until_stopped` serves until the shutdown future
//! resolves, then drains the workers.

pub(crate) mod demo;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::auth::ack_token::AckKeys;
use crate::clock::{SharedClock, SystemClock};
use crate::config::{Live, RoutingConfig};
use crate::digest::DigestRunner;
use crate::escalation::Scheduler;
use crate::http::{self, AppState};
use crate::incidents::service::IncidentService;
use crate::incidents::silences::Silences;
use crate::incidents::writer::{Wakers, Writer, WriterHandle};
use crate::metrics::Metrics;
use crate::notify::build::NotificationBuilder;
use crate::notify::registry::{ChannelEnv, Channels};
use crate::notify::reload::Reloader;
use crate::notify::render::Templates;
use crate::notify::worker::OutboxWorker;
use crate::settings::Settings;
use crate::store::{Store, settings as stored_settings};
use crate::watch::PipelineWatch;

/// The workers, for tests that step them by hand (`OutboxWorker::step`, `Scheduler::fire_due`)
/// instead of waiting for them. The HTTP handlers never need these, so they are not in
/// [`AppState`].
#[derive(Clone)]
pub struct Workers {
    pub outbox: Arc<OutboxWorker>,
    pub scheduler: Scheduler,
    /// Releases the incidents a silence held once it ends (`release_due`).
    pub silences: Silences,
    /// The heartbeat, canary and contract watches, and the interval starts (`check`).
    pub watch: PipelineWatch,
    pub wakers: Wakers,
}

pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    state: AppState,
    handles: Workers,
    writer_task: JoinHandle<()>,
    cancel: CancellationToken,
    workers: Vec<JoinHandle<()>>,
    header_read_timeout: std::time::Duration,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let cfg = Arc::new(RoutingConfig::load(&settings.config_path)?);
        refuse_unsafe_listen(&settings)?;
        let clock: SharedClock = settings
            .clock
            .clone()
            .unwrap_or_else(|| Arc::new(SystemClock));
        let store = open_store(&settings).await.with_context(|| {
            format!(
                "opening database {}",
                crate::text::redact_url_password(&settings.database_url)
            )
        })?;

        let wakers = Wakers::default();
        // Every reader of the routing file and channels shares these: a reload swaps them.
        let live_cfg = Live::new(cfg.clone());
        let cancel = CancellationToken::new();
        connect_replicas(&store, &wakers, cancel.child_token());
        let (writer, writer_task) = Writer::new(
            store.clone(),
            live_cfg.clone(),
            clock.clone(),
            wakers.clone(),
        )
        .await?
        .spawn(cancel.child_token());

        let (listener, addr, public_url) = bind_listener(&settings).await?;
        let ack_keys = Arc::new(load_ack_keys(&settings, &store).await?);
        let live_channels = build_channels(&settings, &cfg, &store, &clock).await?;
        let mut metrics = Metrics::new(store.health.clone(), store.corrupt_rows.clone());
        metrics.name_replica(
            &settings.replica,
            match store.kind() {
                crate::store::BackendKind::Sqlite => "sqlite",
                crate::store::BackendKind::Postgres => "postgres",
            },
        );
        let metrics = Arc::new(metrics);
        let core = Core {
            store,
            cfg: live_cfg,
            channels: live_channels,
            clock,
            wakers,
            metrics,
        };
        let builder = core.notification_builder(&public_url, &ack_keys, cfg.delivery.include_pii);
        let reloader = core.reloader(&settings);
        let handles = build_workers(&core, builder, &writer);
        let state = AppState {
            incidents: core.incident_service(),
            cfg: core.cfg,
            store: core.store,
            writer,
            clock: core.clock,
            secrets: Arc::new(settings.secrets.clone()),
            public_url,
            ready: Arc::new(AtomicBool::new(false)),
            channels: core.channels,
            metrics: core.metrics,
            ack_keys,
            reloader,
        };
        let workers = start_workers(&settings, &state, &handles, &cancel).await?;
        Ok(Self {
            listener,
            addr,
            state,
            handles,
            writer_task,
            cancel,
            workers,
            header_read_timeout: settings.header_read_timeout,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Reloads the routing file on every `SIGHUP` (the `serve` command; a process that embeds
    /// the app decides for itself). Without this, SIGHUP's default action ends the process.
    #[cfg(unix)]
    pub fn reload_on_hangup(&self) -> std::io::Result<JoinHandle<()>> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = signal(SignalKind::hangup())?;
        let reloader = self.state.reloader.clone();
        let cancel = self.cancel.clone();
        Ok(tokio::spawn(async move {
            loop {
                tokio::select! {
                    got = hangups.recv() => if got.is_none() { return },
                    _ = cancel.cancelled() => return,
                }
                tracing::info!("SIGHUP: reloading the routing file");
                // The outcome is logged and counted by the reloader.
                let _ = reloader.reload();
            }
        }))
    }

    /// The workers, to step by hand (with `Settings::run_workers` off they are not running).
    pub fn workers(&self) -> &Workers {
        &self.handles
    }

    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            listener,
            state,
            writer_task,
            cancel,
            workers,
            header_read_timeout,
            ..
        } = self;
        let store = state.store.clone();
        let app = http::router(state);
        let cancel_on_stop = cancel.clone();
        http::serve::serve(listener, app, header_read_timeout, async move {
            shutdown.await;
            cancel_on_stop.cancel();
        })
        .await;
        cancel.cancel();
        for w in workers {
            let _ = w.await;
        }
        // The writer saw the cancellation: it commits what is queued and ends.
        let _ = writer_task.await;
        store.close().await;
        Ok(())
    }
}

/// What every worker and handler shares, gathered once so the wiring steps below take one
/// argument instead of six.
struct Core {
    store: Store,
    cfg: Live<RoutingConfig>,
    channels: Live<Channels>,
    clock: SharedClock,
    wakers: Wakers,
    metrics: Arc<Metrics>,
}

impl Core {
    fn notification_builder(
        &self,
        public_url: &Arc<str>,
        ack_keys: &Arc<AckKeys>,
        include_pii: bool,
    ) -> NotificationBuilder {
        NotificationBuilder {
            store: self.store.clone(),
            public_url: public_url.clone(),
            ack_keys: ack_keys.clone(),
            clock: self.clock.clone(),
            include_pii,
        }
    }

    fn reloader(&self, settings: &Settings) -> Arc<Reloader> {
        Arc::new(Reloader::new(
            settings.config_path.clone(),
            channel_env(settings),
            self.cfg.clone(),
            self.channels.clone(),
            self.metrics.clone(),
        ))
    }

    fn incident_service(&self) -> IncidentService {
        IncidentService {
            store: self.store.clone(),
            cfg: self.cfg.clone(),
            clock: self.clock.clone(),
            wakers: self.wakers.clone(),
        }
    }
}

/// Refuses the two start-ups that work but leave the service unsafe or useless on a public
/// address: unsigned webhooks anyone can post, and links in messages nobody can open.
fn refuse_unsafe_listen(settings: &Settings) -> anyhow::Result<()> {
    if !settings.secrets.webhooks_signed()
        && !settings.listen.ip().is_loopback()
        && !settings.allow_unsigned_webhooks
    {
        anyhow::bail!(
            "refusing to listen on {} without a webhook secret: set SENTRY_CLIENT_SECRET (and/or \
             SENTRY_WEBHOOK_TOKEN for the legacy plugin), or pass --allow-unsigned-webhooks",
            settings.listen
        );
    }
    // Ack links and the page links in every message are built from PUBLIC_URL; on a public
    // address the fallback `http://{listen}` (e.g. `http://0.0.0.0:8080`) reaches nobody.
    if !settings.listen.ip().is_loopback()
        && settings
            .public_url
            .as_deref()
            .is_none_or(|u| u.trim().is_empty())
    {
        anyhow::bail!(
            "refusing to listen on {} without PUBLIC_URL: links in messages (acknowledge, \
             incident page) would point at http://{}, which nobody can open; set PUBLIC_URL \
             (or --public-url) to the address people reach this service at, e.g. \
             https://alerts.example.com",
            settings.listen,
            settings.listen
        );
    }
    if let Some(url) = settings.public_url.as_deref()
        && names_no_host(url)
    {
        tracing::warn!(
            public_url = url,
            "PUBLIC_URL names 0.0.0.0 / [::], an address to listen on, not one to open: links in \
             messages (acknowledge, incident page) will not work; set it to the address people \
             reach this service at, e.g. https://alerts.example.com"
        );
    }
    Ok(())
}

/// True when `url`'s host is the unspecified address (`http://0.0.0.0:8080`, `http://[::]/`).
fn names_no_host(url: &str) -> bool {
    let rest = url.trim().split_once("://").map_or(url.trim(), |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_unspecified())
}

/// Binds the listener and derives the public URL, which falls back to the bound address (so a
/// test on port 0 gets links to the port it actually got).
async fn bind_listener(settings: &Settings) -> anyhow::Result<(TcpListener, SocketAddr, Arc<str>)> {
    let listener = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("binding {}", settings.listen))?;
    let addr = listener.local_addr()?;
    let public_url: Arc<str> = settings
        .public_url
        .clone()
        .map(|u| u.trim_end_matches('/').to_string())
        .unwrap_or_else(|| format!("http://{addr}"))
        .into();
    Ok((listener, addr, public_url))
}

/// Builds the channels from the routing file, warns about the ones that only reach the log,
/// and gives up on queued deliveries to channels the file no longer names.
async fn build_channels(
    settings: &Settings,
    cfg: &RoutingConfig,
    store: &Store,
    clock: &SharedClock,
) -> anyhow::Result<Live<Channels>> {
    let templates = Arc::new(Templates::from(cfg.templates.clone()));
    let channels = Arc::new(Channels::build(cfg, &channel_env(settings), templates)?);
    for (name, why) in channels.log_only() {
        tracing::warn!(channel = name, "channel {name} only reaches the log: {why}");
    }
    let configured: Vec<&str> = channels.names().collect();
    let buried =
        crate::store::deliveries::bury_unconfigured(store, &configured, clock.now_ms()).await?;
    if buried > 0 {
        tracing::warn!(
            buried,
            "gave up on deliveries to channels no longer in the routing file (see /api/deliveries?status=dead)"
        );
    }
    Ok(Live::new(channels))
}

/// The outbox worker, the escalation scheduler and the silence releaser, built but not started.
fn build_workers(core: &Core, builder: NotificationBuilder, writer: &WriterHandle) -> Workers {
    let outbox = Arc::new(OutboxWorker::new(
        core.store.clone(),
        core.cfg.clone(),
        core.channels.clone(),
        builder,
        core.clock.clone(),
        core.metrics.clone(),
    ));
    let scheduler = Scheduler {
        store: core.store.clone(),
        clock: core.clock.clone(),
        wakers: core.wakers.clone(),
        metrics: core.metrics.clone(),
    };
    let silences = Silences {
        store: core.store.clone(),
        clock: core.clock.clone(),
        wakers: core.wakers.clone(),
        cfg: core.cfg.clone(),
    };
    let watch = PipelineWatch {
        store: core.store.clone(),
        cfg: core.cfg.clone(),
        clock: core.clock.clone(),
        writer: writer.clone(),
        incidents: core.incident_service(),
        metrics: core.metrics.clone(),
        wakers: core.wakers.clone(),
    };
    Workers {
        outbox,
        scheduler,
        silences,
        watch,
        wakers: core.wakers.clone(),
    }
}

/// Starts the health probe and, with `run_workers` on, the background workers; with it off
/// (tests that step workers by hand) runs their start-up recovery once instead.
async fn start_workers(
    settings: &Settings,
    state: &AppState,
    handles: &Workers,
    cancel: &CancellationToken,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let mut workers = vec![
        crate::store::health::spawn_probe(
            state.store.clone(),
            state.clock.clone(),
            cancel.child_token(),
        ),
        crate::store::checkpoint::spawn_checkpointer(state.store.clone(), cancel.child_token()),
    ];
    if settings.run_workers {
        workers.extend(
            handles
                .outbox
                .clone()
                .spawn(handles.wakers.outbox.clone(), cancel.child_token()),
        );
        let digest = Arc::new(DigestRunner::new(
            state.store.clone(),
            state.cfg.clone(),
            state.channels.clone(),
            state.clock.clone(),
            state.public_url.clone(),
        ));
        workers.push(digest.spawn(cancel.child_token()));
        // Marks the service ready as it starts; overdue escalations fire after, in batches.
        workers.push(handles.scheduler.clone().spawn(
            handles.wakers.scheduler.clone(),
            state.ready.clone(),
            cancel.child_token(),
        ));
        workers.push(handles.silences.clone().spawn(cancel.child_token()));
        workers.push(handles.watch.clone().spawn(cancel.child_token()));
    } else {
        // Tests that step workers by hand run recovery themselves.
        handles.scheduler.fire_due().await?;
        handles.silences.release_due().await?;
        state.ready.store(true, Ordering::SeqCst);
    }
    Ok(workers)
}

/// Opens the database, waiting out a full disk or a read-only file system (SQLite cannot even
/// create its shared-memory file then): exiting would leave recovery to a supervisor's restart
/// back-off, while waiting here starts the service within a second of the disk coming back.
/// Any other error (a bad URL, a failed migration) ends start-up at once.
/// On a shared database, every wake-up goes to the other replicas too, and theirs come here.
fn connect_replicas(store: &Store, wakers: &Wakers, cancel: CancellationToken) {
    use crate::signal::Wake;
    if !store.shared() {
        return;
    }
    let tell = store.clone();
    wakers.tell_others_with(Arc::new(move |w: Wake| tell.tell_replicas(w.as_str())));
    let here = wakers.clone();
    store.spawn_listener(
        move |what| match what.map(Wake::parse) {
            Some(Some(w)) => here.wake_here(w),
            // Unknown word (a newer replica) or a lost connection: look at everything.
            _ => Wake::ALL.into_iter().for_each(|w| here.wake_here(w)),
        },
        cancel,
    );
}

async fn open_store(settings: &Settings) -> Result<Store, crate::store::StoreError> {
    let mut logged = false;
    loop {
        match Store::open(&settings.database_url, settings.durability).await {
            Err(e) if e.is_storage_fault() => {
                if !logged {
                    tracing::error!(
                        error = %e,
                        database = %crate::text::redact_url_password(&settings.database_url),
                        "cannot open the database (disk full or read-only?); retrying every second until it opens"
                    );
                    logged = true;
                }
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e),
            Ok(store) => {
                if logged {
                    tracing::warn!("database opened; starting");
                }
                return Ok(store);
            }
        }
    }
}

pub fn channel_env(settings: &Settings) -> ChannelEnv {
    ChannelEnv {
        smtp_url: settings
            .secrets
            .smtp_url
            .as_ref()
            .map(|s| s.expose().to_string()),
        email_from: settings.email_from.clone(),
        slack_api_url: settings.slack_api_url.clone(),
        pagerduty_events_url: settings.pagerduty_events_url.clone(),
    }
}

/// `ACK_SIGNING_KEY` when set; otherwise a key generated on first start and kept in the
/// database, so links in messages already sent keep working after a restart.
async fn load_ack_keys(settings: &Settings, store: &Store) -> anyhow::Result<AckKeys> {
    if let Some(key) = &settings.secrets.ack_signing_key {
        return AckKeys::from_env_value(key.expose()).context("ACK_SIGNING_KEY");
    }
    let fresh = hex::encode(AckKeys::generate_secret()?);
    let stored = stored_settings::get_or_insert_setting(store, "ack_signing_key", &fresh).await?;
    AckKeys::from_env_value(&stored).context("the ack signing key stored in the database")
}
