//! WebRTC mode: a session created by `POST /v1/live/sessions`, events on the data channel,
//! audio as decoded samples in and 20 ms frames out (the RTP side is
//! [`crate::sim::fake_webrtc`]'s).

use std::collections::VecDeque;
use std::time::Instant;

use serde_json::Value;

use super::{Conn, FakeLive, Handled, LiveScript, Refusal};
use crate::sim::fake_realtime::{AudioFrame, SessionRefusal};
use crate::sim::speech::SpeechSpan;

/// Frames kept for [`FakeLive::poll_audio_frame`]: 5 s.
const MAX_QUEUED_FRAMES: usize = 250;

/// The WebRTC side of a Live brain.
#[derive(Debug)]
pub(super) struct WebRtcMode {
    /// Sample rate of the output frames.
    pub(super) output_rate: u32,
    /// `session.started` waits for the channel.
    pub(super) channel_open: bool,
    /// Played-out frames waiting for [`FakeLive::poll_audio_frame`].
    pub(super) frames: VecDeque<AudioFrame>,
    /// Sample rate of the VAD window being filled.
    input_rate: u32,
}

impl WebRtcMode {
    /// Queues one played-out frame, dropping the oldest past the cap.
    pub(super) fn push_frame(&mut self, at: Instant, samples: Vec<i16>, speech: SpeechSpan) {
        if self.frames.len() >= MAX_QUEUED_FRAMES {
            self.frames.pop_front();
        }
        self.frames.push_back(AudioFrame {
            at,
            samples,
            speech: Some(speech),
        });
    }
}

impl FakeLive {
    /// A brain for one WebRTC session created at `now` with the creation request's `session`
    /// (a `MediaSessionConfig`), under the id `session_id`. Output audio comes out as 20 ms
    /// frames at `output_rate_hz` (8000 to 48000; 24000 when outside);
    /// [`LiveScript::audio_chunk_ms`] does not apply.
    ///
    /// The session's clock (expiry, scripted closes and errors) starts now; `session.started`
    /// goes out when the data channel opens.
    ///
    /// # Errors
    /// The `error` fields of a 400 answer when `session` is invalid: what `session.start` would
    /// refuse, and `audio.format`, which WebRTC negotiates in the SDP.
    pub fn new_webrtc(
        now: Instant,
        script: LiveScript,
        session: &Value,
        output_rate_hz: u32,
        session_id: &str,
    ) -> Result<Self, SessionRefusal> {
        let mut fake = Self::new(script);
        fake.report.session_start = Some(session.clone());
        let accepted = fake
            .check_config(session, true)
            .map_err(|r| SessionRefusal {
                code: r.code.to_owned(),
                param: r.param,
                message: r.message,
            })?;
        fake.accept(accepted, session_id.to_owned());
        let output_rate =
            if (8000..=48000).contains(&output_rate_hz) && output_rate_hz.is_multiple_of(50) {
                output_rate_hz
            } else {
                24000
            };
        fake.webrtc = Some(WebRtcMode {
            output_rate,
            channel_open: false,
            frames: VecDeque::new(),
            input_rate: 0,
        });
        fake.open(now);
        Ok(fake)
    }

    /// WebRTC mode: the data channel opened, so `session.started` goes out (the first event
    /// from [`poll_output`](Self::poll_output)) and the output audio clock starts. A second
    /// call, or one after the session ended, changes nothing.
    pub fn handle_channel_open(&mut self, now: Instant) {
        let now = self.clamp(now);
        let Some(w) = &mut self.webrtc else {
            self.violate("handle_channel_open outside WebRTC mode".into());
            return;
        };
        if w.channel_open {
            return;
        }
        w.channel_open = true;
        self.run_due(now);
        if self.conn == Conn::Open {
            self.begin(now, None);
        }
    }

