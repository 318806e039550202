//! Opus packets of the brains' speech signal, encoded once per thread and replayed.
//!
//! Every brain speaks [`speech_like`], which repeats each second, in 20 ms frames; nearly all of a
//! call's frames are whole frames at one phase of that second. Encoding each afresh was most of
//! the fake's cost, so the 50 frames of the second at a given phase are encoded once per thread,
//! in order, by an encoder that has already been through the second once (so the first frame's
//! packet follows the last one's, as in a call that keeps talking), and then replayed. A frame
//! the tables do not hold (a response's last, partial frame) is encoded by a fresh encoder right
//! after the two frames of signal before it, and kept. Silence is one packet, encoded after
//! silence.
//!
//! The packets are what the fake's own [`OpusEncoder`] makes (same rate, bitrate, complexity,
//! FEC): valid Opus that any decoder takes. What differs from encoding the call afresh is only
//! the encoder's memory where a replayed stretch meets another (speech after silence, say),
//! where the packet was made after the frames the signal has there rather than what the call
//! sent before; a decoder hears that as a small glitch, not a loss of level.
//!
//! Every packet depends only on what it encodes, never on what was asked for before, so a run is
//! the same whatever ran before it on the thread. The packets are shared ([`Arc`]): replaying one
//! allocates nothing.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use crate::audio::opus::{OpusEncoder, OpusError};
use crate::sim::speech::{SpeechSpan, speech_like};

/// Frames in the one-second period of [`speech_like`] (20 ms each).
const FRAMES_PER_PERIOD: u64 = 50;
/// Frames of signal a partial frame's encoder hears first.
const PRIMING_FRAMES: u64 = 2;
/// Tables kept per thread before all are dropped (each is one second of packets).
const MAX_TABLES: usize = 64;
/// Partial frames kept per thread before all are dropped.
const MAX_PARTIAL: usize = 4096;

/// One second of packets: `rate`, the voice (`voice % 5`, as [`speech_like`] picks it) and the
/// phase (the first frame's start, within a frame).
type TableKey = (u32, u32, u64);
/// A partial frame: `rate`, voice, start within the period, samples of speech.
type PartialKey = (u32, u32, u64, usize);

#[derive(Default)]
struct Cache {
    tables: HashMap<TableKey, Vec<Arc<[u8]>>>,
    partial: HashMap<PartialKey, Arc<[u8]>>,
    /// One packet of silence per rate.
    silence: HashMap<u32, Arc<[u8]>>,
}

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(Cache::default());
}

/// The Opus packet of one 20 ms frame at `rate_hz` whose samples are `span` (speech then
/// silence; all silence when `span.len` is 0).
///
/// # Errors
/// A rate Opus does not take, a span longer than a frame, or a libopus failure.
pub(super) fn speech_packet(rate_hz: u32, span: SpeechSpan) -> Result<Arc<[u8]>, OpusError> {
    let frame = u64::from(rate_hz / 50);
    let period = u64::from(rate_hz);
    if frame == 0 || span.len as u64 > frame {
        return Err(OpusError(format!(
            "a span of {} samples in a frame of {frame}",
            span.len
        )));
    }
    let voice = span.voice % 5;
    let at = span.start % period;
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if span.len == 0 {
            if let Some(packet) = cache.silence.get(&rate_hz) {
                return Ok(Arc::clone(packet));
            }
            let packet = silence(rate_hz)?;
            cache.silence.insert(rate_hz, Arc::clone(&packet));
            return Ok(packet);
        }
        if span.len as u64 == frame {
            let key = (rate_hz, voice, at % frame);
            let index = usize::try_from(at / frame).unwrap_or(usize::MAX);
            if let Some(packet) = cache.tables.get(&key).and_then(|t| t.get(index)) {
                return Ok(Arc::clone(packet));
            }
            let table = table(rate_hz, voice, at % frame)?;
            let packet = table
                .get(index)
                .cloned()
                .ok_or_else(|| OpusError(format!("no frame {index} in the table")))?;
            if cache.tables.len() >= MAX_TABLES {
                cache.tables.clear();
            }
            cache.tables.insert(key, table);
            return Ok(packet);
        }
        let key = (rate_hz, voice, at, span.len);
        if let Some(packet) = cache.partial.get(&key) {
            return Ok(Arc::clone(packet));
        }
        let packet = partial(rate_hz, voice, at, span.len)?;
        if cache.partial.len() >= MAX_PARTIAL {
            cache.partial.clear();
        }
        cache.partial.insert(key, Arc::clone(&packet));
        Ok(packet)
    })
}

