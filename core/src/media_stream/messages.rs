//! Media-stream wire format: the JSON text frames of a SignalWire (Twilio-compatible)
//! bidirectional media stream.
//!
//! Inbound parsing is lenient where the two platforms differ (a top-level `streamSid` or not,
//! numbers sent as strings or as numbers, optional objects) and strict where a wrong guess
//! would corrupt the call (the media format, the DTMF digit, the payload's base64).
//!
//! Parsing takes two passes over the text. The first reads only `event`, so an event we do not
//! know is reported as such whatever its body looks like. The second reads the fields of that
//! one event into borrowed helper structs; no `serde_json::Value` is built on the `media` hot
//! path, and the payload is base64-decoded straight into its `Vec`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use base64::Engine as _;
use base64::display::Base64Display;
use base64::engine::general_purpose::STANDARD;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::audio::PhoneCodec;

/// One message from SignalWire.
#[derive(Debug, Clone, PartialEq)]
pub enum InboundMessage {
    /// `connected`.
    Connected,
    /// `start`.
    Start(StartInfo),
    /// `media`, payload base64-decoded.
    Media(MediaInfo),
    /// `dtmf`.
    Dtmf {
        /// Top-level `streamSid`, when sent.
        stream_sid: Option<String>,
        /// `0-9`, `*`, `#`, `A-D`.
        digit: char,
        /// Milliseconds, when sent (SignalWire).
        duration_ms: Option<u32>,
    },
    /// `mark` echo.
    Mark {
        /// Top-level `streamSid`, when sent.
        stream_sid: Option<String>,
        /// The name we gave.
        name: String,
    },
    /// `stop`.
    Stop {
        /// Top-level `streamSid`, when sent.
        stream_sid: Option<String>,
    },
}

/// The `start` message.
#[derive(Debug, Clone, PartialEq)]
pub struct StartInfo {
    /// `start.streamSid` (or the top-level one).
    pub stream_sid: String,
    /// `start.callSid`.
    pub call_sid: Option<String>,
    /// `start.accountSid`.
    pub account_sid: Option<String>,
    /// `start.tracks`.
    pub tracks: Vec<String>,
    /// `start.customParameters`.
    pub custom_parameters: BTreeMap<String, String>,
    /// `start.mediaFormat`.
    pub media_format: MediaFormat,
}

/// `start.mediaFormat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaFormat {
    /// e.g. `audio/x-mulaw`.
    pub encoding: String,
    /// Samples per second.
    pub sample_rate: u32,
    /// Always 1 in practice.
    pub channels: u32,
}

impl MediaFormat {
    /// The codec this format names.
    ///
    /// Accepts mono `audio/x-mulaw`@8000, `audio/x-alaw`@8000 and `audio/x-L16` at 8000, 16000
    /// or 24000 Hz; the encoding is matched case-insensitively.
    ///
    /// # Errors
    ///
    /// [`UnsupportedFormat`] for any other encoding, rate or channel count.
    pub fn codec(&self) -> Result<PhoneCodec, UnsupportedFormat> {
        let enc = self.encoding.as_str();
        let codec = if self.channels != 1 {
            // SignalWire refuses multi-channel streams (`codec_error`); we only carry mono.
            None
        } else if enc.eq_ignore_ascii_case("audio/x-mulaw") && self.sample_rate == 8000 {
            Some(PhoneCodec::Pcmu)
        } else if enc.eq_ignore_ascii_case("audio/x-alaw") && self.sample_rate == 8000 {
            Some(PhoneCodec::Pcma)
        } else if enc.eq_ignore_ascii_case("audio/x-L16")
            && matches!(self.sample_rate, 8000 | 16000 | 24000)
        {
            Some(PhoneCodec::L16 {
                rate_hz: self.sample_rate,
            })
        } else {
            None
        };
        codec.ok_or_else(|| UnsupportedFormat {
            encoding: self.encoding.clone(),
            sample_rate: self.sample_rate,
            channels: self.channels,
        })
    }
}

/// A media format the bridge cannot carry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported media format {encoding}@{sample_rate}x{channels}")]
pub struct UnsupportedFormat {
    /// The encoding given.
    pub encoding: String,
    /// The rate given.
    pub sample_rate: u32,
    /// The channel count given.
    pub channels: u32,
}

/// A `media` message.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaInfo {
    /// Top-level `streamSid`, when sent.
    pub stream_sid: Option<String>,
    /// `media.track`.
    pub track: Option<String>,
    /// `media.chunk`.
    pub chunk: Option<u64>,
    /// `media.timestamp`, ms since stream start.
    pub timestamp_ms: Option<u64>,
    /// Decoded audio.
    pub payload: Vec<u8>,
}

/// Why an inbound message was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not JSON or not the documented shape.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// An `event` we do not know.
    #[error("unknown event {0:?}")]
    UnknownEvent(String),
    /// `media.payload` is not base64.
    #[error("payload is not base64")]
    BadBase64,
}

/// Parses one text frame from SignalWire.
///
/// Accepts both the SignalWire and the Twilio shapes of `connected`, `start`, `media`, `dtmf`,
/// `mark` and `stop`; fields we do not use are ignored.
///
/// # Errors
///
/// - [`ParseError::UnknownEvent`] when `event` is a string we do not know (e.g. `close`).
/// - [`ParseError::BadBase64`] when `media.payload` is not standard, padded base64.
/// - [`ParseError::Malformed`] for anything else that is not the documented shape: not JSON,
///   no `event`, a `start` with no stream id, an unsupported DTMF digit, a negative number…
pub fn parse_inbound(text: &str) -> Result<InboundMessage, ParseError> {
    let head: Obj<Head<'_>> = from_json(text)?;
    match head.0.event.as_ref() {
        "connected" => Ok(InboundMessage::Connected),
        "start" => parse_start(from_json(text)?),
        "media" => parse_media(from_json(text)?),
        "dtmf" => parse_dtmf(from_json(text)?),
        "mark" => {
            let msg: Obj<MarkMsg> = from_json(text)?;
            Ok(InboundMessage::Mark {
                stream_sid: msg.0.stream_sid,
                name: msg.0.mark.0.name,
            })
        }
        "stop" => {
            let msg: Obj<StopMsg> = from_json(text)?;
            Ok(InboundMessage::Stop {
                stream_sid: msg.0.stream_sid,
            })
        }
        other => Err(ParseError::UnknownEvent(other.to_owned())),
    }
}

/// `{"event":"media","streamSid":…,"media":{"payload":…}}`.
///
/// `payload` is raw audio in the stream's codec, with no file header; it is base64-encoded
/// here. The message carries no `track`: the platforms document none for outbound media.
pub fn media(stream_sid: &str, payload: &[u8]) -> String {
    to_json(&Outbound::Media {
        stream_sid,
        media: PayloadOut { payload },
    })
}

