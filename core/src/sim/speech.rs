//! A deterministic speech-like test signal: a voiced tone with harmonics and a syllable envelope.
//!
//! Real speech clips are committed for the codec tests; this signal is for the simulation, where
//! any audio with speech-like energy and spectrum will do and must cost nothing to make.

use std::f32::consts::TAU;

/// Fills `out` with `out.len()` samples of speech-like audio at `rate_hz`, starting at sample
/// `start` of an endless signal picked by `voice` (0, 1, 2, … give different pitches).
///
/// Every component is a whole number of hertz, so the signal repeats each second: one second
/// is computed once per thread and then copied.
pub fn speech_like(rate_hz: u32, voice: u32, start: u64, out: &mut [i16]) {
    if rate_hz == 0 {
        out.fill(0);
        return;
    }
    PERIODS.with(|periods| {
        let mut periods = periods.borrow_mut();
        let key = (rate_hz, voice % 5);
        let index = match periods.iter().position(|(k, _)| *k == key) {
            Some(index) => index,
            None => {
                periods.push((key, one_second(rate_hz, voice)));
                periods.len() - 1
            }
        };
        let period = &periods[index].1;
        let mut at = (start % u64::from(rate_hz)) as usize;
        for sample in out.iter_mut() {
            *sample = period[at];
            at += 1;
            if at == period.len() {
                at = 0;
            }
        }
    });
}

/// What one frame of audio is: `len` samples of [`speech_like`] (at the frame's rate, `voice`,
/// from sample `start`), then silence to the frame's end; all silence when `len` is 0.
///
/// A brain that knows what it sends says so, and the WebRTC fake can then send Opus packets it
/// encoded before instead of encoding the same signal again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpeechSpan {
    /// Picks the pitch, as for [`speech_like`].
    pub voice: u32,
    /// The first sample's position in the signal.
    pub start: u64,
    /// Samples of speech at the head of the frame.
    pub len: usize,
}

impl SpeechSpan {
    /// Whether `samples` at `rate_hz` are exactly this span: speech, then zeros.
    pub fn matches(&self, rate_hz: u32, samples: &[i16]) -> bool {
        let Some((speech, rest)) = samples.split_at_checked(self.len) else {
            return false;
        };
        if rest.iter().any(|&s| s != 0) {
            return false;
        }
        if speech.is_empty() {
            return true;
        }
        let mut expected = [0i16; 960];
        speech.chunks(expected.len()).enumerate().all(|(k, chunk)| {
            let expected = &mut expected[..chunk.len()];
            let from = self.start + (k * 960) as u64;
            speech_like(rate_hz, self.voice, from, expected);
            chunk == expected
        })
    }
}

/// One second of signal, by (rate, voice).
type Periods = Vec<((u32, u32), Vec<i16>)>;

thread_local! {
    /// The signals asked for on this thread.
    static PERIODS: std::cell::RefCell<Periods> = const { std::cell::RefCell::new(Vec::new()) };
}

fn one_second(rate_hz: u32, voice: u32) -> Vec<i16> {
    let rate = rate_hz as f32;
    let pitch = 110.0 + 35.0 * (voice % 5) as f32;
    (0..rate_hz)
        .map(|n| {
            let t = n as f32 / rate;
            let mut voiced = 0.0;
            for harmonic in 1..=6u32 {
                let h = harmonic as f32;
                if pitch * h < rate / 2.0 {
                    voiced += (TAU * pitch * h * t).sin() / h;
                }
            }
            // Four syllables a second; the envelope never reaches zero inside an utterance.
            let envelope = 0.55 + 0.45 * (TAU * 4.0 * t).sin();
            (voiced * envelope * 6000.0) as i16
        })
        .collect()
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

    #[test]
    fn spans_match_only_their_samples() {
        let mut frame = vec![0i16; 480];
        speech_like(24000, 2, 1000, &mut frame[..300]);
        let span = SpeechSpan {
            voice: 2,
            start: 1000,
            len: 300,
        };
        assert!(span.matches(24000, &frame));
        assert!(
            SpeechSpan {
                voice: 2,
                start: 0,
                len: 0
            }
            .matches(24000, &[0; 480])
        );
        assert!(!SpeechSpan { len: 301, ..span }.matches(24000, &frame));
        assert!(
            !SpeechSpan {
                start: 1001,
                ..span
            }
            .matches(24000, &frame)
        );
        assert!(!SpeechSpan { voice: 3, ..span }.matches(24000, &frame));
        assert!(!SpeechSpan { len: 481, ..span }.matches(24000, &frame));
        frame[479] = 1;
        assert!(!span.matches(24000, &frame));
    }
}
