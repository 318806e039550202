//! The fake for a client's next connection after a dropped one.

use super::FakeLive;

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
        script.drop_socket_at = None;
        script.close_at = None;
        script.refuse_key = false;
        script.inject_errors.clear();
        script.greet_on_instructions = false;
        let mut next = FakeLive::new(script);
        next.origin = self.origin;
        next.resume_from_input = false;
        next
    }
}
