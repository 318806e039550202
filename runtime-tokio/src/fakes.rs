//! Loopback fakes for the demo and the end-to-end tests: the core's sans-IO simulation peers
//! (`FakeRealtime`, `FakeLive`, `FakeRealtimeWebRtc`, `FakeCaller`) driven over real sockets on
//! real time, and a recording HTTP server for tool webhooks and SignalWire's REST API.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use barbara_core::sim::fake_caller::{CallerOutput, CallerReport, CallerScript, FakeCaller};
use barbara_core::sim::fake_live::{FakeLive, LiveReport, LiveScript};
use barbara_core::sim::fake_realtime::{
    FakeRealtime, FakeServerOutput, RealtimeReport, RealtimeScript,
};
use barbara_core::sim::fake_webrtc::{
    FakeRealtimeWebRtc, HttpAnswer, WebRtcFakeMode, WebRtcReport,
};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, frame::coding::CloseCode};
use tokio_tungstenite::tungstenite::{Message, http};

/// A fake OpenAI WebSocket server on `127.0.0.1`. Every connection gets its own fake session,
/// chosen by its URL as OpenAI routes it: `…/live/sessions` a [`FakeLive`] playing the Live
/// script, anything else a [`FakeRealtime`] playing the Realtime script.
pub struct FakeOpenAi {
    addr: SocketAddr,
    attempts: Arc<watch::Sender<u32>>,
    reports: Reports,
    task: tokio::task::JoinHandle<()>,
}

/// The reports of the sessions that closed, per API.
#[derive(Clone, Default)]
struct Reports {
    realtime: Arc<watch::Sender<Vec<RealtimeReport>>>,
    live: Arc<watch::Sender<Vec<LiveReport>>>,
}

impl FakeOpenAi {
    /// Listens on an ephemeral loopback port; Realtime sessions play `script`, Live sessions
    /// [`LiveScript::default`].
    ///
    /// # Errors
    /// When the port cannot be bound.
    pub async fn start(script: RealtimeScript) -> std::io::Result<FakeOpenAi> {
        FakeOpenAi::start_with(script, LiveScript::default()).await
    }

    /// Listens on an ephemeral loopback port; Live sessions play `script`, Realtime sessions
    /// [`RealtimeScript::default`].
    ///
    /// # Errors
    /// When the port cannot be bound.
    pub async fn start_live(script: LiveScript) -> std::io::Result<FakeOpenAi> {
        FakeOpenAi::start_with(RealtimeScript::default(), script).await
    }

    /// Listens on an ephemeral loopback port; each API's sessions play its script.
    ///
    /// # Errors
    /// When the port cannot be bound.
    pub async fn start_with(
        realtime: RealtimeScript,
        live: LiveScript,
    ) -> std::io::Result<FakeOpenAi> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let attempts = Arc::new(watch::Sender::new(0));
        let reports = Reports::default();
        let (a, r) = (attempts.clone(), reports.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                a.send_modify(|n| *n += 1);
                let scripts = (realtime.clone(), live.clone());
                tokio::spawn(serve_session(stream, scripts, r.clone()));
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
        *self.attempts.borrow()
    }

    /// Waits until `n` TCP connections have been made to the fake.
    pub async fn connected(&self, n: u32) {
        let _ = self.attempts.subscribe().wait_for(|c| *c >= n).await;
    }

    /// Reports of the Realtime sessions that have closed.
    pub fn reports(&self) -> Vec<RealtimeReport> {
        self.reports.realtime.borrow().clone()
    }

    /// Waits until `n` Realtime sessions have closed, and returns their reports.
    pub async fn closed_sessions(&self, n: usize) -> Vec<RealtimeReport> {
        let mut reports = self.reports.realtime.subscribe();
        let closed = reports.wait_for(|r| r.len() >= n).await;
        closed.map(|r| r.clone()).unwrap_or_default()
    }

