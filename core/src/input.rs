//! Every input a runtime feeds a [`crate::Call`], as data: a call record logs them so that
//! `barbara replay` can run the same call again through the core and compare what it reports.
//!
//! A runtime turns what it is about to feed into an [`Input`], logs it, and feeds it with
//! [`Input::feed`]; a replay reads the log back and feeds it to a fresh call made with the same
//! configuration, seed, start and wall clock. Times are offsets from the call's start (the `now`
//! given to [`crate::Call::new`]) in nanoseconds, so that every `Instant` the replay makes is the
//! one the call saw and durations in events (tool latencies) come out identical.
//!
//! Binary data (WebSocket binary frames, UDP datagrams, HTTP bodies) is base64 in JSON.

use core::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::call::{Call, WsMessage};
use crate::output::TransportFailure;
use crate::output::{HttpResponse, Leg, RequestId, ToolAction, ToolCallId, ToolResult};

/// One input to a call, with the time it was fed as an offset from the call's start.
///
/// Build one from what is about to be fed, log it, then [`Input::feed`] it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "input", rename_all = "snake_case")]
pub enum Input {
    /// [`Call::handle_ws_message`] with a text frame.
    WsText {
        /// Nanoseconds since the call's start.
        at_ns: u64,
        /// Which leg it arrived on.
        #[serde(with = "LegDef")]
        leg: Leg,
        /// The whole message.
        text: String,
    },
    /// [`Call::handle_ws_message`] with a binary frame.
    WsBinary {
        /// Nanoseconds since the call's start.
        at_ns: u64,
        /// Which leg it arrived on.
        #[serde(with = "LegDef")]
        leg: Leg,
        /// The whole message, base64.
        #[serde(with = "base64_bytes")]
        data: Vec<u8>,
    },
    /// [`Call::handle_ws_opened`].
    WsOpened {
        /// Nanoseconds since the call's start.
        at_ns: u64,
        /// Which leg opened.
        #[serde(with = "LegDef")]
        leg: Leg,
    },
    /// [`Call::handle_ws_closed`].
    WsClosed {
        /// Nanoseconds since the call's start.
        at_ns: u64,
        /// Which leg closed.
        #[serde(with = "LegDef")]
        leg: Leg,
    },
    /// [`Call::handle_udp`].
    Udp {
        /// Nanoseconds since the call's start.
        at_ns: u64,
        /// Where the datagram came from.
        source: SocketAddr,
        /// The call's local address it arrived on.
        destination: SocketAddr,
        /// The datagram, base64.
        #[serde(with = "base64_bytes")]
        contents: Vec<u8>,
    },
    /// [`Call::handle_http_response`].
    HttpResponse {
        /// Nanoseconds since the call's start.
        at_ns: u64,
        /// The request it answers.
        #[serde(with = "RequestIdDef")]
        id: RequestId,
        /// The answer (its body base64), or why there is none.
        #[serde(with = "http_result")]
        result: Result<HttpResponse, TransportFailure>,
    },
    /// [`Call::handle_tool_result`].
    ToolResult {
        /// Nanoseconds since the call's start.
        at_ns: u64,
        /// The tool call it answers.
        #[serde(with = "ToolCallIdDef")]
        id: ToolCallId,
        /// The application's answer.
        #[serde(with = "ToolResultDef")]
        result: ToolResult,
    },
    /// [`Call::handle_timeout`].
    Timeout {
        /// Nanoseconds since the call's start.
        at_ns: u64,
    },
    /// [`Call::hang_up`].
    HangUp {
        /// Nanoseconds since the call's start.
        at_ns: u64,
    },
}

