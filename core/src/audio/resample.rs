//! Streaming mono resampler over rubato's synchronous FFT resampler.
//!
//! rubato processes fixed chunks (20 ms of input here, `FixedSync::Input`), while the media path
//! hands us whatever it has: a 20 ms phone frame or a model delta of any length. [`Resampler`]
//! bridges the two with an input buffer that never holds a full chunk: as soon as one is
//! complete it goes through rubato and the converted samples are appended to the caller's `out`.
//! All buffers are sized once from rubato's own maxima, so the steady state allocates nothing.

use audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler as _};

/// A rate pair the resampler cannot serve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot resample {from_hz} Hz to {to_hz} Hz")]
pub struct UnsupportedRates {
    /// Input rate.
    pub from_hz: u32,
    /// Output rate.
    pub to_hz: u32,
}

/// Lowest rate accepted on either side (narrowband telephony).
pub const MIN_RATE_HZ: u32 = 8_000;
/// Highest rate accepted on either side.
pub const MAX_RATE_HZ: u32 = 48_000;
/// The two rates must share a divisor this large, so rubato's FFT block stays within 20 ms
/// (a block is `rate / gcd` samples) and latency and memory stay bounded.
const MIN_GCD_HZ: u32 = 50;
/// rubato's chunk: 20 ms of input, the phone leg's frame.
const CHUNKS_PER_SECOND: u32 = 50;

/// A stateful mono resampler fed chunks of any length.
///
/// Deterministic (same input, same output), `Send`, and allocation-free per call apart from
/// the growth of the caller's `out`. Equal rates pass samples through untouched.
pub struct Resampler {
    from_hz: u32,
    to_hz: u32,
    /// `None` when the rates are equal.
    fft: Option<Box<FftStage>>,
}

/// rubato plus the buffers that feed it; boxed to keep `Resampler` small.
struct FftStage {
    rubato: Fft<f32>,
    /// Input waiting for a full rubato chunk; always shorter than `rubato.input_frames_next()`
    /// after `process` returns, capacity `rubato.input_frames_max()`.
    pending: Vec<f32>,
    /// rubato's output, `rubato.output_frames_max()` long.
    converted: Vec<f32>,
    /// Input frames rubato has taken but not yet turned into output. Zero for 20 ms-aligned
    /// rate pairs such as 8/16/24 kHz; rubato keeps a remainder when its chunk is not a whole
    /// number of FFT blocks.
    held_by_rubato: usize,
}

impl std::fmt::Debug for Resampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resampler")
            .field("from_hz", &self.from_hz)
            .field("to_hz", &self.to_hz)
            .field(
                "buffered",
                &self.fft.as_ref().map_or(0, |s| s.pending.len()),
            )
            .field("delay_samples", &self.delay_samples())
            .finish()
    }
}

/// Greatest common divisor (Euclid).
fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Rounds a float sample to the nearest i16, saturating at the ends of the range.
#[inline]
fn to_i16(v: f32) -> i16 {
    // `as` saturates (and maps NaN to 0); the clamp just states the intent.
    v.round().clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16
}

impl Resampler {
    /// A resampler from `from_hz` to `to_hz`.
    ///
    /// # Errors
    /// [`UnsupportedRates`] unless both rates lie in [`MIN_RATE_HZ`]..=[`MAX_RATE_HZ`] and share a
    /// divisor of at least 50 Hz. That covers every pair of 8, 16, 24, 32, 44.1 and 48 kHz.
    pub fn new(from_hz: u32, to_hz: u32) -> Result<Self, UnsupportedRates> {
        let unsupported = UnsupportedRates { from_hz, to_hz };
        let range = MIN_RATE_HZ..=MAX_RATE_HZ;
        if !range.contains(&from_hz) || !range.contains(&to_hz) || gcd(from_hz, to_hz) < MIN_GCD_HZ
        {
            return Err(unsupported);
        }
        if from_hz == to_hz {
            return Ok(Self {
                from_hz,
                to_hz,
                fft: None,
            });
        }
        let chunk = (from_hz / CHUNKS_PER_SECOND) as usize;
        let rubato = Fft::<f32>::new(from_hz as usize, to_hz as usize, chunk, 1, FixedSync::Input)
            .map_err(|_| unsupported)?;
        let pending = Vec::with_capacity(rubato.input_frames_max());
        let converted = vec![0.0; rubato.output_frames_max()];
        Ok(Self {
            from_hz,
            to_hz,
            fft: Some(Box::new(FftStage {
                rubato,
                pending,
                converted,
                held_by_rubato: 0,
            })),
        })
    }