    /// WebRTC mode: caller audio decoded from RTP, mono at `rate_hz`. It counts as input
    /// audio (2 bytes a sample in [`LiveReport::input_audio_bytes`](super::LiveReport)), closes
    /// input gaps and feeds the VAD in 20 ms windows. Ignored before `session.started` and after
    /// `session.close`; ignored with a violation in WebSocket mode.
    pub fn handle_input_samples(&mut self, now: Instant, samples: &[i16], rate_hz: u32) {
        let now = self.clamp(now);
        if self.webrtc.is_none() {
            self.violate("handle_input_samples outside WebRTC mode".into());
            return;
        }
        self.run_due(now);
        if self.conn != Conn::Started || self.closing || rate_hz < 1000 || samples.is_empty() {
            return;
        }
        let at = self.since(now);
        let r = &mut self.report;
        r.input_audio_bytes += 2 * samples.len() as u64;
        r.input_audio_ms += samples.len() as f64 * 1000.0 / f64::from(rate_hz);
        if self.script.record_input_audio {
            r.input_audio
                .extend(samples.iter().flat_map(|s| s.to_le_bytes()));
        }
        if r.first_input_at.is_none() {
            r.first_input_at = Some(at);
        } else {
            self.end_input_gap(now);
        }
        self.last_append_at = Some(now);
        if let Some(w) = &mut self.webrtc
            && w.input_rate != rate_hz
        {
            w.input_rate = rate_hz;
            self.window.clear();
        }
        if self.muted {
            let silence = vec![0i16; samples.len()];
            self.feed_vad(now, &silence, rate_hz);
        } else {
            self.feed_vad(now, samples, rate_hz);
        }
    }

    /// WebRTC mode: the next 20 ms frame of output audio (speech or silence), in time order;
    /// `None` when none is waiting (always in WebSocket mode). Frames appear at
    /// [`handle_timeout`](Self::handle_timeout) as they fall due, one every 20 ms from
    /// `session.started` until the session ends; at most 5 s of them wait.
    #[must_use]
    pub fn poll_audio_frame(&mut self) -> Option<AudioFrame> {
        self.webrtc.as_mut()?.frames.pop_front()
    }

    /// WebRTC mode: the sample rate of [`poll_audio_frame`](Self::poll_audio_frame)'s frames.
    pub fn output_rate_hz(&self) -> Option<u32> {
        self.webrtc.as_ref().map(|w| w.output_rate)
    }

    /// Whether this fake serves a WebRTC session ([`new_webrtc`](Self::new_webrtc)).
    pub fn is_webrtc(&self) -> bool {
        self.webrtc.is_some()
    }

    /// The session resource (`session.started`'s `session`): the WebRTC creation answers with
    /// it.
    pub fn session_resource(&self) -> &Value {
        &self.session
    }

    /// WebRTC mode: the peer connection died under the session (consent lost, no close):
    /// nothing more goes out, and the report says when in
    /// [`LiveReport::transport_lost_at`](super::LiveReport).
    pub fn handle_transport_lost(&mut self, now: Instant) {
        let now = self.clamp(now);
        if !self.is_open() {
            return;
        }
        self.end_input_gap(now);
        let at = self.since(now);
        self.report.transport_lost_at = Some(at);
        self.report.socket_closed_at = Some(at);
        self.conn = Conn::Closed;
        self.timers.clear();
        self.out.clear();
        self.speaking = None;
        self.queued_speech.clear();
        if let Some(w) = &mut self.webrtc {
            w.frames.clear();
        }
    }

    /// WebRTC mode: events that do not belong on the data channel.
    pub(super) fn check_webrtc_event(&self, ty: &str) -> Handled {
        match ty {
            "session.start" => Err(Refusal::new(
                "session_already_started",
                "type",
                "The HTTP request started this WebRTC session: do not send session.start.",
            )),
            "session.input_audio.append" => Err(Refusal::new(
                "invalid_value",
                "type",
                "session.input_audio.append is for the WebSocket; WebRTC audio goes over RTP.",
            )),
            _ => Ok(()),
        }
    }
}