    /// Reports of the Live sessions that have closed.
    pub fn live_reports(&self) -> Vec<LiveReport> {
        self.reports.live.borrow().clone()
    }

    /// Waits until `n` Live sessions have closed, and returns their reports.
    pub async fn closed_live_sessions(&self, n: usize) -> Vec<LiveReport> {
        let mut reports = self.reports.live.subscribe();
        let closed = reports.wait_for(|r| r.len() >= n).await;
        closed.map(|r| r.clone()).unwrap_or_default()
    }
}

impl Drop for FakeOpenAi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One connection's fake: the two fakes have the same sans-IO surface.
enum Session {
    Realtime(Box<FakeRealtime>),
    Live(Box<FakeLive>),
}

/// Runs `$body` with `$fake` bound to whichever fake `$session` holds.
macro_rules! either {
    ($session:expr, $fake:ident => $body:expr) => {
        match $session {
            Session::Realtime($fake) => $body,
            Session::Live($fake) => $body,
        }
    };
}

impl Session {
    /// The fake OpenAI would route `path` to.
    fn for_path(path: &str, (realtime, live): &(RealtimeScript, LiveScript)) -> Session {
        if path.trim_end_matches('/').ends_with("/live/sessions") {
            Session::Live(Box::new(FakeLive::new(live.clone())))
        } else {
            Session::Realtime(Box::new(FakeRealtime::new(realtime.clone())))
        }
    }

    fn handle_connect(&mut self, url: &str, headers: &[(String, String)]) -> Result<(), u16> {
        either!(self, fake => fake.handle_connect(Instant::now(), url, headers))
    }

    /// The fake for a Live connection whose first frame is `first`, when that is a
    /// `session.start` carrying the conversation so far (`session.input`): a call reconnecting
    /// after its socket dropped. As the real server, and as `FakeLive::successor` in the
    /// simulation, it goes on with the call where that conversation leaves the script (done by
    /// `FakeLive` on such a start) rather than greet again, and the first connection's scripted
    /// drops, closes, errors and refusals are not played a second time. `None` for any other
    /// first frame: the connection's own fake serves it.
    fn continuing(
        first: &str,
        live: &LiveScript,
        url: &str,
        headers: &[(String, String)],
    ) -> Option<Session> {
        let start: serde_json::Value = serde_json::from_str(first).ok()?;
        let input = start["session"]["input"].as_array();
        if start["type"] != "session.start" || input.is_none_or(Vec::is_empty) {
            return None;
        }
        let mut fake = FakeLive::new(live.clone().for_a_later_connection());
        fake.handle_connect(Instant::now(), url, headers).ok()?;
        Some(Session::Live(Box::new(fake)))
    }

    fn handle_text(&mut self, text: &str) {
        either!(self, fake => fake.handle_text(Instant::now(), text));
    }

    fn handle_closed(&mut self) {
        either!(self, fake => fake.handle_closed(Instant::now()));
    }

    fn handle_timeout(&mut self) {
        either!(self, fake => fake.handle_timeout(Instant::now()));
    }

    fn poll_timeout(&self) -> Option<Instant> {
        either!(self, fake => fake.poll_timeout())
    }

    fn poll_output(&mut self) -> Option<FakeServerOutput> {
        either!(self, fake => fake.poll_output())
    }

    fn report_to(self, reports: &Reports) {
        match self {
            Session::Realtime(fake) => {
                let report = fake.report().clone();
                reports.realtime.send_modify(|r| r.push(report));
            }
            Session::Live(fake) => {
                let report = fake.report().clone();
                reports.live.send_modify(|r| r.push(report));
            }
        }
    }
}