/// `{"event":"mark","streamSid":…,"mark":{"name":…}}`.
///
/// SignalWire echoes the mark once the audio queued before it has played, or at once on `clear`.
pub fn mark(stream_sid: &str, name: &str) -> String {
    to_json(&Outbound::Mark {
        stream_sid,
        mark: NameOut { name },
    })
}

/// `{"event":"clear","streamSid":…}`.
///
/// Empties SignalWire's playout queue; every pending mark is echoed back.
pub fn clear(stream_sid: &str) -> String {
    to_json(&Outbound::Clear { stream_sid })
}

/// `{"event":"dtmf","streamSid":…,"dtmf":{"digit":…}}`.
///
/// SignalWire only (Twilio rejects it). `digit` is sent as given; callers pass `0-9 * # A-D`.
pub fn dtmf(stream_sid: &str, digit: char) -> String {
    to_json(&Outbound::Dtmf {
        stream_sid,
        dtmf: DigitOut { digit },
    })
}

// ---------------------------------------------------------------------------------------------
// Inbound helpers.

fn from_json<'a, T: Deserialize<'a>>(text: &'a str) -> Result<T, ParseError> {
    serde_json::from_str(text).map_err(|e| ParseError::Malformed(e.to_string()))
}

fn malformed(why: &str) -> ParseError {
    ParseError::Malformed(why.to_owned())
}

fn parse_start(msg: Obj<StartMsg>) -> Result<InboundMessage, ParseError> {
    let StartMsg { stream_sid, start } = msg.0;
    let start = start.0;
    // SignalWire puts the id only in `start`; Twilio also at the top. An empty id could not
    // address any outbound message, so it counts as missing.
    let stream_sid = start
        .stream_sid
        .filter(|s| !s.is_empty())
        .or(stream_sid.filter(|s| !s.is_empty()))
        .ok_or_else(|| malformed("start has no streamSid"))?;
    let format = start.media_format.0;
    let media_format = MediaFormat {
        encoding: format.encoding,
        sample_rate: to_u32(format.sample_rate, "start.mediaFormat.sampleRate")?,
        // Both platforms only stream mono, so a missing count means 1.
        channels: match format.channels {
            Some(n) => to_u32(n, "start.mediaFormat.channels")?,
            None => 1,
        },
    };
    let custom_parameters = start
        .custom_parameters
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, v)| parameter_text(v).map(|v| (k, v)))
        .collect();
    Ok(InboundMessage::Start(StartInfo {
        stream_sid,
        call_sid: start.call_sid,
        account_sid: start.account_sid,
        tracks: start.tracks.unwrap_or_default(),
        custom_parameters,
        media_format,
    }))
}

/// `<Parameter>` values are documented as strings; other JSON values are kept as their text
/// rather than failing the whole `start`, and `null` counts as absent.
fn parameter_text(value: serde_json::Value) -> Option<String> {
    use serde_json::Value;
    match value {
        Value::Null => None,
        Value::String(s) => Some(s),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        v @ (Value::Array(_) | Value::Object(_)) => Some(v.to_string()),
    }
}

fn parse_media(msg: Obj<MediaMsg<'_>>) -> Result<InboundMessage, ParseError> {
    let MediaMsg { stream_sid, media } = msg.0;
    let media = media.0;
    let payload = STANDARD
        .decode(media.payload.as_bytes())
        .map_err(|_| ParseError::BadBase64)?;
    Ok(InboundMessage::Media(MediaInfo {
        stream_sid,
        track: media.track,
        chunk: media.chunk.map(|n| n.0),
        timestamp_ms: media.timestamp.map(|n| n.0),
        payload,
    }))
}

fn parse_dtmf(msg: Obj<DtmfMsg<'_>>) -> Result<InboundMessage, ParseError> {
    let DtmfMsg { stream_sid, dtmf } = msg.0;
    let dtmf = dtmf.0;
    let duration_ms = match dtmf.duration {
        Some(n) => Some(to_u32(n, "dtmf.duration")?),
        None => None,
    };
    Ok(InboundMessage::Dtmf {
        stream_sid,
        digit: parse_digit(&dtmf.digit)?,
        duration_ms,
    })
}

/// Keeps exactly one of `0-9 * # A-D`; lowercase `a-d` is taken as its uppercase key.
fn parse_digit(text: &str) -> Result<char, ParseError> {
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some(c @ ('0'..='9' | '*' | '#' | 'A'..='D')), None) => Ok(c),
        (Some(c @ 'a'..='d'), None) => Ok(c.to_ascii_uppercase()),
        _ => Err(malformed("dtmf.digit is not one of 0-9 * # A-D")),
    }
}

fn to_u32(n: Num, field: &str) -> Result<u32, ParseError> {
    u32::try_from(n.0).map_err(|_| ParseError::Malformed(format!("{field} is out of range")))
}

/// Forces a JSON object: serde's derived structs would otherwise also accept an array,
/// matching its elements to fields by position.
struct Obj<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjVisitor<T> {
            type Value = T;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }

        deserializer
            .deserialize_map(ObjVisitor(PhantomData))
            .map(Obj)
    }
}

/// A non-negative integer sent as a JSON number or as a string of decimal digits: SignalWire
/// and Twilio send `chunk`/`timestamp` as strings and `sampleRate`/`duration` as numbers, and
/// we do not want to depend on which.
#[derive(Debug, Clone, Copy)]
struct Num(u64);

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NumVisitor;

        impl Visitor<'_> for NumVisitor {
            type Value = Num;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-negative integer, as a number or a string of digits")
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Num, E> {
                Ok(Num(v))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Num, E> {
                u64::try_from(v)
                    .map(Num)
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Num, E> {
                // `8000.0` is still 8000; fractions, negatives and values past u64 are not.
                if v >= 0.0 && v.fract() == 0.0 && v < 18_446_744_073_709_551_616.0 {
                    Ok(Num(v as u64))
                } else {
                    Err(E::invalid_value(de::Unexpected::Float(v), &self))
                }
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Num, E> {
                // Only plain digits: `str::parse` would also take a leading `+`.
                let parsed = if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
                    v.parse().ok()
                } else {
                    None
                };
                parsed
                    .map(Num)
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Other("string"), &self))
            }
        }

        deserializer.deserialize_any(NumVisitor)
    }
}

