//! Loopback fakes for the demo and the end-to-end tests: the core's sans-IO simulation peers
//! (`FakeRealtime`, `FakeCaller`) driven over real sockets on real time.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use barbara_core::sim::fake_caller::{CallerOutput, CallerReport, CallerScript, FakeCaller};
use barbara_core::sim::fake_realtime::{
    FakeRealtime, FakeServerOutput, RealtimeReport, RealtimeScript,
};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, frame::coding::CloseCode};
use tokio_tungstenite::tungstenite::{Message, http};

/// A fake OpenAI Realtime server on `127.0.0.1`: every connection gets its own
/// [`FakeRealtime`] playing `script`.
pub struct FakeOpenAi {
    addr: SocketAddr,
    attempts: Arc<Mutex<u32>>,
    reports: Arc<Mutex<Vec<RealtimeReport>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeOpenAi {
    /// Listens on an ephemeral loopback port.
    ///
    /// # Errors
    /// When the port cannot be bound.
    pub async fn start(script: RealtimeScript) -> std::io::Result<FakeOpenAi> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let attempts = Arc::new(Mutex::new(0));
        let reports = Arc::new(Mutex::new(Vec::new()));
        let (a, r) = (attempts.clone(), reports.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                *a.lock().unwrap_or_else(|e| e.into_inner()) += 1;
                tokio::spawn(serve_realtime(stream, script.clone(), r.clone()));
            }
        });
        Ok(FakeOpenAi {
            addr,
            attempts,
            reports,
            task,
        })
    }

    /// The base URL to configure as `OPENAI_BASE_URL`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// TCP connections made to the fake so far.
    pub fn connections(&self) -> u32 {
        *self.attempts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reports of the sessions that have closed.
    pub fn reports(&self) -> Vec<RealtimeReport> {
        self.reports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for FakeOpenAi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_realtime(
    stream: TcpStream,
    script: RealtimeScript,
    reports: Arc<Mutex<Vec<RealtimeReport>>>,
) {
    let mut fake = FakeRealtime::new(script);
    // The shape of this callback (and its large error) is tungstenite's.
    #[allow(clippy::result_large_err)]
    let handshake = |request: &Request, response: Response| {
        let host = request.headers().get("host").and_then(|h| h.to_str().ok());
        let url = format!("ws://{}{}", host.unwrap_or("localhost"), request.uri());
        let headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_owned())))
            .collect();
        match fake.handle_connect(Instant::now(), &url, &headers) {
            Ok(()) => Ok(response),
            Err(status) => {
                let mut refusal = ErrorResponse::new(None);
                *refusal.status_mut() =
                    http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_REQUEST);
                Err(refusal)
            }
        }
    };
    let Ok(mut socket) = tokio_tungstenite::accept_hdr_async(stream, handshake).await else {
        return;
    };
    'session: loop {
        while let Some(output) = fake.poll_output() {
            match output {
                FakeServerOutput::Text(text) => {
                    if socket.send(Message::text(text)).await.is_err() {
                        break 'session;
                    }
                }
                FakeServerOutput::Close { code: 1006, .. } => break 'session,
                FakeServerOutput::Close { code, reason } => {
                    let frame = CloseFrame {
                        code: CloseCode::from(code),
                        reason: reason.into(),
                    };
                    let _ = socket.close(Some(frame)).await;
                    break 'session;
                }
            }
        }
        tokio::select! {
            message = socket.next() => match message {
                Some(Ok(Message::Text(text))) => fake.handle_text(Instant::now(), &text),
                Some(Ok(Message::Close(_)) | Err(_)) | None => {
                    fake.handle_closed(Instant::now());
                    break 'session;
                }
                Some(Ok(_)) => {}
            },
            () = sleep_until(fake.poll_timeout()) => fake.handle_timeout(Instant::now()),
        }
    }
    reports
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(fake.report().clone());
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// Plays a fake SignalWire caller against `url` (`ws://…/media-stream`), optionally sending
/// `Authorization: Bearer {bearer}` on the upgrade, until either side closes or `limit` passes.
///
/// # Errors
/// When the WebSocket cannot be opened (the refusal's text).
pub async fn call(
    url: &str,
    bearer: Option<&str>,
    script: CallerScript,
    limit: Duration,
) -> Result<CallerReport, String> {
    let mut request = url.into_client_request().map_err(|e| e.to_string())?;
    if let Some(token) = bearer {
        let value = format!("Bearer {token}").parse().map_err(|_| "bad token")?;
        request.headers_mut().insert("authorization", value);
    }
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .map_err(|e| e.to_string())?;
    let mut caller = FakeCaller::new(script, Instant::now());
    let end = tokio::time::Instant::now() + limit;
    loop {
        while let Some(output) = caller.poll_output() {
            let sent = match output {
                CallerOutput::Text(text) => socket.send(Message::text(text)).await,
                CallerOutput::Close => socket.close(None).await,
            };
            if sent.is_err() {
                caller.handle_closed(Instant::now());
            }
        }
        if caller.is_closed() {
            break;
        }
        tokio::select! {
            message = socket.next() => match message {
                Some(Ok(Message::Text(text))) => caller.handle_text(Instant::now(), &text),
                Some(Ok(Message::Binary(data))) => caller.handle_binary(Instant::now(), &data),
                Some(Ok(Message::Close(_)) | Err(_)) | None => caller.handle_closed(Instant::now()),
                Some(Ok(_)) => {}
            },
            () = sleep_until(caller.poll_timeout()) => caller.handle_timeout(Instant::now()),
            () = tokio::time::sleep_until(end) => break,
        }
    }
    Ok(caller.report().clone())
}
