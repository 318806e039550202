//! Peer messages made from fuzz bytes: valid-looking frames from SignalWire and from each OpenAI
//! backend (with ids from small pools, so that they meet again), near misses and garbage.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::audio::PhoneCodec;
use crate::output::HttpResponse;

use super::super::bytes::Bytes;
use super::super::harness::{self, APP_TOOL, STREAM_SID, WEBHOOK_TOOL};

/// Tool call ids the model uses; few, so that duplicates happen.
pub(super) const CALL_IDS: [&str; 6] = ["call_a", "call_b", "call_c", "call_d", "call_e", "call_f"];
const ITEMS: [&str; 3] = ["item_a", "item_b", "item_c"];
const RESPONSES: [&str; 3] = ["resp_a", "resp_b", "resp_c"];
const TOOL_NAMES: [&str; 8] = [
    APP_TOOL,
    APP_TOOL,
    WEBHOOK_TOOL,
    "end_call",
    "send_dtmf",
    "transfer_call",
    "no_such_tool",
    "",
];
const ARGUMENTS: [&str; 10] = [
    "{}",
    "",
    r#"{"digits":"12#"}"#,
    r#"{"digits":"x"}"#,
    r#"{"to":"+15551234567"}"#,
    r#"{"to":"sip:desk@example.com"}"#,
    "[1,2]",
    "{not json",
    "null",
    r#"{"id":"42"}"#,
];
/// Error codes, the fatal ones (which end the call) rare.
const ERROR_CODES: [Option<&str>; 16] = [
    None,
    Some("invalid_api_key"),
    Some("insufficient_quota"),
    Some("session_expired"),
    Some("missing_authorization"),
    Some("conversation_already_has_active_response"),
    Some("conversation_already_has_active_response"),
    Some("conversation_already_has_active_response"),
    Some("response_cancel_not_active"),
    Some("response_cancel_not_active"),
    Some("inference_rate_limit_exceeded"),
    Some("server_error"),
    Some("rate_limit_exceeded"),
    Some("invalid_value"),
    None,
    None,
];
const DIGITS: [&str; 8] = ["1", "5", "9", "*", "#", "A", "D", "x"];
/// Called numbers: the second has a backend of its own in some configurations.
pub(super) const NUMBERS: [Option<&str>; 3] = [None, Some("+15550001"), Some("+15550002")];

fn id_from(b: &mut Bytes<'_>, pool: &[&str]) -> String {
    let n = b.u8();
    if n == 0xFF {
        // Now and then an id outside the pool.
        format!("x{}", b.u8())
    } else {
        pool[usize::from(n) % pool.len()].to_owned()
    }
}

fn b64_audio(b: &mut Bytes<'_>, max_len: usize) -> String {
    let len = (usize::from(b.u8()) * 16 + b.below(2)).min(max_len);
    STANDARD.encode(b.audio(len))
}

/// Text of random bytes, or a frame cut short, or a binary-looking one.
fn garbage_text(b: &mut Bytes<'_>) -> String {
    let len = b.below(64);
    let raw = b.take(len);
    match b.below(3) {
        0 => String::from_utf8_lossy(raw).into_owned(),
        1 => {
            let frame = r#"{"type":"response.output_item.done","event":"media","media":{"payload":"////"}}"#;
            frame[..len.min(frame.len())].to_owned()
        }
        _ => format!("{{\"type\":{}}}", raw.len()),
    }
}

// ---- SignalWire ----

/// A `start`: usually for `codec` (to one of [`NUMBERS`]), sometimes for a format the bridge
/// refuses.
pub(super) fn start(b: &mut Bytes<'_>, codec: PhoneCodec) -> String {
    let to = b.pick(&NUMBERS);
    match b.below(8) {
        0 => json!({"event": "start", "start": {"streamSid": STREAM_SID, "mediaFormat":
            {"encoding": "audio/opus", "sampleRate": 48000, "channels": 1}}})
        .to_string(),
        1 => json!({"event": "start", "start": {"callSid": "CA1"}}).to_string(),
        _ => harness::start_frame(codec, to),
    }
}

