//! A deterministic speech-like test signal: a voiced tone with harmonics and a syllable envelope.
//!
//! Real speech clips are committed for the codec tests; this signal is for the simulation, where
//! any audio with speech-like energy and spectrum will do and must cost nothing to make.

use std::f32::consts::TAU;

/// Fills `out` with `out.len()` samples of speech-like audio at `rate_hz`, starting at sample
/// `start` of an endless signal picked by `voice` (0, 1, 2, … give different pitches).
pub fn speech_like(rate_hz: u32, voice: u32, start: u64, out: &mut [i16]) {
    let rate = rate_hz as f32;
    let pitch = 110.0 + 35.0 * (voice % 5) as f32;
    for (i, sample) in out.iter_mut().enumerate() {
        let n = start + i as u64;
        // Keep the phase argument small so f32 stays exact over an hour of audio.
        let t = (n % (rate_hz as u64 * 60)) as f32 / rate;
        let mut voiced = 0.0;
        for harmonic in 1..=6u32 {
            let h = harmonic as f32;
            if pitch * h < rate / 2.0 {
                voiced += (TAU * pitch * h * t).sin() / h;
            }
        }
        // Four syllables a second; the envelope never reaches zero inside an utterance.
        let envelope = 0.55 + 0.45 * (TAU * 4.0 * t).sin();
        *sample = (voiced * envelope * 6000.0) as i16;
    }
}

/// Root-mean-square level of samples, on the i16 scale.
pub fn rms(samples: &[i16]) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / samples.len() as f64).sqrt() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speech_like_is_loud_continuous_and_repeatable() {
        let mut a = vec![0i16; 8000];
        let mut b = vec![0i16; 8000];
        speech_like(8000, 1, 0, &mut a);
        speech_like(8000, 1, 0, &mut b);
        assert_eq!(a, b);
        assert!(rms(&a) > 1500.0, "rms {}", rms(&a));
        // Every 20 ms window is clearly above a silence threshold.
        for w in a.chunks(160) {
            assert!(rms(w) > 300.0);
        }
        // Continuing from sample 4000 gives the same second half.
        let mut half = vec![0i16; 4000];
        speech_like(8000, 1, 4000, &mut half);
        assert_eq!(&a[4000..], &half[..]);
    }
}
