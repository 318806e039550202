//! The fake for a client's next connection after a dropped one.

use super::{FakeLive, LiveScript};

impl LiveScript {
    /// The script with what belongs to a first connection taken out: scripted drops, closes,
    /// refusals and errors, and the greeting.
    pub fn for_a_later_connection(mut self) -> LiveScript {
        self.drop_socket_at = None;
        self.close_at = None;
        self.refuse_key = false;
        self.inject_errors.clear();
        self.greet_on_instructions = false;
        self
    }
}

impl FakeLive {
    /// Whether this fake has served its connection (it serves one).
    pub fn has_connected(&self) -> bool {
        self.connected_at.is_some()
    }

    /// The fake for the client's next connection, as the real server would be: a new session
    /// that goes on with the rest of the script (the turns and caller transcripts not yet
    /// used). Scripted drops, closes, refusals and errors belong to the first connection; the
    /// greeting too.
    pub fn successor(&self) -> FakeLive {
        let mut script = self.script.clone();
        script.turns = script.turns.iter().skip(self.next_turn).cloned().collect();
        script.caller_transcripts = script
            .caller_transcripts
            .iter()
            .skip(self.caller_turns)
            .cloned()
            .collect();
        let mut next = FakeLive::new(script.for_a_later_connection());
        next.origin = self.origin;
        next.resume_from_input = false;
        next
    }
}
