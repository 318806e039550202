//! Audio between the phone leg and the WebRTC leg.
//!
//! When both sides speak the same G.711 law the bytes pass straight through (each direction on
//! its own: OpenAI may send Opus while we send PCMU). Otherwise the
//! caller's audio is decoded to PCM at the phone's rate and encoded as Opus at that same rate
//! (Opus takes 8, 16 and 24 kHz as they are), so only a G.711 answer on an L16 phone leg at
//! another rate needs the resampler.

use crate::audio::opus::{OpusDecoder, OpusEncoder, OpusError};
use crate::audio::resample::Resampler;
use crate::audio::{ByteOrder, PhoneCodec, g711, l16};
use crate::webrtc::rtc::RtpCodec;

/// Loss-free receiver reports in a row after which FEC is turned off again (with reports
/// every few seconds, tens of seconds of a clean path).
const CLEAN_REPORTS_BEFORE_FEC_OFF: u32 = 5;

/// The Opus encoder's FEC was turned on or off after OpenAI's receiver reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FecChange {
    pub(crate) enabled: bool,
    /// The loss the last report gave, in percent.
    pub(crate) loss_percent: u8,
}

/// The media converters of one WebRTC call.
#[derive(Debug)]
pub(crate) struct RtcMedia {
    phone: PhoneCodec,
    order: ByteOrder,
    /// The codec we send.
    codec: RtpCodec,
    encoder: Option<OpusEncoder>,
    decoder: Option<OpusDecoder>,
    /// G.711 at 8 kHz on an L16 phone leg at another rate.
    up: Option<Resampler>,
    down: Option<Resampler>,
    /// Loss-free receiver reports since the last lossy one.
    clean_reports: u32,
    /// Caller bytes not yet a whole 20 ms frame.
    pending: Vec<u8>,
    samples: Vec<i16>,
    resampled: Vec<i16>,
}

impl RtcMedia {
    pub(crate) fn new(
        phone: PhoneCodec,
        order: ByteOrder,
        codec: RtpCodec,
    ) -> Result<Self, OpusError> {
        let rate = phone.sample_rate();
        let encoder = match codec {
            RtpCodec::Opus => Some(OpusEncoder::new(rate)?),
            RtpCodec::Pcmu | RtpCodec::Pcma => None,
        };
        // OpenAI may answer with either codec whatever we send: keep a decoder ready.
        let decoder = Some(OpusDecoder::new(rate)?);
        let g711_needs_resampling = rate != 8000;
        let (up, down) = if g711_needs_resampling {
            let err = |_| OpusError(format!("cannot resample 8000 Hz to {rate} Hz"));
            (
                Some(Resampler::new(8000, rate).map_err(err)?),
                Some(Resampler::new(rate, 8000).map_err(err)?),
            )
        } else {
            (None, None)
        };
        Ok(RtcMedia {
            phone,
            order,
            codec,
            encoder,
            decoder,
            up,
            down,
            clean_reports: 0,
            pending: Vec::new(),
            samples: Vec::new(),
            resampled: Vec::new(),
        })
    }

    /// A receiver report from OpenAI on our audio: any loss turns the Opus encoder's FEC on
    /// (tuned for that loss), and [`CLEAN_REPORTS_BEFORE_FEC_OFF`] clean reports in a row turn
    /// it off again. A clean path never pays for FEC. Returns the change, if any.
    pub(crate) fn report_loss(&mut self, loss_percent: u8) -> Option<FecChange> {
        let encoder = self.encoder.as_mut()?;
        let was_on = encoder.expected_loss() > 0;
        let want = if loss_percent > 0 {
            self.clean_reports = 0;
            loss_percent
        } else {
            self.clean_reports = self.clean_reports.saturating_add(1);
            if was_on && self.clean_reports < CLEAN_REPORTS_BEFORE_FEC_OFF {
                encoder.expected_loss()
            } else {
                0
            }
        };
        if let Err(e) = encoder.set_expected_loss(want) {
            tracing::debug!(error = %e, "opus refused the loss setting");
        }
        let is_on = encoder.expected_loss() > 0;
        (is_on != was_on).then_some(FecChange {
            enabled: is_on,
            loss_percent,
        })
    }

    /// Caller audio (phone codec, any length) into whole 20 ms RTP payloads.
    pub(crate) fn encode_caller(&mut self, payload: &[u8], packets: &mut Vec<Vec<u8>>) {
        let frame = self.phone.frame_bytes();
        // Taken out while encoding so each frame is read in place, not copied first.
        let mut pending = std::mem::take(&mut self.pending);
        pending.extend_from_slice(payload);
        let mut frames = pending.chunks_exact(frame);
        for chunk in &mut frames {
            if let Some(packet) = self.encode_frame(chunk) {
                packets.push(packet);
            }
        }
        let whole = pending.len() - frames.remainder().len();
        pending.drain(..whole);
        self.pending = pending;
    }

