//! One call's peer connection: str0m's run loop as the answerer, RTP decoded into the brain
//! and the brain's frames encoded into paced RTP, events on the data channel both ways.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::channel::ChannelId;
use str0m::media::{MediaData, MediaTime, Mid, Pt};
use str0m::{Event, Input, Output, Rtc};

use super::brain::{Brain, BrainClose};
use super::opus_cache;
use super::{
    AudioCodec, CHANNEL_LABEL, CallRecord, Datagram, MAX_CONCEALED, MAX_TIMEOUT_REPEATS, since,
};
use crate::audio::g711;
use crate::audio::opus::{OpusDecoder, OpusEncoder};
use crate::sim::fake_realtime::{AudioFrame, FakeServerOutput};

/// After a Live brain ends its session, the client gets this long to read `session.closed`
/// (and close first) before the fake closes the peer connection.
const LIVE_CLOSE_GRACE: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CallState {
    /// Driving the peer connection.
    Live,
    /// Never connects, or consent lost, or closed: nothing goes in or out any more.
    Dead,
}

/// A peer connection that answered an offer, before it has a brain.
pub(super) struct Answered {
    pub(super) rtc: Rtc,
    /// The SDP answer.
    pub(super) answer: String,
    /// The audio section.
    pub(super) mid: Mid,
    /// The payload type the fake sends.
    pub(super) pt: Pt,
    pub(super) codec: AudioCodec,
    /// Opus only.
    pub(super) encoder: Option<OpusEncoder>,
    /// Opus only.
    pub(super) decoder: Option<OpusDecoder>,
}

impl Answered {
    /// The rate the fake sends at (see [`CallRecord::send_rate`]).
    pub(super) fn send_rate(&self) -> u32 {
        self.encoder
            .as_ref()
            .map_or(self.codec.rate(), OpusEncoder::rate_hz)
    }

    /// The rate the fake decodes the bridge's audio at (see [`CallRecord::receive_rate`]).
    pub(super) fn receive_rate(&self) -> u32 {
        self.decoder
            .as_ref()
            .map_or(self.codec.rate(), OpusDecoder::rate_hz)
    }
}

/// One call: its peer connection, its brain and its codecs.
pub(super) struct Call {
    pub(super) record: CallRecord,
    pub(super) rtc: Rtc,
    pub(super) brain: Brain,
    pub(super) state: CallState,
    mid: Mid,
    pt: Pt,
    channel: Option<ChannelId>,
    encoder: Option<OpusEncoder>,
    decoder: Option<OpusDecoder>,
    rtc_timeout: Option<Instant>,
    drop_after: Option<Duration>,
    drop_at: Option<Instant>,
    last_seq: Option<u64>,
    /// First frame instant and the last RTP timestamp written.
    rtp_clock: Option<(Instant, u64)>,
    connected: bool,
    /// The brain ended its session: close the peer connection then.
    close_at: Option<Instant>,
    /// Keep the G.711 payloads received in [`CallRecord::rtp_payload_in`].
    record_payloads: bool,
}

impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("call_id", &self.record.call_id)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Call {
    /// A call whose offer was `answered`; `record_input` keeps the G.711 payloads received.
    pub(super) fn new(
        record: CallRecord,
        answered: Answered,
        brain: Brain,
        state: CallState,
        drop_after: Option<Duration>,
        record_input: bool,
    ) -> Self {
        Call {
            record,
            rtc: answered.rtc,
            brain,
            state,
            mid: answered.mid,
            pt: answered.pt,
            channel: None,
            encoder: answered.encoder,
            decoder: answered.decoder,
            rtc_timeout: None,
            drop_after,
            drop_at: None,
            last_seq: None,
            rtp_clock: None,
            connected: false,
            close_at: None,
            record_payloads: record_input,
        }
    }

    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        if self.state != CallState::Live {
            return None;
        }
        [
            self.rtc_timeout,
            self.brain.poll_timeout(),
            self.drop_at,
            self.close_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub(super) fn on_timeout(
        &mut self,
        now: Instant,
        origin: Option<Instant>,
        out: &mut VecDeque<Datagram>,
    ) {
        if self.state != CallState::Live {
            return;
        }
        if self.drop_at.is_some_and(|t| t <= now) {
            // Consent lost: silence both ways, no close. The session ends server-side.
            self.drop(now, origin);
            return;
        }
        if self.close_at.is_some_and(|t| t <= now) {
            self.close_at = None;
            let _ = self.rtc.close();
        }
        if self.rtc_timeout.is_some_and(|t| t <= now) {
            let _ = self.rtc.handle_input(Input::Timeout(now));
        }
        self.brain.handle_timeout(now);
        self.pump_brain(now, origin);
        self.drain(now, origin, out);
    }

    /// The peer connection goes silent both ways without a close.
    fn drop(&mut self, now: Instant, origin: Option<Instant>) {
        self.record.dropped_at = Some(since(origin, now));
        self.brain.connection_lost(now);
        self.rtc.disconnect();
        self.state = CallState::Dead;
    }

    /// Drains the `Rtc` until it asks for a timeout in the future (str0m's run loop).
    pub(super) fn drain(
        &mut self,
        now: Instant,
        origin: Option<Instant>,
        out: &mut VecDeque<Datagram>,
    ) {
        let mut repeats = 0;
        while self.state == CallState::Live {
            if !self.rtc.is_alive() {
                self.end(now, origin);
                break;
            }
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) if t <= now && repeats < MAX_TIMEOUT_REPEATS => {
                    // The pitfall: a deadline at or before `now` wants `now` again.
                    repeats += 1;
                    let _ = self.rtc.handle_input(Input::Timeout(now));
                }
                Ok(Output::Timeout(t)) => {
                    let floor = now.checked_add(Duration::from_millis(1)).unwrap_or(now);
                    self.rtc_timeout = Some(if t <= now { floor } else { t });
                    break;
                }
                Ok(Output::Transmit(t)) => {
                    out.push_back((t.source, t.destination, Vec::from(t.contents)));
                }
                Ok(Output::Event(e)) => self.on_event(now, origin, e),
                Err(_) => {
                    self.rtc.disconnect();
                    self.end(now, origin);
                }
            }
        }
    }

    // str0m's `Event` is `#[non_exhaustive]`; everything not listed is of no interest here.
    #[allow(clippy::wildcard_enum_match_arm)]
    fn on_event(&mut self, now: Instant, origin: Option<Instant>, event: Event) {
        match event {
            Event::Connected => {
                self.connected = true;
                if self.record.connected_at.is_none() {
                    self.record.connected_at = Some(since(origin, now));
                    self.drop_at = self.drop_after.and_then(|d| now.checked_add(d));
                }
            }
            Event::ChannelOpen(id, label) => {
                if self.channel.is_some() {
                    let msg = format!("a second data channel {label:?}; only one is used");
                    self.record.violations.push(msg);
                    return;
                }
                if label != CHANNEL_LABEL {
                    let msg = format!("data channel label {label:?}, expected {CHANNEL_LABEL:?}");
                    self.record.violations.push(msg);
                }
                self.channel = Some(id);
                self.record.channel = Some((since(origin, now), label));
                self.brain.handle_channel_open(now);
                self.pump_brain(now, origin);
            }
            Event::ChannelData(data) => {
                if Some(data.id) != self.channel {
                    return;
                }
                self.record.channel_messages_in += 1;
                if data.binary {
                    let msg = "a binary message on the data channel; events are text".to_owned();
                    self.record.violations.push(msg);
                }
                // The brain answers what is not JSON with `error` and records it.
                let text = String::from_utf8_lossy(&data.data);
                self.brain.handle_text(now, &text);
                self.pump_brain(now, origin);
            }
            Event::ChannelClose(id) if Some(id) == self.channel => {
                self.brain.handle_closed(now);
            }
            Event::MediaData(data) => {
                self.on_media(now, &data);
                self.pump_brain(now, origin);
            }
            Event::Closed => {
                self.brain.handle_closed(now);
                self.end(now, origin);
            }
            _ => {}
        }
    }

    /// Decodes one RTP payload (concealing a gap before it) and feeds the brain.
    fn on_media(&mut self, now: Instant, data: &MediaData) {
        let Some(codec) = AudioCodec::of(data.params.spec().codec) else {
            self.record.rtp_bad += 1;
            return;
        };
        let first = **data.seq_range.start();
        let last = **data.seq_range.end();
        if self.last_seq.is_some_and(|prev| first <= prev) {
            self.record.rtp_late += 1;
            return;
        }
        if self.record_payloads && matches!(codec, AudioCodec::Pcmu | AudioCodec::Pcma) {
            self.record.rtp_payload_in.extend_from_slice(&data.data);
        }
        let lost = self
            .last_seq
            .map_or(0, |prev| first.saturating_sub(prev + 1))
            .min(MAX_CONCEALED);
        self.last_seq = Some(last);
        let rate = match (&self.decoder, codec) {
            (Some(decoder), AudioCodec::Opus) => decoder.rate_hz(),
            _ => codec.rate(),
        };
        let mut samples = Vec::new();
        for k in 0..lost {
            match (&mut self.decoder, codec) {
                (Some(dec), AudioCodec::Opus) => {
                    // The last lost frame can be rebuilt from this packet's in-band FEC.
                    let next = (k + 1 == lost).then_some(&data.data[..]);
                    let _ = dec.conceal(next, &mut samples);
                }
                _ => samples.extend(std::iter::repeat_n(0i16, (rate / 50) as usize)),
            }
            self.record.rtp_concealed += 1;
        }
        let decoded = match (&mut self.decoder, codec) {
            (Some(dec), AudioCodec::Opus) => dec.decode(&data.data, &mut samples).is_ok(),
            (_, AudioCodec::Pcmu) => {
                g711::ulaw_decode_slice(&data.data, &mut samples);
                true
            }
            (_, AudioCodec::Pcma) => {
                g711::alaw_decode_slice(&data.data, &mut samples);
                true
            }
            (None, AudioCodec::Opus) => false,
        };
        if decoded {
            self.record.rtp_in += 1;
            self.record.codec_in = Some(codec);
        } else {
            self.record.rtp_bad += 1;
        }
        self.brain.handle_input_samples(now, &samples, rate);
    }

    /// Moves the brain's server events onto the data channel and its frames onto RTP.
    fn pump_brain(&mut self, now: Instant, origin: Option<Instant>) {
        while let Some(output) = self.brain.poll_output() {
            let close = match output {
                FakeServerOutput::Text(text) => {
                    let sent = self
                        .channel
                        .and_then(|id| self.rtc.channel(id))
                        .is_some_and(|mut ch| ch.write(false, text.as_bytes()).unwrap_or(false));
                    if !sent {
                        self.record.events_unsent += 1;
                    }
                    continue;
                }
                FakeServerOutput::Close { code, .. } => self.brain.close_kind(code),
            };
            match close {
                // The session ended server-side (expiry, scripted drop): end the call.
                BrainClose::Now => {
                    let _ = self.rtc.close();
                    if self.record.closed_at.is_none() {
                        self.record.closed_at = Some(since(origin, now));
                    }
                }
                BrainClose::AfterGrace => {
                    if self.close_at.is_none() {
                        self.close_at = now.checked_add(LIVE_CLOSE_GRACE);
                    }
                }
                BrainClose::Drop => {
                    self.drop(now, origin);
                    return;
                }
            }
        }
        while let Some(frame) = self.brain.poll_audio_frame() {
            self.send_frame(&frame);
        }
    }

    fn send_frame(&mut self, frame: &AudioFrame) {
        if !self.connected || self.state != CallState::Live {
            self.record.frames_unsent += 1;
            return;
        }
        let codec = self.record.codec;
        let payload: Option<Arc<[u8]>> = match (&mut self.encoder, codec) {
            (Some(enc), AudioCodec::Opus) => opus_payload(enc, frame),
            (_, AudioCodec::Pcmu | AudioCodec::Pcma) => {
                let mut bytes = Vec::with_capacity(frame.samples.len());
                if codec == AudioCodec::Pcmu {
                    g711::ulaw_encode_slice(&frame.samples, &mut bytes);
                } else {
                    g711::alaw_encode_slice(&frame.samples, &mut bytes);
                }
                Some(bytes.into())
            }
            (None, AudioCodec::Opus) => None,
        };
        let (frequency, step) = codec.clock();
        let ts = match self.rtp_clock {
            None => {
                self.rtp_clock = Some((frame.at, 0));
                0
            }
            Some((first, last)) => {
                let elapsed = frame.at.saturating_duration_since(first);
                let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
                let ticks = micros.saturating_mul(u64::from(frequency.get())) / 1_000_000;
                let ts = ticks.max(last.saturating_add(step));
                self.rtp_clock = Some((first, ts));
                ts
            }
        };
        let written = payload.is_some_and(|payload| {
            self.rtc.writer(self.mid).is_some_and(|w| {
                w.write(self.pt, frame.at, MediaTime::new(ts, frequency), payload)
                    .is_ok()
            })
        });
        if written {
            self.record.rtp_out += 1;
            self.record.rtp_out_ms += 20;
        } else {
            self.record.frames_unsent += 1;
        }
    }

    /// Starts a local close (hangup or session end): close output still drains.
    pub(super) fn close(
        &mut self,
        now: Instant,
        origin: Option<Instant>,
        out: &mut VecDeque<Datagram>,
    ) {
        if self.state != CallState::Live {
            self.end(now, origin);
            return;
        }
        let _ = self.rtc.close();
        self.drain(now, origin, out);
    }

    fn end(&mut self, now: Instant, origin: Option<Instant>) {
        self.state = CallState::Dead;
        if self.record.closed_at.is_none() {
            self.record.closed_at = Some(since(origin, now));
        }
    }
}

