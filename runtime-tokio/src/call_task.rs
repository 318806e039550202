//! One tokio task per call: it owns the call's [`CallDriver`] and runs the core's loop. Each
//! wakeup reads the clock once, feeds one input, carries out every action, and moves the one
//! timer only when the core's deadline changed. No protocol logic lives here: the bookkeeping
//! every runtime needs is in the driver; this file holds only sockets, the timer and spawning.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use barbara_core::{
    Action, Call, CallDriver, ConnectRequest, Event, HttpRequest, HttpResponse, Leg, RequestId,
    ToolCallId, ToolResult, TransportChoice, TransportFailure, WsMessage,
};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Sleep;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest as _};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::metrics::CallGauge;
use crate::record::Record;
use crate::{App, admission};

type ModelSocket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Inputs handled one after another before the task yields to others.
const BUDGET: u32 = 64;
/// Largest HTTP answer body read for the core.
const MAX_HTTP_BODY: u64 = 1 << 20;
/// Bytes a WebSocket reads at a time. tungstenite zeroes that much of its buffer before every
/// read, so its default (128 KiB) costs a 128 KiB memset per message; 8 KiB still takes a large
/// audio delta, or several phone frames, in one read.
pub(crate) const WS_READ_CHUNK: usize = 8 * 1024;

/// What woke the task: one input for the core, once it is known to be one. Messages keep the
/// socket's buffer: the core's input is the one copy made.
enum Wakeup {
    PhoneText(Utf8Bytes),
    ModelText(tungstenite::Utf8Bytes),
    Binary(Leg, Bytes),
    Closed(Leg),
    ModelOpened(u64, Box<ModelSocket>),
    ModelFailed(u64),
    Udp(SocketAddr, Vec<u8>),
    Http(RequestId, Result<HttpResponse, TransportFailure>),
    Tool(ToolCallId, ToolResult),
    Timeout,
    HangUp,
}

enum ModelLeg {
    None,
    Connecting(JoinHandle<()>),
    Open(Box<ModelSocket>),
}

/// Serves one accepted media stream: admits it, then runs its call to the end.
/// `bearer_sid` is the CallSid of a token already checked at the upgrade.
pub(crate) async fn run(
    app: Arc<App>,
    mut phone: WebSocket,
    bearer_sid: Option<String>,
    _permit: OwnedSemaphorePermit,
) {
    let Some((frames, start)) = admission::admit(&app, &mut phone, bearer_sid).await else {
        app.metrics
            .add("barbara_rejected_total", &[("reason", "stream_token")], 1.0);
        let close = CloseFrame {
            code: 1008,
            reason: "no valid stream token".into(),
        };
        let _ = phone.send(Message::Close(Some(close))).await;
        return;
    };
    let live = app.live();
    let mut config = live.call.clone();
    let udp = match config.transport {
        TransportChoice::WebSocket => None,
        TransportChoice::Auto | TransportChoice::WebRtc => {
            match UdpSocket::bind((app.settings.webrtc_ip, 0)).await {
                Ok(socket) => match socket.local_addr() {
                    Ok(local) => {
                        config.webrtc.local_addrs.push(local);
                        Some((socket, local))
                    }
                    Err(e) => {
                        tracing::warn!("the WebRTC UDP socket has no local address: {e}");
                        None
                    }
                },
                Err(e) => {
                    tracing::warn!("cannot bind a UDP socket for WebRTC: {e}");
                    None
                }
            }
        }
    };
    let call_sid = start.call_sid.clone().unwrap_or_default();
    let param = |name: &str| start.custom_parameters.get(name).cloned();
    let meta = serde_json::json!({
        "call_sid": call_sid, "from": param("From"), "to": param("To"),
        "model": config.openai.model, "transport": format!("{:?}", config.transport),
        "local_addrs": config.webrtc.local_addrs,
    });
    let now = Instant::now();
    let unix = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let mut seed = [0u8; 32];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed);
    let call = match Call::new(config, seed, now, unix) {
        Ok(call) => call,
        Err(e) => {
            tracing::error!("the call configuration was refused: {e}");
            return;
        }
    };
    let record = Record::create(&app.settings, &call_sid, meta, &call, now).await;
    tracing::info!(call = %call_sid, record = %record.path().display(), "call started");
    let (tx, rx) = mpsc::channel(64);
    let gauge = app.metrics.call_started();
    let mut task = CallTask {
        hang_up: app.hang_up.subscribe(),
        app,
        driver: CallDriver::new(call, now),
        call_sid,
        phone: Some(phone),
        model: ModelLeg::None,
        udp_buf: vec![0; if udp.is_some() { 2048 } else { 0 }].into(),
        udp,
        tx,
        rx,
        ready: frames
            .into_iter()
            .map(|f| Wakeup::PhoneText(f.into()))
            .collect(),
        sleep: Box::pin(tokio::time::sleep(Duration::ZERO)),
        record,
        gauge,
        arrived: None,
        unflushed_phone: 0,
        unflushed_model: 0,
    };
    if *task.hang_up.borrow_and_update() {
        task.ready.push_back(Wakeup::HangUp);
    }
    task.run().await;
}

