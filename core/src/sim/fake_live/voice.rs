//! The voice: input audio and its VAD, the real-time output clock, turns and interruptions.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

use super::{
    FakeLive, Handled, InputGap, LiveChunk, LiveTurn, Refusal, TimerKind, TurnRecord, TurnTrigger,
    unknown_key,
};
use crate::sim::speech::{SpeechSpan, rms, speech_like};

/// The VAD judges 20 ms windows.
const VAD_WINDOW_MS: u32 = 20;
/// Loud audio must last this long before the fake calls it speech.
const VAD_START_MS: u32 = 60;
/// The voice `speech_like` uses for the model, so it differs from a caller's voice.
const MODEL_VOICE: u32 = 2;
/// The biggest append the fake takes (the real limit is not published): 15 MiB.
const MAX_APPEND_BYTES: usize = 15 * 1024 * 1024;
/// Over WebRTC, output audio comes out in frames of this many milliseconds.
pub(super) const FRAME_MS: u32 = 20;

/// Speech the model is saying or about to say.
#[derive(Debug)]
pub(super) struct Speech {
    /// Index in [`super::LiveReport::turns`].
    record: usize,
    chars: Vec<char>,
    total_ms: u32,
    sent_ms: u32,
    chunks_sent: u32,
    /// Characters of the transcript sent so far.
    chars_sent: usize,
    /// Timeline ms where the transcript fragment being gathered began.
    piece_from: Option<u64>,
}

/// The input VAD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum VadState {
    Idle { loud_ms: u32, loud_start_ms: u64 },
    Speaking { start_ms: u64, quiet_ms: u32 },
}

impl Default for VadState {
    fn default() -> Self {
        VadState::Idle {
            loud_ms: 0,
            loud_start_ms: 0,
        }
    }
}

impl FakeLive {
    // ---- input ----

    pub(super) fn on_append(&mut self, now: Instant, event: &Value) -> Handled {
        if let Some(k) = unknown_key(event, &["type", "event_id", "audio"]) {
            let msg = format!("Unknown parameter: '{k}'.");
            return Err(Refusal::new("unknown_parameter", &k, msg));
        }
        let Some(audio) = event.get("audio").and_then(Value::as_str) else {
            let msg = "Missing required parameter: 'audio'.";
            return Err(Refusal::new("missing_required_parameter", "audio", msg));
        };
        let Ok(bytes) = BASE64.decode(audio) else {
            let msg = "Invalid 'audio'. Expected base64-encoded audio.";
            return Err(Refusal::new("invalid_value", "audio", msg));
        };
        if bytes.len() > MAX_APPEND_BYTES {
            let msg = "Audio chunk is too large.";
            return Err(Refusal::new("invalid_value", "audio", msg));
        }
        if !bytes.len().is_multiple_of(self.format.width()) {
            let msg = format!(
                "Invalid audio: {} bytes is not a whole number of 16-bit PCM samples.",
                bytes.len()
            );
            return Err(Refusal::new("invalid_audio", "audio", msg));
        }
        let at = self.since(now);
        let r = &mut self.report;
        r.input_appends += 1;
        r.input_audio_bytes += bytes.len() as u64;
        r.input_audio_ms += bytes.len() as f64 / self.format.bytes_per_ms();
        if self.script.record_input_audio {
            r.input_audio.extend_from_slice(&bytes);
        }
        if r.first_input_at.is_none() {
            r.first_input_at = Some(at);
        } else {
            self.end_input_gap(now);
        }
        self.last_append_at = Some(now);
        let mut samples = self.format.decode(&bytes);
        if self.muted {
            samples.fill(0);
        }
        self.feed_vad(now, &samples, self.format.rate());
        Ok(())
    }

    /// Records a gap if input has been missing for too long by `now`.
    pub(super) fn end_input_gap(&mut self, now: Instant) {
        if self.closing || self.report.first_input_at.is_none() {
            return;
        }
        let Some(last) = self.last_append_at else {
            return;
        };
        let gap = now.saturating_duration_since(last);
        if gap > self.script.max_input_gap {
            let at = self.since(now);
            self.report.input_gaps.push(InputGap { at, gap });
        }
    }

