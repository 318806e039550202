//! What the core's unit tests share.

/// The origin of the unit tests' virtual time, read by a crate outside the core (the core
/// reads no clock); every time a test gives the core is an offset from it.
pub(crate) use barbara_test_origin::origin;
