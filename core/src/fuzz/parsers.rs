//! The two wire parsers, alone and inside a call.

use std::time::Duration;

use crate::audio::PhoneCodec;
use crate::call::WsMessage;
use crate::config::{Backend, TransportChoice};
use crate::output::{Leg, Output};

use super::harness;

/// One SignalWire text frame into the parser and into a call that has started.
pub fn signalwire_message(origin: std::time::Instant, data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = crate::media_stream::messages::parse_inbound(text);
    let t0 = origin;
    let config = harness::config(Backend::Realtime, TransportChoice::WebSocket);
    let mut call = harness::started_call(t0, config, PhoneCodec::Pcmu);
    call.handle_ws_message(
        t0 + Duration::from_millis(30),
        Leg::Phone,
        WsMessage::Text(text),
    );
    check_sends(&harness::drain(&mut call));
}

/// One OpenAI server event into both backends' parsers, then into a ready call on each backend
/// (Realtime over WebSocket, and Live), twice, followed by the timer it sets.
pub fn openai_event(origin: std::time::Instant, data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = crate::realtime::events::parse_server_event(text);
    let _ = crate::live::events::parse_server_event(text);
    let t0 = origin;
    for backend in [Backend::Realtime, Backend::Live] {
        let config = harness::config(backend, TransportChoice::WebSocket);
        let mut call = harness::ready_call(t0, config, PhoneCodec::Pcmu);
        for ms in [10, 20] {
            call.handle_ws_message(
                t0 + Duration::from_millis(ms),
                Leg::Model,
                WsMessage::Text(text),
            );
            check_sends(&harness::drain(&mut call));
        }
        if let Some(deadline) = call.poll_timeout() {
            call.handle_timeout(deadline);
            check_sends(&harness::drain(&mut call));
            let next = call.poll_timeout();
            assert!(
                next.is_none_or(|next| next > deadline),
                "{backend:?}: handle_timeout left the {:?} deadline due",
                call.next_timer().map(|t| t.1)
            );
        }
    }
}

/// Everything the call sends is JSON, on both legs.
pub(super) fn check_sends(outputs: &[Output]) {
    for output in outputs {
        if let Output::Send { leg, text } = output {
            assert!(
                serde_json::from_str::<serde_json::Value>(text).is_ok(),
                "the call sent invalid JSON on the {leg:?} leg: {text}"
            );
        }
    }
}
