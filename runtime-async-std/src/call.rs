//! One task per call: it owns the call's [`CallDriver`] and runs the core's loop. Each wakeup
//! reads the clock once, feeds one input, carries out every action, and moves the one timer
//! only when the core's deadline changed. The task spawns nothing: a model connection attempt
//! and the HTTP requests in flight are futures it polls itself (HTTP on a `blocking` thread),
//! so it runs on whichever executor polls it.

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::net::{SocketAddr, UdpSocket};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Instant, SystemTime};

use async_io::{Async, Timer};
use async_net::TcpStream;
use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::Message;
use barbara_core::media_stream::messages::StartInfo;
use barbara_core::{
    Action, Call, CallDriver, Event, HttpResponse, Leg, RequestId, ToolCallId, ToolResult,
    TransportChoice, TransportFailure, WsMessage,
};
use futures_io::{AsyncRead, AsyncWrite};
use futures_util::StreamExt as _;
use futures_util::stream::{FuturesUnordered, Stream};

use crate::Shared;
use crate::net::{self, ModelSocket};

/// The phone leg: SignalWire's media stream.
pub(crate) type Phone = WebSocketStream<TcpStream>;

/// Work in flight; it resolves to the wakeup it brings.
type Pending = Pin<Box<dyn Future<Output = Wakeup> + Send>>;

/// Inputs handled one after another before the task yields to others.
const BUDGET: u32 = 64;

/// What woke the task: one input for the core, once it is known to be one.
enum Wakeup {
    Text(Leg, String),
    Binary(Leg, Vec<u8>),
    Closed(Leg),
    ModelOpened(u64, Box<ModelSocket>),
    ModelFailed(u64),
    Udp(SocketAddr, Vec<u8>),
    Http(RequestId, Result<HttpResponse, TransportFailure>),
    Tool(ToolCallId, ToolResult),
    Timeout,
    HangUp,
}

struct CallTask {
    shared: Arc<Shared>,
    driver: CallDriver,
    call_sid: String,
    phone: Option<Phone>,
    model: Option<ModelSocket>,
    /// The model connection attempt still wanted; dropping it abandons it.
    connecting: Option<Pending>,
    http: FuturesUnordered<Pending>,
    udp: Option<(Async<UdpSocket>, SocketAddr)>,
    /// Inputs already known (buffered frames, immediate tool answers), fed before waiting.
    ready: VecDeque<Wakeup>,
    timer: Timer,
    /// Closed by the server to hang up every call; `None` once seen.
    hang_up: Option<Pin<Box<async_channel::Receiver<()>>>>,
}

/// Runs an admitted media stream's call to the end; `frames` were read during admission.
pub(crate) async fn run(shared: Arc<Shared>, phone: Phone, frames: Vec<String>, start: StartInfo) {
    let mut config = shared.settings.call.clone();
    let udp = match config.transport {
        TransportChoice::WebSocket => None,
        TransportChoice::Auto | TransportChoice::WebRtc => {
            let bound = UdpSocket::bind((shared.settings.webrtc_ip, 0))
                .and_then(|socket| Ok((socket.local_addr()?, Async::new(socket)?)));
            match bound {
                Ok((local, socket)) => {
                    config.webrtc.local_addrs.push(local);
                    Some((socket, local))
                }
                Err(e) => {
                    tracing::warn!("cannot bind a UDP socket for WebRTC: {e}");
                    None
                }
            }
        }
    };
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
    let call_sid = start.call_sid.unwrap_or_default();
    tracing::info!(call = %call_sid, "call started");
    let task = CallTask {
        hang_up: Some(Box::pin(shared.hang_up.clone())),
        shared,
        driver: CallDriver::new(call, now),
        call_sid,
        phone: Some(phone),
        model: None,
        connecting: None,
        http: FuturesUnordered::new(),
        udp,
        ready: frames
            .into_iter()
            .map(|f| Wakeup::Text(Leg::Phone, f))
            .collect(),
        timer: Timer::never(),
    };
    task.run().await;
}

impl CallTask {
    async fn run(mut self) {
        let mut budget = 0;
        while !self.driver.is_over() {
            let input = match self.ready.pop_front() {
                Some(input) => input,
                None => poll_fn(|cx| self.poll_input(cx)).await,
            };
            let now = Instant::now();
            self.feed(now, input);
            while let Some(action) = self.driver.poll_action() {
                self.execute(now, action).await;
            }
            if let Some(Some(at)) = self.driver.poll_timer() {
                self.timer.set_at(at);
            }
            budget += 1;
            if budget >= BUDGET {
                budget = 0;
                yield_now().await;
            }
        }
        let reason = self.driver.call().end_reason();
        tracing::info!(call = %self.call_sid, ?reason, "call ended");
    }

