//! The origin of a test's virtual clock, read outside `barbara-core` so that the core itself
//! reads no clock at all (not even in its unit tests). Every time a test hands the core is an
//! offset from this instant; which instant it is does not matter.

use std::time::Instant;

/// Any instant: the base of a test's virtual time.
#[must_use]
pub fn origin() -> Instant {
    Instant::now()
}
