//! The model behind one WebRTC call: a Realtime or a Live fake in WebRTC mode, behind the few
//! hooks the peer connection needs.

use std::time::Instant;

use super::CallRecord;
use crate::sim::fake_live::FakeLive;
use crate::sim::fake_realtime::{AudioFrame, FakeRealtime, FakeServerOutput};

/// What the peer connection does when its brain closes the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BrainClose {
    /// Close the peer connection at once (Realtime: expiry, a scripted drop).
    Now,
    /// Close it after a grace period, so `session.closed` can be read (Live).
    AfterGrace,
    /// Go silent without a close (a Live scripted drop).
    Drop,
}

/// One call's brain.
#[derive(Debug)]
pub(super) enum Brain {
    /// `POST /v1/realtime/calls`.
    Realtime(Box<FakeRealtime>),
    /// `POST /v1/live/sessions`.
    Live(Box<FakeLive>),
}

impl Brain {
    pub(super) fn is_realtime(&self) -> bool {
        matches!(self, Brain::Realtime(_))
    }

    pub(super) fn set_origin(&mut self, origin: Instant) {
        match self {
            Brain::Realtime(b) => b.set_origin(origin),
            Brain::Live(b) => b.set_origin(origin),
        }
    }

    pub(super) fn handle_channel_open(&mut self, now: Instant) {
        match self {
            Brain::Realtime(b) => b.handle_channel_open(now),
            Brain::Live(b) => b.handle_channel_open(now),
        }
    }

    pub(super) fn handle_text(&mut self, now: Instant, text: &str) {
        match self {
            Brain::Realtime(b) => b.handle_text(now, text),
            Brain::Live(b) => b.handle_text(now, text),
        }
    }

    /// The client closed the channel or the peer connection.
    pub(super) fn handle_closed(&mut self, now: Instant) {
        match self {
            Brain::Realtime(b) => b.handle_closed(now),
            Brain::Live(b) => b.handle_closed(now),
        }
    }

    /// The peer connection died under the session (consent lost).
    pub(super) fn connection_lost(&mut self, now: Instant) {
        match self {
            Brain::Realtime(b) => b.handle_closed(now),
            Brain::Live(b) => b.handle_transport_lost(now),
        }
    }

    pub(super) fn handle_timeout(&mut self, now: Instant) {
        match self {
            Brain::Realtime(b) => b.handle_timeout(now),
            Brain::Live(b) => b.handle_timeout(now),
        }
    }

    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Brain::Realtime(b) => b.poll_timeout(),
            Brain::Live(b) => b.poll_timeout(),
        }
    }

    pub(super) fn handle_input_samples(&mut self, now: Instant, samples: &[i16], rate_hz: u32) {
        match self {
            Brain::Realtime(b) => b.handle_input_samples(now, samples, rate_hz),
            Brain::Live(b) => b.handle_input_samples(now, samples, rate_hz),
        }
    }

    pub(super) fn poll_output(&mut self) -> Option<FakeServerOutput> {
        match self {
            Brain::Realtime(b) => b.poll_output(),
            Brain::Live(b) => b.poll_output(),
        }
    }

    pub(super) fn poll_audio_frame(&mut self) -> Option<AudioFrame> {
        match self {
            Brain::Realtime(b) => b.poll_audio_frame(),
            Brain::Live(b) => b.poll_audio_frame(),
        }
    }

    /// What a `Close { code }` from the brain means for the peer connection.
    pub(super) fn close_kind(&self, code: u16) -> BrainClose {
        match self {
            Brain::Realtime(_) => BrainClose::Now,
            Brain::Live(_) if code == 1000 => BrainClose::AfterGrace,
            Brain::Live(_) => BrainClose::Drop,
        }
    }

    /// Copies the brain's report into the call's record.
    pub(super) fn report_into(&self, record: &mut CallRecord) {
        match self {
            Brain::Realtime(b) => record.realtime = b.report().clone(),
            Brain::Live(b) => record.live = Some(b.report().clone()),
        }
    }
}