    fn encode_frame(&mut self, frame: &[u8]) -> Option<Vec<u8>> {
        if passthrough(self.phone, self.codec) {
            return Some(frame.to_vec());
        }
        self.samples.clear();
        phone_to_samples(self.phone, self.order, frame, &mut self.samples);
        let mut packet = Vec::new();
        match self.codec {
            RtpCodec::Opus => {
                let encoder = self.encoder.as_mut()?;
                encoder.encode(&self.samples, &mut packet).ok()?;
            }
            RtpCodec::Pcmu | RtpCodec::Pcma => {
                let samples = match self.down.as_mut() {
                    Some(down) => {
                        self.resampled.clear();
                        down.process(&self.samples, &mut self.resampled);
                        &self.resampled
                    }
                    None => &self.samples,
                };
                if self.codec == RtpCodec::Pcmu {
                    g711::ulaw_encode_slice(samples, &mut packet);
                } else {
                    g711::alaw_encode_slice(samples, &mut packet);
                }
            }
        }
        Some(packet)
    }

    /// One RTP payload from OpenAI into phone-codec bytes appended to `out`; `lost_before`
    /// frames are concealed first. A payload that does not decode is concealed too.
    pub(crate) fn decode_model(
        &mut self,
        codec: RtpCodec,
        payload: &[u8],
        lost_before: u32,
        out: &mut Vec<u8>,
    ) {
        if passthrough(self.phone, codec) {
            // G.711 has no concealment: a lost frame is a short silence.
            for _ in 0..lost_before.min(5) {
                out.extend(std::iter::repeat_n(
                    self.phone.silence_byte(),
                    self.phone.frame_bytes(),
                ));
            }
            out.extend_from_slice(payload);
            return;
        }
        self.samples.clear();
        match codec {
            RtpCodec::Opus => {
                if let Some(decoder) = self.decoder.as_mut() {
                    for i in 0..lost_before.min(5) {
                        // The packet after the gap carries the last lost frame's FEC.
                        let next = (i + 1 == lost_before.min(5)).then_some(payload);
                        let _ = decoder.conceal(next, &mut self.samples);
                    }
                    if decoder.decode(payload, &mut self.samples).is_err() {
                        let _ = decoder.conceal(None, &mut self.samples);
                    }
                }
            }
            RtpCodec::Pcmu | RtpCodec::Pcma => {
                let mut g711_samples = Vec::with_capacity(payload.len());
                if codec == RtpCodec::Pcmu {
                    g711::ulaw_decode_slice(payload, &mut g711_samples);
                } else {
                    g711::alaw_decode_slice(payload, &mut g711_samples);
                }
                match self.up.as_mut() {
                    Some(up) => up.process(&g711_samples, &mut self.samples),
                    None => self.samples.extend_from_slice(&g711_samples),
                }
            }
        }
        samples_to_phone(self.phone, self.order, &self.samples, out);
    }
}

/// Whether RTP payloads in `codec` are already the phone's bytes.
fn passthrough(phone: PhoneCodec, codec: RtpCodec) -> bool {
    matches!(
        (phone, codec),
        (PhoneCodec::Pcmu, RtpCodec::Pcmu) | (PhoneCodec::Pcma, RtpCodec::Pcma)
    )
}

fn phone_to_samples(phone: PhoneCodec, order: ByteOrder, frame: &[u8], out: &mut Vec<i16>) {
    match phone {
        PhoneCodec::Pcmu => g711::ulaw_decode_slice(frame, out),
        PhoneCodec::Pcma => g711::alaw_decode_slice(frame, out),
        PhoneCodec::L16 { .. } => {
            // Whole frames are even in length; the phone leg refused odd payloads already.
            let _ = l16::decode(frame, order, out);
        }
    }
}

fn samples_to_phone(phone: PhoneCodec, order: ByteOrder, samples: &[i16], out: &mut Vec<u8>) {
    match phone {
        PhoneCodec::Pcmu => g711::ulaw_encode_slice(samples, out),
        PhoneCodec::Pcma => g711::alaw_encode_slice(samples, out),
        PhoneCodec::L16 { .. } => l16::encode(samples, order, out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opus_media() -> RtcMedia {
        RtcMedia::new(PhoneCodec::Pcmu, ByteOrder::Little, RtpCodec::Opus).expect("media")
    }

    fn change(enabled: bool, loss_percent: u8) -> Option<FecChange> {
        Some(FecChange {
            enabled,
            loss_percent,
        })
    }

    #[test]
    fn fec_turns_on_at_the_first_lossy_report_and_off_after_five_clean_ones() {
        let mut media = opus_media();
        assert_eq!(
            media.report_loss(0),
            None,
            "clean from the start: stays lean"
        );
        assert_eq!(media.report_loss(3), change(true, 3));
        assert_eq!(
            media.report_loss(12),
            None,
            "already on: retuned, not reported"
        );
        for _ in 0..CLEAN_REPORTS_BEFORE_FEC_OFF - 1 {
            assert_eq!(media.report_loss(0), None);
        }
        // A lossy report in between starts the count again.
        assert_eq!(media.report_loss(1), None);
        for _ in 0..CLEAN_REPORTS_BEFORE_FEC_OFF - 1 {
            assert_eq!(media.report_loss(0), None);
        }
        assert_eq!(media.report_loss(0), change(false, 0));
        assert_eq!(media.report_loss(0), None);
    }

    #[test]
    fn g711_sending_has_no_fec_to_switch() {
        let mut media =
            RtcMedia::new(PhoneCodec::Pcmu, ByteOrder::Little, RtpCodec::Pcmu).expect("media");
        assert_eq!(media.report_loss(50), None);
        assert_eq!(media.report_loss(0), None);
    }
}
