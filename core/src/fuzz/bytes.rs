//! A small reader that turns the fuzzer's bytes into choices. Past the end it reads zeros, so
//! every input decodes to something and a shorter input is a shorter run.

/// Reads choices from fuzz input, front to back.
#[derive(Debug, Clone)]
pub(super) struct Bytes<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Bytes<'a> {
    pub(super) fn new(data: &'a [u8]) -> Self {
        Bytes { data, pos: 0 }
    }

    /// Whether every byte has been read.
    pub(super) fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    pub(super) fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos = self.pos.saturating_add(1);
        b
    }

    pub(super) fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    pub(super) fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    /// A number below `n` (`n` at most 256; 0 when `n` is 0).
    pub(super) fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        usize::from(self.u8()) % n
    }

    /// One of `items` (which must not be empty).
    pub(super) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        let i = self.below(items.len());
        items[i.min(items.len().saturating_sub(1))]
    }

    /// Up to `n` raw bytes (fewer at the end of the input).
    pub(super) fn take(&mut self, n: usize) -> &'a [u8] {
        let start = self.pos.min(self.data.len());
        let end = start.saturating_add(n).min(self.data.len());
        self.pos = self.pos.saturating_add(n);
        &self.data[start..end]
    }

    /// `len` bytes of audio-like content: a constant, a ramp, seeded noise, or the input's own
    /// bytes, chosen by one byte (two bytes read in all, plus the raw ones).
    pub(super) fn audio(&mut self, len: usize) -> Vec<u8> {
        let mode = self.u8();
        let seed = self.u8();
        match mode % 4 {
            0 => vec![seed; len],
            1 => (0..len).map(|i| (i as u8).wrapping_mul(seed | 1)).collect(),
            2 => noise(u64::from(seed) + 1, len),
            _ => {
                let raw = self.take(len.min(64));
                if raw.is_empty() {
                    return vec![seed; len];
                }
                raw.iter().copied().cycle().take(len).collect()
            }
        }
    }
}

/// `len` bytes of seeded noise (splitmix64).
pub(super) fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        out.extend(z.to_le_bytes().iter().take(len - out.len()));
    }
    out
}