    /// Feeds `input` and appends every output sample now available to `out`.
    ///
    /// Output comes in whole rubato chunks (20 ms of input), so a short `input` may append
    /// nothing; the rest waits for the next call and shows in [`delay_samples`](Self::delay_samples).
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        match &mut self.fft {
            None => out.extend_from_slice(input),
            Some(stage) => stage.process(input, out),
        }
    }

    /// Delay the resampler adds, in output samples.
    ///
    /// rubato's own delay (half an FFT block) plus the input not yet converted, counted at the
    /// output rate and rounded down. Zero for equal rates.
    pub fn delay_samples(&self) -> usize {
        let Some(stage) = &self.fft else {
            return 0;
        };
        let waiting = (stage.pending.len() + stage.held_by_rubato) as u64;
        let waiting_out = waiting * u64::from(self.to_hz) / u64::from(self.from_hz);
        stage.rubato.output_delay() + usize::try_from(waiting_out).unwrap_or(usize::MAX)
    }

    /// Forgets buffered input and filter state (after a `clear`).
    pub fn reset(&mut self) {
        if let Some(stage) = &mut self.fft {
            stage.rubato.reset();
            stage.pending.clear();
            stage.held_by_rubato = 0;
        }
    }
}

impl FftStage {
    fn process(&mut self, mut input: &[i16], out: &mut Vec<i16>) {
        while !input.is_empty() {
            let need = self.rubato.input_frames_next();
            if need == 0 {
                // rubato never asks for an empty chunk (ours is 20 ms), but looping on one
                // would hang the call, so drop the input instead.
                return;
            }
            let take = need.saturating_sub(self.pending.len()).min(input.len());
            let (head, rest) = input.split_at(take);
            self.pending.extend(head.iter().map(|&s| f32::from(s)));
            input = rest;
            if self.pending.len() >= need {
                self.run_chunk(out);
            }
        }
    }

