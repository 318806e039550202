//! What the core's unit tests share.

use std::time::Instant;

/// The one clock read of the unit tests: an origin; every time a test gives the core is an
/// offset from it.
pub(crate) fn origin() -> Instant {
    #[allow(clippy::disallowed_methods)]
    Instant::now()
}
