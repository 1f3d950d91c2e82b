//! Wiring. `Application::build` loads the routing file, opens the database, starts the writer and
//! binds the listener (port 0 in tests); `run_until_stopped` serves until the shutdown future
//! resolves, then drains the workers.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock::{SharedClock, SystemClock};
use crate::config::RoutingConfig;
use crate::http::{self, AppState};
use crate::incidents::service::IncidentService;
use crate::incidents::writer::{Wakers, Writer};
use crate::settings::Settings;
use crate::store::Store;

pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    state: AppState,
    writer_task: JoinHandle<()>,
    cancel: CancellationToken,
    workers: Vec<JoinHandle<()>>,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let cfg = Arc::new(RoutingConfig::load(&settings.config_path)?);
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
        let clock: SharedClock = settings
            .clock
            .clone()
            .unwrap_or_else(|| Arc::new(SystemClock));
        let store = Store::open(&settings.database_url, settings.durability)
            .await
            .with_context(|| format!("opening database {}", settings.database_url))?;

        let wakers = Wakers::default();
        let writer = Writer::new(store.clone(), cfg.clone(), clock.clone(), wakers.clone()).await?;
        let cancel = CancellationToken::new();
        let (writer, writer_task) = writer.spawn(cancel.child_token());

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

        let incidents = IncidentService {
            store: store.clone(),
            cfg: cfg.clone(),
            clock: clock.clone(),
            wakers: wakers.clone(),
        };
        let state = AppState {
            cfg,
            store,
            writer,
            incidents,
            clock,
            secrets: Arc::new(settings.secrets.clone()),
            public_url,
            ready: Arc::new(AtomicBool::new(false)),
        };
        let workers = Vec::new();
        state.ready.store(true, Ordering::SeqCst);
        Ok(Self {
            listener,
            addr,
            state,
            writer_task,
            cancel,
            workers,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn state(&self) -> &AppState {
        &self.state
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
            ..
        } = self;
        let store = state.store.clone();
        let app = http::router(state);
        let cancel_on_stop = cancel.clone();
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                shutdown.await;
                cancel_on_stop.cancel();
            })
            .await
            .context("serving HTTP")?;
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
