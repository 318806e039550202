//! Opus at the phone's rate: mono, 20 ms frames, VOIP mode, in-band FEC, over libopus.
//!
//! [`OpusEncoder`] and [`OpusDecoder`] wrap the `opus` crate (libopus 1.6, linked statically).
//! Opus runs natively at 8, 16, 24 and 48 kHz, so the phone's rate goes straight in and out with
//! no resampler on this leg. Both types are `Send`, deterministic (the same input gives the same
//! packets), allocate only when they are made, and never panic: every failure, including any
//! byte string fed to the decoder, comes back as an [`OpusError`].
//!
//! Loss: on a clean path the encoder runs lean (complexity [`COMPLEXITY_CLEAN`], no FEC). Once
//! the receiver reports loss, [`OpusEncoder::set_expected_loss`] turns on in-band forward error
//! correction (a low-rate copy of each frame rides in the next packet) at complexity
//! [`COMPLEXITY_FEC`], which costs about twice the CPU. When a packet is lost,
//! [`OpusDecoder::conceal`] rebuilds the gap from the FEC in the packet that follows it, or by
//! packet-loss concealment (PLC) when there is none.

use super::FRAME_MS;

/// An Opus failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("opus: {0}")]
pub struct OpusError(pub String);

impl OpusError {
    fn lib(what: &str, e: opus::Error) -> Self {
        OpusError(format!("{what}: {e}"))
    }
}

/// Sample rates the encoder and decoder accept.
pub const RATES_HZ: [u32; 4] = [8_000, 16_000, 24_000, 48_000];

/// Capacity of the encoder's packet buffer: one MTU. A 20 ms voice packet at the rates set here
/// is well under 100 bytes.
pub const MAX_ENCODED_BYTES: usize = 1500;

/// Longest packet [`OpusDecoder::decode`] takes: 48 frames of 1275 bytes (the most an Opus packet
/// can carry, RFC 6716 §3.2.5) plus framing. Anything longer is refused without reaching libopus.
pub const MAX_PACKET_BYTES: usize = 48 * 1275 + 2 + 48 * 2;

/// Longest audio one Opus packet can hold, in milliseconds (RFC 6716 §3.2.5).
const MAX_PACKET_MS: usize = 120;

/// The highest expected loss the FEC is tuned for, in percent (libopus gains little above it).
pub const MAX_EXPECTED_LOSS_PERCENT: u8 = 25;

/// The lowest expected loss FEC is tuned for once any loss is seen, in percent. Below about
/// 10 % libopus writes FEC only when the bitrate clears its threshold for the bandwidth
/// (`fec_thresholds` in `opus_encoder.c`): at 24 kbit/s wideband, 5 % gets none; at 10 % it
/// narrows the bandwidth until the FEC copy fits.
pub const MIN_FEC_LOSS_PERCENT: u8 = 10;

/// Encoder complexity (0 to 10) with no loss reported: SILK's plain noise-shaping quantiser,
/// about half the encoding time of [`COMPLEXITY_FEC`] (the delayed-decision quantiser).
pub const COMPLEXITY_CLEAN: i32 = 1;

/// Encoder complexity while FEC is on. At 0 and 1 libopus counts the plain quantiser as 20 %
/// fewer effective bits and, at these bitrates, then declines to write the FEC copy (the
/// `fec_thresholds` of `opus_encoder.c`); 2 is the lowest that writes it.
pub const COMPLEXITY_FEC: i32 = 2;

/// Target bitrate for speech at `rate_hz`, in bit/s: narrowband 20, wideband 24, super-wideband
/// and fullband 32 kbit/s. These leave room for the FEC copy at 10 % expected loss.
pub fn bitrate_for(rate_hz: u32) -> i32 {
    match rate_hz {
        0..=8_000 => 20_000,
        8_001..=16_000 => 24_000,
        _ => 32_000,
    }
}

/// Checks `rate_hz` against [`RATES_HZ`] and returns the samples in one 20 ms frame.
fn frame_samples_for(rate_hz: u32) -> Result<usize, OpusError> {
    if RATES_HZ.contains(&rate_hz) {
        Ok((rate_hz / 1000 * FRAME_MS) as usize)
    } else {
        Err(OpusError(format!(
            "unsupported rate {rate_hz} Hz (want 8000, 16000, 24000 or 48000)"
        )))
    }
}

