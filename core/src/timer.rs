//! The core's deadlines, one slot per reason (quinn's `TimerTable`).

use std::time::Instant;

/// Why the core wants to be woken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Timer {
    /// No `start` message arrived on the media stream in time.
    StreamStart,
    /// The OpenAI connection did not open, or its session did not become ready, in time.
    ModelConnect,
    /// The earliest deadline of a running tool call.
    ToolDeadline,
    /// Caller DTMF digits are flushed to the model after a pause.
    DtmfFlush,
    /// The longest the goodbye may play before an `end_call` hang-up goes ahead anyway.
    HangupDrain,
    /// The SignalWire REST hang-up request did not answer in time.
    HttpRequest,
    /// The model leg's own deadline (WebRTC timers, connect and liveness limits).
    Model,
    /// The next paced frame of model audio is due for the caller.
    Playout,
}

impl Timer {
    /// Every timer, in slot order.
    pub const ALL: [Timer; 8] = [
        Timer::StreamStart,
        Timer::ModelConnect,
        Timer::ToolDeadline,
        Timer::DtmfFlush,
        Timer::HangupDrain,
        Timer::HttpRequest,
        Timer::Model,
        Timer::Playout,
    ];

    fn slot(self) -> usize {
        self as usize
    }
}

/// One optional deadline per [`Timer`]; the next wake-up is the earliest.
#[derive(Debug, Default, Clone)]
pub(crate) struct TimerTable {
    slots: [Option<Instant>; Timer::ALL.len()],
}

impl TimerTable {
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.slots[timer.slot()] = Some(at);
    }

    pub(crate) fn stop(&mut self, timer: Timer) {
        self.slots[timer.slot()] = None;
    }

    /// Clears and returns the timer if it is due at `now`.
    pub(crate) fn expire(&mut self, timer: Timer, now: Instant) -> bool {
        match self.slots[timer.slot()] {
            Some(at) if at <= now => {
                self.slots[timer.slot()] = None;
                true
            }
            Some(_) | None => false,
        }
    }

    /// The earliest deadline and its reason.
    pub(crate) fn next(&self) -> Option<(Instant, Timer)> {
        Timer::ALL
            .iter()
            .filter_map(|&t| self.slots[t.slot()].map(|at| (at, t)))
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn next_is_the_earliest_and_expire_clears_only_due_timers() {
        let base = crate::tests::origin();
        let mut table = TimerTable::default();
        table.set(Timer::DtmfFlush, base + Duration::from_secs(2));
        table.set(Timer::ToolDeadline, base + Duration::from_secs(1));
        assert_eq!(
            table.next(),
            Some((base + Duration::from_secs(1), Timer::ToolDeadline))
        );
        assert!(!table.expire(Timer::DtmfFlush, base + Duration::from_secs(1)));
        assert!(table.expire(Timer::ToolDeadline, base + Duration::from_secs(1)));
        assert_eq!(
            table.next(),
            Some((base + Duration::from_secs(2), Timer::DtmfFlush))
        );
        table.stop(Timer::DtmfFlush);
        assert_eq!(table.next(), None);
    }
}