    /// The next input from any source, or `Pending` with every source's waker registered.
    fn poll_input(&mut self, cx: &mut Context<'_>) -> Poll<Wakeup> {
        if let Poll::Ready(wakeup) = poll_leg(&mut self.phone, Leg::Phone, cx) {
            return Poll::Ready(wakeup);
        }
        if let Poll::Ready(wakeup) = poll_leg(&mut self.model, Leg::Model, cx) {
            return Poll::Ready(wakeup);
        }
        if let Some(connecting) = &mut self.connecting
            && let Poll::Ready(wakeup) = connecting.as_mut().poll(cx)
        {
            self.connecting = None;
            return Poll::Ready(wakeup);
        }
        if let Poll::Ready(Some(wakeup)) = self.http.poll_next_unpin(cx) {
            return Poll::Ready(wakeup);
        }
        if let Some((udp, _)) = &self.udp {
            let mut buf = [0u8; 2048];
            while let Poll::Ready(readable) = udp.poll_readable(cx) {
                if let Err(e) = readable {
                    tracing::debug!("UDP receive failed: {e}");
                    break;
                }
                match udp.get_ref().recv_from(&mut buf) {
                    Ok((n, source)) => return Poll::Ready(Wakeup::Udp(source, buf[..n].to_vec())),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => tracing::debug!("UDP receive failed: {e}"),
                }
            }
        }
        if self.driver.is_timer_armed() && Pin::new(&mut self.timer).poll(cx).is_ready() {
            return Poll::Ready(Wakeup::Timeout);
        }
        if let Some(hang_up) = &mut self.hang_up
            && let Poll::Ready(_) = hang_up.as_mut().poll_next(cx)
        {
            self.hang_up = None;
            return Poll::Ready(Wakeup::HangUp);
        }
        Poll::Pending
    }

    /// Turns a wakeup into the core's input and feeds it.
    fn feed(&mut self, now: Instant, wakeup: Wakeup) {
        let d = &mut self.driver;
        let input = match wakeup {
            Wakeup::Text(leg, text) => d.message(now, leg, WsMessage::Text(&text)),
            Wakeup::Binary(leg, data) => d.message(now, leg, WsMessage::Binary(&data)),
            Wakeup::Closed(leg) => d.closed(now, leg),
            Wakeup::ModelOpened(generation, socket) => {
                let Some(input) = d.model_opened(now, generation) else {
                    return;
                };
                self.model = Some(*socket);
                input
            }
            Wakeup::ModelFailed(generation) => {
                let Some(input) = d.model_failed(now, generation) else {
                    return;
                };
                input
            }
            Wakeup::Udp(source, contents) => {
                let Some((_, local)) = &self.udp else { return };
                d.udp(now, source, *local, contents)
            }
            Wakeup::Http(id, result) => d.http_response(now, id, result),
            Wakeup::Tool(id, result) => d.tool_result(now, id, result),
            Wakeup::Timeout => d.timer_fired(now),
            Wakeup::HangUp => d.hang_up(now),
        };
        self.driver.feed(&input);
    }

    async fn execute(&mut self, now: Instant, action: Action) {
        match action {
            Action::Send {
                leg: Leg::Phone,
                text,
            } => {
                let Some(phone) = &mut self.phone else { return };
                if phone.send(Message::text(text)).await.is_err() {
                    self.phone = None;
                    self.ready.push_back(Wakeup::Closed(Leg::Phone));
                }
            }
            Action::Send {
                leg: Leg::Model,
                text,
            } => {
                let Some(model) = &mut self.model else { return };
                if model.send(Message::text(text)).await.is_err() {
                    self.model = None;
                    self.ready.push_back(Wakeup::Closed(Leg::Model));
                }
            }
            Action::Close { leg: Leg::Phone } => {
                if let Some(mut phone) = self.phone.take() {
                    let _ = phone.close(None).await;
                }
            }
            Action::Close { leg: Leg::Model } => {
                self.connecting = None;
                if let Some(mut model) = self.model.take() {
                    let _ = model.close(None).await;
                }
            }
            Action::Connect {
                generation,
                request,
            } => {
                let tls = self.shared.tls.clone();
                let max = self.shared.settings.call.limits.max_model_message_bytes;
                self.connecting = Some(Box::pin(async move {
                    match net::connect_model(tls, request, max).await {
                        Ok(socket) => Wakeup::ModelOpened(generation, Box::new(socket)),
                        Err(e) => {
                            tracing::warn!("cannot connect to OpenAI: {e}");
                            Wakeup::ModelFailed(generation)
                        }
                    }
                }));
            }
            Action::Http { id, request } => {
                let agent = self.shared.http.clone();
                let answer = blocking::unblock(move || net::http(&agent, request));
                self.http
                    .push(Box::pin(async move { Wakeup::Http(id, answer.await) }));
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
            Action::Event(event) => self.observe(now, &event),
        }
    }

    fn observe(&self, now: Instant, event: &Event) {
        let at = now.saturating_duration_since(self.driver.started());
        match event {
            Event::StreamStarted { .. }
            | Event::ModelReady { .. }
            | Event::Fallback { .. }
            | Event::HangupRequested => tracing::info!(call = %self.call_sid, ?at, ?event),
            Event::ModelError { .. } => tracing::warn!(call = %self.call_sid, ?at, ?event),
            _ => tracing::debug!(call = %self.call_sid, ?at, ?event),
        }
        if let Some(on_event) = &self.shared.settings.on_event {
            on_event(&self.call_sid, event);
        }
    }
}

/// The next message on a leg's socket, if it has one.
fn poll_leg<S: AsyncRead + AsyncWrite + Unpin>(
    socket: &mut Option<WebSocketStream<S>>,
    leg: Leg,
    cx: &mut Context<'_>,
) -> Poll<Wakeup> {
    let Some(ws) = socket else {
        return Poll::Pending;
    };
    loop {
        let wakeup = match ready!(ws.poll_next_unpin(cx)) {
            Some(Ok(Message::Text(text))) => Wakeup::Text(leg, text.to_string()),
            Some(Ok(Message::Binary(data))) => Wakeup::Binary(leg, data.into()),
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            Some(Ok(Message::Close(_)) | Err(_)) | None => {
                *socket = None;
                Wakeup::Closed(leg)
            }
        };
        return Poll::Ready(wakeup);
    }
}

/// Lets other tasks run once.
async fn yield_now() {
    let mut yielded = false;
    poll_fn(|cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await;
}
