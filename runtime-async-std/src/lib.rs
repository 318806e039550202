//! # barbara-async-std
//!
//! The Barbara media-stream server on async-std or smol: a WebSocket server for SignalWire's
//! `/media-stream` that admits each stream with its per-call token and runs one task per call
//! against the core's [`CallDriver`](barbara_core::CallDriver).
//!
//! It is written against `futures-io` and async-tungstenite's generic client and server
//! functions, with `async-io`/`async-net` for the timer, TCP and UDP and `blocking` for HTTP,
//! so it has no executor of its own: hand [`serve`] a [`Spawn`] from async-std
//! (`async_std::task::spawn`) or smol (`smol::spawn(…).detach()`) and the same code runs on
//! either. async-std is discontinued upstream (RUSTSEC-2025-0052); smol is its successor.
//!
//! Protocol logic stays in the core: admission is [`barbara_core::auth`], every call decision
//! is the driver's; this crate only moves bytes and keeps time. The cXML webhook, metrics,
//! call records and configuration reloads are the tokio server's (`barbara-tokio`).

#![warn(missing_docs)]

mod call;
mod net;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use async_net::{TcpListener, TcpStream};
use async_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use async_tungstenite::tungstenite::http::StatusCode;
use async_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use async_tungstenite::tungstenite::{Message, protocol::frame::coding::CloseCode};
use barbara_core::auth::{Admission, StreamTokens, Verdict};
use barbara_core::{CallConfig, Event};
use futures_util::StreamExt as _;
use futures_util::future::{Either, select};

/// A boxed task for a [`Spawn`].
pub type Task = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// How the server starts a task on the executor it runs on: `async_std::task::spawn` (its
/// handle dropped) or `smol::spawn(task).detach()`.
pub type Spawn = Arc<dyn Fn(Task) + Send + Sync>;

/// Called with each call's CallSid and every core event it reports, in order.
pub type OnEvent = Arc<dyn Fn(&str, &Event) + Send + Sync>;

/// What the server needs.
#[derive(Clone)]
pub struct Settings {
    /// The configuration every call gets.
    pub call: CallConfig,
    /// The secret stream tokens are signed with (`SIGNALWIRE_SIGNING_KEY`, as the tokio server
    /// that mints them in its cXML answer uses it).
    pub stream_secret: Vec<u8>,
    /// The address each call's WebRTC UDP socket binds to.
    pub webrtc_ip: IpAddr,
    /// Sees every core event besides the log.
    pub on_event: Option<OnEvent>,
}

/// State shared by the accept loop and the call tasks.
pub(crate) struct Shared {
    pub(crate) settings: Settings,
    tokens: Mutex<StreamTokens>,
    pub(crate) tls: Arc<rustls::ClientConfig>,
    pub(crate) http: ureq::Agent,
    /// Closed to hang up every call.
    pub(crate) hang_up: async_channel::Receiver<()>,
}