struct CallTask {
    app: Arc<App>,
    driver: CallDriver,
    call_sid: String,
    phone: Option<WebSocket>,
    model: ModelLeg,
    /// The WebRTC socket and its local address (read once, not per datagram).
    udp: Option<(UdpSocket, SocketAddr)>,
    /// Where datagrams are received: made once, not zeroed on every wait; empty without UDP.
    udp_buf: Box<[u8]>,
    /// Results of spawned work (connects, HTTP) come back here.
    tx: mpsc::Sender<Wakeup>,
    rx: mpsc::Receiver<Wakeup>,
    /// Inputs already known (buffered frames, immediate tool answers), fed before waiting.
    ready: VecDeque<Wakeup>,
    sleep: Pin<Box<Sleep>>,
    hang_up: tokio::sync::watch::Receiver<bool>,
    record: Record,
    gauge: CallGauge,
    /// The leg the input being handled was read from, and when: what the core sends to the
    /// other leg in answer counts in the bridge latency. `None` for other inputs.
    arrived: Option<(Leg, Instant)>,
    /// Messages written to each leg's socket buffer and not yet flushed.
    unflushed_phone: u32,
    unflushed_model: u32,
}

impl CallTask {
    async fn run(mut self) {
        let mut budget = 0;
        while !self.driver.is_over() {
            let (input, read) = match self.ready.pop_front() {
                Some(input) => (input, false),
                None => (self.next_input().await, true),
            };
            let now = Instant::now();
            self.arrived = match &input {
                _ if !read => None,
                Wakeup::PhoneText(_) => Some((Leg::Phone, now)),
                Wakeup::ModelText(_) => Some((Leg::Model, now)),
                Wakeup::Binary(leg, _) => Some((*leg, now)),
                _ => None,
            };
            self.feed(now, input).await;
            while let Some(action) = self.driver.poll_action() {
                self.execute(now, action).await;
            }
            self.flush().await;
            if let Some(Some(at)) = self.driver.poll_timer() {
                self.sleep.as_mut().reset(at.into());
            }
            budget += 1;
            if budget >= BUDGET {
                budget = 0;
                tokio::task::yield_now().await;
            }
        }
        if let ModelLeg::Connecting(handle) = &self.model {
            handle.abort();
        }
        self.record.finish().await;
        self.app.metrics.call_finished(&self.gauge);
        let reason = self.driver.call().end_reason();
        tracing::info!(call = %self.call_sid, ?reason, "call ended");
    }

