//! The `barbara` binary.
fn main() {}