/// The packets of the 50 whole frames starting at `phase`, `phase + frame`, … of one second,
/// encoded in order after a first pass through the same second.
fn table(rate_hz: u32, voice: u32, phase: u64) -> Result<Vec<Arc<[u8]>>, OpusError> {
    let mut encoder = OpusEncoder::new(rate_hz)?;
    let frame = encoder.frame_samples();
    let mut pcm = vec![0i16; frame];
    let mut packet = Vec::new();
    let mut packets = Vec::new();
    for pass in 0..2 {
        for k in 0..FRAMES_PER_PERIOD {
            speech_like(rate_hz, voice, phase + k * frame as u64, &mut pcm);
            packet.clear();
            encoder.encode(&pcm, &mut packet)?;
            if pass == 1 {
                packets.push(Arc::from(&packet[..]));
            }
        }
    }
    Ok(packets)
}

/// The packet of `len` samples of speech from `start`, then silence, encoded after the
/// [`PRIMING_FRAMES`] whole frames of signal before `start`.
fn partial(rate_hz: u32, voice: u32, start: u64, len: usize) -> Result<Arc<[u8]>, OpusError> {
    let mut encoder = OpusEncoder::new(rate_hz)?;
    let frame = encoder.frame_samples();
    let period = u64::from(rate_hz);
    let mut pcm = vec![0i16; frame];
    let mut packet = Vec::new();
    for k in (1..=PRIMING_FRAMES).rev() {
        let from = (start + PRIMING_FRAMES * period - k * frame as u64) % period;
        speech_like(rate_hz, voice, from, &mut pcm);
        packet.clear();
        encoder.encode(&pcm, &mut packet)?;
    }
    pcm.fill(0);
    speech_like(rate_hz, voice, start, &mut pcm[..len]);
    packet.clear();
    encoder.encode(&pcm, &mut packet)?;
    Ok(Arc::from(&packet[..]))
}