    /// Waits for the next input from any source.
    async fn next_input(&mut self) -> Wakeup {
        loop {
            tokio::select! {
                message = recv_phone(&mut self.phone) => match message {
                    Some(Ok(Message::Text(text))) => return Wakeup::PhoneText(text),
                    Some(Ok(Message::Binary(data))) => return Wakeup::Binary(Leg::Phone, data),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(_)) | Err(_)) | None => {
                        self.phone = None;
                        return Wakeup::Closed(Leg::Phone);
                    }
                },
                message = recv_model(&mut self.model) => match message {
                    Some(Ok(tungstenite::Message::Text(text))) => return Wakeup::ModelText(text),
                    Some(Ok(tungstenite::Message::Binary(data))) => {
                        return Wakeup::Binary(Leg::Model, data);
                    }
                    Some(Ok(tungstenite::Message::Close(_)) | Err(_)) | None => {
                        self.model = ModelLeg::None;
                        return Wakeup::Closed(Leg::Model);
                    }
                    Some(Ok(_)) => {}
                },
                Some(input) = self.rx.recv() => return input,
                received = recv_udp(self.udp.as_ref().map(|(socket, _)| socket), &mut self.udp_buf) => match received {
                    Ok((n, source)) => {
                        return Wakeup::Udp(source, self.udp_buf[..n].to_vec());
                    }
                    Err(e) => tracing::debug!("UDP receive failed: {e}"),
                },
                () = &mut self.sleep, if self.driver.is_timer_armed() => {
                    return Wakeup::Timeout;
                }
                Ok(()) = self.hang_up.changed() => {
                    if *self.hang_up.borrow_and_update() {
                        return Wakeup::HangUp;
                    }
                }
            }
        }
    }

    /// Feeds the input a wakeup brings, then logs it (the replay feeds the same log).
    async fn feed(&mut self, now: Instant, wakeup: Wakeup) {
        let d = &mut self.driver;
        let input = match wakeup {
            Wakeup::PhoneText(text) => d.message(now, Leg::Phone, WsMessage::Text(&text)),
            Wakeup::ModelText(text) => d.message(now, Leg::Model, WsMessage::Text(&text)),
            Wakeup::Binary(leg, data) => d.message(now, leg, WsMessage::Binary(&data)),
            Wakeup::Closed(leg) => d.closed(now, leg),
            Wakeup::ModelOpened(generation, socket) => {
                let Some(input) = d.model_opened(now, generation) else {
                    return;
                };
                self.model = ModelLeg::Open(socket);
                input
            }
            Wakeup::ModelFailed(generation) => {
                let Some(input) = d.model_failed(now, generation) else {
                    return;
                };
                self.model = ModelLeg::None;
                input
            }
            Wakeup::Udp(source, contents) => {
                let Some((_, destination)) = self.udp else {
                    return;
                };
                d.udp(now, source, destination, contents)
            }
            Wakeup::Http(id, result) => d.http_response(now, id, result),
            Wakeup::Tool(id, result) => d.tool_result(now, id, result),
            Wakeup::Timeout => d.timer_fired(now),
            Wakeup::HangUp => d.hang_up(now),
        };
        // Logged once fed, so the input moves to the record's writer rather than being copied;
        // one whose feeding panics is logged before the panic goes on: it reproduces it.
        let fed = std::panic::catch_unwind(AssertUnwindSafe(|| self.driver.feed(&input)));
        self.record.input(input).await;
        if let Err(panic) = fed {
            self.record.finish().await;
            std::panic::resume_unwind(panic);
        }
    }

    async fn execute(&mut self, now: Instant, action: Action) {
        match action {
            Action::Send {
                leg: Leg::Phone,
                text,
            } => {
                let Some(phone) = &mut self.phone else { return };
                // Buffered: written with the rest of this input's messages in `flush`.
                if phone.feed(Message::Text(text.into())).await.is_err() {
                    self.lost(Leg::Phone);
                    return;
                }
                self.unflushed_phone += 1;
            }
            Action::Send {
                leg: Leg::Model,
                text,
            } => {
                let ModelLeg::Open(model) = &mut self.model else {
                    return;
                };
                if model.feed(tungstenite::Message::text(text)).await.is_err() {
                    self.lost(Leg::Model);
                    return;
                }
                self.unflushed_model += 1;
            }
            Action::Close { leg: Leg::Phone } => {
                // Closing writes what is buffered first.
                self.unflushed_phone = 0;
                if let Some(mut phone) = self.phone.take() {
                    let _ = phone.send(Message::Close(None)).await;
                }
            }
            Action::Close { leg: Leg::Model } => {
                self.unflushed_model = 0;
                match std::mem::replace(&mut self.model, ModelLeg::None) {
                    ModelLeg::Open(mut model) => {
                        let _ = model.close(None).await;
                    }
                    ModelLeg::Connecting(handle) => handle.abort(),
                    ModelLeg::None => {}
                }
            }
            Action::Connect {
                generation,
                request,
            } => {
                if let ModelLeg::Connecting(handle) = &self.model {
                    handle.abort();
                }
                let tx = self.tx.clone();
                let max = self.call_max_model_message();
                let handle = tokio::spawn(async move {
                    let input = match connect_model(request, max).await {
                        Ok(socket) => Wakeup::ModelOpened(generation, Box::new(socket)),
                        Err(e) => {
                            tracing::warn!("cannot connect to OpenAI: {e}");
                            Wakeup::ModelFailed(generation)
                        }
                    };
                    let _ = tx.send(input).await;
                });
                self.model = ModelLeg::Connecting(handle);
            }
            Action::Http { id, request } => {
                let (agent, tx) = (self.app.http.clone(), self.tx.clone());
                tokio::task::spawn_blocking(move || {
                    let _ = tx.blocking_send(Wakeup::Http(id, http(&agent, request)));
                });
            }
            Action::ToolCall(tool) => {
                // Tools without a webhook have no handler in this server.
                self.ready
                    .push_back(Wakeup::Tool(tool.id, ToolResult::no_handler()));
            }
            Action::Transmit(transmit) => {
                if let Some((udp, _)) = &self.udp
                    && let Err(e) = udp.send_to(&transmit.contents, transmit.destination).await
                {
                    tracing::debug!("UDP send failed: {e}");
                }
            }
            Action::Event(event) => self.observe(now, event).await,
        }
    }

    /// Writes out the messages this input's actions buffered, one flush per leg, the leg that
    /// answers the input first.
    async fn flush(&mut self) {
        let legs = match self.arrived {
            Some((Leg::Model, _)) => [Leg::Phone, Leg::Model],
            Some((Leg::Phone, _)) | None => [Leg::Model, Leg::Phone],
        };
        for leg in legs {
            let messages = match leg {
                Leg::Phone => std::mem::take(&mut self.unflushed_phone),
                Leg::Model => std::mem::take(&mut self.unflushed_model),
            };
            if messages == 0 {
                continue;
            }
            let flushed = match (leg, &mut self.phone, &mut self.model) {
                (Leg::Phone, Some(phone), _) => phone.flush().await.is_ok(),
                (Leg::Model, _, ModelLeg::Open(model)) => model.flush().await.is_ok(),
                _ => continue,
            };
            if flushed {
                self.sent(leg, messages);
            } else {
                self.lost(leg);
            }
        }
    }

    /// `messages` were written to `to`'s socket: when they answer one read off the other leg,
    /// the time since it was read counts as bridge latency, once per message.
    fn sent(&self, to: Leg, messages: u32) {
        let Some((from, at)) = self.arrived else {
            return;
        };
        if from == to {
            return;
        }
        let latency = at.elapsed();
        let histogram = self.app.metrics.bridge_latency(to);
        for _ in 0..messages {
            histogram.record(latency);
        }
    }

    /// Writing to `leg` failed: its socket is dropped and the core told.
    fn lost(&mut self, leg: Leg) {
        match leg {
            Leg::Phone => {
                self.phone = None;
                self.unflushed_phone = 0;
            }
            Leg::Model => {
                self.model = ModelLeg::None;
                self.unflushed_model = 0;
            }
        }
        self.ready.push_back(Wakeup::Closed(leg));
    }

    fn call_max_model_message(&self) -> usize {
        self.app.live().call.limits.max_model_message_bytes
    }

    async fn observe(&mut self, now: Instant, event: Event) {
        self.app.metrics.observe(&event, &mut self.gauge);
        match &event {
            Event::StreamStarted { .. }
            | Event::ModelReady { .. }
            | Event::Fallback { .. }
            | Event::HangupRequested => tracing::info!(call = %self.call_sid, ?event),
            Event::ModelError { .. } => tracing::warn!(call = %self.call_sid, ?event),
            _ => tracing::debug!(call = %self.call_sid, ?event),
        }
        self.record.event(now, event).await;
    }
}