/// Mono Opus encoder at 8, 16, 24 or 48 kHz, 20 ms frames, VOIP, in-band FEC.
///
/// Settings: [`opus::Application::Voip`], voice signal hint, VBR, bitrate [`bitrate_for`] the
/// rate, DTX off (every frame yields a packet). It starts lean (no expected loss, no FEC,
/// complexity [`COMPLEXITY_CLEAN`]); see [`set_expected_loss`](Self::set_expected_loss).
pub struct OpusEncoder {
    inner: opus::Encoder,
    rate_hz: u32,
    /// The loss the FEC is tuned for, in percent; 0 when FEC is off.
    expected_loss: u8,
    frame_samples: usize,
    /// Scratch for libopus's output, [`MAX_ENCODED_BYTES`] long; copied into the caller's `out`.
    packet: Box<[u8]>,
}

impl std::fmt::Debug for OpusEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusEncoder")
            .field("rate_hz", &self.rate_hz)
            .field("bitrate", &bitrate_for(self.rate_hz))
            .field("expected_loss", &self.expected_loss)
            .finish()
    }
}

impl OpusEncoder {
    /// An encoder for `rate_hz` (8000, 16000, 24000 or 48000).
    ///
    /// # Errors
    /// Any other rate, or a libopus failure while configuring.
    pub fn new(rate_hz: u32) -> Result<Self, OpusError> {
        let frame_samples = frame_samples_for(rate_hz)?;
        let mut inner = opus::Encoder::new(rate_hz, opus::Channels::Mono, opus::Application::Voip)
            .map_err(|e| OpusError::lib("create encoder", e))?;
        let cfg = |e| OpusError::lib("configure encoder", e);
        inner
            .set_bitrate(opus::Bitrate::Bits(bitrate_for(rate_hz)))
            .map_err(cfg)?;
        inner.set_complexity(COMPLEXITY_CLEAN).map_err(cfg)?;
        inner.set_signal(opus::Signal::Voice).map_err(cfg)?;
        inner.set_vbr(true).map_err(cfg)?;
        inner.set_inband_fec(false).map_err(cfg)?;
        inner.set_packet_loss_perc(0).map_err(cfg)?;
        inner.set_dtx(false).map_err(cfg)?;
        Ok(Self {
            inner,
            rate_hz,
            expected_loss: 0,
            frame_samples,
            packet: vec![0; MAX_ENCODED_BYTES].into_boxed_slice(),
        })
    }

    /// Tunes the encoder for `percent` packet loss: 0 turns FEC off and the complexity down to
    /// [`COMPLEXITY_CLEAN`]; anything else turns FEC on at [`COMPLEXITY_FEC`], tuned for the
    /// loss clamped to [`MIN_FEC_LOSS_PERCENT`]..=[`MAX_EXPECTED_LOSS_PERCENT`]. Takes effect
    /// from the next frame.
    ///
    /// # Errors
    /// libopus refused a setting (the encoder keeps what it had).
    pub fn set_expected_loss(&mut self, percent: u8) -> Result<(), OpusError> {
        let percent = match percent {
            0 => 0,
            p => p.clamp(MIN_FEC_LOSS_PERCENT, MAX_EXPECTED_LOSS_PERCENT),
        };
        if percent == self.expected_loss {
            return Ok(());
        }
        let cfg = |e| OpusError::lib("configure encoder", e);
        let fec = percent > 0;
        let complexity = if fec {
            COMPLEXITY_FEC
        } else {
            COMPLEXITY_CLEAN
        };
        self.inner.set_complexity(complexity).map_err(cfg)?;
        self.inner.set_inband_fec(fec).map_err(cfg)?;
        self.inner
            .set_packet_loss_perc(i32::from(percent))
            .map_err(cfg)?;
        self.expected_loss = percent;
        Ok(())
    }

    /// The loss the encoder is tuned for, in percent; 0 when FEC is off.
    pub fn expected_loss(&self) -> u8 {
        self.expected_loss
    }

    /// The sample rate, in Hz.
    pub fn rate_hz(&self) -> u32 {
        self.rate_hz
    }

    /// Samples in one 20 ms frame (`rate_hz / 50`), the only length [`encode`](Self::encode) takes.
    pub fn frame_samples(&self) -> usize {
        self.frame_samples
    }