/// A packet of silence, encoded after [`PRIMING_FRAMES`] frames of silence.
fn silence(rate_hz: u32) -> Result<Arc<[u8]>, OpusError> {
    let mut encoder = OpusEncoder::new(rate_hz)?;
    let pcm = vec![0i16; encoder.frame_samples()];
    let mut packet = Vec::new();
    for _ in 0..=PRIMING_FRAMES {
        packet.clear();
        encoder.encode(&pcm, &mut packet)?;
    }
    Ok(Arc::from(&packet[..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::opus::OpusDecoder;
    use crate::sim::speech::rms;

    fn span(voice: u32, start: u64, len: usize) -> SpeechSpan {
        SpeechSpan { voice, start, len }
    }

    /// Decodes `packets` in order with one decoder and returns the 20 ms frames.
    fn decode(rate: u32, packets: &[Arc<[u8]>]) -> Vec<Vec<i16>> {
        let mut dec = OpusDecoder::new(rate).unwrap();
        packets
            .iter()
            .map(|p| {
                let mut out = Vec::new();
                dec.decode(p, &mut out).unwrap();
                out
            })
            .collect()
    }

    #[test]
    fn packets_depend_only_on_the_frame() {
        // Asked in another order, after other tables, the packets are the same bytes.
        let a: Vec<Arc<[u8]>> = (0..60)
            .map(|k| speech_packet(24000, span(3, k * 480, 480)).unwrap())
            .collect();
        CACHE.with(|c| *c.borrow_mut() = Cache::default());
        speech_packet(24000, span(3, 240, 480)).unwrap();
        speech_packet(24000, span(3, 960, 100)).unwrap();
        let b: Vec<Arc<[u8]>> = (0..60)
            .rev()
            .map(|k| speech_packet(24000, span(3, k * 480, 480)).unwrap())
            .rev()
            .collect();
        assert_eq!(a, b);
        // The period repeats: frame 50 is frame 0.
        assert_eq!(a[50], a[0]);
        assert_ne!(a[1], a[0]);
        let p = partial(24000, 3, 960, 100).unwrap();
        assert_eq!(speech_packet(24000, span(3, 24960, 100)).unwrap(), p);
    }

    #[test]
    fn replayed_packets_decode_to_speech_at_its_level() {
        for rate in [8000u32, 16000, 24000, 48000] {
            let frame = (rate / 50) as u64;
            // Three seconds of speech at one phase, a response's partial last frame, silence,
            // then speech at another phase: what a call's output looks like.
            let mut spans: Vec<SpeechSpan> = (0..150)
                .map(|k| span(1, k * frame, frame as usize))
                .collect();
            spans.push(span(1, 150 * frame, (frame / 3) as usize));
            spans.extend((0..25).map(|_| span(1, 0, 0)));
            spans.extend((0..100).map(|k| span(1, 7 + (151 + k) * frame, frame as usize)));
            let packets: Vec<Arc<[u8]>> = spans
                .iter()
                .map(|&s| speech_packet(rate, s).unwrap())
                .collect();
            let decoded = decode(rate, &packets);
            assert!(decoded.iter().all(|f| f.len() == frame as usize));
            // Past the first frames of each stretch of speech (the decoder catching up), every
            // frame is speech and the level is the signal's within 3 dB.
            for stretch in [10..150, 186..276] {
                let mut heard = Vec::new();
                let mut said = Vec::new();
                let mut original = vec![0i16; frame as usize];
                for i in stretch {
                    assert!(rms(&decoded[i]) > 300.0, "{rate} Hz frame {i}");
                    heard.extend_from_slice(&decoded[i]);
                    speech_like(rate, spans[i].voice, spans[i].start, &mut original);
                    said.extend_from_slice(&original);
                }
                let db = 20.0 * (rms(&heard) / rms(&said)).log10();
                assert!(db.abs() < 3.0, "{rate} Hz: {db:.1} dB");
            }
            // The replayed stretch sounds like the same signal encoded by one encoder going
            // through it: the waveforms match closely.
            let mut enc = crate::audio::opus::OpusEncoder::new(rate).unwrap();
            let mut original = vec![0i16; frame as usize];
            let continuous: Vec<Arc<[u8]>> = spans[..150]
                .iter()
                .map(|s| {
                    speech_like(rate, s.voice, s.start, &mut original);
                    let mut p = Vec::new();
                    enc.encode(&original, &mut p).unwrap();
                    Arc::from(p)
                })
                .collect();
            let reference = decode(rate, &continuous);
            let (a, b): (Vec<i16>, Vec<i16>) =
                (decoded[10..150].concat(), reference[10..150].concat());
            let dot = |x: &[i16], y: &[i16]| -> f64 {
                x.iter()
                    .zip(y)
                    .map(|(&p, &q)| f64::from(p) * f64::from(q))
                    .sum()
            };
            let ncc = dot(&a, &b) / (dot(&a, &a) * dot(&b, &b)).sqrt();
            assert!(ncc > 0.9, "{rate} Hz: correlation {ncc:.3}");
            // Silence, once the decoder has let the speech go.
            for (i, out) in decoded.iter().enumerate().take(176).skip(161) {
                assert!(rms(out) < 50.0, "{rate} Hz frame {i}: {}", rms(out));
            }
        }
    }

    #[test]
    fn spans_longer_than_a_frame_and_rates_opus_lacks_are_refused() {
        assert!(speech_packet(24000, span(0, 0, 481)).is_err());
        assert!(speech_packet(11025, span(0, 0, 10)).is_err());
    }
}
