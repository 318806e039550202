//! Who may talk to the server: SignalWire's webhook signatures and the per-call stream tokens.
//! The checks themselves are the core's ([`barbara_core::auth`]); this file adds the clock,
//! the randomness and the lock the tokens need here.

use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

use barbara_core::auth::StreamTokens;
pub(crate) use barbara_core::auth::webhook_signature_ok;
use ring::rand::{SecureRandom as _, SystemRandom};

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The server's stream tokens, shared by the endpoints and the call tasks.
pub(crate) struct Tokens {
    tokens: Mutex<StreamTokens>,
    rng: SystemRandom,
}

impl Tokens {
    pub(crate) fn new(secret: &[u8]) -> Tokens {
        Tokens {
            tokens: Mutex::new(StreamTokens::new(secret)),
            rng: SystemRandom::new(),
        }
    }

    /// The tokens, locked for one check.
    pub(crate) fn lock(&self) -> MutexGuard<'_, StreamTokens> {
        self.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A token for `call_sid`, valid for a few minutes from `now_unix`.
    pub(crate) fn mint(&self, call_sid: &str, now_unix: u64) -> String {
        let mut nonce = [0u8; 9];
        let _ = self.rng.fill(&mut nonce);
        self.lock().mint(now_unix, call_sid, nonce)
    }

    /// Verifies `token` and marks it used; a second use fails.
    pub(crate) fn redeem(&self, token: &str, now_unix: u64) -> Option<String> {
        self.lock().redeem(now_unix, token)
    }
}