    /// Encodes exactly 20 ms of samples, appending the packet to `out`.
    ///
    /// Allocates nothing apart from the growth of `out`.
    ///
    /// # Errors
    /// `pcm` is not [`frame_samples`](Self::frame_samples) long, or libopus fails.
    pub fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), OpusError> {
        if pcm.len() != self.frame_samples {
            return Err(OpusError(format!(
                "frame of {} samples, want {} (20 ms at {} Hz)",
                pcm.len(),
                self.frame_samples,
                self.rate_hz
            )));
        }
        let n = self
            .inner
            .encode(pcm, &mut self.packet)
            .map_err(|e| OpusError::lib("encode", e))?;
        let packet = self
            .packet
            .get(..n)
            .ok_or_else(|| OpusError(format!("encoder reported {n} bytes")))?;
        out.extend_from_slice(packet);
        Ok(())
    }
}

/// Mono Opus decoder at 8, 16, 24 or 48 kHz with loss concealment.
///
/// Decodes packets from any Opus encoder (any mode, bandwidth or frame size up to 120 ms);
/// libopus converts them to the decoder's rate.
pub struct OpusDecoder {
    inner: opus::Decoder,
    rate_hz: u32,
    frame_samples: usize,
    /// Scratch for libopus's output: 120 ms, the longest packet.
    pcm: Box<[i16]>,
}

impl std::fmt::Debug for OpusDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusDecoder")
            .field("rate_hz", &self.rate_hz)
            .finish()
    }
}

impl OpusDecoder {
    /// A decoder producing `rate_hz` samples (8000, 16000, 24000 or 48000).
    ///
    /// # Errors
    /// Any other rate, or a libopus failure.
    pub fn new(rate_hz: u32) -> Result<Self, OpusError> {
        let frame_samples = frame_samples_for(rate_hz)?;
        let inner = opus::Decoder::new(rate_hz, opus::Channels::Mono)
            .map_err(|e| OpusError::lib("create decoder", e))?;
        let max = rate_hz as usize / 1000 * MAX_PACKET_MS;
        Ok(Self {
            inner,
            rate_hz,
            frame_samples,
            pcm: vec![0; max].into_boxed_slice(),
        })
    }

    /// The sample rate, in Hz.
    pub fn rate_hz(&self) -> u32 {
        self.rate_hz
    }

    /// Samples in one 20 ms frame (`rate_hz / 50`), what [`conceal`](Self::conceal) produces.
    pub fn frame_samples(&self) -> usize {
        self.frame_samples
    }

    /// Decodes one packet, appending its samples to `out`; returns how many.
    ///
    /// A 20 ms packet gives [`frame_samples`](Self::frame_samples) samples; longer packets (up
    /// to 120 ms) give more. Allocates nothing apart from the growth of `out`.
    ///
    /// # Errors
    /// An empty packet (a lost one goes to [`conceal`](Self::conceal)), one longer than
    /// [`MAX_PACKET_BYTES`], or one libopus rejects as corrupt. `out` is left untouched.
    pub fn decode(&mut self, packet: &[u8], out: &mut Vec<i16>) -> Result<usize, OpusError> {
        if packet.is_empty() {
            return Err(OpusError("empty packet".into()));
        }
        if packet.len() > MAX_PACKET_BYTES {
            return Err(OpusError(format!(
                "packet of {} bytes, longer than any Opus packet",
                packet.len()
            )));
        }
        let n = self
            .inner
            .decode(packet, &mut self.pcm, false)
            .map_err(|e| OpusError::lib("decode", e))?;
        self.append(n, out)
    }

    /// Conceals one lost 20 ms frame, appending [`frame_samples`](Self::frame_samples) samples.
    ///
    /// With `next`, the packet that followed the lost one, the frame is rebuilt from that
    /// packet's in-band FEC. libopus falls back to PLC by itself when `next` carries no FEC, and
    /// so does this method when `next` is empty, oversized or corrupt. Without `next`, plain PLC
    /// extrapolates from the audio decoded so far.
    ///
    /// This does not consume `next`: pass it to [`decode`](Self::decode) afterwards as usual.
    ///
    /// # Errors
    /// Only if libopus fails to conceal, which it does not for a valid decoder.
    pub fn conceal(&mut self, next: Option<&[u8]>, out: &mut Vec<i16>) -> Result<usize, OpusError> {
        let frame = self.frame_samples;
        let Some(buf) = self.pcm.get_mut(..frame) else {
            return Err(OpusError("frame buffer too small".into()));
        };
        if let Some(next) = next.filter(|p| !p.is_empty() && p.len() <= MAX_PACKET_BYTES)
            && let Ok(n) = self.inner.decode(next, buf, true)
        {
            return self.append(n, out);
        }
        let n = self
            .inner
            .decode(&[], buf, false)
            .map_err(|e| OpusError::lib("conceal", e))?;
        self.append(n, out)
    }