/// A `media` frame: caller audio of any length, sometimes odd, malformed or not the caller's.
pub(super) fn media(b: &mut Bytes<'_>) -> String {
    let kind = b.u8();
    let len = usize::from(b.u8()) * 4 + usize::from(kind >> 6);
    let audio = b.audio(len);
    match kind % 16 {
        0 => harness::media_frame_raw("not base64!"),
        1 => json!({"event": "media", "streamSid": "MZother", "media": {"payload": STANDARD.encode(&audio)}})
            .to_string(),
        2 => json!({"event": "media", "streamSid": STREAM_SID, "media":
            {"track": "outbound", "payload": STANDARD.encode(&audio)}})
        .to_string(),
        3 => json!({"event": "media", "media": {"payload": ""}}).to_string(),
        4 => json!({"event": "media", "streamSid": STREAM_SID, "media": {}}).to_string(),
        _ => harness::media_frame(&audio),
    }
}

/// A `dtmf` frame.
pub(super) fn dtmf(b: &mut Bytes<'_>) -> String {
    let digit = b.pick(&DIGITS);
    json!({"event": "dtmf", "streamSid": STREAM_SID, "sequenceNumber": "5",
        "dtmf": {"digit": digit, "duration": 120}})
    .to_string()
}

/// A `mark` echo of `name`.
pub(super) fn mark(name: &str) -> String {
    json!({"event": "mark", "streamSid": STREAM_SID, "mark": {"name": name}}).to_string()
}

/// A mark name the call never sent, or one from an old generation.
pub(super) fn made_up_mark(b: &mut Bytes<'_>) -> String {
    match b.below(3) {
        0 => format!("item_a:{}:g0:m{}", b.u8(), b.u8()),
        1 => "nothing-like-ours".to_owned(),
        _ => format!("live-1:20:g{}:m1", b.u8()),
    }
}

/// A `stop`.
pub(super) fn stop() -> String {
    json!({"event": "stop", "streamSid": STREAM_SID, "stop": {"callSid": "CAfuzz"}}).to_string()
}

/// Garbage from SignalWire: other events, broken JSON, `connected`.
pub(super) fn phone_garbage(b: &mut Bytes<'_>) -> String {
    match b.below(4) {
        0 => r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#.to_owned(),
        1 => r#"{"event":"closed"}"#.to_owned(),
        _ => garbage_text(b),
    }
}

// ---- OpenAI Realtime ----

/// A Realtime server event.
pub(super) fn realtime_event(b: &mut Bytes<'_>) -> String {
    let response = id_from(b, &RESPONSES);
    let item = id_from(b, &ITEMS);
    let event = match b.below(24) {
        0 => json!({"type": "session.created", "session": {}}),
        1 => json!({"type": "session.updated", "session": {}}),
        2 => {
            json!({"type": "input_audio_buffer.speech_started", "item_id": item, "audio_start_ms": 100})
        }
        3 => json!({"type": "input_audio_buffer.speech_stopped", "item_id": item}),
        4 => json!({"type": "conversation.item.input_audio_transcription.completed",
            "item_id": item, "content_index": 0, "transcript": "I'd like my order status"}),
        5 | 6 => {
            json!({"type": "response.created", "response": {"id": response, "status": "in_progress"}})
        }
        7..=10 => json!({"type": "response.output_audio.delta", "response_id": response,
            "item_id": item, "output_index": 0, "content_index": 0, "delta": b64_audio(b, 8_000)}),
        11 => {
            json!({"type": "response.output_audio.done", "response_id": response, "item_id": item})
        }
        12 => json!({"type": "response.output_audio_transcript.done", "response_id": response,
            "item_id": item, "transcript": "Let me check."}),
        13..=15 => {
            let call_id = id_from(b, &CALL_IDS);
            let name = b.pick(&TOOL_NAMES);
            let arguments = b.pick(&ARGUMENTS);
            let status = b.pick(&["completed", "completed", "completed", "incomplete"]);
            json!({"type": "response.output_item.done", "response_id": response, "output_index": 0,
                "item": {"id": item, "type": "function_call", "status": status,
                    "call_id": call_id, "name": name, "arguments": arguments}})
        }
        16 => json!({"type": "response.output_item.done", "response_id": response,
            "item": {"id": item, "type": "message", "status": "completed"}}),
        17 | 18 => {
            let status = b.pick(&["completed", "cancelled", "failed", "incomplete"]);
            let code = b.pick(&ERROR_CODES);
            json!({"type": "response.done", "response": {"id": response, "status": status,
                "status_details": {"error": {"code": code}},
                "usage": {"input_tokens": b.u8(), "output_tokens": b.u8()}}})
        }
        19 => {
            json!({"type": "conversation.item.truncated", "item_id": item, "audio_end_ms": b.u16()})
        }
        20 => {
            let kind = b.pick(&["started", "stopped", "cleared"]);
            json!({"type": format!("output_audio_buffer.{kind}"), "response_id": response})
        }
        21 => {
            let code = b.pick(&ERROR_CODES);
            let event_id = format!("bb_evt_{}", b.below(40));
            json!({"type": "error", "error": {"type": "invalid_request_error", "code": code,
                "message": "something went wrong", "event_id": event_id}})
        }
        22 => json!({"type": b.pick(&["rate_limits.updated", "conversation.item.added",
            "response.output_audio_transcript.delta", "input_audio_buffer.committed"])}),
        _ => json!({"type": b.pick(&["response.audio.delta", "session.started", "bogus"])}),
    };
    event.to_string()
}