/// Serves one connection: the handshake picks and connects the fake, then its loop runs on
/// real time until either side closes. A refused handshake leaves no report.
async fn serve_session(stream: TcpStream, scripts: (RealtimeScript, LiveScript), reports: Reports) {
    let mut session = None;
    // The handshake's URL and headers, for a fake that takes over after it.
    let mut handshake_seen = (String::new(), Vec::new());
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
        let fake = session.insert(Session::for_path(request.uri().path(), &scripts));
        let connected = fake.handle_connect(&url, &headers);
        handshake_seen = (url, headers);
        match connected {
            Ok(()) => Ok(response),
            Err(status) => {
                let mut refusal = ErrorResponse::new(None);
                *refusal.status_mut() =
                    http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_REQUEST);
                Err(refusal)
            }
        }
    };
    let accepted = tokio_tungstenite::accept_hdr_async(stream, handshake).await;
    let (Ok(mut socket), Some(mut fake)) = (accepted, session) else {
        return;
    };
    let (url, headers) = handshake_seen;
    let mut first_frame = matches!(fake, Session::Live(_));
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
                Some(Ok(Message::Text(text))) => {
                    if std::mem::take(&mut first_frame)
                        && let Some(continuing) = Session::continuing(&text, &scripts.1, &url, &headers)
                    {
                        fake = continuing;
                    }
                    fake.handle_text(&text);
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => {
                    fake.handle_closed();
                    break 'session;
                }
                Some(Ok(_)) => {}
            },
            () = sleep_until(fake.poll_timeout()) => fake.handle_timeout(),
        }
    }
    fake.report_to(&reports);
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// POSTs a form as SignalWire's voice webhook does (on the blocking pool) and returns the
/// answer's body.
///
/// # Errors
/// The request failed or the answer was not 2xx (the error's text).
pub async fn post_form(url: &str, form: &str) -> Result<String, String> {
    let (url, form) = (url.to_owned(), form.to_owned());
    tokio::task::spawn_blocking(move || {
        ureq::post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .send(form.as_str())
            .map_err(|e| e.to_string())?
            .body_mut()
            .read_to_string()
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
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

/// One request a [`FakeHttp`] got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRequest {
    /// `POST`, …
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// Headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl SeenRequest {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let mut headers = self.headers.iter();
        let found = headers.find(|(k, _)| k.eq_ignore_ascii_case(name));
        found.map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The body as a form, decoded.
    pub fn form(&self) -> Vec<(String, String)> {
        serde_urlencoded::from_bytes(&self.body).unwrap_or_default()
    }
}

/// How a [`FakeHttp`] answers a request: status and JSON body.
pub type Answer = Arc<dyn Fn(&SeenRequest) -> (u16, String) + Send + Sync>;

/// A loopback HTTP server that answers every request through one function and remembers them:
/// tool webhooks and SignalWire's REST API in tests and the demo.
pub struct FakeHttp {
    addr: SocketAddr,
    seen: Arc<watch::Sender<Vec<SeenRequest>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeHttp {
    /// Listens on an ephemeral loopback port.
    ///
    /// # Errors
    /// When the port cannot be bound.
    pub async fn start(
        answer: impl Fn(&SeenRequest) -> (u16, String) + Send + Sync + 'static,
    ) -> std::io::Result<FakeHttp> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let seen = Arc::new(watch::Sender::new(Vec::new()));
        let state: (Answer, Arc<watch::Sender<Vec<SeenRequest>>>) =
            (Arc::new(answer), seen.clone());
        let router = axum::Router::new().fallback(fake_http).with_state(state);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(FakeHttp { addr, seen, task })
    }

    /// `http://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The requests so far, in order.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.seen.borrow().clone()
    }
}

impl Drop for FakeHttp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn fake_http(
    axum::extract::State((answer, seen)): axum::extract::State<(
        Answer,
        Arc<watch::Sender<Vec<SeenRequest>>>,
    )>,
    method: http::Method,
    uri: http::Uri,
    headers: http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let request = SeenRequest {
        method: method.to_string(),
        uri: uri.to_string(),
        headers: header_list(&headers),
        body: body.to_vec(),
    };
    let (status, body) = answer(&request);
    seen.send_modify(|s| s.push(request));
    let status = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
    let json = [(http::header::CONTENT_TYPE, "application/json")];
    (status, json, body).into_response()
}

fn header_list(headers: &http::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_owned())))
        .collect()
}

