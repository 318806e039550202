//! The conversations the benchmarks run: a greeting, then a caller turn and a model reply every
//! few seconds until the caller hangs up; audio flows both ways the whole time (the caller sends
//! digital silence between its turns, as SignalWire does).

use std::time::Duration;

use barbara_core::audio::PhoneCodec;
use barbara_core::sim::driver::SimConfig;
use barbara_core::sim::fake_caller::{CallerScript, HangupStyle, Utterance};
use barbara_core::sim::fake_live::LiveTurn;
use barbara_core::sim::fake_realtime::ScriptedResponse;
use barbara_core::{Backend, TransportChoice};

/// One turn every this many milliseconds: the caller speaks, the model answers.
const TURN_MS: u64 = 6_000;
/// The caller speaks this long in each turn.
const CALLER_MS: u64 = 1_800;
/// The model answers with this much audio.
const REPLY_MS: u32 = 2_500;
/// The greeting.
const GREETING_MS: u32 = 2_000;

/// The call shapes measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Realtime over WebSocket, PCMU phone leg: bytes pass straight through.
    WsPcmu,
    /// Realtime over WebSocket, L16 at 16 kHz phone leg: resampled to 24 kHz and back.
    WsL16,
    /// Realtime over WebRTC, L16 at 16 kHz phone leg: Opus encoded and decoded.
    WebRtcOpus,
    /// Realtime over WebRTC, PCMU phone leg, OpenAI answering Opus only: Opus at 8 kHz up,
    /// 24 kHz Opus down (OpenAI ignores the offer's `maxplaybackrate`).
    WebRtcOpusPcmu,
    /// As [`Shape::WebRtcOpusPcmu`], but OpenAI honours `maxplaybackrate`: 8 kHz Opus both
    /// ways. Whether it does is UNCONFIRMED.
    WebRtcOpusPcmuNarrow,
    /// Live over WebSocket, PCMU phone leg.
    Live,
}

impl Shape {
    /// The name `--only` picks it by.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Shape::WsPcmu => "ws-pcmu",
            Shape::WsL16 => "ws-l16",
            Shape::WebRtcOpus => "webrtc",
            Shape::WebRtcOpusPcmu => "webrtc-pcmu",
            Shape::WebRtcOpusPcmuNarrow => "webrtc-pcmu-narrow",
            Shape::Live => "live",
        }
    }

    /// The name `--only` picks its simulation-speed run by.
    pub(crate) fn sim_key(self) -> &'static str {
        match self {
            Shape::WsPcmu => "sim-ws",
            Shape::WsL16 => "sim-ws-l16",
            Shape::WebRtcOpus => "sim-webrtc",
            Shape::WebRtcOpusPcmu => "sim-webrtc-pcmu",
            Shape::WebRtcOpusPcmuNarrow => "sim-webrtc-pcmu-narrow",
            Shape::Live => "sim-live",
        }
    }

    /// Whether the call runs over WebRTC (all of these transcode to Opus).
    pub(crate) fn is_webrtc(self) -> bool {
        matches!(
            self,
            Shape::WebRtcOpus | Shape::WebRtcOpusPcmu | Shape::WebRtcOpusPcmuNarrow
        )
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            Shape::WsPcmu => "WebSocket, PCMU passthrough",
            Shape::WsL16 => "WebSocket, L16@16k resampled",
            Shape::WebRtcOpus => "WebRTC, Opus transcoding (L16@16k phone)",
            Shape::WebRtcOpusPcmu => "WebRTC, Opus transcoding (PCMU phone)",
            Shape::WebRtcOpusPcmuNarrow => {
                "WebRTC, Opus transcoding (PCMU phone, OpenAI honours maxplaybackrate)"
            }
            Shape::Live => "Live (WebSocket), PCMU",
        }
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A call of `shape` whose caller hangs up (`stop`) after `seconds`.
pub(crate) fn conversation(shape: Shape, seed: u64, seconds: u64) -> SimConfig {
    let mut config = SimConfig::new(seed);
    let end = ms(seconds * 1_000);
    let turns = (seconds * 1_000).saturating_sub(3_000) / TURN_MS + 1;
    let utterances = (0..turns)
        .map(|k| Utterance {
            start: ms(3_000 + k * TURN_MS),
            duration: ms(CALLER_MS),
        })
        .filter(|u| u.start + u.duration < end)
        .collect();
    config.caller = CallerScript {
        codec: match shape {
            Shape::WsPcmu | Shape::Live | Shape::WebRtcOpusPcmu | Shape::WebRtcOpusPcmuNarrow => {
                PhoneCodec::Pcmu
            }
            Shape::WsL16 | Shape::WebRtcOpus => PhoneCodec::L16 { rate_hz: 16_000 },
        },
        utterances,
        hangup: Some((end, HangupStyle::Stop)),
        ..CallerScript::default()
    };
    let transcripts = vec!["I would like to check my order.".to_owned()];
    match shape {
        Shape::Live => {
            config.call.backend = Backend::Live;
            let mut all = vec![live_turn(
                "Hello, this is Barbara. How can I help?",
                GREETING_MS,
            )];
            all.extend((0..turns).map(|_| live_turn("Mm-hm, go on.", REPLY_MS)));
            config.live.turns = all;
            config.live.caller_transcripts = transcripts;
        }
        Shape::WsPcmu
        | Shape::WsL16
        | Shape::WebRtcOpus
        | Shape::WebRtcOpusPcmu
        | Shape::WebRtcOpusPcmuNarrow => {
            let narrow = shape == Shape::WebRtcOpusPcmuNarrow;
            if shape.is_webrtc() {
                config.call.transport = TransportChoice::WebRtc;
            }
            // Without G.711 in the answer the PCMU phone leg is transcoded to Opus.
            config.webrtc.opus_only = shape == Shape::WebRtcOpusPcmu || narrow;
            config.webrtc.honour_max_playback_rate = narrow;
            let mut all = vec![say("Hello, this is Barbara. How can I help?", GREETING_MS)];
            all.extend((0..turns).map(|_| say("Mm-hm, go on.", REPLY_MS)));
            config.openai.responses = all;
            config.openai.caller_transcripts = transcripts;
        }
    }
    config
}

fn say(text: &str, audio_ms: u32) -> ScriptedResponse {
    ScriptedResponse {
        text: text.to_owned(),
        audio_ms,
        tool_calls: Vec::new(),
    }
}

fn live_turn(text: &str, audio_ms: u32) -> LiveTurn {
    LiveTurn {
        text: text.to_owned(),
        audio_ms,
        ..LiveTurn::default()
    }
}
