//! Media-stream wire format (STUB: helper fills in).

use std::collections::BTreeMap;

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
    pub fn codec(&self) -> Result<PhoneCodec, UnsupportedFormat> { unimplemented!() }
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
pub fn parse_inbound(_text: &str) -> Result<InboundMessage, ParseError> { unimplemented!() }

/// `{"event":"media","streamSid":…,"media":{"payload":…}}`.
pub fn media(_stream_sid: &str, _payload: &[u8]) -> String { unimplemented!() }
/// `{"event":"mark","streamSid":…,"mark":{"name":…}}`.
pub fn mark(_stream_sid: &str, _name: &str) -> String { unimplemented!() }
/// `{"event":"clear","streamSid":…}`.
pub fn clear(_stream_sid: &str) -> String { unimplemented!() }
/// `{"event":"dtmf","streamSid":…,"dtmf":{"digit":…}}`.
pub fn dtmf(_stream_sid: &str, _digit: char) -> String { unimplemented!() }
