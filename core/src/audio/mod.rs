//! Audio formats and the pure codecs of the media path: G.711, L16 framing and resampling.

pub mod g711;
pub mod l16;
pub mod opus;
pub mod resample;

/// The audio encoding of the phone leg, taken from the media stream's `start.mediaFormat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhoneCodec {
    /// G.711 μ-law at 8 kHz (`audio/x-mulaw`, SignalWire's default `PCMU@8000h`).
    Pcmu,
    /// G.711 A-law at 8 kHz (`audio/x-alaw`, where offered).
    Pcma,
    /// 16-bit linear PCM (`audio/x-L16`) at 8, 16 or 24 kHz.
    L16 {
        /// Samples per second.
        rate_hz: u32,
    },
}

impl PhoneCodec {
    /// Samples per second.
    pub fn sample_rate(self) -> u32 {
        match self {
            PhoneCodec::Pcmu | PhoneCodec::Pcma => 8000,
            PhoneCodec::L16 { rate_hz } => rate_hz,
        }
    }

    /// Bytes that carry one millisecond of audio.
    pub fn bytes_per_ms(self) -> usize {
        match self {
            PhoneCodec::Pcmu | PhoneCodec::Pcma => 8,
            PhoneCodec::L16 { rate_hz } => (rate_hz as usize / 1000) * 2,
        }
    }

    /// Bytes in one 20 ms frame, the cadence of the phone leg.
    pub fn frame_bytes(self) -> usize {
        self.bytes_per_ms() * FRAME_MS as usize
    }

    /// The byte that encodes digital silence, for the G.711 codecs.
    pub fn silence_byte(self) -> u8 {
        match self {
            PhoneCodec::Pcmu => g711::ULAW_SILENCE,
            PhoneCodec::Pcma => g711::ALAW_SILENCE,
            PhoneCodec::L16 { .. } => 0,
        }
    }
}

/// Byte order of L16 samples on the phone leg (little-endian unless configured otherwise).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ByteOrder {
    /// Least significant byte first (SignalWire's sample bridge and OpenAI's `audio/pcm`).
    #[default]
    Little,
    /// Network byte order, as RFC 3551 defines L16 for RTP.
    Big,
}

/// Duration of one frame on the phone leg, in milliseconds.
pub const FRAME_MS: u32 = 20;
