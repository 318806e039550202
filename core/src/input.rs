//! Every input a runtime feeds a [`crate::Call`], as data: a call record logs them so that
//! `barbara replay` can run the same call again through the core and compare what it reports.
//!
//! Owned by the replay work; this is the pinned shape.

/// One input to a call, with the time it was fed as an offset from the call's start.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "input", rename_all = "snake_case")]
pub enum Input {}