async fn recv_phone(phone: &mut Option<WebSocket>) -> Option<Result<Message, axum::Error>> {
    match phone {
        Some(phone) => phone.recv().await,
        None => std::future::pending().await,
    }
}

async fn recv_model(model: &mut ModelLeg) -> Option<tungstenite::Result<tungstenite::Message>> {
    match model {
        ModelLeg::Open(model) => model.next().await,
        ModelLeg::None | ModelLeg::Connecting(..) => std::future::pending().await,
    }
}

async fn recv_udp(udp: Option<&UdpSocket>, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
    match udp {
        Some(udp) => udp.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

/// Opens the OpenAI WebSocket exactly as the core asked (URL and headers).
async fn connect_model(request: ConnectRequest, max_message: usize) -> Result<ModelSocket, String> {
    let mut upgrade = request
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| e.to_string())?;
    for (name, value) in &request.headers {
        let name = tungstenite::http::HeaderName::from_bytes(name.as_bytes());
        let value = tungstenite::http::HeaderValue::from_str(value);
        let (Ok(name), Ok(value)) = (name, value) else {
            return Err("a header the core asked for is not valid HTTP".to_owned());
        };
        upgrade.headers_mut().insert(name, value);
    }
    let config = tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(WS_READ_CHUNK)
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message));
    let (socket, _) =
        tokio_tungstenite::connect_async_tls_with_config(upgrade, Some(config), true, None)
            .await
            .map_err(|e| e.to_string())?;
    Ok(socket)
}

/// Performs one HTTP request for the core (blocking; run on the blocking pool).
fn http(agent: &ureq::Agent, request: HttpRequest) -> Result<HttpResponse, TransportFailure> {
    use ureq::RequestExt as _;
    let failed = |e: &dyn std::fmt::Display| TransportFailure(e.to_string());
    let mut builder = ureq::http::Request::builder()
        .method(request.method)
        .uri(&request.url);
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    let sent = builder
        .body(request.body)
        .map_err(|e| failed(&e))?
        .with_agent(agent)
        .configure()
        .timeout_global(Some(request.timeout))
        .http_status_as_error(false)
        .allow_non_standard_methods(true)
        .run();
    let mut response = sent.map_err(|e| failed(&e))?;
    let headers = response
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_owned())))
        .collect();
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_HTTP_BODY)
        .read_to_vec()
        .map_err(|e| failed(&e))?;
    Ok(HttpResponse {
        status: response.status().as_u16(),
        headers,
        body,
    })
}