    /// Judges `samples` at `rate` in 20 ms windows.
    pub(super) fn feed_vad(&mut self, now: Instant, samples: &[i16], rate: u32) {
        let window_len = (rate * VAD_WINDOW_MS / 1000).max(1) as usize;
        for &sample in samples {
            self.window.push(sample);
            if self.window.len() >= window_len {
                let loud = rms(&self.window) > self.script.vad_threshold_rms;
                self.window.clear();
                self.vad_window(now, loud);
            }
        }
    }

    /// Judges one full 20 ms window.
    fn vad_window(&mut self, now: Instant, loud: bool) {
        let start = self.vad_pos_ms;
        self.vad_pos_ms += u64::from(VAD_WINDOW_MS);
        match &mut self.vad {
            VadState::Idle {
                loud_ms,
                loud_start_ms,
            } => {
                if !loud {
                    *loud_ms = 0;
                    return;
                }
                if *loud_ms == 0 {
                    *loud_start_ms = start;
                }
                *loud_ms += VAD_WINDOW_MS;
                if *loud_ms >= VAD_START_MS {
                    let start_ms = *loud_start_ms;
                    self.caller_started(now, start_ms);
                }
            }
            VadState::Speaking { start_ms, quiet_ms } => {
                if loud {
                    *quiet_ms = 0;
                    return;
                }
                *quiet_ms += VAD_WINDOW_MS;
                if *quiet_ms >= self.script.vad_silence_ms.max(VAD_WINDOW_MS) {
                    let end_ms = self.vad_pos_ms - u64::from(*quiet_ms);
                    let start_ms = *start_ms;
                    self.caller_stopped(now, start_ms, end_ms);
                }
            }
        }
    }

    /// The caller started talking: the model stops, and a reply it was about to give waits.
    fn caller_started(&mut self, now: Instant, start_ms: u64) {
        self.vad = VadState::Speaking {
            start_ms,
            quiet_ms: 0,
        };
        let at = self.since(now);
        self.report.caller_speech_started.push(at);
        self.cancel_timers(|k| matches!(k, TimerKind::Reply(_)));
        if let Some(speech) = self.speaking.take() {
            self.report.interruptions.push(at);
            if let Some(turn) = self.report.turns.get_mut(speech.record) {
                turn.interrupted_at = Some(at);
            }
        }
    }

    /// The caller's utterance ended: its words go out, then the model answers.
    fn caller_stopped(&mut self, now: Instant, start_ms: u64, end_ms: u64) {
        self.vad = VadState::default();
        self.report.caller_speech_stopped.push(self.since(now));
        let text = self
            .script
            .caller_transcripts
            .get(self.caller_turns)
            .cloned()
            .unwrap_or_else(|| "(caller speech)".to_owned());
        self.caller_turns += 1;
        let words: Vec<&str> = text.split_inclusive(' ').collect();
        let n = words.len().max(1) as u64;
        let span = end_ms.saturating_sub(start_ms);
        for (i, word) in words.into_iter().enumerate() {
            let i = i as u64;
            let from = start_ms + span * i / n;
            let to = start_ms + span * (i + 1) / n;
            self.send(
                "session.input_transcript.delta",
                json!({"delta": word, "start_ms": from, "end_ms": to}),
            );
        }
        let pending = self
            .timers
            .iter()
            .any(|t| matches!(t.kind, TimerKind::Reply(_)));
        if !pending {
            let delay = self.script.response_delay;
            self.schedule(now, delay, TimerKind::Reply(TurnTrigger::CallerTurn));
        }
    }

    // ---- output ----

    /// The model takes its next scripted turn.
    pub(super) fn start_turn(&mut self, at: Instant, trigger: TurnTrigger) {
        let turn: LiveTurn = self
            .script
            .turns
            .get(self.next_turn)
            .cloned()
            .unwrap_or_default();
        self.next_turn += 1;
        let record = self.queue_speech(trigger, &turn.text, turn.audio_ms);
        if !turn.tool_calls.is_empty() {
            let delay = self.script.delegation_delay;
            self.schedule(
                at,
                delay,
                TimerKind::Delegate {
                    record,
                    calls: turn.tool_calls,
                    follow_up: (turn.follow_up, turn.follow_up_ms),
                },
            );
        }
    }