/// A fake OpenAI Realtime WebRTC endpoint on loopback: [`FakeRealtimeWebRtc`] (a real str0m
/// answerer) behind a real HTTP endpoint for `POST /v1/realtime/calls` (and hang-up) and a real
/// UDP socket for its peer connections. One task owns the fake and runs its sans-IO loop.
pub struct FakeOpenAiWebRtc {
    addr: SocketAddr,
    commands: mpsc::Sender<WebRtcCommand>,
    tasks: [tokio::task::JoinHandle<()>; 2],
}

enum WebRtcCommand {
    Http(SeenRequest, oneshot::Sender<HttpAnswer>),
    Report(oneshot::Sender<WebRtcReport>),
}

impl FakeOpenAiWebRtc {
    /// Listens on ephemeral loopback ports (TCP for HTTP, UDP for the peer connections).
    ///
    /// # Errors
    /// When a port cannot be bound.
    pub async fn start(
        script: RealtimeScript,
        mode: WebRtcFakeMode,
    ) -> std::io::Result<FakeOpenAiWebRtc> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let udp = UdpSocket::bind("127.0.0.1:0").await?;
        let fake = FakeRealtimeWebRtc::new(script, mode, udp.local_addr()?);
        let (commands, received) = mpsc::channel(16);
        let router = axum::Router::new()
            .fallback(fake_webrtc_http)
            .with_state(commands.clone());
        let serving = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        let driving = tokio::spawn(drive_webrtc(fake, udp, received));
        Ok(FakeOpenAiWebRtc {
            addr,
            commands,
            tasks: [serving, driving],
        })
    }

    /// The base URL to configure as `OPENAI_BASE_URL`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// What the fake saw and did so far.
    pub async fn report(&self) -> WebRtcReport {
        let (tx, rx) = oneshot::channel();
        let _ = self.commands.send(WebRtcCommand::Report(tx)).await;
        rx.await.unwrap_or_default()
    }
}

impl Drop for FakeOpenAiWebRtc {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn fake_webrtc_http(
    axum::extract::State(commands): axum::extract::State<mpsc::Sender<WebRtcCommand>>,
    method: http::Method,
    uri: http::Uri,
    headers: http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let request = SeenRequest {
        method: method.to_string(),
        uri: uri.to_string(),
        headers: header_list(&headers),
        body: body.to_vec(),
    };
    let (tx, rx) = oneshot::channel();
    let _ = commands.send(WebRtcCommand::Http(request, tx)).await;
    let Ok((status, headers, body)) = rx.await else {
        return http::StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let mut response = body.into_response();
    *response.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// The fake's run loop: send what it has to send, then wait for a request, a datagram or its
/// timer.
async fn drive_webrtc(
    mut fake: FakeRealtimeWebRtc,
    udp: UdpSocket,
    mut commands: mpsc::Receiver<WebRtcCommand>,
) {
    let local = fake.local_addr();
    let mut buf = vec![0u8; 2048];
    loop {
        while let Some((_, destination, contents)) = fake.poll_transmit() {
            let _ = udp.send_to(&contents, destination).await;
        }
        tokio::select! {
            command = commands.recv() => match command {
                Some(WebRtcCommand::Http(request, reply)) => {
                    let answer = fake.handle_http(
                        Instant::now(),
                        &request.method,
                        &request.uri,
                        &request.headers,
                        &request.body,
                    );
                    let _ = reply.send(answer);
                }
                Some(WebRtcCommand::Report(reply)) => {
                    let _ = reply.send(fake.report());
                }
                None => break,
            },
            received = udp.recv_from(&mut buf) => {
                if let Ok((n, source)) = received {
                    fake.handle_udp(Instant::now(), source, local, &buf[..n]);
                }
            }
            () = sleep_until(fake.poll_timeout()) => fake.handle_timeout(Instant::now()),
        }
    }
}