impl Input {
    /// The offset of `now` from `start`, as the `at_ns` of an input fed at `now`.
    pub fn offset(start: Instant, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(start).as_nanos()).unwrap_or(u64::MAX)
    }

    /// The input for [`Call::handle_ws_message`] at `at_ns`.
    pub fn ws_message(at_ns: u64, leg: Leg, message: WsMessage<'_>) -> Input {
        match message {
            WsMessage::Text(text) => Input::WsText {
                at_ns,
                leg,
                text: text.to_owned(),
            },
            WsMessage::Binary(data) => Input::WsBinary {
                at_ns,
                leg,
                data: data.to_vec(),
            },
        }
    }

    /// When it was fed, as an offset from the call's start.
    pub fn at(&self) -> Duration {
        let (Input::WsText { at_ns, .. }
        | Input::WsBinary { at_ns, .. }
        | Input::WsOpened { at_ns, .. }
        | Input::WsClosed { at_ns, .. }
        | Input::Udp { at_ns, .. }
        | Input::HttpResponse { at_ns, .. }
        | Input::ToolResult { at_ns, .. }
        | Input::Timeout { at_ns }
        | Input::HangUp { at_ns }) = self;
        Duration::from_nanos(*at_ns)
    }

    /// It with its audio taken out, or `None` when it carries none: the base64 audio of a
    /// SignalWire `media` message or an OpenAI `*audio.delta` event blanked, binary frames
    /// emptied, RTP and RTCP datagrams emptied (DTLS and STUN kept). A text message that
    /// mentions audio but is not JSON is blanked whole, in case it held some. For call records
    /// kept without the caller's voice.
    pub fn without_audio(&self) -> Option<Input> {
        match self {
            Input::WsText { at_ns, leg, text } => Some(Input::WsText {
                at_ns: *at_ns,
                leg: *leg,
                text: text_without_audio(*leg, text)?,
            }),
            Input::WsBinary { at_ns, leg, data } if !data.is_empty() => Some(Input::WsBinary {
                at_ns: *at_ns,
                leg: *leg,
                data: Vec::new(),
            }),
            // RTP and RTCP (RFC 7983: first byte 128-191).
            Input::Udp {
                at_ns,
                source,
                destination,
                contents,
            } if contents.first().is_some_and(|b| (128..=191).contains(b)) => Some(Input::Udp {
                at_ns: *at_ns,
                source: *source,
                destination: *destination,
                contents: Vec::new(),
            }),
            Input::WsBinary { .. }
            | Input::WsOpened { .. }
            | Input::WsClosed { .. }
            | Input::Udp { .. }
            | Input::HttpResponse { .. }
            | Input::ToolResult { .. }
            | Input::Timeout { .. }
            | Input::HangUp { .. } => None,
        }
    }

    /// Feeds it to `call` at `start` plus its offset (`start` is the `now` the call was made
    /// with). Drain [`Call::poll_output`] afterwards, as after any input.
    pub fn feed(&self, call: &mut Call, start: Instant) {
        let now = start + self.at();
        match self {
            Input::WsText { leg, text, .. } => {
                call.handle_ws_message(now, *leg, WsMessage::Text(text));
            }
            Input::WsBinary { leg, data, .. } => {
                call.handle_ws_message(now, *leg, WsMessage::Binary(data));
            }
            Input::WsOpened { leg, .. } => call.handle_ws_opened(now, *leg),
            Input::WsClosed { leg, .. } => call.handle_ws_closed(now, *leg),
            Input::Udp {
                source,
                destination,
                contents,
                ..
            } => call.handle_udp(now, *source, *destination, contents),
            Input::HttpResponse { id, result, .. } => {
                call.handle_http_response(now, *id, result.clone());
            }
            Input::ToolResult { id, result, .. } => {
                call.handle_tool_result(now, id, result.clone());
            }
            Input::Timeout { .. } => call.handle_timeout(now),
            Input::HangUp { .. } => call.hang_up(now),
        }
    }
}

/// A text message with its base64 audio blanked, or `None` when it carries none.
fn text_without_audio(leg: Leg, text: &str) -> Option<String> {
    if !text.contains("payload") && !text.contains("audio") {
        return None;
    }
    let Ok(mut value) = serde_json::from_str::<serde_json::Value>(text) else {
        return Some(String::new());
    };
    let audio = match leg {
        Leg::Phone if value["event"] == "media" => {
            value.get_mut("media").and_then(|m| m.get_mut("payload"))
        }
        Leg::Model
            if value["type"]
                .as_str()
                .is_some_and(|t| t.ends_with("audio.delta")) =>
        {
            value.get_mut("delta")
        }
        Leg::Phone | Leg::Model => None,
    }?;
    *audio = serde_json::Value::String(String::new());
    Some(value.to_string())
}

// Serde shapes of the core's own types, kept here so that the types themselves stay free of
// the record's format.

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(remote = "Leg", rename_all = "snake_case")]
enum LegDef {
    Phone,
    Model,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(remote = "RequestId")]
struct RequestIdDef(u64);

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(remote = "ToolCallId")]
struct ToolCallIdDef(String);

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(remote = "ToolResult")]
struct ToolResultDef {
    output: String,
    #[serde(with = "ToolActionDef")]
    action: ToolAction,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(remote = "ToolAction", rename_all = "snake_case", tag = "type")]
enum ToolActionDef {
    None,
    HangUp,
    Transfer { to: String },
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(remote = "HttpResponse")]
struct HttpResponseDef {
    status: u16,
    headers: Vec<(String, String)>,
    #[serde(with = "base64_bytes")]
    body: Vec<u8>,
}