// ---- OpenAI Live ----

/// A Live server event.
pub(super) fn live_event(b: &mut Bytes<'_>) -> String {
    let event = match b.below(20) {
        0 | 1 => json!({"type": "session.started", "event_id": "evt_s",
            "session": {"id": "live_fuzz", "status": "active", "expires_at": 1_790_003_600}}),
        2..=6 => json!({"type": "session.output_audio.delta", "delta": b64_audio(b, 8_000)}),
        7 => json!({"type": "session.input_transcript.delta", "delta": "order ",
            "start_ms": b.u16(), "end_ms": b.u16()}),
        8 => json!({"type": "session.output_transcript.delta", "delta": "Checking. "}),
        9 => json!({"type": "session.delegation.created", "delegation": {"id": "del_1",
            "type": "delegation", "target": "responses", "response_id": "resp_1"}}),
        10..=12 => {
            let call_id = id_from(b, &CALL_IDS);
            let name = b.pick(&TOOL_NAMES);
            let arguments = b.pick(&ARGUMENTS);
            let status = b.pick(&["completed", "completed", "completed", "in_progress"]);
            json!({"type": "response.event", "delegation_id": "del_1", "event": {
                "type": "response.output_item.done", "output_index": 0, "item": {
                    "type": "function_call", "id": "fc_1", "status": status, "call_id": call_id,
                    "name": name, "arguments": arguments}}})
        }
        13 | 14 => {
            let kind = b.pick(&[
                "response.completed",
                "response.incomplete",
                "response.failed",
                "response.created",
                "response.output_text.delta",
            ]);
            json!({"type": "response.event", "delegation_id": "del_1", "event": {"type": kind,
                "response": {"id": "resp_1", "status": "completed", "output": []}}})
        }
        15 => {
            json!({"type": "session.usage.updated", "usage": {"seconds": f64::from(b.u8()) / 4.0}})
        }
        16 => {
            let reason = b.pick(&[
                "close_requested",
                "close_requested",
                "close_requested",
                "expired",
                "content",
                "remote_hangup",
                "connection_lost",
            ]);
            json!({"type": "session.closed", "reason": reason, "session": {"id": "live_fuzz"},
                "usage": {"seconds": 12.5}})
        }
        17 => {
            let code = b.pick(&ERROR_CODES);
            json!({"type": "error", "error": {"code": code, "message": "something went wrong"}})
        }
        18 => json!({"type": b.pick(&["session.updated", "session.paused", "info",
            "decision.event"])}),
        _ => json!({"type": b.pick(&["response.output_audio.delta", "session.update", "bogus"])}),
    };
    event.to_string()
}

/// Garbage from OpenAI: the other backend's events, broken frames, wrong shapes.
pub(super) fn model_garbage(b: &mut Bytes<'_>) -> String {
    match b.below(6) {
        0 => realtime_event(b),
        1 => live_event(b),
        2 => r#"{"type":"response.output_audio.delta","response_id":"r","item_id":"i","delta":"@@@"}"#
            .to_owned(),
        3 => r#"{"type":"response.event","event":{"type":"response.output_item.done","item":{"type":"function_call","call_id":7}}}"#
            .to_owned(),
        _ => garbage_text(b),
    }
}

// ---- HTTP ----

