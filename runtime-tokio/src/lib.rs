//! # barbara-tokio
//!
//! The Barbara server on tokio: the HTTP endpoints SignalWire calls (the cXML webhook, the
//! media-stream WebSocket, the transfer cXML), health and metrics, and one task per call that
//! runs `barbara_core::Call` against real sockets. Protocol logic stays in the core; this crate
//! only moves bytes, keeps time and carries out the core's outputs.
//!
//! Start it in-process with [`serve`]; the `barbara` binary adds the environment, signals and
//! `barbara demo`.

#![warn(missing_docs)]

mod admission;
mod auth;
mod call_task;
pub mod config;
pub mod fakes;
pub mod metrics;
mod record;
pub mod replay;
mod routes;
mod snapshot;

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot, watch};
use tokio::task::JoinHandle;

pub use config::{Live, SettingError, Settings};
pub use metrics::Metrics;

/// Installs rustls' ring provider for the process (tungstenite's TLS needs one); call it once
/// before the first `wss://` connection. Later calls do nothing.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// State shared by the endpoints and the call tasks.
pub(crate) struct App {
    pub(crate) settings: Settings,
    live: RwLock<Arc<Live>>,
    pub(crate) tokens: auth::Tokens,
    pub(crate) metrics: Metrics,
    /// One permit per call in progress.
    pub(crate) calls: Arc<Semaphore>,
    /// Set to `true` to hang up every call.
    pub(crate) hang_up: watch::Sender<bool>,
    pub(crate) http: ureq::Agent,
}

impl App {
    /// The configuration new calls get.
    pub(crate) fn live(&self) -> Arc<Live> {
        self.live.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A running server.
pub struct Server {
    addr: SocketAddr,
    app: Arc<App>,
    stop: Option<oneshot::Sender<()>>,
    serving: JoinHandle<()>,
}

/// Serves the endpoints on `listener` until [`Server::shutdown`].
pub fn serve(settings: Settings, listener: TcpListener) -> std::io::Result<Server> {
    install_crypto_provider();
    let addr = listener.local_addr()?;
    let secret = match &settings.signing_key {
        Some(key) => key.as_bytes().to_vec(),
        None => {
            let mut secret = vec![0; 32];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut secret)
                .map_err(|_| std::io::Error::other("no system randomness"))?;
            secret
        }
    };
    let app = Arc::new(App {
        live: RwLock::new(Arc::new(settings.live.clone())),
        tokens: auth::Tokens::new(&secret),
        metrics: Metrics::default(),
        calls: Arc::new(Semaphore::new(settings.max_calls)),
        hang_up: watch::channel(false).0,
        http: ureq::Agent::new_with_defaults(),
        settings,
    });
    let (stop, stopped) = oneshot::channel::<()>();
    let router = routes::router(app.clone());
    let serving = tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        // Media frames are small and due every 20 ms: Nagle would hold them back.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!("the HTTP server failed: {e}");
        }
    });
    Ok(Server {
        addr,
        app,
        stop: Some(stop),
        serving,
    })
}

impl Server {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Reads the configuration file again; new calls get it, calls in progress keep theirs.
    ///
    /// # Errors
    /// The file's problem; the previous configuration stays.
    pub fn reload(&self) -> Result<(), SettingError> {
        let live = self.app.settings.load_call_config()?;
        *self.app.live.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(live);
        Ok(())
    }

    /// The metrics, as `GET /metrics` shows them.
    pub fn metrics(&self) -> String {
        self.app.metrics.render()
    }

    /// The bridge latency of messages sent toward `to` so far (as `GET /metrics` shows it).
    pub fn bridge_latency(&self, to: barbara_core::Leg) -> metrics::LatencySnapshot {
        self.app.metrics.bridge_latency(to).snapshot()
    }

    /// Calls in progress.
    pub fn active_calls(&self) -> usize {
        self.app.settings.max_calls - self.app.calls.available_permits()
    }

    /// Waits until no call is in progress.
    pub async fn idle(&self) {
        let all = u32::try_from(self.app.settings.max_calls).unwrap_or(u32::MAX);
        let _all = self.app.calls.acquire_many(all).await;
    }

    /// Stops accepting, lets calls run for up to `grace`, then hangs up the rest and waits for
    /// them to end (bounded by the core's HTTP deadline, for the REST hang-ups).
    pub async fn shutdown(mut self, grace: Duration) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.serving).await;
        let all = u32::try_from(self.app.settings.max_calls).unwrap_or(u32::MAX);
        let calls = self.app.calls.clone();
        if tokio::time::timeout(grace, calls.acquire_many(all))
            .await
            .is_ok()
        {
            return;
        }
        tracing::info!(calls = self.active_calls(), "grace period over: hanging up");
        self.app.hang_up.send_replace(true);
        let wait = self.app.live().call.limits.http_timeout + Duration::from_secs(2);
        let _ = tokio::time::timeout(wait, calls.acquire_many(all)).await;
    }
}