    /// Runs one full chunk in `pending` through rubato and appends the result to `out`.
    fn run_chunk(&mut self, out: &mut Vec<i16>) {
        let frames_in = self.pending.len();
        let frames_out = self.converted.len();
        let result = InterleavedSlice::new(&self.pending[..], 1, frames_in)
            .ok()
            .zip(InterleavedSlice::new_mut(&mut self.converted[..], 1, frames_out).ok())
            .and_then(|(src, mut dst)| self.rubato.process_into_buffer(&src, &mut dst, None).ok());
        self.pending.clear();
        match result {
            Some((used, produced)) => {
                let blocks = produced / self.rubato.fft_size_out();
                self.held_by_rubato =
                    (self.held_by_rubato + used).saturating_sub(blocks * self.rubato.fft_size_in());
                let produced = self.converted.get(..produced).unwrap_or_default();
                out.extend(produced.iter().map(|&v| to_i16(v)));
            }
            None => {
                // Unreachable: the buffers are sized from rubato's own maxima. Should it ever
                // happen, drop the chunk and restart rather than panic on the media path.
                debug_assert!(false, "rubato rejected buffers sized from its own maxima");
                self.rubato.reset();
                self.held_by_rubato = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    const AMPLITUDE: f64 = 16_000.0;

    fn sine(freq: f64, rate: u32, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                (AMPLITUDE * (2.0 * PI * freq * i as f64 / f64::from(rate)).sin()).round() as i16
            })
            .collect()
    }

    fn rubato_delay(r: &Resampler) -> usize {
        r.fft.as_ref().map_or(0, |s| s.rubato.output_delay())
    }

    /// Streams `input` through a fresh resampler in pieces of `chunk` samples.
    fn stream(from: u32, to: u32, input: &[i16], chunk: usize) -> (Vec<i16>, Resampler) {
        let mut r = Resampler::new(from, to).unwrap();
        let mut out = Vec::new();
        for piece in input.chunks(chunk) {
            r.process(piece, &mut out);
        }
        (out, r)
    }

    /// Least-squares fit of `a sin + b cos + c` at `freq`; returns (SNR in dB, amplitude, phase).
    fn fit_sine(signal: &[i16], freq: f64, rate: u32) -> (f64, f64, f64) {
        let w = 2.0 * PI * freq / f64::from(rate);
        let basis = |i: usize| {
            let t = w * i as f64;
            [t.sin(), t.cos(), 1.0]
        };
        // Normal equations, 3x3, solved by Cramer's rule.
        let mut m = [[0.0f64; 3]; 3];
        let mut v = [0.0f64; 3];
        for (i, &y) in signal.iter().enumerate() {
            let b = basis(i);
            for r in 0..3 {
                for c in 0..3 {
                    m[r][c] += b[r] * b[c];
                }
                v[r] += b[r] * f64::from(y);
            }
        }
        let det = |m: &[[f64; 3]; 3]| {
            m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
                - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
                + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
        };
        let d = det(&m);
        let mut coef = [0.0f64; 3];
        for (k, c) in coef.iter_mut().enumerate() {
            let mut mk = m;
            for r in 0..3 {
                mk[r][k] = v[r];
            }
            *c = det(&mk) / d;
        }
        let (mut sig, mut res) = (0.0, 0.0);
        for (i, &y) in signal.iter().enumerate() {
            let b = basis(i);
            let fit = coef[0] * b[0] + coef[1] * b[1] + coef[2];
            sig += fit * fit;
            res += (f64::from(y) - fit).powi(2);
        }
        let amplitude = coef[0].hypot(coef[1]);
        let phase = coef[1].atan2(coef[0]);
        (10.0 * (sig / res.max(1e-30)).log10(), amplitude, phase)
    }

    /// Resamples a 1 kHz tone, checks SNR, gain and that rubato's delay is the tone's delay.
    fn check_tone(from: u32, to: u32, chunk: usize) {
        let input = sine(1000.0, from, 2 * from as usize);
        let (out, r) = stream(from, to, &input, chunk);
        let delay = rubato_delay(&r);
        // Skip the delay plus two FFT blocks of start-up transient, and the tail.
        let skip = 5 * delay;
        let steady = &out[skip..out.len() - delay];
        let (snr, amplitude, phase) = fit_sine(steady, 1000.0, to);
        let gain_db = 20.0 * (amplitude / AMPLITUDE).log10();
        // The output at index skip + i is the input at time (skip + i - delay) / to.
        let expected = 2.0 * PI * 1000.0 * (skip as f64 - delay as f64) / f64::from(to);
        let phase_err = ((phase - expected + PI).rem_euclid(2.0 * PI) - PI).abs();
        eprintln!(
            "{from} -> {to} Hz, chunks of {chunk}: SNR {snr:.1} dB, gain {gain_db:+.4} dB, \
             phase error {phase_err:.2e} rad"
        );
        assert!(snr > 60.0, "SNR {snr:.1} dB");
        assert!(gain_db.abs() < 0.05, "gain {gain_db} dB");
        assert!(
            phase_err < 1e-3,
            "delay does not match output_delay: {phase_err}"
        );
    }

    #[test]
    fn sine_16k_to_24k_keeps_snr_above_60_db() {
        check_tone(16_000, 24_000, 320);
        check_tone(16_000, 24_000, 137);
    }

    #[test]
    fn sine_24k_to_16k_keeps_snr_above_60_db() {
        check_tone(24_000, 16_000, 480);
        check_tone(24_000, 16_000, 137);
    }

    #[test]
    fn sine_8k_and_24k_convert_both_ways() {
        check_tone(8_000, 24_000, 160);
        check_tone(8_000, 24_000, 137);
        check_tone(24_000, 8_000, 480);
        check_tone(24_000, 8_000, 137);
    }

    #[test]
    fn sine_8k_and_16k_convert_both_ways() {
        check_tone(8_000, 16_000, 137);
        check_tone(16_000, 8_000, 137);
    }

    /// Level of `input`'s tone after `from -> to`, in dB relative to the input, and the
    /// largest output sample.
    fn alias_level(freq: f64, from: u32, to: u32) -> (f64, i16) {
        let input = sine(freq, from, 2 * from as usize);
        let (out, r) = stream(from, to, &input, (from / 50) as usize);
        let delay = rubato_delay(&r);
        let steady = &out[5 * delay..out.len() - delay];
        let power =
            |s: &[i16]| s.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / s.len() as f64;
        // An all-zero output is reported at the level of half an LSB, not minus infinity.
        let level = 10.0 * (power(steady).max(0.25) / power(&input)).log10();
        let peak = steady
            .iter()
            .map(|&s| s.saturating_abs())
            .max()
            .unwrap_or(0);
        (level, peak)
    }

    #[test]
    fn tone_above_output_nyquist_is_rejected_by_60_db() {
        for (freq, from, to) in [(10_000.0, 24_000, 16_000), (6_000.0, 24_000, 8_000)] {
            let (level, peak) = alias_level(freq, from, to);
            eprintln!(
                "{freq} Hz at {from} Hz -> {to} Hz: output at most {level:.1} dB relative to \
                 input, peak sample {peak}"
            );
            assert!(level < -60.0, "alias only {level:.1} dB down");
        }
    }

    #[test]
    fn output_count_matches_duration_within_the_delay() {
        // 40 -> 48 kHz: rubato's 20 ms chunk is not a whole number of its FFT blocks, so rubato
        // itself holds input between calls.
        let pairs = [
            (16_000, 24_000),
            (24_000, 16_000),
            (8_000, 24_000),
            (24_000, 8_000),
            (40_000, 48_000),
        ];
        for (from, to) in pairs {
            for chunk in [137, 1000, (from / 50) as usize] {
                // 3.01 s: not a whole number of 20 ms chunks, so some input stays buffered.
                let input = sine(1000.0, from, (from * 301 / 100) as usize);
                let (out, r) = stream(from, to, &input, chunk);
                let expected = (to * 301 / 100) as usize;
                // Every input sample is either converted or counted in the delay.
                let buffered = r.delay_samples() - rubato_delay(&r);
                assert!(buffered > 0);
                // Exact for 8/16/24 kHz; delay_samples rounds down a fractional remainder.
                let slack = usize::from(from == 40_000);
                assert!(
                    (out.len() + buffered).abs_diff(expected) <= slack,
                    "{from}->{to}/{chunk}: {} + {buffered} != {expected}",
                    out.len()
                );
                assert!(out.len() <= expected && out.len() + r.delay_samples() >= expected);
            }
        }
    }

    #[test]
    fn same_input_gives_identical_output() {
        let input: Vec<i16> = (0..48_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 16) as i16)
            .collect();
        let (a, _) = stream(24_000, 16_000, &input, 137);
        let (b, _) = stream(24_000, 16_000, &input, 137);
        assert_eq!(a, b);
        // Chunking does not matter either: rubato only ever sees whole 20 ms chunks.
        let (c, _) = stream(24_000, 16_000, &input, 480);
        assert_eq!(a, c);
    }