/// An answer to the WebRTC offer of a call made right after `fastrand::seed(OFFER_SEED)` (the
/// same as `fuzz/corpus/sdp_answer/opus-pcmu-pcma`): it gets past the accept path.
const ANSWER_SDP: &str = "v=0\r\n\
o=str0m-0.25.0 2762738594592536655 2 IN IP4 0.0.0.0\r\n\
s=-\r\n\
t=0 0\r\n\
a=group:BUNDLE T5B QS2\r\n\
a=extmap-allow-mixed\r\n\
a=msid-semantic: WMS zSsFp6nhKEjyxgT94sa5\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111 0 8\r\n\
c=IN IP4 0.0.0.0\r\n\
a=candidate:fffeff7e4d70eba7c2cfb9e3 1 udp 2130706175 127.0.0.2 3478 typ host ufrag YphgcsY2hHxF6tvC\r\n\
a=ice-ufrag:YphgcsY2hHxF6tvC\r\n\
a=ice-pwd:ns7UP5dkrUzPT6uBgd6ZLM\r\n\
a=ice-options:trickle\r\n\
a=fingerprint:sha-256 6E:D0:9C:63:B6:6F:A9:E9:AB:56:2E:09:B1:CD:FA:CC:DE:84:CC:B2:E1:28:26:A1:98:75:1A:6A:92:B2:3E:5C\r\n\
a=setup:active\r\n\
a=mid:T5B\r\n\
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n\
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n\
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n\
a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id\r\n\
a=sendrecv\r\n\
a=msid:zSsFp6nhKEjyxgT94sa5 D8UQ6tDCIzP6XN16YvFg\r\n\
a=rtcp-mux\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=rtcp-fb:111 transport-cc\r\n\
a=fmtp:111 minptime=10;useinbandfec=1\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtcp-fb:0 transport-cc\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtcp-fb:8 transport-cc\r\n\
a=ssrc:3479263034 cname:d4NEGbCNcK4lUU0MAj0U\r\n\
a=ssrc:3479263034 msid:zSsFp6nhKEjyxgT94sa5 D8UQ6tDCIzP6XN16YvFg\r\n\
m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n\
c=IN IP4 0.0.0.0\r\n\
a=ice-ufrag:YphgcsY2hHxF6tvC\r\n\
a=ice-pwd:ns7UP5dkrUzPT6uBgd6ZLM\r\n\
a=ice-options:trickle\r\n\
a=fingerprint:sha-256 6E:D0:9C:63:B6:6F:A9:E9:AB:56:2E:09:B1:CD:FA:CC:DE:84:CC:B2:E1:28:26:A1:98:75:1A:6A:92:B2:3E:5C\r\n\
a=setup:active\r\n\
a=mid:QS2\r\n\
a=sctp-port:5000\r\n\
a=max-message-size:262144\r\n\
";

/// An answer to one of the call's requests: any status, any body.
pub(super) fn http_answer(b: &mut Bytes<'_>) -> HttpResponse {
    let status = b.pick(&[200, 200, 201, 204, 400, 401, 404, 429, 500, 503, 0, 999]);
    let body: Vec<u8> = match b.below(10) {
        0 => Vec::new(),
        1 | 2 => br#"{"output":"order 42 ships tomorrow"}"#.to_vec(),
        3 => br#"{"output":{"eta":"tomorrow"},"action":"hang_up"}"#.to_vec(),
        4 => br#"{"output":"transferring","action":{"type":"transfer","to":"+15551234567"}}"#
            .to_vec(),
        5 => br#"{"output":"x","action":{"type":"transfer","to":"not a number"}}"#.to_vec(),
        6 => br#"{"error":{"message":"Incorrect API key provided","code":"invalid_api_key"}}"#
            .to_vec(),
        7 => b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n".to_vec(),
        8 => ANSWER_SDP.as_bytes().to_vec(),
        _ => {
            let len = b.below(48);
            b.take(len).to_vec()
        }
    };
    let mut headers = vec![("Content-Type".to_owned(), "application/json".to_owned())];
    if b.bool() {
        headers.push((
            "Location".to_owned(),
            "/v1/realtime/calls/rtc_fuzz".to_owned(),
        ));
    }
    HttpResponse {
        status,
        headers,
        body,
    }
}

/// A tool's output text.
pub(super) fn tool_output(b: &mut Bytes<'_>) -> String {
    b.pick(&[r#"{"ok":true}"#, "", "plain text", r#"{"eta":"tomorrow"}"#])
        .to_owned()
}

/// The value of a JSON text, or `Null`.
pub(super) fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}
