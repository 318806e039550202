//! What the fake Live server saw and did: [`LiveReport`] and its records.

use std::time::Duration;

use serde_json::Value;

/// One `session.output_audio.delta` the fake sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveChunk {
    /// When it went out.
    pub at: Duration,
    /// Whether it carried any speech.
    pub speech: bool,
    /// Milliseconds of speech in it (the rest is silence).
    pub speech_ms: u32,
}

/// What made the model speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnTrigger {
    /// The greeting instruction.
    Greeting,
    /// The end of a caller utterance.
    CallerTurn,
    /// The backend's answer after `response.create`.
    FollowUp,
}

/// One stretch of model speech.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnRecord {
    /// What made the model speak.
    pub trigger: TurnTrigger,
    /// The scripted text.
    pub text: String,
    /// The scripted length.
    pub audio_ms: u32,
    /// Speech sent so far.
    pub speech_ms_sent: u32,
    /// When its first speech chunk went out.
    pub first_chunk_at: Option<Duration>,
    /// When its last speech chunk went out.
    pub last_chunk_at: Option<Duration>,
    /// When the caller's speech made the model stop.
    pub interrupted_at: Option<Duration>,
    /// The delegation it started, if any.
    pub delegation_id: Option<String>,
}

/// A `session.{instructions,thinking,commentary}.append` the fake accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendRecord {
    /// When it arrived.
    pub at: Duration,
    /// `instructions`, `thinking` or `commentary`.
    pub kind: String,
    /// Its `content`.
    pub content: String,
    /// Its `delegation_id`.
    pub delegation_id: Option<String>,
}

/// One Responses delegation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelegationRecord {
    /// `del_…`.
    pub id: String,
    /// The nested response's id.
    pub response_id: String,
    /// When `session.delegation.created` went out.
    pub created_at: Duration,
    /// `(call_id, name)` of each function call.
    pub calls: Vec<(String, String)>,
    /// When the nested `response.completed` went out.
    pub completed_at: Option<Duration>,
    /// When the `response.create` that continued it arrived.
    pub continued_at: Option<Duration>,
}

/// Input audio stopped for a while.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputGap {
    /// When audio resumed (or the session ended).
    pub at: Duration,
    /// How long none came.
    pub gap: Duration,
}

/// Everything the fake saw and did; `Duration`s are since the origin.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveReport {
    /// The handshake's URL, when it was accepted.
    pub url: Option<String>,
    /// The `session` object of the first `session.start` (over WebRTC, of the creation request).
    pub session_start: Option<Value>,
    /// When `session.started` went out.
    pub started_at: Option<Duration>,
    /// The session's id.
    pub session_id: Option<String>,
    /// `session.input_audio.append` events accepted.
    pub input_appends: u64,
    /// Decoded bytes of input audio.
    pub input_audio_bytes: u64,
    /// Milliseconds of input audio.
    pub input_audio_ms: f64,
    /// The appended bytes, if [`LiveScript::record_input_audio`].
    pub input_audio: Vec<u8>,
    /// When the first input audio arrived.
    pub first_input_at: Option<Duration>,
    /// Pauses in the input longer than [`LiveScript::max_input_gap`], after the first append.
    pub input_gaps: Vec<InputGap>,
    /// When the VAD heard the caller start speaking.
    pub caller_speech_started: Vec<Duration>,
    /// When the VAD decided the caller stopped.
    pub caller_speech_stopped: Vec<Duration>,
    /// Every output audio chunk, in order.
    pub chunks: Vec<LiveChunk>,
    /// Every stretch of model speech, in order.
    pub turns: Vec<TurnRecord>,
    /// When the caller's speech made the model stop.
    pub interruptions: Vec<Duration>,
    /// Accepted appends, in order.
    pub appends: Vec<AppendRecord>,
    /// Every delegation.
    pub delegations: Vec<DelegationRecord>,
    /// Accepted `function_call_output` items: `(when, call_id, output)`.
    pub function_outputs: Vec<(Duration, String, String)>,
    /// When each `response.create` arrived (refused ones included).
    pub response_creates: Vec<Duration>,
    /// `session.usage.updated` sent: `(when, seconds)`.
    pub usage_sent: Vec<(Duration, f64)>,
    /// Every `error` sent: `(when, code)`.
    pub errors_sent: Vec<(Duration, String)>,
    /// The `type` of every client event but audio appends, in order.
    pub received_types: Vec<String>,
    /// Client behaviour the real server would reject or that breaks the protocol.
    pub violations: Vec<String>,
    /// When `session.close` arrived.
    pub close_requested_at: Option<Duration>,
    /// The reason of the `session.closed` sent.
    pub closed_reason: Option<String>,
    /// When `session.closed` went out.
    pub closed_at: Option<Duration>,
    /// When the socket closed, by either side (a drop included); over WebRTC, the peer
    /// connection.
    pub socket_closed_at: Option<Duration>,
    /// WebRTC: when the peer connection died under the session without a close.
    pub transport_lost_at: Option<Duration>,
    /// Client events that arrived after `session.close` (audio included).
    pub events_after_close: u32,
    /// The client closed the socket.
    pub closed_by_client: bool,
    /// The client closed the socket of a started session without `session.close`.
    pub closed_without_session_close: bool,
}

impl LiveReport {
    /// The contents of accepted `session.instructions.append` events, in order.
    pub fn instructions(&self) -> Vec<&str> {
        self.appends
            .iter()
            .filter(|a| a.kind == "instructions")
            .map(|a| a.content.as_str())
            .collect()
    }

    /// Milliseconds of speech sent in all chunks.
    pub fn speech_ms_sent(&self) -> u64 {
        self.chunks.iter().map(|c| u64::from(c.speech_ms)).sum()
    }

    /// When the first silent chunk after `t` went out: when the model went quiet.
    pub fn quiet_after(&self, t: Duration) -> Option<Duration> {
        self.chunks
            .iter()
            .find(|c| c.at >= t && !c.speech)
            .map(|c| c.at)
    }

    /// The longest time between two consecutive chunks.
    pub fn max_chunk_interval(&self) -> Duration {
        self.chunks
            .windows(2)
            .map(|w| w[1].at.saturating_sub(w[0].at))
            .max()
            .unwrap_or_default()
    }
}
