//! The playout buffer for audio that arrives at real-time pace (WebRTC): it absorbs network
//! jitter (20-80 ms) and hands SignalWire one 20 ms frame per 20 ms, so SignalWire's own queue
//! stays shallow and a `clear` takes effect at once.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

const FRAME: Duration = Duration::from_millis(20);

/// A bounded, paced queue of 20 ms phone frames.
#[derive(Debug)]
pub(crate) struct Playout {
    frame_bytes: usize,
    /// Frames held before playing starts (and again after running dry).
    prebuffer: usize,
    /// Most frames held; older ones are dropped past it.
    max_frames: usize,
    frames: VecDeque<(String, Vec<u8>)>,
    partial: Vec<u8>,
    next_tick: Option<Instant>,
    /// Frames dropped because the buffer was full.
    pub(crate) dropped: u64,
}

impl Playout {
    pub(crate) fn new(frame_bytes: usize) -> Self {
        Playout {
            frame_bytes: frame_bytes.max(1),
            prebuffer: 2,
            max_frames: 4,
            frames: VecDeque::new(),
            partial: Vec::new(),
            next_tick: None,
            dropped: 0,
        }
    }

    /// Adds decoded audio of `item`; returns true if frames had to be dropped.
    pub(crate) fn push(&mut self, now: Instant, item: &str, audio: &[u8]) -> bool {
        self.partial.extend_from_slice(audio);
        let mut offset = 0;
        let mut overflowed = false;
        while self.partial.len() - offset >= self.frame_bytes {
            let frame = self.partial[offset..offset + self.frame_bytes].to_vec();
            offset += self.frame_bytes;
            self.frames.push_back((item.to_owned(), frame));
            if self.frames.len() > self.max_frames {
                self.frames.pop_front();
                self.dropped += 1;
                overflowed = true;
            }
        }
        self.partial.drain(..offset);
        if self.next_tick.is_none() && self.frames.len() >= self.prebuffer {
            self.next_tick = Some(now);
        }
        overflowed
    }

    /// The next frame if one is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(String, Vec<u8>)> {
        let tick = self.next_tick?;
        if tick > now {
            return None;
        }
        let Some(frame) = self.frames.pop_front() else {
            // Ran dry: wait for the prebuffer again.
            self.next_tick = None;
            return None;
        };
        // Keep the cadence, but never try to catch up a long stall in a burst.
        let next = tick + FRAME;
        self.next_tick = Some(if next + FRAME * 3 < now {
            now + FRAME
        } else {
            next
        });
        Some(frame)
    }

    /// Drops everything (barge-in, hang-up).
    pub(crate) fn flush(&mut self) {
        self.frames.clear();
        self.partial.clear();
        self.next_tick = None;
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.frames.is_empty() && self.partial.is_empty()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.frames.len()
    }

    /// When the next frame is due.
    pub(crate) fn next_tick(&self) -> Option<Instant> {
        self.next_tick
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paces_frames_holds_at_most_four_and_restarts_after_running_dry() {
        let t0 = crate::tests::origin();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut playout = Playout::new(160);
        assert!(!playout.push(ms(0), "a", &[1; 160]));
        assert_eq!(playout.pop_due(ms(0)), None, "prebuffering");
        assert!(!playout.push(ms(20), "a", &[2; 160]));
        assert_eq!(playout.next_tick(), Some(ms(20)));
        assert_eq!(playout.pop_due(ms(20)).unwrap().1[0], 1);
        assert_eq!(playout.pop_due(ms(30)), None);
        assert_eq!(playout.pop_due(ms(40)).unwrap().1[0], 2);
        // Dry: the next pop stops the clock until two frames are back.
        assert_eq!(playout.pop_due(ms(60)), None);
        assert_eq!(playout.next_tick(), None);
        // A burst of six frames keeps only the newest four.
        assert!(playout.push(ms(100), "b", &[3; 960]));
        assert_eq!(playout.len(), 4);
        assert_eq!(playout.dropped, 2);
        playout.flush();
        assert!(playout.is_empty());
        assert_eq!(playout.next_tick(), None);
    }
}