/// First pass: only the discriminator.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow)]
    event: Cow<'a, str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartMsg {
    stream_sid: Option<String>,
    start: Obj<StartBody>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartBody {
    stream_sid: Option<String>,
    account_sid: Option<String>,
    call_sid: Option<String>,
    tracks: Option<Vec<String>>,
    custom_parameters: Option<BTreeMap<String, serde_json::Value>>,
    media_format: Obj<MediaFormatBody>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MediaFormatBody {
    encoding: String,
    sample_rate: Num,
    channels: Option<Num>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MediaMsg<'a> {
    stream_sid: Option<String>,
    #[serde(borrow)]
    media: Obj<MediaBody<'a>>,
}

#[derive(Deserialize)]
struct MediaBody<'a> {
    track: Option<String>,
    chunk: Option<Num>,
    timestamp: Option<Num>,
    /// Borrowed from the frame unless it contains escapes (some encoders write `\/`).
    #[serde(borrow)]
    payload: Cow<'a, str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DtmfMsg<'a> {
    stream_sid: Option<String>,
    #[serde(borrow)]
    dtmf: Obj<DtmfBody<'a>>,
}

#[derive(Deserialize)]
struct DtmfBody<'a> {
    #[serde(borrow)]
    digit: Cow<'a, str>,
    duration: Option<Num>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MarkMsg {
    stream_sid: Option<String>,
    mark: Obj<MarkBody>,
}

#[derive(Deserialize)]
struct MarkBody {
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StopMsg {
    stream_sid: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Outbound helpers.

/// Every outbound message: serde writes the `event` tag first, then the fields in order, which
/// is exactly the documented shape.
#[derive(Serialize)]
#[serde(
    tag = "event",
    rename_all = "lowercase",
    rename_all_fields = "camelCase"
)]
enum Outbound<'a> {
    Media {
        stream_sid: &'a str,
        media: PayloadOut<'a>,
    },
    Mark {
        stream_sid: &'a str,
        mark: NameOut<'a>,
    },
    Clear {
        stream_sid: &'a str,
    },
    Dtmf {
        stream_sid: &'a str,
        dtmf: DigitOut,
    },
}

#[derive(Serialize)]
struct PayloadOut<'a> {
    #[serde(serialize_with = "base64_str")]
    payload: &'a [u8],
}

#[derive(Serialize)]
struct NameOut<'a> {
    name: &'a str,
}

#[derive(Serialize)]
struct DigitOut {
    digit: char,
}

/// Streams the base64 text into the JSON output, with no intermediate `String`.
fn base64_str<S: Serializer>(bytes: &&[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&Base64Display::new(bytes, &STANDARD))
}

