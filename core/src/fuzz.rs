//! Fuzz bodies as plain functions (the str0m pattern): `fuzz/fuzz_targets/*.rs` are three-line
//! wrappers around these, and the ordinary test command replays the committed corpora through
//! the same functions on stable.

use std::time::{Duration, Instant};

use crate::call::{Call, WsMessage};
use crate::config::CallConfig;
use crate::output::Leg;

/// One SignalWire text frame into the parser and into a call that has started.
pub fn signalwire_message(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = crate::media_stream::messages::parse_inbound(text);
    let mut call = started_call();
    let now = call.1 + Duration::from_millis(30);
    call.0
        .handle_ws_message(now, Leg::Phone, WsMessage::Text(text));
    while call.0.poll_output().is_some() {}
}

/// One OpenAI server event into the parser.
pub fn openai_event(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::realtime::events::parse_server_event(text);
    }
}

fn started_call() -> (Call, Instant) {
    // Only an origin: the call sees nothing but offsets from it.
    #[allow(clippy::disallowed_methods)]
    let start = Instant::now();
    let mut call = Call::new(CallConfig::new("sk-fuzz"), [0; 32], start, Duration::ZERO)
        .expect("the default configuration is valid");
    call.handle_ws_message(
        start + Duration::from_millis(1),
        Leg::Phone,
        WsMessage::Text(
            r#"{"event":"start","start":{"streamSid":"s","callSid":"c","mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}}}"#,
        ),
    );
    while call.poll_output().is_some() {}
    (call, start)
}
