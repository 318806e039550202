//! The tool-call sequencer: every call the model makes gets exactly one output.
//!
//! A call is handed to the application with a deadline. The first of (result, deadline) decides
//! the output; anything later for the same id is ignored and reported. Ids of finished calls are
//! remembered (bounded) so a duplicate or late result is recognised rather than mistaken for an
//! unknown id.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crate::output::ToolCallId;

/// How many finished call ids are remembered for late-result detection.
const REMEMBERED_FINISHED: usize = 256;

#[derive(Debug, Clone)]
struct Running {
    name: String,
    started: Instant,
    deadline: Instant,
}

/// A call that has its output now.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Finished {
    pub(crate) id: ToolCallId,
    pub(crate) name: String,
    pub(crate) latency: Duration,
}

/// Running tool calls and their deadlines.
#[derive(Debug, Default)]
pub(crate) struct ToolRunner {
    running: BTreeMap<ToolCallId, Running>,
    finished: VecDeque<ToolCallId>,
}

impl ToolRunner {
    pub(crate) fn running(&self) -> usize {
        self.running.len()
    }

    /// Whether this id was already handed out (running or finished).
    pub(crate) fn knows(&self, id: &ToolCallId) -> bool {
        self.running.contains_key(id) || self.finished.contains(id)
    }

    /// Starts the clock on a call.
    pub(crate) fn start(&mut self, now: Instant, id: ToolCallId, name: &str, timeout: Duration) {
        self.running.insert(
            id,
            Running {
                name: name.to_owned(),
                started: now,
                deadline: now + timeout,
            },
        );
    }

    /// The call's result arrived; `None` if it already had its output or was never handed out.
    pub(crate) fn finish(&mut self, now: Instant, id: &ToolCallId) -> Option<Finished> {
        let running = self.running.remove(id)?;
        self.remember(id.clone());
        Some(Finished {
            id: id.clone(),
            name: running.name,
            latency: now.saturating_duration_since(running.started),
        })
    }

    /// Every call whose deadline is at or before `now`, in id order.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<Finished> {
        let due: Vec<ToolCallId> = self
            .running
            .iter()
            .filter(|(_, r)| r.deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        due.iter().filter_map(|id| self.finish(now, id)).collect()
    }

    /// The earliest deadline of a running call.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.running.values().map(|r| r.deadline).min()
    }

    /// Forgets running calls (the call is over) and returns them.
    pub(crate) fn abandon_all(&mut self, now: Instant) -> Vec<Finished> {
        let ids: Vec<ToolCallId> = self.running.keys().cloned().collect();
        ids.iter().filter_map(|id| self.finish(now, id)).collect()
    }

    fn remember(&mut self, id: ToolCallId) {
        if self.finished.len() >= REMEMBERED_FINISHED {
            self.finished.pop_front();
        }
        self.finished.push_back(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> ToolCallId {
        ToolCallId(s.to_owned())
    }

    #[test]
    fn first_of_result_and_deadline_wins_and_the_other_is_ignored() {
        let t0 = crate::tests::origin();
        let mut runner = ToolRunner::default();
        runner.start(t0, id("a"), "lookup", Duration::from_secs(10));
        runner.start(t0, id("b"), "lookup", Duration::from_secs(2));
        assert_eq!(runner.next_deadline(), Some(t0 + Duration::from_secs(2)));

        let done = runner
            .finish(t0 + Duration::from_millis(300), &id("a"))
            .unwrap();
        assert_eq!(done.latency, Duration::from_millis(300));
        assert!(
            runner
                .finish(t0 + Duration::from_millis(400), &id("a"))
                .is_none()
        );

        assert!(runner.expire(t0 + Duration::from_secs(1)).is_empty());
        let expired = runner.expire(t0 + Duration::from_secs(2));
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].id, id("b"));
        assert!(
            runner
                .finish(t0 + Duration::from_secs(3), &id("b"))
                .is_none()
        );
        assert!(runner.knows(&id("b")));
        assert!(!runner.knows(&id("zzz")));
        assert_eq!(runner.next_deadline(), None);
    }
}
