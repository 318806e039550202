//! Tool calls: hand-out, deadlines, and exactly one output per call.

pub(crate) mod builtins;
mod runner;

pub(crate) use runner::ToolRunner;