    /// Records a stretch of speech and queues it (unless it is empty); returns its record.
    pub(super) fn queue_speech(&mut self, trigger: TurnTrigger, text: &str, ms: u32) -> usize {
        self.report.turns.push(TurnRecord {
            trigger,
            text: text.to_owned(),
            audio_ms: ms,
            speech_ms_sent: 0,
            first_chunk_at: None,
            last_chunk_at: None,
            interrupted_at: None,
            delegation_id: None,
        });
        let record = self.report.turns.len() - 1;
        if ms > 0 {
            self.queued_speech.push_back(Speech {
                record,
                chars: text.chars().collect(),
                total_ms: ms,
                sent_ms: 0,
                chunks_sent: 0,
                chars_sent: 0,
                piece_from: None,
            });
        }
        record
    }

    /// Sends one chunk of output audio (speech or silence) and schedules the next. Over WebRTC
    /// the chunk is a 20 ms frame for [`FakeLive::poll_audio_frame`] instead of a delta.
    pub(super) fn send_chunk(&mut self, at: Instant) {
        let (chunk_ms, rate) = match &self.webrtc {
            Some(w) => (FRAME_MS, w.output_rate),
            None => (self.script.audio_chunk_ms.max(1), self.format.rate()),
        };
        // Transcript fragments cover about 100 ms of speech each.
        let chunks_per_piece = (100 / chunk_ms).max(1);
        let per_ms = (rate / 1000) as usize;
        let mut samples = vec![0i16; per_ms * chunk_ms as usize];
        // The model does not start talking while it hears the caller.
        if self.speaking.is_none() && matches!(self.vad, VadState::Idle { .. }) {
            self.speaking = self.queued_speech.pop_front();
        }
        let when = self.since(at);
        let t = self.timeline_ms(at);
        let mut speech_ms = 0;
        let mut speech = SpeechSpan {
            voice: MODEL_VOICE,
            start: self.out_samples,
            len: 0,
        };
        let mut piece = String::new();
        let mut piece_from = t;
        if let Some(mut s) = self.speaking.take() {
            speech_ms = chunk_ms.min(s.total_ms - s.sent_ms);
            let n = per_ms * speech_ms as usize;
            speech_like(rate, MODEL_VOICE, self.out_samples, &mut samples[..n]);
            speech.len = n;
            self.out_samples += n as u64;
            // The transcript is spread evenly over the chunks.
            let chunks = s.total_ms.div_ceil(chunk_ms) as usize;
            let len = s.chars.len();
            let from = *s.piece_from.get_or_insert(t);
            s.sent_ms += speech_ms;
            s.chunks_sent += 1;
            let k = s.chunks_sent as usize;
            if s.chunks_sent.is_multiple_of(chunks_per_piece) || s.sent_ms >= s.total_ms {
                let to = (k * len / chunks).min(len);
                piece = s
                    .chars
                    .get(s.chars_sent..to)
                    .unwrap_or_default()
                    .iter()
                    .collect();
                s.chars_sent = to.max(s.chars_sent);
                piece_from = from;
                s.piece_from = None;
            }
            if let Some(turn) = self.report.turns.get_mut(s.record) {
                turn.speech_ms_sent = s.sent_ms;
                turn.first_chunk_at.get_or_insert(when);
                turn.last_chunk_at = Some(when);
            }
            if s.sent_ms < s.total_ms {
                self.speaking = Some(s);
            }
        }
        match &mut self.webrtc {
            Some(w) => w.push_frame(at, samples, speech),
            None => {
                let delta = BASE64.encode(self.format.encode(&samples));
                self.send_with("session.output_audio.delta", None, json!({"delta": delta}));
            }
        }
        if !piece.is_empty() {
            let end = t + u64::from(speech_ms);
            self.send(
                "session.output_transcript.delta",
                json!({"delta": piece, "start_ms": piece_from, "end_ms": end}),
            );
        }
        self.report.chunks.push(LiveChunk {
            at: when,
            speech: speech_ms > 0,
            speech_ms,
        });
        let interval = Duration::from_millis(u64::from(chunk_ms));
        self.schedule(at, interval, TimerKind::Chunk);
    }
}
