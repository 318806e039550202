//! The fake's clock: scheduled sends, run in time order (equal instants in scheduling order).

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{FakeLive, TurnTrigger};

/// What a scheduled timer does.
#[derive(Debug)]
pub(super) enum TimerKind {
    /// The next output audio chunk.
    Chunk,
    /// The model starts a turn.
    Reply(TurnTrigger),
    /// A turn's tool calls go to the backend.
    Delegate {
        record: usize,
        calls: Vec<(String, Value)>,
        follow_up: (String, u32),
    },
    /// The nested response of delegation `.0` completes.
    DelegationComplete(usize),
    /// The backend answers after `response.create` for delegation `.0`.
    Continue(usize),
    Usage,
    AnswerClose,
    CloseWith(String),
    DropSocket,
    InjectError(usize),
}

/// One scheduled send; equal instants fire in scheduling order.
#[derive(Debug)]
pub(super) struct Timer {
    pub(super) at: Instant,
    seq: u64,
    pub(super) kind: TimerKind,
}

impl FakeLive {
    /// Schedules `kind` at `from + delay`; a delay too large for `Instant` means never.
    pub(super) fn schedule(&mut self, from: Instant, delay: Duration, kind: TimerKind) {
        let Some(at) = from.checked_add(delay) else {
            return;
        };
        self.timer_seq += 1;
        self.timers.push(Timer {
            at,
            seq: self.timer_seq,
            kind,
        });
    }

    pub(super) fn cancel_timers(&mut self, pred: impl Fn(&TimerKind) -> bool) {
        self.timers.retain(|t| !pred(&t.kind));
    }

    pub(super) fn run_due(&mut self, now: Instant) {
        while self.is_open() {
            let next = self
                .timers
                .iter()
                .enumerate()
                .filter(|(_, t)| t.at <= now)
                .min_by_key(|(_, t)| (t.at, t.seq))
                .map(|(i, _)| i);
            let Some(i) = next else { break };
            let timer = self.timers.remove(i);
            self.fire(timer);
        }
    }

    fn fire(&mut self, timer: Timer) {
        let at = timer.at;
        match timer.kind {
            TimerKind::Chunk => self.send_chunk(at),
            TimerKind::Reply(trigger) => self.start_turn(at, trigger),
            TimerKind::Delegate {
                record,
                calls,
                follow_up,
            } => self.delegate(at, record, &calls, follow_up),
            TimerKind::DelegationComplete(i) => self.complete_delegation(at, i),
            TimerKind::Continue(i) => self.continue_delegation(at, i),
            TimerKind::Usage => {
                let seconds = self.billed_seconds(at);
                self.report.usage_sent.push((self.since(at), seconds));
                self.send(
                    "session.usage.updated",
                    json!({"usage": {"seconds": seconds}}),
                );
                self.schedule(at, self.script.usage_interval, TimerKind::Usage);
            }
            TimerKind::AnswerClose => self.close_session(at, "close_requested"),
            TimerKind::CloseWith(reason) => self.close_session(at, &reason),
            TimerKind::DropSocket => self.close(at, 1006, ""),
            TimerKind::InjectError(i) => {
                if let Some((_, code)) = self.script.inject_errors.get(i).cloned() {
                    let msg = format!("Injected error: {code}.");
                    self.send_error(at, "server_error", &code, &msg, None, None);
                }
            }
        }
    }
}