/// `{"response": {status, headers, body}}` or `{"failure": "why"}`.
mod http_result {
    use super::{HttpResponse, HttpResponseDef, TransportFailure};

    #[derive(serde::Serialize, serde::Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Shape {
        Response(#[serde(with = "HttpResponseDef")] HttpResponse),
        Failure(String),
    }

    pub(super) fn serialize<S: serde::Serializer>(
        result: &Result<HttpResponse, TransportFailure>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let shape = match result {
            Ok(response) => Shape::Response(response.clone()),
            Err(failure) => Shape::Failure(failure.0.clone()),
        };
        serde::Serialize::serialize(&shape, s)
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Result<HttpResponse, TransportFailure>, D::Error> {
        Ok(match serde::Deserialize::deserialize(d)? {
            Shape::Response(response) => Ok(response),
            Shape::Failure(why) => Err(TransportFailure(why)),
        })
    }
}

mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    pub(super) fn serialize<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text: std::borrow::Cow<'de, str> = serde::Deserialize::deserialize(d)?;
        STANDARD
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CallConfig, TransportChoice};
    use crate::output::{Event, Output};

    fn every_kind() -> Vec<Input> {
        vec![
            Input::ws_message(1, Leg::Phone, WsMessage::Text(r#"{"event":"connected"}"#)),
            Input::ws_message(2, Leg::Model, WsMessage::Binary(&[0, 1, 2, 255])),
            Input::WsOpened {
                at_ns: 3,
                leg: Leg::Model,
            },
            Input::WsClosed {
                at_ns: 4,
                leg: Leg::Phone,
            },
            Input::Udp {
                at_ns: 5,
                source: "192.0.2.1:3478".parse().unwrap(),
                destination: "[::1]:40000".parse().unwrap(),
                contents: vec![0x80, 0, 0, 1],
            },
            Input::HttpResponse {
                at_ns: 6,
                id: RequestId(7),
                result: Ok(HttpResponse {
                    status: 201,
                    headers: vec![("location".to_owned(), "/v1/x".to_owned())],
                    body: b"v=0\r\n".to_vec(),
                }),
            },
            Input::HttpResponse {
                at_ns: 7,
                id: RequestId(8),
                result: Err(TransportFailure("connection refused".to_owned())),
            },
            Input::ToolResult {
                at_ns: 8,
                id: ToolCallId("call_1".to_owned()),
                result: ToolResult {
                    output: "{}".to_owned(),
                    action: ToolAction::Transfer {
                        to: "+15551230100".to_owned(),
                    },
                },
            },
            Input::Timeout {
                at_ns: u64::MAX / 2,
            },
            Input::HangUp { at_ns: 10 },
        ]
    }

    fn text_input(leg: Leg, text: &str) -> Input {
        Input::WsText {
            at_ns: 7,
            leg,
            text: text.to_owned(),
        }
    }

    #[test]
    fn audio_is_blanked_and_the_rest_kept() {
        let media =
            r#"{"event":"media","streamSid":"MZ1","media":{"track":"inbound","payload":"AAEC"}}"#;
        let Some(Input::WsText { text: phone, .. }) = text_input(Leg::Phone, media).without_audio()
        else {
            panic!("media carries audio");
        };
        let phone: serde_json::Value = serde_json::from_str(&phone).expect("valid");
        assert_eq!(phone["media"]["payload"], "");
        assert_eq!(phone["streamSid"], "MZ1");
        for (event, field) in [
            (
                r#"{"type":"session.output_audio.delta","delta":"AAEC"}"#,
                "delta",
            ),
            (
                r#"{"type":"response.output_audio.delta","delta":"AAEC","item_id":"i"}"#,
                "delta",
            ),
        ] {
            let Some(Input::WsText { text, .. }) = text_input(Leg::Model, event).without_audio()
            else {
                panic!("{event} carries audio");
            };
            assert!(!text.contains("AAEC"), "{text}");
            assert!(text.contains(field), "{text}");
        }
        for kept in [
            (Leg::Phone, r#"{"event":"start","start":{"callSid":"CA1"}}"#),
            (Leg::Phone, r#"{"event":"dtmf","dtmf":{"digit":"1"}}"#),
            (
                Leg::Model,
                r#"{"type":"session.output_transcript.delta","delta":"Hello"}"#,
            ),
            (
                Leg::Model,
                r#"{"type":"session.closed","reason":"expired"}"#,
            ),
        ] {
            assert_eq!(text_input(kept.0, kept.1).without_audio(), None, "{kept:?}");
        }
        let garbage = text_input(Leg::Phone, "not json but a payload");
        let Some(Input::WsText { text, .. }) = garbage.without_audio() else {
            panic!("kept");
        };
        assert_eq!(text, "");
        let udp = |first: u8| Input::Udp {
            at_ns: 1,
            source: "127.0.0.1:1".parse().expect("valid"),
            destination: "127.0.0.1:2".parse().expect("valid"),
            contents: vec![first, 1, 2, 3],
        };
        assert!(udp(0x80).without_audio().is_some(), "RTP");
        assert_eq!(udp(22).without_audio(), None, "DTLS");
    }

    #[test]
    fn every_input_survives_a_json_round_trip() {
        for input in every_kind() {
            let json = serde_json::to_string(&input).unwrap();
            assert!(!json.contains('\n'), "{json}");
            let back: Input = serde_json::from_str(&json).unwrap();
            assert_eq!(back, input, "{json}");
        }
    }

    #[test]
    fn the_json_names_the_input_and_encodes_bytes_as_base64() {
        let json = serde_json::to_value(&every_kind()[1]).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "input": "ws_binary", "at_ns": 2, "leg": "model", "data": "AAEC/w==",
            })
        );
        let json = serde_json::to_value(&every_kind()[4]).unwrap();
        assert_eq!(json["source"], "192.0.2.1:3478");
        assert_eq!(json["contents"], "gAAAAQ==");
        let json = serde_json::to_value(&every_kind()[5]).unwrap();
        assert_eq!(json["result"]["response"]["body"], "dj0wDQo=");
        let json = serde_json::to_value(&every_kind()[7]).unwrap();
        assert_eq!(json["id"], "call_1");
        assert_eq!(json["result"]["action"]["type"], "transfer");
        assert_eq!(every_kind()[8].at(), Duration::from_nanos(u64::MAX / 2));
    }

    #[test]
    fn bad_base64_is_an_error_not_a_panic() {
        let json = r#"{"input":"udp","at_ns":0,"source":"127.0.0.1:1","destination":"127.0.0.1:2","contents":"!!"}"#;
        assert!(serde_json::from_str::<Input>(json).is_err());
    }

    /// A tiny WebSocket call: the stream starts, the model connects and is configured, a tool
    /// webhook is never involved; the caller stops.
    fn tiny_call() -> Vec<Input> {
        let start = r#"{"event":"start","start":{"streamSid":"MZ1","callSid":"CA1","mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}}}"#;
        let media = r#"{"event":"media","streamSid":"MZ1","media":{"payload":"//////////8="}}"#;
        let ms = |ms: u64| ms * 1_000_000 + 123;
        let phone = |at_ns, text| Input::ws_message(at_ns, Leg::Phone, WsMessage::Text(text));
        let model = |at_ns, text| Input::ws_message(at_ns, Leg::Model, WsMessage::Text(text));
        vec![
            phone(
                ms(1),
                r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#,
            ),
            phone(ms(2), start),
            Input::WsOpened {
                at_ns: ms(40),
                leg: Leg::Model,
            },
            model(ms(60), r#"{"type":"session.created","session":{}}"#),
            model(ms(80), r#"{"type":"session.updated","session":{}}"#),
            phone(ms(100), media),
            model(ms(110), "not json"),
            Input::Timeout { at_ns: ms(3_000) },
            phone(ms(3_100), r#"{"event":"stop","streamSid":"MZ1"}"#),
        ]
    }

    fn run(inputs: &[Input]) -> Vec<Event> {
        let start = crate::tests::origin();
        let mut config = CallConfig::new("sk-test");
        config.transport = TransportChoice::WebSocket;
        let mut call = Call::new(config, [3; 32], start, Duration::from_secs(1_700_000_000))
            .expect("a valid configuration");
        let mut events = Vec::new();
        for input in inputs {
            input.feed(&mut call, start);
            while let Some(output) = call.poll_output() {
                if let Output::Event(event) = output {
                    events.push(event);
                }
            }
        }
        events
    }

    #[test]
    fn feeding_the_same_inputs_twice_gives_the_same_events() {
        let inputs = tiny_call();
        let first = run(&inputs);
        let second = run(&inputs);
        assert_eq!(first, second);
        let has = |f: fn(&Event) -> bool| first.iter().any(f);
        assert!(
            has(|e| matches!(e, Event::StreamStarted { .. })),
            "{first:?}"
        );
        assert!(has(|e| matches!(e, Event::ModelReady { .. })), "{first:?}");
        assert!(has(|e| matches!(e, Event::BadInput { .. })), "{first:?}");
        assert!(has(|e| matches!(e, Event::CallEnded { .. })), "{first:?}");
    }
}
