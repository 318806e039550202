//! Whole calls on the simulation, one file per behaviour.
#![allow(clippy::unwrap_used)]

#[path = "barge-in-truncates-at-heard-audio.rs"]
mod barge_in_truncates_at_heard_audio;
#[path = "caller-dtmf-reaches-model.rs"]
mod caller_dtmf_reaches_model;
#[path = "caller-hangs-up-mid-response.rs"]
mod caller_hangs_up_mid_response;
#[path = "determinism-same-seed.rs"]
mod determinism_same_seed;
#[path = "dtmf-over-model-speech-truncates.rs"]
mod dtmf_over_model_speech_truncates;
#[path = "end-call-tool-hangs-up-after-goodbye.rs"]
mod end_call_tool_hangs_up_after_goodbye;
#[path = "fatal-openai-errors-end-the-call-without-retrying.rs"]
mod fatal_openai_errors_end_the_call_without_retrying;
#[path = "greeting-then-reply.rs"]
mod greeting_then_reply;
#[path = "hour-long-call-hits-session-limit.rs"]
mod hour_long_call_hits_session_limit;
#[path = "hour-long-call-rolls-over-before-the-cap.rs"]
mod hour_long_call_rolls_over_before_the_cap;
#[path = "l16-16k-resampled.rs"]
mod l16_16k_resampled;
#[path = "l16-24k-passthrough.rs"]
mod l16_24k_passthrough;
#[path = "malformed-signalwire-messages.rs"]
mod malformed_signalwire_messages;
#[path = "openai-socket-drop-reconnects-with-history.rs"]
mod openai_socket_drop_reconnects_with_history;
#[path = "random-interleavings.rs"]
mod random_interleavings;
#[path = "send-dtmf-tool-plays-digits.rs"]
mod send_dtmf_tool_plays_digits;
#[path = "socket-closes-without-stop.rs"]
mod socket_closes_without_stop;
#[path = "stale-mark-echoes-after-clear-ignored.rs"]
mod stale_mark_echoes_after_clear_ignored;
#[path = "throttled-response-is-retried-after-backoff.rs"]
mod throttled_response_is_retried_after_backoff;
#[path = "time-goes-backwards.rs"]
mod time_goes_backwards;
#[path = "tool-call-while-response-active.rs"]
mod tool_call_while_response_active;
#[path = "tool-timeout-then-late-reply.rs"]
mod tool_timeout_then_late_reply;
#[path = "two-tool-calls-one-response.rs"]
mod two_tool_calls_one_response;
#[path = "webhook-tool-then-transfer.rs"]
mod webhook_tool_then_transfer;