fn to_json(msg: &Outbound<'_>) -> String {
    serde_json::to_string(msg)
        .expect("invariant: a struct of strings and chars serializes to JSON in memory")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// 160 bytes of PCMU, a 440 Hz tone: the payload the reference shortens to
    /// `/87Aure3ur/M809BOzg3Oj5La9HCu7i3ub7J5lRD…`.
    const TONE_HEX: &str = "ffcec0bab7b7babfccf34f413b38373a3e4b6bd1c2bbb8b7b9bec9e654433c38\
        37393d4860d7c4bcb8b7b9bdc7dd5a463c3837383c465addc7bdb9b7b8bcc4d760483d3937383c4354e6c9\
        beb9b7b8bbc2d16b4b3e3a37383b414ff3ccbfbab7b7bac0ceff4e403a37373a3f4c73cfc1bbb8b7babecb\
        eb51423b3837393e4965d4c3bcb8b7b9bdc8e057443c3837393d475ddac6bcb8b7b8bcc6da5d473d3937";
    const TONE_B64: &str = "/87Aure3ur/M809BOzg3Oj5La9HCu7i3ub7J5lRDPDg3OT1IYNfEvLi3ub3H3VpGPDg3ODxGWt3Hvbm3uLzE12BIPTk3ODxDVObJvrm3uLvC0WtLPjo3ODtBT/PMv7q3t7rAzv9OQDo3Nzo/THPPwbu4t7q+y+tRQjs4Nzk+SWXUw7y4t7m9yOBXRDw4Nzk9R13axry4t7i8xtpdRz05Nw==";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn parse_ok(text: &str) -> InboundMessage {
        match parse_inbound(text) {
            Ok(m) => m,
            Err(e) => panic!("{text}: {e}"),
        }
    }

    fn media_info(text: &str) -> MediaInfo {
        let InboundMessage::Media(m) = parse_ok(text) else {
            panic!("not media: {text}");
        };
        m
    }

    fn start_info(text: &str) -> StartInfo {
        let InboundMessage::Start(s) = parse_ok(text) else {
            panic!("not start: {text}");
        };
        s
    }

    fn is_malformed(text: &str) -> bool {
        matches!(parse_inbound(text), Err(ParseError::Malformed(_)))
    }

    // ---- connected -------------------------------------------------------------------------

    #[test]
    fn connected_parses_in_signalwire_and_twilio_versions() {
        for text in [
            r#"{"event":"connected","protocol":"Call","version":"0.2.0"}"#,
            r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#,
        ] {
            assert_eq!(parse_ok(text), InboundMessage::Connected);
        }
    }

    // ---- start -----------------------------------------------------------------------------

    #[test]
    fn start_signalwire_pcmu_keeps_ids_tracks_and_custom_parameters() {
        let s = start_info(
            r#"{"event":"start","sequenceNumber":"1","start":{"streamSid":"6b14a895-cfd6-4fc4-9a5e-bca4b7be69d1","accountSid":"b08dacad-2f6c-4de1-93d6-cc732e0c69c5","callSid":"1e23d301-db78-4439-914b-bb35e5f9414b","tracks":["inbound"],"customParameters":{"session":"s_4f2a","token":"v1.8ed10a03.sig"},"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}}}"#,
        );
        assert_eq!(s.stream_sid, "6b14a895-cfd6-4fc4-9a5e-bca4b7be69d1");
        assert_eq!(
            s.account_sid.as_deref(),
            Some("b08dacad-2f6c-4de1-93d6-cc732e0c69c5")
        );
        assert_eq!(
            s.call_sid.as_deref(),
            Some("1e23d301-db78-4439-914b-bb35e5f9414b")
        );
        assert_eq!(s.tracks, vec!["inbound".to_owned()]);
        let expected: BTreeMap<String, String> = [
            ("session".to_owned(), "s_4f2a".to_owned()),
            ("token".to_owned(), "v1.8ed10a03.sig".to_owned()),
        ]
        .into_iter()
        .collect();
        assert_eq!(s.custom_parameters, expected);
        assert_eq!(
            s.media_format,
            MediaFormat {
                encoding: "audio/x-mulaw".to_owned(),
                sample_rate: 8000,
                channels: 1
            }
        );
        assert_eq!(s.media_format.codec(), Ok(PhoneCodec::Pcmu));
    }

    #[test]
    fn start_signalwire_l16_24000_with_empty_custom_parameters() {
        let s = start_info(
            r#"{"event":"start","sequenceNumber":"1","start":{"streamSid":"7d56cc11-536d-4a45-b4fb-ed3d55be843b","accountSid":"b08dacad-2f6c-4de1-93d6-cc732e0c69c5","callSid":"76ac3c36-56da-4a3e-a0d6-b5f8df6da9ad","tracks":["inbound"],"customParameters":{},"mediaFormat":{"encoding":"audio/x-L16","sampleRate":24000,"channels":1}}}"#,
        );
        assert_eq!(s.stream_sid, "7d56cc11-536d-4a45-b4fb-ed3d55be843b");
        assert!(s.custom_parameters.is_empty());
        assert_eq!(
            s.media_format.codec(),
            Ok(PhoneCodec::L16 { rate_hz: 24000 })
        );
    }

    #[test]
    fn start_signalwire_l16_16000_changes_only_the_rate() {
        let s = start_info(
            r#"{"event":"start","sequenceNumber":"1","start":{"streamSid":"7d56cc11-536d-4a45-b4fb-ed3d55be843b","accountSid":"b08dacad-2f6c-4de1-93d6-cc732e0c69c5","callSid":"76ac3c36-56da-4a3e-a0d6-b5f8df6da9ad","tracks":["inbound"],"customParameters":{},"mediaFormat":{"encoding":"audio/x-L16","sampleRate":16000,"channels":1}}}"#,
        );
        assert_eq!(
            s.media_format.codec(),
            Ok(PhoneCodec::L16 { rate_hz: 16000 })
        );
    }

    #[test]
    fn start_twilio_with_top_level_stream_sid() {
        let s = start_info(
            r#"{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC0123456789abcdef0123456789abcdef","streamSid":"MZ0123456789abcdef0123456789abcdef","callSid":"CA0123456789abcdef0123456789abcdef","tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1},"customParameters":{"FirstName":"Jane"}},"streamSid":"MZ0123456789abcdef0123456789abcdef"}"#,
        );
        assert_eq!(s.stream_sid, "MZ0123456789abcdef0123456789abcdef");
        assert_eq!(
            s.call_sid.as_deref(),
            Some("CA0123456789abcdef0123456789abcdef")
        );
        assert_eq!(
            s.custom_parameters.get("FirstName").map(String::as_str),
            Some("Jane")
        );
        assert_eq!(s.media_format.codec(), Ok(PhoneCodec::Pcmu));
    }

    #[test]
    fn start_without_optional_fields_gives_empty_values() {
        let s = start_info(
            r#"{"event":"start","start":{"streamSid":"s1","mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000}}}"#,
        );
        assert_eq!(s.stream_sid, "s1");
        assert_eq!(s.call_sid, None);
        assert_eq!(s.account_sid, None);
        assert!(s.tracks.is_empty());
        assert!(s.custom_parameters.is_empty());
        assert_eq!(s.media_format.channels, 1);
        let s = start_info(
            r#"{"event":"start","start":{"streamSid":"s1","tracks":null,"customParameters":null,"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}}}"#,
        );
        assert!(s.tracks.is_empty());
        assert!(s.custom_parameters.is_empty());
    }

    #[test]
    fn start_takes_top_level_stream_sid_when_start_has_none() {
        let s = start_info(
            r#"{"event":"start","start":{"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}},"streamSid":"top"}"#,
        );
        assert_eq!(s.stream_sid, "top");
        let s = start_info(
            r#"{"event":"start","start":{"streamSid":"","mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}},"streamSid":"top"}"#,
        );
        assert_eq!(s.stream_sid, "top");
    }

    #[test]
    fn start_prefers_start_stream_sid_over_top_level() {
        let s = start_info(
            r#"{"streamSid":"top","event":"start","start":{"streamSid":"inner","mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}}}"#,
        );
        assert_eq!(s.stream_sid, "inner");
    }

    #[test]
    fn start_without_any_stream_sid_is_malformed() {
        for text in [
            r#"{"event":"start","sequenceNumber":"1","start":{"callSid":"c","mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}}}"#,
            r#"{"event":"start","start":{"streamSid":"","mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}},"streamSid":""}"#,
            r#"{"event":"start","start":{"streamSid":null,"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}},"streamSid":null}"#,
        ] {
            assert!(is_malformed(text), "{text}");
        }
    }

    #[test]
    fn start_numbers_may_arrive_as_strings() {
        let s = start_info(
            r#"{"event":"start","sequenceNumber":1,"start":{"streamSid":"s","mediaFormat":{"encoding":"audio/x-L16","sampleRate":"16000","channels":"1"}}}"#,
        );
        assert_eq!(s.media_format.sample_rate, 16000);
        assert_eq!(s.media_format.channels, 1);
        let s = start_info(
            r#"{"event":"start","start":{"streamSid":"s","mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000.0,"channels":1}}}"#,
        );
        assert_eq!(s.media_format.sample_rate, 8000);
    }

    #[test]
    fn start_with_bad_media_format_is_malformed() {
        for text in [
            r#"{"event":"start","start":{"streamSid":"s"}}"#,
            r#"{"event":"start","start":{"streamSid":"s","mediaFormat":null}}"#,
            r#"{"event":"start","start":{"streamSid":"s","mediaFormat":{"sampleRate":8000,"channels":1}}}"#,
            r#"{"event":"start","start":{"streamSid":"s","mediaFormat":{"encoding":"audio/x-mulaw","channels":1}}}"#,
            r#"{"event":"start","start":{"streamSid":"s","mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":-8000,"channels":1}}}"#,
            r#"{"event":"start","start":{"streamSid":"s","mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000.5,"channels":1}}}"#,
            r#"{"event":"start","start":{"streamSid":"s","mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":"+8000","channels":1}}}"#,
            r#"{"event":"start","start":{"streamSid":"s","mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":"8k","channels":1}}}"#,
            r#"{"event":"start","start":{"streamSid":"s","mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":4294967296,"channels":1}}}"#,
            r#"{"event":"start","start":{"streamSid":"s","mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":true}}}"#,
            r#"{"event":"start","start":["s",null,null,null,null,{"encoding":"audio/x-mulaw","sampleRate":8000}]}"#,
        ] {
            assert!(is_malformed(text), "{text}");
        }
    }

    #[test]
    fn start_custom_parameter_values_that_are_not_strings_become_text() {
        let s = start_info(
            r#"{"event":"start","start":{"streamSid":"s","customParameters":{"n":42,"f":1.5,"b":true,"z":null,"a":[1,"x"],"o":{"k":"v"},"s":"\"q\""},"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}}}"#,
        );
        let got: Vec<(&str, &str)> = s
            .custom_parameters
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a", r#"[1,"x"]"#),
                ("b", "true"),
                ("f", "1.5"),
                ("n", "42"),
                ("o", r#"{"k":"v"}"#),
                ("s", r#""q""#),
            ]
        );
    }

    // ---- media -----------------------------------------------------------------------------

    #[test]
    fn media_signalwire_pcmu_tone_decodes_160_bytes() {
        let text = format!(
            r#"{{"event":"media","sequenceNumber":"2","media":{{"track":"inbound","chunk":"1","timestamp":"0","payload":"{TONE_B64}"}}}}"#
        );
        let m = media_info(&text);
        assert_eq!(
            m,
            MediaInfo {
                stream_sid: None,
                track: Some("inbound".to_owned()),
                chunk: Some(1),
                timestamp_ms: Some(0),
                payload: hex(TONE_HEX),
            }
        );
        assert_eq!(m.payload.len(), 160);
    }

    #[test]
    fn media_signalwire_pcmu_silence_is_all_ff() {
        let m = media_info(
            r#"{"event":"media","sequenceNumber":"3","media":{"track":"inbound","chunk":"2","timestamp":"20","payload":"/////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////w=="}}"#,
        );
        assert_eq!(m.chunk, Some(2));
        assert_eq!(m.timestamp_ms, Some(20));
        assert_eq!(m.payload, vec![0xFF; 160]);
    }

    #[test]
    fn media_signalwire_l16_16000_decodes_little_endian_samples() {
        let m = media_info(
            r#"{"event":"media","sequenceNumber":"42","media":{"track":"inbound","chunk":"41","timestamp":"800","payload":"AAADAvgDzgV4B+kIFgr2CoILtwuTCxYLRAolCb8HHwZQBGACXgBa/mH8hfrS+Fb3HPYt9ZH0TPRg9M30j/Wh9vv3kflZ+0T9RP9JAUQDJwXjBmoIsQmuClkLrguqC00LmgqWCUkIvQb9BBcDGgEV/xb9Lvtq+dn3hfZ69cD0W/RO9Jv0P/U19nb39/iv+o78if6NAI4CfARHBuMHQglbCiULmgu2C3kL5Qr9CcoIUwelBcsD1QHR/8793PsJ+mT4+fbT9fr0dfRI9HX0+vTT9fn2ZPgJ+tz7zv3R/9UBywOlBVMHygj9CeUKeQu2C5oLJQtbCkIJ4wdHBnwEjgKNAIn+jvyv+vf4dvc19j/1m/RO9Fv0wPR69YX22fdq+S77Fv0V/xoBFwP9BL0GSQiWCZoKTQuqC64LWQuuCrEJagjjBicFRANJAUT/RP1Z+5H5+/eh9o/1zfRg9Ez0kfQt9Rz2VvfS+IX6Yfxa/l4AYAJQBB8GvwclCUQKFguTC7cLggv2ChYK6Qh4B84F+AMDAgAA/f0I/DL6iPgX9+r1CvV+9En0bfTq9Lz12/ZB+OH5sPug/aL/pgGfA3sFLgeqCOQJ0wpvC7QLoAszC3EKXwkFCG8GpwS8ArwAt/68/Nn6HfmW90/2UvWn9FL0VvSz9Gb1ava390P5A/vp/Ob+6wDqAtIElgYnCHsJhgpAC6ULsgtlC8EKywmKCAkHUQVyA3cBc/9y/YT7ufkd+L72pfXb9Gb0SvSH9Bv1A/Y29634W/o1/Cv+LwAyAiQE9wWcBwcJLQoGC4sLuAuLCwYLLQoHCZwH9wUkBDICLwAr/jX8W/qt+Db3A/Yb9Yf0SvRm9A=="}}"#,
        );
        assert_eq!(m.chunk, Some(41));
        assert_eq!(m.timestamp_ms, Some(800));
        assert_eq!(m.payload.len(), 640);
        let first: Vec<i16> = m.payload[..10]
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect();
        assert_eq!(first, vec![0, 515, 1016, 1486, 1912]);
    }

    #[test]
    fn media_twilio_keeps_top_level_stream_sid() {
        let m = media_info(
            r#"{"event":"media","sequenceNumber":"4","media":{"track":"inbound","chunk":"2","timestamp":"5","payload":"no+JhoaJjpzS/////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////w=="},"streamSid":"MZ0123456789abcdef0123456789abcdef"}"#,
        );
        assert_eq!(
            m.stream_sid.as_deref(),
            Some("MZ0123456789abcdef0123456789abcdef")
        );
        assert_eq!(m.timestamp_ms, Some(5));
        assert_eq!(m.payload.len(), 160);
        assert_eq!(
            m.payload[..9],
            [0x9e, 0x8f, 0x89, 0x86, 0x86, 0x89, 0x8e, 0x9c, 0xd2]
        );
    }

    #[test]
    fn media_numbers_may_arrive_as_numbers() {
        let m = media_info(
            r#"{"event":"media","sequenceNumber":7,"media":{"track":"outbound","chunk":3,"timestamp":18446744073709551615,"payload":"AQI="}}"#,
        );
        assert_eq!(m.track.as_deref(), Some("outbound"));
        assert_eq!(m.chunk, Some(3));
        assert_eq!(m.timestamp_ms, Some(u64::MAX));
        assert_eq!(m.payload, vec![1, 2]);
    }

    #[test]
    fn media_without_track_chunk_or_timestamp_parses() {
        let m = media_info(r#"{"event":"media","media":{"payload":"AQID"}}"#);
        assert_eq!(
            m,
            MediaInfo {
                stream_sid: None,
                track: None,
                chunk: None,
                timestamp_ms: None,
                payload: vec![1, 2, 3],
            }
        );
    }

    #[test]
    fn media_empty_payload_is_empty_audio() {
        let m = media_info(r#"{"event":"media","media":{"payload":""}}"#);
        assert!(m.payload.is_empty());
    }

    #[test]
    fn media_payload_with_escaped_slashes_decodes() {
        let m = media_info(r#"{"event":"media","media":{"payload":"\/\/8="}}"#);
        assert_eq!(m.payload, vec![0xFF, 0xFF]);
    }

    #[test]
    fn media_bad_base64_is_rejected() {
        for payload in ["!!!!", "AQI", "AQI==", "AQ=I", "AQ I=", "AQJ=", "-_8="] {
            let text = format!(r#"{{"event":"media","media":{{"payload":"{payload}"}}}}"#);
            assert_eq!(
                parse_inbound(&text),
                Err(ParseError::BadBase64),
                "{payload}"
            );
        }
    }

    #[test]
    fn media_with_missing_or_mistyped_fields_is_malformed() {
        for text in [
            r#"{"event":"media"}"#,
            r#"{"event":"media","media":{}}"#,
            r#"{"event":"media","media":{"payload":null}}"#,
            r#"{"event":"media","media":{"payload":42}}"#,
            r#"{"event":"media","media":"AQID"}"#,
            r#"{"event":"media","media":["inbound","1","0","AQID"]}"#,
            r#"{"event":"media","media":{"chunk":"-1","payload":"AQID"}}"#,
            r#"{"event":"media","media":{"timestamp":"","payload":"AQID"}}"#,
            r#"{"event":"media","media":{"track":7,"payload":"AQID"}}"#,
            r#"{"event":"media","streamSid":7,"media":{"payload":"AQID"}}"#,
        ] {
            assert!(is_malformed(text), "{text}");
        }
    }

    // ---- dtmf ------------------------------------------------------------------------------

    #[test]
    fn dtmf_signalwire_and_twilio_examples_parse() {
        let cases = [
            (
                r#"{"event":"dtmf","sequenceNumber":"123","streamSid":"7d56cc11-536d-4a45-b4fb-ed3d55be843b","dtmf":{"digit":"5","duration":2000}}"#,
                "7d56cc11-536d-4a45-b4fb-ed3d55be843b",
                '5',
                Some(2000),
            ),
            (
                r##"{"event":"dtmf","sequenceNumber":"310","streamSid":"7d56cc11-536d-4a45-b4fb-ed3d55be843b","dtmf":{"digit":"#","duration":160}}"##,
                "7d56cc11-536d-4a45-b4fb-ed3d55be843b",
                '#',
                Some(160),
            ),
            (
                r#"{"event":"dtmf","sequenceNumber":"5","streamSid":"MZ0123456789abcdef0123456789abcdef","dtmf":{"track":"inbound_track","digit":"1"}}"#,
                "MZ0123456789abcdef0123456789abcdef",
                '1',
                None,
            ),
        ];
        for (text, sid, digit, duration_ms) in cases {
            assert_eq!(
                parse_ok(text),
                InboundMessage::Dtmf {
                    stream_sid: Some(sid.to_owned()),
                    digit,
                    duration_ms
                }
            );
        }
    }

    #[test]
    fn dtmf_keeps_every_key_and_uppercases_a_to_d() {
        for (sent, kept) in [
            ("0", '0'),
            ("9", '9'),
            ("*", '*'),
            ("#", '#'),
            ("A", 'A'),
            ("D", 'D'),
            ("a", 'A'),
            ("b", 'B'),
            ("c", 'C'),
            ("d", 'D'),
        ] {
            let text = format!(r#"{{"event":"dtmf","dtmf":{{"digit":"{sent}"}}}}"#);
            assert_eq!(
                parse_ok(&text),
                InboundMessage::Dtmf {
                    stream_sid: None,
                    digit: kept,
                    duration_ms: None
                }
            );
        }
    }

    #[test]
    fn dtmf_duration_may_arrive_as_a_string() {
        let m = parse_ok(r#"{"event":"dtmf","dtmf":{"digit":"7","duration":"250"}}"#);
        assert_eq!(
            m,
            InboundMessage::Dtmf {
                stream_sid: None,
                digit: '7',
                duration_ms: Some(250)
            }
        );
    }

    #[test]
    fn dtmf_other_digits_or_shapes_are_malformed() {
        for digit in [
            r#""E""#, r#""e""#, r#""12""#, r#""""#, r#""x""#, "5", "null", r#""é""#,
        ] {
            let text = format!(r#"{{"event":"dtmf","dtmf":{{"digit":{digit}}}}}"#);
            assert!(is_malformed(&text), "{text}");
        }
        for text in [
            r#"{"event":"dtmf"}"#,
            r#"{"event":"dtmf","dtmf":{"duration":100}}"#,
            r#"{"event":"dtmf","dtmf":{"digit":"1","duration":-1}}"#,
            r#"{"event":"dtmf","dtmf":{"digit":"1","duration":4294967296}}"#,
        ] {
            assert!(is_malformed(text), "{text}");
        }
    }

    // ---- mark and stop ---------------------------------------------------------------------

    #[test]
    fn mark_echoes_parse_in_both_shapes() {
        let cases = [
            (
                r#"{"event":"mark","streamSid":"7d56cc11-536d-4a45-b4fb-ed3d55be843b","mark":{"name":"my-custom-mark"}}"#,
                "7d56cc11-536d-4a45-b4fb-ed3d55be843b",
                "my-custom-mark",
            ),
            (
                r#"{"event":"mark","streamSid":"7d56cc11-536d-4a45-b4fb-ed3d55be843b","mark":{"name":"resp_7:item_3:1840"}}"#,
                "7d56cc11-536d-4a45-b4fb-ed3d55be843b",
                "resp_7:item_3:1840",
            ),
            (
                r#"{"event":"mark","sequenceNumber":"4","streamSid":"MZ0123456789abcdef0123456789abcdef","mark":{"name":"my label"}}"#,
                "MZ0123456789abcdef0123456789abcdef",
                "my label",
            ),
        ];
        for (text, sid, name) in cases {
            assert_eq!(
                parse_ok(text),
                InboundMessage::Mark {
                    stream_sid: Some(sid.to_owned()),
                    name: name.to_owned()
                }
            );
        }
        assert_eq!(
            parse_ok(r#"{"event":"mark","mark":{"name":""}}"#),
            InboundMessage::Mark {
                stream_sid: None,
                name: String::new()
            }
        );
    }

    #[test]
    fn mark_without_a_name_is_malformed() {
        for text in [
            r#"{"event":"mark","streamSid":"s"}"#,
            r#"{"event":"mark","streamSid":"s","mark":{}}"#,
            r#"{"event":"mark","streamSid":"s","mark":{"name":5}}"#,
        ] {
            assert!(is_malformed(text), "{text}");
        }
    }

    #[test]
    fn stop_parses_with_or_without_its_stop_object() {
        assert_eq!(
            parse_ok(r#"{"event":"stop","sequenceNumber":"999"}"#),
            InboundMessage::Stop { stream_sid: None }
        );
        assert_eq!(
            parse_ok(
                r#"{"event":"stop","sequenceNumber":"5","stop":{"accountSid":"AC0123456789abcdef0123456789abcdef","callSid":"CA0123456789abcdef0123456789abcdef"},"streamSid":"MZ0123456789abcdef0123456789abcdef"}"#
            ),
            InboundMessage::Stop {
                stream_sid: Some("MZ0123456789abcdef0123456789abcdef".to_owned())
            }
        );
    }

    // ---- envelope --------------------------------------------------------------------------

    #[test]
    fn unknown_event_is_reported_by_name() {
        for (text, name) in [
            (r#"{"event":"close"}"#, "close"),
            (r#"{"event":"clear","streamSid":"s"}"#, "clear"),
            (r#"{"event":"Media","media":{"payload":"AQID"}}"#, "Media"),
            (r#"{"event":"future","media":42}"#, "future"),
            (r#"{"event":""}"#, ""),
        ] {
            assert_eq!(
                parse_inbound(text),
                Err(ParseError::UnknownEvent(name.to_owned()))
            );
        }
    }

    #[test]
    fn unknown_extra_fields_are_ignored() {
        let m = media_info(
            r#"{"extra":{"deep":[1,2,{"x":null}]},"event":"media","media":{"payload":"AQID","extra":true},"start":5}"#,
        );
        assert_eq!(m.payload, vec![1, 2, 3]);
        assert_eq!(
            parse_ok(r#"{"event":"stop","stop":"whatever","sequenceNumber":[]}"#),
            InboundMessage::Stop { stream_sid: None }
        );
    }

    #[test]
    fn text_that_is_not_a_json_event_object_is_malformed() {
        for text in [
            "",
            " ",
            "not json",
            "null",
            "42",
            r#""connected""#,
            "[]",
            r#"["connected"]"#,
            "{}",
            r#"{"event":5}"#,
            r#"{"event":null}"#,
            r#"{"Event":"connected"}"#,
            r#"{"event":"connected","event":"stop"}"#,
            r#"{"event":"connected"} trailing"#,
            r#"{"event":"connected""#,
            r#"{"event":"media","media":{"payload":"AQID"}"#,
        ] {
            assert!(is_malformed(text), "{text:?}");
        }
    }

    #[test]
    fn deeply_nested_json_is_malformed_without_overflowing_the_stack() {
        let depth = 100_000;
        let text = format!(
            r#"{{"event":"media","x":{}{}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        assert!(is_malformed(&text));
    }

    // ---- codec -----------------------------------------------------------------------------

    fn format(encoding: &str, sample_rate: u32, channels: u32) -> MediaFormat {
        MediaFormat {
            encoding: encoding.to_owned(),
            sample_rate,
            channels,
        }
    }

    #[test]
    fn codec_maps_the_supported_formats() {
        assert_eq!(
            format("audio/x-mulaw", 8000, 1).codec(),
            Ok(PhoneCodec::Pcmu)
        );
        assert_eq!(
            format("audio/x-alaw", 8000, 1).codec(),
            Ok(PhoneCodec::Pcma)
        );
        for rate_hz in [8000, 16000, 24000] {
            assert_eq!(
                format("audio/x-L16", rate_hz, 1).codec(),
                Ok(PhoneCodec::L16 { rate_hz })
            );
        }
    }

    #[test]
    fn codec_encoding_match_ignores_case() {
        assert_eq!(
            format("AUDIO/X-MULAW", 8000, 1).codec(),
            Ok(PhoneCodec::Pcmu)
        );
        assert_eq!(
            format("Audio/X-Alaw", 8000, 1).codec(),
            Ok(PhoneCodec::Pcma)
        );
        assert_eq!(
            format("audio/x-l16", 16000, 1).codec(),
            Ok(PhoneCodec::L16 { rate_hz: 16000 })
        );
    }

    #[test]
    fn codec_rejects_other_encodings_rates_and_channel_counts() {
        for f in [
            format("audio/x-mulaw", 16000, 1),
            format("audio/x-alaw", 16000, 1),
            format("audio/x-L16", 48000, 1),
            format("audio/x-L16", 44100, 1),
            format("audio/x-mulaw", 8000, 0),
            format("audio/x-mulaw", 8000, 2),
            format("audio/x-L16", 24000, 2),
            format("audio/opus", 48000, 1),
            format("audio/x-mulaw ", 8000, 1),
            format("", 8000, 1),
        ] {
            assert_eq!(
                f.codec(),
                Err(UnsupportedFormat {
                    encoding: f.encoding.clone(),
                    sample_rate: f.sample_rate,
                    channels: f.channels,
                })
            );
        }
    }

    // ---- outbound --------------------------------------------------------------------------

    #[test]
    fn media_matches_the_documented_examples() {
        assert_eq!(
            media("c0c7d59b-df06-435e-afbc-9217ce318390", &hex(TONE_HEX)),
            format!(
                r#"{{"event":"media","streamSid":"c0c7d59b-df06-435e-afbc-9217ce318390","media":{{"payload":"{TONE_B64}"}}}}"#
            )
        );
        let mut pipecat = vec![0x7e; 7];
        pipecat.resize(160, 0x7f);
        assert_eq!(
            media("MZ0123456789abcdef0123456789abcdef", &pipecat),
            r#"{"event":"media","streamSid":"MZ0123456789abcdef0123456789abcdef","media":{"payload":"fn5+fn5+fn9/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/f39/fw=="}}"#
        );
        // One second of PCMU silence: 8000 bytes, 10668 base64 characters.
        let second = media("7d56cc11-536d-4a45-b4fb-ed3d55be843b", &[0xFF; 8000]);
        let expected = format!(
            r#"{{"event":"media","streamSid":"7d56cc11-536d-4a45-b4fb-ed3d55be843b","media":{{"payload":"{}//8="}}}}"#,
            "////".repeat(2666)
        );
        assert_eq!(second, expected);
        // 20 ms of L16@24000h silence: 960 bytes, 1280 base64 characters.
        let l16 = media("4895daff-365d-452c-a519-e256c2b392ec", &[0; 960]);
        let expected = format!(
            r#"{{"event":"media","streamSid":"4895daff-365d-452c-a519-e256c2b392ec","media":{{"payload":"{}"}}}}"#,
            "AAAA".repeat(320)
        );
        assert_eq!(l16, expected);
    }

    #[test]
    fn mark_matches_the_documented_examples() {
        assert_eq!(
            mark("c0c7d59b-df06-435e-afbc-9217ce318390", "my label"),
            r#"{"event":"mark","streamSid":"c0c7d59b-df06-435e-afbc-9217ce318390","mark":{"name":"my label"}}"#
        );
        assert_eq!(
            mark(
                "7d56cc11-536d-4a45-b4fb-ed3d55be843b",
                "item_abc:1840:g3:m57"
            ),
            r#"{"event":"mark","streamSid":"7d56cc11-536d-4a45-b4fb-ed3d55be843b","mark":{"name":"item_abc:1840:g3:m57"}}"#
        );
        assert_eq!(
            mark(
                "7d56cc11-536d-4a45-b4fb-ed3d55be843b",
                "done:item_abc:g3:m58"
            ),
            r#"{"event":"mark","streamSid":"7d56cc11-536d-4a45-b4fb-ed3d55be843b","mark":{"name":"done:item_abc:g3:m58"}}"#
        );
    }

    #[test]
    fn clear_matches_the_documented_examples() {
        for sid in [
            "c0c7d59b-df06-435e-afbc-9217ce318390",
            "MZ0123456789abcdef0123456789abcdef",
            "4895daff-365d-452c-a519-e256c2b392ec",
        ] {
            assert_eq!(
                clear(sid),
                format!(r#"{{"event":"clear","streamSid":"{sid}"}}"#)
            );
        }
        assert_eq!(
            clear("c0c7d59b-df06-435e-afbc-9217ce318390"),
            r#"{"event":"clear","streamSid":"c0c7d59b-df06-435e-afbc-9217ce318390"}"#
        );
    }

    #[test]
    fn dtmf_matches_the_documented_examples() {
        assert_eq!(
            dtmf("c0c7d59b-df06-435e-afbc-9217ce318390", '5'),
            r#"{"event":"dtmf","streamSid":"c0c7d59b-df06-435e-afbc-9217ce318390","dtmf":{"digit":"5"}}"#
        );
        assert_eq!(
            dtmf("c0c7d59b-df06-435e-afbc-9217ce318390", '#'),
            r##"{"event":"dtmf","streamSid":"c0c7d59b-df06-435e-afbc-9217ce318390","dtmf":{"digit":"#"}}"##
        );
        assert_eq!(
            dtmf("4895daff-365d-452c-a519-e256c2b392ec", 'A'),
            r#"{"event":"dtmf","streamSid":"4895daff-365d-452c-a519-e256c2b392ec","dtmf":{"digit":"A"}}"#
        );
    }

    #[test]
    fn outbound_strings_are_json_escaped() {
        assert_eq!(
            mark("s\"1", "a\\b\n\"c\"\u{1}é"),
            r#"{"event":"mark","streamSid":"s\"1","mark":{"name":"a\\b\n\"c\"\u0001é"}}"#
        );
        assert_eq!(clear("\t"), r#"{"event":"clear","streamSid":"\t"}"#);
        assert_eq!(
            dtmf("s", '"'),
            r#"{"event":"dtmf","streamSid":"s","dtmf":{"digit":"\""}}"#
        );
        assert_eq!(
            media("</script>", &[]),
            r#"{"event":"media","streamSid":"</script>","media":{"payload":""}}"#
        );
    }

    #[test]
    fn media_round_trips_through_parse_inbound() {
        let payload = hex(TONE_HEX);
        let m = media_info(&media("sid", &payload));
        assert_eq!(
            m,
            MediaInfo {
                stream_sid: Some("sid".to_owned()),
                track: None,
                chunk: None,
                timestamp_ms: None,
                payload,
            }
        );
    }

    #[test]
    fn mark_and_dtmf_round_trip_through_parse_inbound() {
        assert_eq!(
            parse_ok(&mark("sid", "g1:m2")),
            InboundMessage::Mark {
                stream_sid: Some("sid".to_owned()),
                name: "g1:m2".to_owned()
            }
        );
        assert_eq!(
            parse_ok(&dtmf("sid", 'B')),
            InboundMessage::Dtmf {
                stream_sid: Some("sid".to_owned()),
                digit: 'B',
                duration_ms: None
            }
        );
        assert_eq!(
            parse_inbound(&clear("sid")),
            Err(ParseError::UnknownEvent("clear".to_owned()))
        );
    }

    // ---- properties ------------------------------------------------------------------------

    /// Valid messages of every kind, as seeds for mutation.
    fn seeds() -> Vec<String> {
        vec![
            r#"{"event":"connected","protocol":"Call","version":"0.2.0"}"#.to_owned(),
            r#"{"event":"start","sequenceNumber":"1","start":{"streamSid":"6b14a895","accountSid":"b08dacad","callSid":"1e23d301","tracks":["inbound"],"customParameters":{"session":"s_4f2a","n":1},"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}},"streamSid":"MZ01"}"#.to_owned(),
            format!(
                r#"{{"event":"media","sequenceNumber":"2","media":{{"track":"inbound","chunk":"1","timestamp":"0","payload":"{TONE_B64}"}},"streamSid":"MZ01"}}"#
            ),
            r#"{"event":"dtmf","sequenceNumber":"123","streamSid":"7d56cc11","dtmf":{"track":"inbound_track","digit":"5","duration":2000}}"#.to_owned(),
            r#"{"event":"mark","sequenceNumber":"4","streamSid":"MZ01","mark":{"name":"my label"}}"#.to_owned(),
            r#"{"event":"stop","sequenceNumber":"5","stop":{"accountSid":"AC01","callSid":"CA01"},"streamSid":"MZ01"}"#.to_owned(),
        ]
    }

    #[derive(Debug, Clone)]
    enum Edit {
        Delete(usize, usize),
        Insert(usize, String),
        Replace(usize, char),
        Duplicate(usize, usize),
    }

    fn edit() -> impl Strategy<Value = Edit> {
        prop_oneof![
            (any::<usize>(), 1..8usize).prop_map(|(at, n)| Edit::Delete(at, n)),
            (
                any::<usize>(),
                prop_oneof![
                    Just("\"".to_owned()),
                    Just("\\".to_owned()),
                    Just("{".to_owned()),
                    Just("}".to_owned()),
                    Just("[".to_owned()),
                    Just(",".to_owned()),
                    Just(":".to_owned()),
                    Just("null".to_owned()),
                    Just("-1".to_owned()),
                    Just("1e999".to_owned()),
                    Just("\"x\":".to_owned()),
                    Just("\\u0000".to_owned()),
                    Just("\\ud800".to_owned()),
                    ".{0,4}",
                ]
            )
                .prop_map(|(at, s)| Edit::Insert(at, s)),
            (any::<usize>(), any::<char>()).prop_map(|(at, c)| Edit::Replace(at, c)),
            (any::<usize>(), 1..40usize).prop_map(|(at, n)| Edit::Duplicate(at, n)),
        ]
    }

    fn apply(text: &str, edits: &[Edit]) -> String {
        let mut chars: Vec<char> = text.chars().collect();
        for e in edits {
            let len = chars.len();
            let at = |i: usize| if len == 0 { 0 } else { i % (len + 1) };
            match e {
                Edit::Delete(i, n) => {
                    let start = at(*i);
                    let end = (start + n).min(len);
                    chars.drain(start..end);
                }
                Edit::Insert(i, s) => {
                    let start = at(*i);
                    chars.splice(start..start, s.chars());
                }
                Edit::Replace(i, c) => {
                    if len > 0 {
                        chars[i % len] = *c;
                    }
                }
                Edit::Duplicate(i, n) => {
                    let start = at(*i);
                    let end = (start + n).min(len);
                    let copy: Vec<char> = chars[start..end].to_vec();
                    chars.splice(start..start, copy);
                }
            }
        }
        chars.into_iter().collect()
    }

    proptest! {
        #[test]
        fn parse_inbound_never_panics_on_arbitrary_strings(text in any::<String>()) {
            let _ = parse_inbound(&text);
        }

        #[test]
        fn parse_inbound_never_panics_on_json_like_strings(
            text in r#"[{}\[\]":,0-9a-zA-Z/+= .\-\\]{0,200}"#
        ) {
            let _ = parse_inbound(&text);
        }

        #[test]
        fn parse_inbound_never_panics_on_mutated_valid_messages(
            seed in 0..6usize,
            edits in proptest::collection::vec(edit(), 1..6),
        ) {
            let text = apply(&seeds()[seed], &edits);
            let _ = parse_inbound(&text);
        }

        #[test]
        fn media_round_trips_any_payload(
            sid in any::<String>(),
            payload in proptest::collection::vec(any::<u8>(), 0..2000),
        ) {
            let got = parse_inbound(&media(&sid, &payload));
            prop_assert_eq!(got, Ok(InboundMessage::Media(MediaInfo {
                stream_sid: Some(sid),
                track: None,
                chunk: None,
                timestamp_ms: None,
                payload,
            })));
        }

        #[test]
        fn mark_round_trips_any_name(sid in any::<String>(), name in any::<String>()) {
            let got = parse_inbound(&mark(&sid, &name));
            prop_assert_eq!(got, Ok(InboundMessage::Mark { stream_sid: Some(sid), name }));
        }
    }

    #[test]
    fn seeds_are_valid_messages() {
        for s in seeds() {
            parse_ok(&s);
        }
    }
}
