//! Whole calls on the Live backend (`/v1/live/sessions`), one file per behaviour.
#![allow(clippy::unwrap_used)]

#[path = "backend-chosen-per-number.rs"]
mod backend_chosen_per_number;
#[path = "live-caller-talks-over-model.rs"]
mod live_caller_talks_over_model;
#[path = "live-dtmf-reaches-model.rs"]
mod live_dtmf_reaches_model;
#[path = "live-greeting-then-reply.rs"]
mod live_greeting_then_reply;
#[path = "live-hangup-waits-for-session-closed.rs"]
mod live_hangup_waits_for_session_closed;
#[path = "live-input-never-pauses.rs"]
mod live_input_never_pauses;
#[path = "live-line-cut-by-a-dropped-socket-is-marked-cut-off.rs"]
mod live_line_cut_by_a_dropped_socket_is_marked_cut_off;
#[path = "live-pcmu-passthrough.rs"]
mod live_pcmu_passthrough;
#[path = "live-refused-key-ends-call.rs"]
mod live_refused_key_ends_call;
#[path = "live-session-expired-ends-call.rs"]
mod live_session_expired_ends_call;
#[path = "live-socket-drop-reconnects-with-transcript.rs"]
mod live_socket_drop_reconnects_with_transcript;
#[path = "live-tool-call-via-responses-delegation.rs"]
mod live_tool_call_via_responses_delegation;
#[path = "live-tool-timeout-still-answered.rs"]
mod live_tool_timeout_still_answered;
#[path = "live-two-tool-calls-one-response-create.rs"]
mod live_two_tool_calls_one_response_create;
#[path = "live-webrtc-call-end-to-end.rs"]
mod live_webrtc_call_end_to_end;
#[path = "live-webrtc-dies-mid-call-falls-back-with-transcript.rs"]
mod live_webrtc_dies_mid_call_falls_back_with_transcript;
#[path = "live-webrtc-never-connects-falls-back.rs"]
mod live_webrtc_never_connects_falls_back;
#[path = "live-webrtc-pcmu-passthrough.rs"]
mod live_webrtc_pcmu_passthrough;
#[path = "live-webrtc-refused-falls-back-to-websocket.rs"]
mod live_webrtc_refused_falls_back_to_websocket;
#[path = "random-interleavings.rs"]
mod random_interleavings;