impl Shared {
    fn tokens(&self) -> MutexGuard<'_, StreamTokens> {
        self.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running server.
pub struct Server {
    addr: SocketAddr,
    stop: async_channel::Sender<()>,
    hang_up: async_channel::Sender<()>,
    /// Ends (with an error) once the accept loop and every call task are gone.
    alive: async_channel::Receiver<()>,
}

/// Serves `/media-stream` on `listener`, starting its tasks with `spawn`, until
/// [`Server::shutdown`].
///
/// # Errors
/// When the listener has no address or TLS cannot be set up.
pub fn serve(settings: Settings, listener: TcpListener, spawn: Spawn) -> std::io::Result<Server> {
    let addr = listener.local_addr()?;
    let (stop, stopped) = async_channel::bounded(1);
    let (hang_up, hung_up) = async_channel::bounded(1);
    let (alive_tx, alive) = async_channel::bounded(1);
    let shared = Arc::new(Shared {
        tokens: Mutex::new(StreamTokens::new(&settings.stream_secret)),
        tls: net::tls_config()?,
        http: ureq::Agent::new_with_defaults(),
        hang_up: hung_up,
        settings,
    });
    let accepting = accept(shared, listener, stopped, alive_tx, spawn.clone());
    spawn(Box::pin(accepting));
    Ok(Server {
        addr,
        stop,
        hang_up,
        alive,
    })
}

impl Server {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, waits up to `grace` for the calls in progress to end, then hangs up
    /// the rest and waits for them (the core bounds how long a hang-up takes).
    pub async fn shutdown(self, grace: Duration) {
        self.stop.close();
        let mut ended = pin!(self.alive.recv());
        let timer = async_io::Timer::after(grace);
        if let Either::Right(_) = select(ended.as_mut(), timer).await {
            tracing::info!("grace period over: hanging up");
            self.hang_up.close();
            let _ = ended.await;
        }
    }
}

/// Seconds since the Unix epoch.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn accept(
    shared: Arc<Shared>,
    listener: TcpListener,
    stop: async_channel::Receiver<()>,
    alive: async_channel::Sender<()>,
    spawn: Spawn,
) {
    loop {
        let accepted = match select(pin!(stop.recv()), pin!(listener.accept())).await {
            Either::Left(_) => break,
            Either::Right((accepted, _)) => accepted,
        };
        match accepted {
            Ok((stream, _)) => {
                // Media frames are small and due every 20 ms: Nagle would hold them back.
                let _ = stream.set_nodelay(true);
                let (shared, alive) = (shared.clone(), alive.clone());
                spawn(Box::pin(async move {
                    media_stream(shared, stream).await;
                    drop(alive);
                }));
            }
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                async_io::Timer::after(Duration::from_millis(100)).await;
            }
        }
    }
    // Closed before the server counts this task as gone.
    drop(listener);
    drop(alive);
}

/// One connection: the upgrade (path and bearer token checked), the admission of its `start`,
/// then its call.
async fn media_stream(shared: Arc<Shared>, stream: TcpStream) {
    let mut bearer_sid = None;
    // The shape of this callback (and its large error) is tungstenite's.
    #[allow(clippy::result_large_err)]
    let check = |request: &Request, response: Response| {
        let refuse = |status| {
            let mut refusal = ErrorResponse::new(None);
            *refusal.status_mut() = status;
            Err(refusal)
        };
        if request.uri().path() != "/media-stream" {
            return refuse(StatusCode::NOT_FOUND);
        }
        let bearer = request.headers().get("authorization");
        let bearer = bearer.and_then(|v| v.to_str().ok()?.strip_prefix("Bearer "));
        if let Some(token) = bearer {
            match shared.tokens().redeem(unix_now(), token) {
                Some(call_sid) => bearer_sid = Some(call_sid),
                None => return refuse(StatusCode::UNAUTHORIZED),
            }
        }
        Ok(response)
    };
    let max = shared.settings.call.limits.max_phone_message_bytes;
    let config = WebSocketConfig::default()
        .max_message_size(Some(max))
        .max_frame_size(Some(max));
    let upgraded = async_tungstenite::accept_hdr_async_with_config(stream, check, Some(config));
    let Ok(mut phone) = upgraded.await else {
        return;
    };
    let mut admission = Admission::new(Instant::now(), bearer_sid);
    let mut deadline = async_io::Timer::at(admission.deadline());
    let admitted = loop {
        let text = match select(phone.next(), &mut deadline).await {
            Either::Left((Some(Ok(Message::Text(text))), _)) => text.to_string(),
            Either::Left((Some(Ok(Message::Ping(_) | Message::Pong(_))), _)) => continue,
            _ => break None,
        };
        match admission.handle_text(unix_now(), text, &mut shared.tokens()) {
            Verdict::Pending => {}
            Verdict::Admitted { frames, start } => break Some((frames, start)),
            Verdict::Refused => break None,
        }
    };
    let Some((frames, start)) = admitted else {
        tracing::info!("a media stream without a valid token was closed");
        let reason = "no valid stream token".into();
        let close = CloseFrame {
            code: CloseCode::Policy,
            reason,
        };
        let _ = phone.send(Message::Close(Some(close))).await;
        return;
    };
    call::run(shared, phone, frames, start).await;
}