/// One frame of model audio as an Opus packet: the packet encoded before for the same frame
/// when the brain says what the frame is, else the call's own encoder's. The brains build the
/// span beside the samples it describes; debug builds (the tests) check that it does.
fn opus_payload(encoder: &mut OpusEncoder, frame: &AudioFrame) -> Option<Arc<[u8]>> {
    let rate = encoder.rate_hz();
    if frame.samples.len() == encoder.frame_samples()
        && let Some(span) = frame.speech
        && let Ok(packet) = opus_cache::speech_packet(rate, span)
    {
        debug_assert!(
            span.matches(rate, &frame.samples),
            "a speech span that does not describe its frame"
        );
        return Some(packet);
    }
    let mut payload = Vec::new();
    encoder.encode(&frame.samples, &mut payload).ok()?;
    Some(payload.into())
}

/// The `a=mid` of the offer's first audio section.
pub(super) fn offer_audio_mid(sdp: &str) -> Option<Mid> {
    let mut in_audio = false;
    for line in sdp.lines() {
        let line = line.trim_end();
        if let Some(m) = line.strip_prefix("m=") {
            in_audio = m.starts_with("audio ");
        } else if in_audio && let Some(mid) = line.strip_prefix("a=mid:") {
            return Some(Mid::from(mid.trim()));
        }
    }
    None
}