    /// Appends the first `n` decoded samples to `out`.
    fn append(&self, n: usize, out: &mut Vec<i16>) -> Result<usize, OpusError> {
        let samples = self
            .pcm
            .get(..n)
            .ok_or_else(|| OpusError(format!("decoder reported {n} samples")))?;
        out.extend_from_slice(samples);
        Ok(n)
    }
}

/// Committed speech clips (see `core/testdata/README.md`), compiled in so nothing reads a file
/// at run time. For tests and the simulation.
#[cfg(any(test, feature = "sim"))]
pub mod clips {
    /// One clip: raw 8 kHz mono signed 16-bit little-endian PCM and what it says.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Clip {
        /// File name under `core/testdata/`.
        pub name: &'static str,
        /// The words spoken.
        pub text: &'static str,
        /// The raw bytes (`.s16le`).
        pub bytes: &'static [u8],
    }

    /// Sample rate of every clip, in Hz.
    pub const RATE_HZ: u32 = 8_000;

    /// A caller (espeak-ng `en-us`): "Hi, I'd like to check on my order, number four two one
    /// seven." 4.43 s.
    pub const CALLER_ORDER: Clip = Clip {
        name: "caller_order_8k.s16le",
        text: "Hi, I'd like to check on my order, number four two one seven.",
        bytes: include_bytes!("../../testdata/caller_order_8k.s16le"),
    };

    /// An assistant (espeak-ng `en-us+f3`): "Sure, let me look that up for you. One moment
    /// please." 3.78 s.
    pub const ASSISTANT_LOOKUP: Clip = Clip {
        name: "assistant_lookup_8k.s16le",
        text: "Sure, let me look that up for you. One moment please.",
        bytes: include_bytes!("../../testdata/assistant_lookup_8k.s16le"),
    };

    /// A short caller reply (espeak-ng `en-gb`): "Yes, that's right. Thank you." 2.76 s.
    pub const CALLER_YES: Clip = Clip {
        name: "caller_yes_8k.s16le",
        text: "Yes, that's right. Thank you.",
        bytes: include_bytes!("../../testdata/caller_yes_8k.s16le"),
    };

    /// Every clip.
    pub const ALL: [Clip; 3] = [CALLER_ORDER, ASSISTANT_LOOKUP, CALLER_YES];

    impl Clip {
        /// The samples at [`RATE_HZ`].
        pub fn samples(&self) -> Vec<i16> {
            self.bytes
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                .collect()
        }

        /// Length in 20 ms frames, a trailing partial frame included.
        pub fn frames(&self) -> usize {
            (self.bytes.len() / 2).div_ceil(super::super::FRAME_MS as usize * 8)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::clips::{ALL, CALLER_ORDER, Clip};
    use super::*;
    use crate::audio::resample::Resampler;

    /// `clip` at `rate_hz`, upsampled from 8 kHz with the project's resampler: the input is
    /// padded to whole 20 ms chunks, rubato's fixed delay is cut from the front and 100 ms of
    /// silence flushes the tail, so the result lines up with the clip and has the same length.
    fn clip_at(clip: Clip, rate_hz: u32) -> Vec<i16> {
        let mut pcm = clip.samples();
        if rate_hz == clips::RATE_HZ {
            return pcm;
        }
        let want = pcm.len() * (rate_hz / clips::RATE_HZ) as usize;
        pcm.resize(pcm.len().div_ceil(160) * 160, 0);
        let mut r = Resampler::new(clips::RATE_HZ, rate_hz).expect("rates");
        let mut up = Vec::new();
        r.process(&pcm, &mut up);
        let delay = r.delay_samples();
        r.process(&[0; 800], &mut up);
        up.into_iter().skip(delay).take(want).collect()
    }

    /// Splits `pcm` into 20 ms frames, zero-padding the last.
    fn frames(pcm: &[i16], frame: usize) -> Vec<Vec<i16>> {
        pcm.chunks(frame)
            .map(|c| {
                let mut f = c.to_vec();
                f.resize(frame, 0);
                f
            })
            .collect()
    }

    fn encode_all(rate_hz: u32, pcm: &[i16]) -> Vec<Vec<u8>> {
        encode_with_loss(rate_hz, pcm, |_| 0)
    }

    /// Encodes `pcm`, tuning the encoder for `loss(frame index)` percent before each frame.
    fn encode_with_loss(rate_hz: u32, pcm: &[i16], loss: impl Fn(usize) -> u8) -> Vec<Vec<u8>> {
        let mut enc = OpusEncoder::new(rate_hz).expect("encoder");
        frames(pcm, enc.frame_samples())
            .iter()
            .enumerate()
            .map(|(i, f)| {
                enc.set_expected_loss(loss(i)).expect("tune");
                let mut p = Vec::new();
                enc.encode(f, &mut p).expect("encode");
                p
            })
            .collect()
    }

    fn decode_all(rate_hz: u32, packets: &[Vec<u8>]) -> Vec<i16> {
        let mut dec = OpusDecoder::new(rate_hz).expect("decoder");
        let mut out = Vec::new();
        for p in packets {
            let n = dec.decode(p, &mut out).expect("decode");
            assert_eq!(n, dec.frame_samples());
        }
        out
    }

    fn energy(x: &[i16]) -> f64 {
        x.iter().map(|&s| f64::from(s) * f64::from(s)).sum()
    }

    /// Normalised cross-correlation of `a` with `b` delayed by `lag` (`b[i + lag]` against `a[i]`).
    fn ncc(a: &[i16], b: &[i16], lag: usize) -> f64 {
        let n = a.len().min(b.len().saturating_sub(lag));
        let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
        for i in 0..n {
            let (x, y) = (f64::from(a[i]), f64::from(b[i + lag]));
            ab += x * y;
            aa += x * x;
            bb += y * y;
        }
        if aa == 0.0 || bb == 0.0 {
            0.0
        } else {
            ab / (aa * bb).sqrt()
        }
    }

    /// The lag (up to 20 ms) that maximises the correlation of `decoded` against `original`,
    /// and that correlation over the whole clip. The search looks at the first second only (the
    /// clips speak from the start), which keeps it quick in debug builds.
    fn best_lag(original: &[i16], decoded: &[i16], rate_hz: u32) -> (usize, f64) {
        let window = &original[..original.len().min(rate_hz as usize)];
        let lag = (0..=rate_hz as usize / 50)
            .map(|lag| (lag, ncc(window, decoded, lag)))
            .fold((0, f64::MIN), |best, c| if c.1 > best.1 { c } else { best })
            .0;
        (lag, ncc(original, decoded, lag))
    }

    fn db(ratio: f64) -> f64 {
        10.0 * ratio.log10()
    }

    /// Round trip at `rate_hz`: energy ratio (dB) and correlation at the best lag.
    fn round_trip(rate_hz: u32, clip: Clip) -> (f64, f64, usize) {
        let original = clip_at(clip, rate_hz);
        let packets = encode_all(rate_hz, &original);
        let decoded = decode_all(rate_hz, &packets);
        assert_eq!(decoded.len(), packets.len() * rate_hz as usize / 50);
        let (lag, corr) = best_lag(&original, &decoded, rate_hz);
        let n = original.len().min(decoded.len() - lag);
        let ratio = db(energy(&decoded[lag..lag + n]) / energy(&original[..n]));
        let sizes: Vec<usize> = packets.iter().map(Vec::len).collect();
        let total: usize = sizes.iter().sum();
        eprintln!(
            "{rate_hz} Hz {}: {} frames, packets {}..{} bytes (mean {:.1}, {:.1} kbit/s), \
             delay {lag} samples ({:.2} ms), energy ratio {ratio:+.2} dB, correlation {corr:.4}",
            clip.name,
            packets.len(),
            sizes.iter().min().unwrap_or(&0),
            sizes.iter().max().unwrap_or(&0),
            total as f64 / sizes.len() as f64,
            total as f64 * 8.0 / (sizes.len() as f64 * 20.0),
            lag as f64 * 1000.0 / f64::from(rate_hz),
        );
        (ratio, corr, lag)
    }

    #[test]
    fn clips_load() {
        for clip in ALL {
            let pcm = clip.samples();
            let secs = pcm.len() as f64 / f64::from(clips::RATE_HZ);
            assert!(
                clip.bytes.len() < 80_000 && secs < 5.0 && secs > 1.0,
                "{}",
                clip.name
            );
            let peak = pcm.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
            assert!(peak > 16_000, "{} peak {peak}", clip.name);
            assert_eq!(clip.frames(), pcm.len().div_ceil(160));
        }
    }

    #[test]
    fn round_trip_8k() {
        for clip in ALL {
            let (ratio, corr, _) = round_trip(8_000, clip);
            assert!(
                ratio.abs() < 1.5,
                "{}: energy ratio {ratio:.2} dB",
                clip.name
            );
            assert!(corr > 0.85, "{}: correlation {corr:.4}", clip.name);
        }
    }

    #[test]
    fn round_trip_16k_and_24k() {
        // 48 kHz on one clip only: its delay search is the slow part in debug builds.
        let cases = ALL
            .iter()
            .flat_map(|&clip| [(16_000, clip), (24_000, clip)])
            .chain([(48_000, CALLER_ORDER)]);
        for (rate, clip) in cases {
            let (ratio, corr, _) = round_trip(rate, clip);
            assert!(ratio.abs() < 1.5, "{rate} {}: {ratio:.2} dB", clip.name);
            assert!(corr > 0.85, "{rate} {}: correlation {corr:.4}", clip.name);
        }
    }

    #[test]
    fn packet_sizes() {
        let clip = CALLER_ORDER;
        for rate in [8_000, 16_000, 24_000, 48_000] {
            let packets = encode_all(rate, &clip_at(clip, rate));
            let mut sizes: Vec<usize> = packets.iter().map(Vec::len).collect();
            sizes.sort_unstable();
            let mean = sizes.iter().sum::<usize>() as f64 / sizes.len() as f64;
            let median = sizes[sizes.len() / 2];
            eprintln!(
                "{rate} Hz packet bytes per 20 ms: min {} median {median} mean {mean:.1} max {} \
                 (target {} kbit/s = {} bytes)",
                sizes[0],
                sizes[sizes.len() - 1],
                bitrate_for(rate) / 1000,
                bitrate_for(rate) / 8 / 50,
            );
            assert!(
                sizes[0] >= 1 && sizes[sizes.len() - 1] <= 300,
                "{rate}: {sizes:?}"
            );
            // Within a third of the target bitrate on average (VBR, silence is cheap).
            let target = f64::from(bitrate_for(rate)) / 8.0 / 50.0;
            assert!(
                mean < target * 1.34 && mean > target / 3.0,
                "{rate}: mean {mean}"
            );
        }
    }

    /// Decodes `packets` losing the frames in `lost`, concealing each with FEC or PLC.
    fn decode_with_losses(
        rate_hz: u32,
        packets: &[Vec<u8>],
        lost: &[usize],
        fec: bool,
    ) -> Vec<i16> {
        let mut dec = OpusDecoder::new(rate_hz).expect("decoder");
        let frame = dec.frame_samples();
        let mut out = Vec::new();
        for (i, p) in packets.iter().enumerate() {
            let before = out.len();
            let n = if lost.contains(&i) {
                let next = if fec {
                    packets.get(i + 1).map(Vec::as_slice)
                } else {
                    None
                };
                dec.conceal(next, &mut out).expect("conceal")
            } else {
                dec.decode(p, &mut out).expect("decode")
            };
            assert_eq!(n, frame);
            assert_eq!(out.len(), before + frame);
        }
        out
    }

    /// How FEC and PLC rebuild lost speech frames of `packets` (encoded from `original`):
    /// frames lost, mean correlation with the original for each, frames where FEC did better.
    fn fec_against_plc(
        rate: u32,
        original: &[i16],
        packets: &[Vec<u8>],
        lost: &[usize],
    ) -> (usize, f64, f64, usize) {
        let frame = rate as usize / 50;
        let (lag, _) = best_lag(original, &decode_all(rate, packets), rate);
        let fec = decode_with_losses(rate, packets, lost, true);
        let plc = decode_with_losses(rate, packets, lost, false);
        assert_eq!(fec.len(), packets.len() * frame);
        assert_eq!(plc.len(), packets.len() * frame);
        let (mut n, mut fec_sum, mut plc_sum, mut fec_wins) = (0, 0.0, 0.0, 0);
        for &k in lost {
            // Decoded sample j is original sample j - lag.
            let start = k * frame;
            let Some(reference) = start
                .checked_sub(lag)
                .and_then(|s| original.get(s..s + frame))
            else {
                continue;
            };
            // Speech only: RMS above 1000 (about -30 dBFS).
            if energy(reference) / (frame as f64) < 1e6 {
                continue;
            }
            let f = ncc(reference, &fec[start..start + frame], 0);
            let p = ncc(reference, &plc[start..start + frame], 0);
            n += 1;
            fec_sum += f;
            plc_sum += p;
            fec_wins += usize::from(f > p);
        }
        (n, fec_sum / n as f64, plc_sum / n as f64, fec_wins)
    }

    /// One packet in seven lost, each loss isolated (the next packet always arrives).
    fn isolated_losses(from: usize, packets: usize) -> Vec<usize> {
        (from..packets - 1).step_by(7).collect()
    }

    #[test]
    fn fec_beats_plc_for_a_lost_packet() {
        for rate in [8_000, 16_000, 24_000] {
            let original = clip_at(CALLER_ORDER, rate);
            let packets = encode_with_loss(rate, &original, |_| 10);
            let lost = isolated_losses(3, packets.len());
            let (n, f, p, fec_wins) = fec_against_plc(rate, &original, &packets, &lost);
            eprintln!(
                "{rate} Hz: {n} lost speech frames, mean correlation with the original: \
                 FEC {f:.3}, PLC {p:.3}; FEC better in {fec_wins}/{n}"
            );
            assert!(n >= 10, "{rate}: only {n} lost speech frames");
            assert!(f > p + 0.1, "{rate}: FEC {f:.3} vs PLC {p:.3}");
            assert!(
                fec_wins * 4 >= n * 3,
                "{rate}: FEC better in only {fec_wins}/{n}"
            );
        }
    }

    #[test]
    fn a_lean_encoder_writes_no_fec_until_loss_is_expected() {
        for rate in [8_000, 16_000] {
            let original = clip_at(CALLER_ORDER, rate);
            let lean = encode_all(rate, &original);
            let lost = isolated_losses(3, lean.len());
            let (n, f, p, _) = fec_against_plc(rate, &original, &lean, &lost);
            assert!(n >= 10, "{rate}: only {n} lost speech frames");
            assert!(
                (f - p).abs() < 1e-9,
                "{rate}: lean FEC {f:.3} vs PLC {p:.3}"
            );
            // Loss reported from the middle on: the losses after the switch get FEC.
            let half = lean.len() / 2;
            let switched = encode_with_loss(rate, &original, |i| if i < half { 0 } else { 5 });
            assert_eq!(switched[..half], lean[..half], "{rate}: before the switch");
            let lost = isolated_losses(half + 2, switched.len());
            let (n, f, p, wins) = fec_against_plc(rate, &original, &switched, &lost);
            eprintln!("{rate} Hz: {n} lost after the switch: FEC {f:.3}, PLC {p:.3}, {wins}/{n}");
            assert!(
                n >= 5,
                "{rate}: only {n} lost speech frames after the switch"
            );
            assert!(
                f > p + 0.05,
                "{rate}: after the switch FEC {f:.3} vs PLC {p:.3}"
            );
            assert!(wins * 4 >= n * 3, "{rate}: FEC better in only {wins}/{n}");
            // And back: lean again, no FEC.
            let back = encode_with_loss(rate, &original, |i| if i < half { 5 } else { 0 });
            let lost = isolated_losses(half + 2, back.len());
            let (_, f, p, _) = fec_against_plc(rate, &original, &back, &lost);
            assert!(
                (f - p).abs() < 1e-9,
                "{rate}: FEC off again {f:.3} vs PLC {p:.3}"
            );
        }
    }

    #[test]
    fn expected_loss_is_capped_and_reported() {
        let mut enc = OpusEncoder::new(8_000).expect("encoder");
        assert_eq!(enc.expected_loss(), 0);
        enc.set_expected_loss(1).expect("tune");
        assert_eq!(enc.expected_loss(), MIN_FEC_LOSS_PERCENT);
        enc.set_expected_loss(17).expect("tune");
        assert_eq!(enc.expected_loss(), 17);
        enc.set_expected_loss(u8::MAX).expect("tune");
        assert_eq!(enc.expected_loss(), MAX_EXPECTED_LOSS_PERCENT);
        enc.set_expected_loss(0).expect("tune");
        assert_eq!(enc.expected_loss(), 0);
    }

    #[test]
    fn plc_keeps_length_and_recovers() {
        let original = CALLER_ORDER.samples();
        let packets = encode_all(8_000, &original);
        let mut dec = OpusDecoder::new(8_000).expect("decoder");
        let mut out = Vec::new();
        // Concealing before any packet, a burst of five losses, then packets again.
        assert_eq!(dec.conceal(None, &mut out), Ok(160));
        for p in &packets[..50] {
            dec.decode(p, &mut out).expect("decode");
        }
        for _ in 0..5 {
            assert_eq!(dec.conceal(None, &mut out), Ok(160));
        }
        for p in &packets[55..] {
            assert_eq!(dec.decode(p, &mut out), Ok(160));
        }
        assert_eq!(out.len(), (1 + packets.len()) * 160);
    }

    #[test]
    fn garbage_never_panics() {
        let mut rng = fastrand::Rng::with_seed(0x0b4b_a4a0);
        let good = encode_all(8_000, &CALLER_ORDER.samples());
        for rate in [8_000, 16_000, 24_000, 48_000] {
            let mut dec = OpusDecoder::new(rate).expect("decoder");
            let max = rate as usize / 1000 * MAX_PACKET_MS;
            let mut out = Vec::new();
            let check = |dec: &mut OpusDecoder, packet: &[u8], out: &mut Vec<i16>| {
                let before = out.len();
                match dec.decode(packet, out) {
                    Ok(n) => assert!(n <= max && out.len() == before + n),
                    Err(_) => assert_eq!(out.len(), before),
                }
            };
            assert!(dec.decode(&[], &mut out).is_err());
            assert!(
                dec.decode(&vec![0; MAX_PACKET_BYTES + 1], &mut out)
                    .is_err()
            );
            assert!(out.is_empty());
            let mut big = vec![0u8; 1500];
            for _ in 0..50 {
                rng.fill(&mut big);
                check(&mut dec, &big, &mut out);
            }
            for toc in 0..=255u8 {
                for len in [1, 2, 3, 5, 40] {
                    let mut p = vec![0u8; len];
                    rng.fill(&mut p);
                    p[0] = toc;
                    check(&mut dec, &p, &mut out);
                    // Code-3 packets with an extreme frame count / padding byte.
                    if len >= 2 {
                        p[1] = 0xff;
                        check(&mut dec, &p, &mut out);
                    }
                }
            }
            for _ in 0..5_000 {
                let mut p = vec![0u8; rng.usize(1..=120)];
                rng.fill(&mut p);
                check(&mut dec, &p, &mut out);
            }
            // Concealing with a garbage "next" packet still yields one frame.
            let frame = dec.frame_samples();
            for next in [&[][..], &big[..], &[0xff, 0xff, 0xff][..]] {
                assert_eq!(dec.conceal(Some(next), &mut out), Ok(frame));
            }
            // And the decoder still decodes real packets afterwards.
            for p in &good[..10] {
                assert_eq!(dec.decode(p, &mut out), Ok(frame));
            }
        }
    }

    #[test]
    fn wrong_frame_size_and_rate_are_errors() {
        for rate in [8_000, 16_000, 24_000, 48_000] {
            let mut enc = OpusEncoder::new(rate).expect("encoder");
            let frame = rate as usize / 50;
            assert_eq!(enc.frame_samples(), frame);
            let mut out = Vec::new();
            for len in [0, 1, frame - 1, frame + 1, frame / 2, frame * 2] {
                assert!(
                    enc.encode(&vec![0; len], &mut out).is_err(),
                    "{rate}: {len}"
                );
            }
            assert!(out.is_empty());
            enc.encode(&vec![0; frame], &mut out)
                .expect("a right-sized frame");
            assert!(!out.is_empty());
        }
        for rate in [
            0,
            1,
            7_999,
            11_025,
            12_000,
            22_050,
            32_000,
            44_100,
            96_000,
            u32::MAX,
        ] {
            assert!(OpusEncoder::new(rate).is_err(), "{rate}");
            assert!(OpusDecoder::new(rate).is_err(), "{rate}");
        }
    }

    #[test]
    fn encoding_is_deterministic() {
        for rate in [8_000, 16_000, 24_000] {
            let pcm = clip_at(ALL[1], rate);
            assert_eq!(encode_all(rate, &pcm), encode_all(rate, &pcm), "{rate}");
            let packets = encode_all(rate, &pcm);
            assert_eq!(
                decode_all(rate, &packets),
                decode_all(rate, &packets),
                "{rate}"
            );
        }
    }

    #[test]
    fn send_and_debug() {
        fn is_send<T: Send + std::fmt::Debug>() {}
        is_send::<OpusEncoder>();
        is_send::<OpusDecoder>();
        let enc = OpusEncoder::new(8_000).expect("encoder");
        let dec = OpusDecoder::new(16_000).expect("decoder");
        assert!(format!("{enc:?}").contains("8000"));
        assert!(format!("{dec:?}").contains("16000"));
    }
}