    #[test]
    fn reset_restores_the_fresh_state() {
        let input = sine(1000.0, 16_000, 8000);
        let (fresh, _) = stream(16_000, 24_000, &input, 137);
        let mut r = Resampler::new(16_000, 24_000).unwrap();
        let mut junk = Vec::new();
        r.process(&input[..1000], &mut junk);
        r.reset();
        assert_eq!(r.delay_samples(), rubato_delay(&r));
        let mut out = Vec::new();
        for piece in input.chunks(137) {
            r.process(piece, &mut out);
        }
        assert_eq!(out, fresh);
    }

    #[test]
    fn input_buffer_never_holds_a_full_chunk() {
        let mut r = Resampler::new(8_000, 24_000).unwrap();
        let mut out = Vec::new();
        for len in [0, 1, 159, 160, 161, 1234, 7] {
            r.process(&vec![100; len], &mut out);
            let stage = r.fft.as_ref().unwrap();
            assert!(stage.pending.len() < stage.rubato.input_frames_next());
            assert!(stage.pending.capacity() <= stage.rubato.input_frames_max());
        }
    }

    #[test]
    fn equal_rates_pass_samples_through() {
        let mut r = Resampler::new(24_000, 24_000).unwrap();
        let mut out = vec![1];
        r.process(&[2, -3, i16::MAX], &mut out);
        assert_eq!(out, [1, 2, -3, i16::MAX]);
        assert_eq!(r.delay_samples(), 0);
        r.reset();
    }

    #[test]
    fn unsupported_rates_are_rejected() {
        for (from, to) in [
            (0, 24_000),
            (24_000, 0),
            (0, 0),
            (8_000, 8_001),
            (1, 2),
            (24_000, 1_000_000),
            (u32::MAX, 8_000),
        ] {
            assert_eq!(
                Resampler::new(from, to).err(),
                Some(UnsupportedRates {
                    from_hz: from,
                    to_hz: to
                })
            );
        }
        for (from, to) in [
            (8_000, 16_000),
            (16_000, 8_000),
            (44_100, 48_000),
            (48_000, 8_000),
            (32_000, 24_000),
        ] {
            assert!(Resampler::new(from, to).is_ok(), "{from} -> {to}");
        }
    }

    #[test]
    fn full_scale_input_saturates_instead_of_wrapping() {
        // A full-scale square wave overshoots (Gibbs); the output must clamp, not wrap.
        let input: Vec<i16> = (0..24_000)
            .map(|i| {
                if (i / 40) % 2 == 0 {
                    i16::MAX
                } else {
                    i16::MIN
                }
            })
            .collect();
        let (out, _) = stream(24_000, 8_000, &input, 480);
        assert!(out.iter().any(|&s| s == i16::MAX || s == i16::MIN));
        let wraps = out
            .windows(2)
            .filter(|w| (i32::from(w[0]) - i32::from(w[1])).abs() > 60_000)
            .count();
        assert_eq!(wraps, 0);
    }

    #[test]
    fn resampler_is_send_and_debug() {
        fn assert_send<T: Send>() {}
        assert_send::<Resampler>();
        let r = Resampler::new(16_000, 24_000).unwrap();
        let text = format!("{r:?}");
        assert!(text.contains("16000") && text.contains("24000"), "{text}");
    }
}
