//! Whole calls over WebRTC on the simulation (a real str0m peer as the fake OpenAI), one file
//! per behaviour.
#![allow(clippy::unwrap_used)]

#[path = "barge-in-over-webrtc.rs"]
mod barge_in_over_webrtc;
#[path = "dtmf-over-model-speech-interrupts.rs"]
mod dtmf_over_model_speech_interrupts;
#[path = "ice-never-completes-falls-back-to-websocket.rs"]
mod ice_never_completes_falls_back_to_websocket;
#[path = "model-opus-follows-the-offered-phone-rate.rs"]
mod model_opus_follows_the_offered_phone_rate;
#[path = "realtime-line-cut-by-a-lost-path-is-marked-cut-off.rs"]
mod realtime_line_cut_by_a_lost_path_is_marked_cut_off;
#[path = "tool-call-over-data-channel.rs"]
mod tool_call_over_data_channel;
#[path = "uplink-loss-turns-fec-on-and-a-clean-path-turns-it-off.rs"]
mod uplink_loss_turns_fec_on_and_a_clean_path_turns_it_off;
#[path = "webrtc-5pct-loss-plc.rs"]
mod webrtc_5pct_loss_plc;
#[path = "webrtc-call-create-401-falls-back-to-websocket.rs"]
mod webrtc_call_create_401_falls_back_to_websocket;
#[path = "webrtc-call-end-to-end.rs"]
mod webrtc_call_end_to_end;
#[path = "webrtc-consent-lost-mid-call-falls-back.rs"]
mod webrtc_consent_lost_mid_call_falls_back;
#[path = "webrtc-hangup-posts-hangup.rs"]
mod webrtc_hangup_posts_hangup;
#[path = "webrtc-opus-transcoding.rs"]
mod webrtc_opus_transcoding;
#[path = "webrtc-pcmu-passthrough-when-offered.rs"]
mod webrtc_pcmu_passthrough_when_offered;
