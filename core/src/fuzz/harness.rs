//! What the fuzz bodies share: configurations, SignalWire frames, and calls brought to a state.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::audio::PhoneCodec;
use crate::call::{Call, WsMessage};
use crate::config::{Backend, CallConfig, ToolSpec, TransportChoice};
use crate::output::{Leg, Output};

/// The stream id every fuzzed call uses.
pub(super) const STREAM_SID: &str = "s";
/// A tool the application runs ([`Output::ToolCall`]).
pub(super) const APP_TOOL: &str = "lookup";
/// A tool the core runs through a webhook ([`Output::Http`]).
pub(super) const WEBHOOK_TOOL: &str = "hook";
/// Where the webhook tool lives.
pub(super) const WEBHOOK_URL: &str = "http://tools.fuzz/hook";
/// The call's local UDP address when WebRTC is on.
pub(super) fn local_udp() -> core::net::SocketAddr {
    core::net::SocketAddr::from(([127, 0, 0, 1], 40_000))
}
/// OpenAI's UDP address in the fuzzed calls.
pub(super) fn openai_udp() -> core::net::SocketAddr {
    core::net::SocketAddr::from(([127, 0, 0, 2], 3_478))
}

/// A valid configuration on `backend` with one application tool and one webhook tool.
pub(super) fn config(backend: Backend, transport: TransportChoice) -> CallConfig {
    let mut config = CallConfig::new("sk-fuzz");
    config.backend = backend;
    config.transport = transport;
    if transport != TransportChoice::WebSocket {
        config.webrtc.local_addrs = vec![local_udp()];
    }
    let parameters = serde_json::json!({"type": "object", "properties": {}});
    config.tools = vec![
        ToolSpec {
            name: APP_TOOL.to_owned(),
            description: "Finds an order".to_owned(),
            parameters: parameters.clone(),
            timeout: Duration::from_secs(5),
            webhook: None,
            filler: Some("One moment.".to_owned()),
        },
        ToolSpec {
            name: WEBHOOK_TOOL.to_owned(),
            description: "Asks a web service".to_owned(),
            parameters,
            timeout: Duration::ZERO,
            webhook: Some(WEBHOOK_URL.to_owned()),
            filler: None,
        },
    ];
    config
}

/// `start.mediaFormat` of a codec.
pub(super) fn media_format(codec: PhoneCodec) -> (&'static str, u32) {
    match codec {
        PhoneCodec::Pcmu => ("audio/x-mulaw", 8000),
        PhoneCodec::Pcma => ("audio/x-alaw", 8000),
        PhoneCodec::L16 { rate_hz } => ("audio/x-L16", rate_hz),
    }
}

/// A SignalWire `start` for `codec`, with `To` when given.
pub(super) fn start_frame(codec: PhoneCodec, to: Option<&str>) -> String {
    let (encoding, rate) = media_format(codec);
    let mut params = serde_json::Map::new();
    params.insert("From".to_owned(), "+15550100".into());
    if let Some(to) = to {
        params.insert("To".to_owned(), to.into());
    }
    serde_json::json!({
        "event": "start",
        "sequenceNumber": "1",
        "start": {
            "streamSid": STREAM_SID,
            "callSid": "CAfuzz",
            "tracks": ["inbound"],
            "customParameters": params,
            "mediaFormat": {"encoding": encoding, "sampleRate": rate, "channels": 1},
        },
        "streamSid": STREAM_SID,
    })
    .to_string()
}

/// A SignalWire `media` frame carrying `payload` as it is (base64 or not).
pub(super) fn media_frame_raw(payload: &str) -> String {
    serde_json::json!({
        "event": "media",
        "streamSid": STREAM_SID,
        "media": {"track": "inbound", "chunk": "1", "timestamp": "20", "payload": payload},
    })
    .to_string()
}

/// A SignalWire `media` frame carrying `audio`.
pub(super) fn media_frame(audio: &[u8]) -> String {
    media_frame_raw(&STANDARD.encode(audio))
}

/// The server event that makes a session ready on `backend`.
pub(super) fn ready_event(backend: Backend) -> &'static str {
    match backend {
        Backend::Realtime => r#"{"type":"session.updated","event_id":"evt_ready","session":{}}"#,
        Backend::Live => {
            r#"{"type":"session.started","event_id":"evt_ready","session":{"id":"live_fuzz","status":"active","expires_at":1790003600}}"#
        }
    }
}

/// Every output the call has, in order.
pub(super) fn drain(call: &mut Call) -> Vec<Output> {
    std::iter::from_fn(|| call.poll_output()).collect()
}

/// A call whose stream started at `t0 + 1 ms`.
pub(super) fn started_call(t0: Instant, config: CallConfig, codec: PhoneCodec) -> Call {
    let mut call =
        Call::new(config, [7; 32], t0, Duration::ZERO).expect("the fuzz configurations are valid");
    call.handle_ws_message(
        t0 + Duration::from_millis(1),
        Leg::Phone,
        WsMessage::Text(&start_frame(codec, None)),
    );
    drain(&mut call);
    call
}

/// A call over the model WebSocket whose session is ready at `t0 + 3 ms`.
pub(super) fn ready_call(t0: Instant, config: CallConfig, codec: PhoneCodec) -> Call {
    let backend = config.backend;
    let mut call = started_call(t0, config, codec);
    call.handle_ws_opened(t0 + Duration::from_millis(2), Leg::Model);
    drain(&mut call);
    call.handle_ws_message(
        t0 + Duration::from_millis(3),
        Leg::Model,
        WsMessage::Text(ready_event(backend)),
    );
    drain(&mut call);
    call
}
