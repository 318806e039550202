//! Converts audio between the phone leg's codec and the model's format, both ways.
//!
//! The formats are chosen so that most calls pass bytes straight through: μ-law and A-law go to
//! OpenAI as they came, L16 at 24 kHz too. Only L16 at another rate is decoded and resampled.

use crate::audio::{ByteOrder, PhoneCodec, l16, resample::Resampler};

/// The audio format on the model leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ModelAudio {
    /// G.711 μ-law, 8 kHz.
    Pcmu,
    /// G.711 A-law, 8 kHz.
    Pcma,
    /// 16-bit little-endian PCM at the given rate.
    Pcm { rate_hz: u32 },
}

impl ModelAudio {
    pub(crate) fn bytes_per_ms(self) -> usize {
        match self {
            ModelAudio::Pcmu | ModelAudio::Pcma => 8,
            ModelAudio::Pcm { rate_hz } => rate_hz as usize / 1000 * 2,
        }
    }
}

/// How one direction converts.
#[derive(Debug)]
enum Conversion {
    /// Same bytes.
    Passthrough,
    /// Same bytes, whole 16-bit samples only: an odd byte would shift every later sample.
    PassthroughL16,
    /// L16 in the other byte order.
    Swap,
    /// Decode L16, resample, encode L16.
    Resample {
        resampler: Resampler,
        from_order: ByteOrder,
        to_order: ByteOrder,
    },
}

/// Both directions of one call's media conversion, with their state.
#[derive(Debug)]
pub(crate) struct MediaPath {
    to_model: Conversion,
    to_phone: Conversion,
    samples: Vec<i16>,
    resampled: Vec<i16>,
}

/// The phone codec and model format cannot be bridged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NoConversion;

impl MediaPath {
    pub(crate) fn new(
        phone: PhoneCodec,
        order: ByteOrder,
        model: ModelAudio,
    ) -> Result<Self, NoConversion> {
        let (to_model, to_phone) = match (phone, model) {
            (PhoneCodec::Pcmu, ModelAudio::Pcmu) | (PhoneCodec::Pcma, ModelAudio::Pcma) => {
                (Conversion::Passthrough, Conversion::Passthrough)
            }
            (PhoneCodec::L16 { rate_hz }, ModelAudio::Pcm { rate_hz: model_hz })
                if rate_hz == model_hz =>
            {
                match order {
                    ByteOrder::Little => (Conversion::PassthroughL16, Conversion::PassthroughL16),
                    ByteOrder::Big => (Conversion::Swap, Conversion::Swap),
                }
            }
            (PhoneCodec::L16 { rate_hz }, ModelAudio::Pcm { rate_hz: model_hz }) => {
                let up = Resampler::new(rate_hz, model_hz).map_err(|_| NoConversion)?;
                let down = Resampler::new(model_hz, rate_hz).map_err(|_| NoConversion)?;
                (
                    Conversion::Resample {
                        resampler: up,
                        from_order: order,
                        to_order: ByteOrder::Little,
                    },
                    Conversion::Resample {
                        resampler: down,
                        from_order: ByteOrder::Little,
                        to_order: order,
                    },
                )
            }
            (
                PhoneCodec::Pcmu | PhoneCodec::Pcma | PhoneCodec::L16 { .. },
                ModelAudio::Pcmu | ModelAudio::Pcma | ModelAudio::Pcm { .. },
            ) => return Err(NoConversion),
        };
        Ok(MediaPath {
            to_model,
            to_phone,
            samples: Vec::new(),
            resampled: Vec::new(),
        })
    }

    /// Caller audio (one phone payload) to the model's format, appended to `out`.
    ///
    /// A payload that is not whole samples is the caller's garbage: it is refused whole.
    pub(crate) fn convert_to_model(
        &mut self,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), l16::OddLength> {
        convert(
            &mut self.to_model,
            payload,
            &mut self.samples,
            &mut self.resampled,
            out,
        )
    }

    /// Model audio to the phone's codec, appended to `out`.
    pub(crate) fn convert_to_phone(
        &mut self,
        audio: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), l16::OddLength> {
        convert(
            &mut self.to_phone,
            audio,
            &mut self.samples,
            &mut self.resampled,
            out,
        )
    }

    /// Forgets model audio buffered inside the converter (after a `clear`).
    pub(crate) fn reset_to_phone(&mut self) {
        if let Conversion::Resample { resampler, .. } = &mut self.to_phone {
            resampler.reset();
        }
    }
}

fn convert(
    conversion: &mut Conversion,
    input: &[u8],
    samples: &mut Vec<i16>,
    resampled: &mut Vec<i16>,
    out: &mut Vec<u8>,
) -> Result<(), l16::OddLength> {
    match conversion {
        Conversion::Passthrough => {
            out.extend_from_slice(input);
            Ok(())
        }
        Conversion::PassthroughL16 => {
            if !input.len().is_multiple_of(2) {
                return Err(l16::OddLength);
            }
            out.extend_from_slice(input);
            Ok(())
        }
        Conversion::Swap => {
            if !input.len().is_multiple_of(2) {
                return Err(l16::OddLength);
            }
            let start = out.len();
            out.extend_from_slice(input);
            l16::swap_in_place(&mut out[start..]);
            Ok(())
        }
        Conversion::Resample {
            resampler,
            from_order,
            to_order,
        } => {
            samples.clear();
            l16::decode(input, *from_order, samples)?;
            resampled.clear();
            resampler.process(samples, resampled);
            l16::encode(resampled, *to_order, out);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_length_l16_is_refused_in_either_byte_order_and_g711_is_not() {
        for order in [ByteOrder::Little, ByteOrder::Big] {
            for rate_hz in [16_000, 24_000] {
                let phone = PhoneCodec::L16 { rate_hz };
                let model = ModelAudio::Pcm { rate_hz };
                let mut path = MediaPath::new(phone, order, model).expect("bridgeable");
                let mut out = Vec::new();
                assert_eq!(
                    path.convert_to_phone(&[1, 2, 3], &mut out),
                    Err(l16::OddLength)
                );
                assert_eq!(
                    path.convert_to_model(&[1, 2, 3], &mut out),
                    Err(l16::OddLength)
                );
                assert!(out.is_empty(), "{order:?} {rate_hz}: {out:?}");
                path.convert_to_phone(&[1, 2, 3, 4], &mut out)
                    .expect("even");
                let want: &[u8] = match order {
                    ByteOrder::Little => &[1, 2, 3, 4],
                    ByteOrder::Big => &[2, 1, 4, 3],
                };
                assert_eq!(out, want, "{order:?} {rate_hz}");
            }
        }
        let mut path =
            MediaPath::new(PhoneCodec::Pcmu, ByteOrder::Little, ModelAudio::Pcmu).expect("same");
        let mut out = Vec::new();
        path.convert_to_phone(&[1, 2, 3], &mut out)
            .expect("any length");
        assert_eq!(out, [1, 2, 3]);
    }
}
