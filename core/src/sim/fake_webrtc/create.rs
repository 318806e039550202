//! The HTTP side: creating a Realtime call or a Live session (checking the request, answering
//! the SDP offer, giving the call its brain) and hanging a Realtime call up.

use std::time::Instant;

use serde_json::{Value, json};
use str0m::change::SdpOffer;
use str0m::media::{MediaKind, Pt};
use str0m::{Candidate, Rtc};

use super::brain::Brain;
use super::http::{
    authorized, error_answer, error_json, header, parse_multipart, scripted_refusal,
};
use super::peer::{Answered, Call, CallState, offer_audio_mid};
use super::{AudioCodec, CODECS, CallRecord, FakeRealtimeWebRtc, HttpAnswer, MAX_CALLS, OPUS_RATE};
use crate::audio::opus::{OpusDecoder, OpusEncoder};
use crate::sim::fake_live::FakeLive;
use crate::sim::fake_realtime::{FakeRealtime, RealtimeReport, SessionRefusal};

impl FakeRealtimeWebRtc {
    /// A refusal that is the client's fault: recorded, then answered.
    fn refuse_bug(&mut self, status: u16, code: &str, message: &str) -> HttpAnswer {
        self.refuse_param(status, code, None, message)
    }

    /// A refusal that is the client's fault, naming the parameter: recorded, then answered.
    fn refuse_param(
        &mut self,
        status: u16,
        code: &str,
        param: Option<&str>,
        message: &str,
    ) -> HttpAnswer {
        self.violate(format!(
            "creation refused with {status} {code} ({}): {message}",
            param.unwrap_or("-")
        ));
        error_json(status, "invalid_request_error", Some(code), param, message)
    }

    /// What every creation checks first: the scripted refusal, the key, the call limit.
    fn admit(&mut self, headers: &[(String, String)]) -> Result<(), HttpAnswer> {
        if let Some(status) = self.mode.refuse_with {
            return Err(scripted_refusal(status));
        }
        if !authorized(headers) {
            return Err(self.refuse_bug(
                401,
                "invalid_api_key",
                "You didn't provide an API key. Provide it in the Authorization header (Bearer auth).",
            ));
        }
        if self.calls.len() >= MAX_CALLS {
            return Err(error_answer(
                429,
                "requests",
                Some("rate_limit_exceeded"),
                "Too many calls.",
            ));
        }
        Ok(())
    }

    /// Answers the offer with a fresh `Rtc`: OpenAI's DTLS role, one host candidate, Opus first.
    fn answer_offer(&mut self, now: Instant, sdp: &str) -> Result<Answered, HttpAnswer> {
        if !sdp.contains("m=audio") {
            let msg = "The offer must contain an audio media section.";
            return Err(self.refuse_bug(400, "invalid_offer", msg));
        }
        // str0m answers an `actpass` offer as `passive`; OpenAI answers `active` (it is the DTLS
        // client). Offering `passive` on str0m's behalf makes it take the active role.
        let as_passive = sdp.replace("a=setup:actpass", "a=setup:passive");
        let offer = match SdpOffer::from_sdp_string(&as_passive) {
            Ok(offer) => offer,
            Err(e) => {
                let msg = format!("Invalid SDP: {e}");
                return Err(self.refuse_bug(400, "invalid_offer", &msg));
            }
        };
        // Pion, the real server's stack, caps data channel messages at 64 KiB.
        let mut builder = Rtc::builder()
            .set_sctp_max_message_size(65_535)
            .clear_codecs()
            .enable_opus(true, false);
        if !self.mode.opus_only {
            builder = builder.enable_pcmu(true, false).enable_pcma(true, false);
        }
        let mut rtc = builder.build(now);
        let added = Candidate::host(self.local_addr, "udp")
            .ok()
            .and_then(|c| rtc.add_local_candidate(c).cloned());
        if added.is_none() {
            let msg = "The fake's local address is not a usable host candidate.";
            return Err(error_answer(500, "server_error", None, msg));
        }
        let answer = match rtc.sdp_api().accept_offer(offer) {
            Ok(answer) => answer,
            Err(e) => {
                let msg = format!("The offer could not be accepted: {e}");
                return Err(self.refuse_bug(400, "invalid_offer", &msg));
            }
        };
        let mid = offer_audio_mid(sdp)
            .filter(|&mid| rtc.media(mid).is_some_and(|m| m.kind() == MediaKind::Audio));
        let negotiated = mid.and_then(|mid| {
            let writer = rtc.writer(mid)?;
            let params: Vec<(str0m::format::Codec, Pt)> = writer
                .payload_params()
                .map(|p| (p.spec().codec, p.pt()))
                .collect();
            // Opus first, as the real answer lists it.
            CODECS.into_iter().find_map(|(want, codec)| {
                let (_, pt) = params.iter().find(|(c, _)| *c == want)?;
                Some((mid, *pt, codec))
            })
        });
        let Some((mid, pt, codec)) = negotiated else {
            // Not necessarily a client bug (an opus_only fake meeting a G.711-only offer).
            let msg = "No supported audio codec in the offer.";
            return Err(error_answer(
                400,
                "invalid_request_error",
                Some("invalid_offer"),
                msg,
            ));
        };
        let (send_rate, receive_rate) = match codec {
            AudioCodec::Opus => {
                let (playback, capture) = offered_opus_rates(sdp);
                let playback = playback.filter(|_| self.mode.honour_max_playback_rate);
                (opus_rate_up_to(playback), opus_rate_up_to(capture))
            }
            AudioCodec::Pcmu | AudioCodec::Pcma => (codec.rate(), codec.rate()),
        };
        let (encoder, decoder) = match codec {
            AudioCodec::Opus => match (OpusEncoder::new(send_rate), OpusDecoder::new(receive_rate))
            {
                (Ok(e), Ok(d)) => (Some(e), Some(d)),
                (Err(e), _) | (_, Err(e)) => {
                    return Err(error_answer(500, "server_error", None, &e.to_string()));
                }
            },
            AudioCodec::Pcmu | AudioCodec::Pcma => (None, None),
        };
        Ok(Answered {
            rtc,
            answer: answer.to_sdp_string(),
            mid,
            pt,
            codec,
            encoder,
            decoder,
        })
    }

    /// A brain's refusal of the session: a client bug, answered 400 with its fields.
    fn refuse_session(&mut self, r: &SessionRefusal) -> HttpAnswer {
        let param = r.param.as_deref();
        self.refuse_param(400, &r.code, param, &r.message)
    }

    /// Starts serving a created call: its record, its peer connection and its brain.
    fn add_call(
        &mut self,
        now: Instant,
        call_id: String,
        request: (&[(String, String)], Option<Value>, String),
        answered: Answered,
        brain: Brain,
        record_input: bool,
    ) {
        let (headers, session, offer_sdp) = request;
        let record = CallRecord {
            call_id,
            created_at: self.since(now),
            headers: headers.to_vec(),
            session,
            offer_sdp,
            codec: answered.codec,
            send_rate: answered.send_rate(),
            receive_rate: answered.receive_rate(),
            codec_in: None,
            connected_at: None,
            channel: None,
            dropped_at: None,
            hung_up_at: None,
            closed_at: None,
            rtp_in: 0,
            rtp_payload_in: Vec::new(),
            rtp_concealed: 0,
            rtp_late: 0,
            rtp_bad: 0,
            rtp_out: 0,
            rtp_out_ms: 0,
            frames_unsent: 0,
            events_unsent: 0,
            channel_messages_in: 0,
            violations: Vec::new(),
            realtime: RealtimeReport::default(),
            live: None,
        };
        let state = if self.mode.never_connect {
            CallState::Dead
        } else {
            CallState::Live
        };
        let drop_after = self.mode.drop_after;
        let mut call = Call::new(record, answered, brain, state, drop_after, record_input);
        if call.state == CallState::Live {
            call.drain(now, self.origin, &mut self.transmits);
        }
        self.calls.push(call);
    }

    // ---- Realtime ----

    pub(super) fn create_call(
        &mut self,
        now: Instant,
        query: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> HttpAnswer {
        if let Err(refused) = self.admit(headers) {
            return refused;
        }
        if query.split('&').any(|kv| kv.starts_with("model=")) {
            self.violate(format!(
                "`?{query}` on /v1/realtime/calls: the model belongs in the session part"
            ));
        }
        let content_type = header(headers, "content-type").unwrap_or("");
        let (sdp, session) = match self.read_body(content_type, body) {
            Ok(parts) => parts,
            Err(message) => return self.refuse_bug(400, "invalid_request_body", &message),
        };
        let answered = match self.answer_offer(now, &sdp) {
            Ok(answered) => answered,
            Err(refused) => return refused,
        };
        let session_json = session.clone().unwrap_or(Value::Null);
        let rate = answered.send_rate();
        let brain = match FakeRealtime::new_webrtc(now, self.script.clone(), &session_json, rate) {
            Ok(brain) => brain,
            Err(r) => return self.refuse_session(&r),
        };
        let mut brain = Brain::Realtime(Box::new(brain));
        if let Some(origin) = self.origin {
            brain.set_origin(origin);
        }
        let call_id = format!("rtc_{:04}", self.calls.len() + 1);
        let headers_out = vec![
            ("Content-Type".to_owned(), "application/sdp".to_owned()),
            (
                "Location".to_owned(),
                format!("/v1/realtime/calls/{call_id}"),
            ),
        ];
        let answer = answered.answer.clone().into_bytes();
        let record_input = self.script.record_input_audio;
        let request = (headers, session, sdp);
        self.add_call(now, call_id, request, answered, brain, record_input);
        (201, headers_out, answer)
    }

    /// Reads the offer and the optional session from a multipart or raw-SDP body.
    fn read_body(
        &mut self,
        content_type: &str,
        body: &[u8],
    ) -> Result<(String, Option<Value>), String> {
        let media_type = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match media_type.as_str() {
            "application/sdp" => {
                let sdp = std::str::from_utf8(body).map_err(|_| "The SDP is not UTF-8.")?;
                Ok((sdp.to_owned(), None))
            }
            "multipart/form-data" => {
                let parts = parse_multipart(content_type, body)?;
                let mut sdp = None;
                let mut session = None;
                for part in parts {
                    let expected = match part.name.as_str() {
                        "sdp" => "application/sdp",
                        "session" => "application/json",
                        other => {
                            self.violate(format!("unexpected multipart part {other:?}"));
                            continue;
                        }
                    };
                    if let Some(ct) = &part.content_type
                        && !ct.to_ascii_lowercase().starts_with(expected)
                    {
                        self.violate(format!(
                            "part {:?} has Content-Type {ct:?}, expected {expected}",
                            part.name
                        ));
                    }
                    let text = String::from_utf8(part.body)
                        .map_err(|_| format!("Part '{}' is not UTF-8.", part.name))?;
                    let slot = if part.name == "sdp" {
                        &mut sdp
                    } else {
                        &mut session
                    };
                    if slot.replace(text).is_some() {
                        return Err(format!("Duplicate part '{}'.", part.name));
                    }
                }
                let sdp = sdp.ok_or("Missing required part: 'sdp'.")?;
                let session = match session {
                    None => None,
                    Some(text) => Some(serde_json::from_str::<Value>(&text).map_err(|e| {
                        format!("We could not parse the JSON body of the 'session' part. ({e})")
                    })?),
                };
                Ok((sdp, session))
            }
            _ => Err(format!(
                "Unsupported Content-Type {content_type:?}: expected multipart/form-data or application/sdp."
            )),
        }
    }

    pub(super) fn hangup(
        &mut self,
        now: Instant,
        call_id: &str,
        headers: &[(String, String)],
    ) -> HttpAnswer {
        if !authorized(headers) {
            self.violate(format!("hangup of {call_id} without Authorization"));
            return error_answer(
                401,
                "invalid_request_error",
                Some("invalid_api_key"),
                "You didn't provide an API key.",
            );
        }
        let at = self.since(now);
        let origin = self.origin;
        let Some(call) = self
            .calls
            .iter_mut()
            .find(|c| c.record.call_id == call_id && c.brain.is_realtime())
        else {
            let msg = format!("Call '{call_id}' not found.");
            return error_answer(404, "invalid_request_error", Some("not_found"), &msg);
        };
        if call.record.hung_up_at.is_none() {
            call.record.hung_up_at = Some(at);
        }
        call.brain.handle_closed(now);
        call.close(now, origin, &mut self.transmits);
        self.report.hangups.push((at, call_id.to_owned()));
        (200, Vec::new(), Vec::new())
    }

    // ---- Live ----

    /// `POST /v1/live/sessions` with `{session, transport: {type: "webrtc", sdp}}`.
    pub(super) fn create_live_session(
        &mut self,
        now: Instant,
        query: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> HttpAnswer {
        if let Err(refused) = self.admit(headers) {
            return refused;
        }
        if !query.is_empty() {
            self.violate(format!(
                "`?{query}` on /v1/live/sessions: everything belongs in the JSON body"
            ));
        }
        let content_type = header(headers, "content-type").unwrap_or("");
        let (session, sdp) = match read_live_body(content_type, body) {
            Ok(read) => read,
            Err(r) => return self.refuse_param(400, r.0, r.1.as_deref(), &r.2),
        };
        let answered = match self.answer_offer(now, &sdp) {
            Ok(answered) => answered,
            Err(refused) => return refused,
        };
        let session_id = format!("live_rtc_{:04}", self.calls.len() + 1);
        let script = self.mode.live_script.clone().unwrap_or_default();
        let record_input = script.record_input_audio;
        let rate = answered.send_rate();
        let brain = match FakeLive::new_webrtc(now, script, &session, rate, &session_id) {
            Ok(brain) => brain,
            Err(r) => return self.refuse_session(&r),
        };
        let body = json!({
            "session": brain.session_resource(),
            "transport": {"type": "webrtc", "sdp": answered.answer},
        });
        let mut brain = Brain::Live(Box::new(brain));
        if let Some(origin) = self.origin {
            brain.set_origin(origin);
        }
        let request = (headers, Some(session), sdp);
        self.add_call(now, session_id, request, answered, brain, record_input);
        let headers_out = vec![("Content-Type".to_owned(), "application/json".to_owned())];
        (201, headers_out, body.to_string().into_bytes())
    }
}

/// A refused Live creation body: `(code, param, message)`.
type BodyRefusal = (&'static str, Option<String>, String);

/// Reads a Live creation body: JSON `{session, transport: {type: "webrtc", sdp}}`, nothing
/// else. Returns the session and the offer.
fn read_live_body(content_type: &str, body: &[u8]) -> Result<(Value, String), BodyRefusal> {
    let refusal = |code, param: &str, message: String| {
        Err((code, (!param.is_empty()).then(|| param.to_owned()), message))
    };
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if !media_type.eq_ignore_ascii_case("application/json") {
        let msg = format!("Unsupported Content-Type {content_type:?}: expected application/json.");
        return refusal("invalid_request_body", "", msg);
    }
    let value: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            let msg = format!("We could not parse the JSON body of your request. ({e})");
            return refusal("invalid_json", "", msg);
        }
    };
    let Some(fields) = value.as_object() else {
        let msg = "Invalid type for the body: expected an object.".to_owned();
        return refusal("invalid_type", "", msg);
    };
    if let Some(k) = fields.keys().find(|k| *k != "session" && *k != "transport") {
        return refusal("unknown_parameter", k, format!("Unknown parameter: '{k}'."));
    }
    let Some(transport) = fields.get("transport") else {
        let msg = "Missing required parameter: 'transport'.".to_owned();
        return refusal("missing_required_parameter", "transport", msg);
    };
    let Some(transport) = transport.as_object() else {
        let msg = "Invalid type for 'transport': expected an object.".to_owned();
        return refusal("invalid_type", "transport", msg);
    };
    if let Some(k) = transport.keys().find(|k| *k != "type" && *k != "sdp") {
        let param = format!("transport.{k}");
        let msg = format!("Unknown parameter: '{param}'.");
        return refusal("unknown_parameter", &param, msg);
    }
    match transport.get("type").and_then(Value::as_str) {
        Some("webrtc") => {}
        Some(other) => {
            let msg = format!("Invalid 'transport.type': '{other}'; this endpoint fakes 'webrtc'.");
            return refusal("invalid_value", "transport.type", msg);
        }
        None => {
            let msg = "Missing required parameter: 'transport.type'.".to_owned();
            return refusal("missing_required_parameter", "transport.type", msg);
        }
    }
    let Some(sdp) = transport.get("sdp").and_then(Value::as_str) else {
        let msg = "Missing required parameter: 'transport.sdp' (the SDP offer).".to_owned();
        return refusal("missing_required_parameter", "transport.sdp", msg);
    };
    let Some(session) = fields.get("session") else {
        let msg = "Missing required parameter: 'session'.".to_owned();
        return refusal("missing_required_parameter", "session", msg);
    };
    Ok((session.clone(), sdp.to_owned()))
}

/// The Opus `maxplaybackrate` and `sprop-maxcapturerate` of the offer's Opus payload types
/// (RFC 7587 §6.1), read from its text: str0m keeps neither.
fn offered_opus_rates(sdp: &str) -> (Option<u32>, Option<u32>) {
    let opus_pts: Vec<&str> = sdp
        .lines()
        .filter_map(|line| {
            let (pt, encoding) = line.strip_prefix("a=rtpmap:")?.split_once(' ')?;
            let name = encoding.split('/').next()?;
            name.trim()
                .eq_ignore_ascii_case("opus")
                .then_some(pt.trim())
        })
        .collect();
    let (mut playback, mut capture) = (None, None);
    for line in sdp.lines() {
        let Some((pt, params)) = line.strip_prefix("a=fmtp:").and_then(|r| r.split_once(' '))
        else {
            continue;
        };
        if !opus_pts.contains(&pt.trim()) {
            continue;
        }
        for param in params.split(';') {
            let Some((key, value)) = param.split_once('=') else {
                continue;
            };
            let Ok(value) = value.trim().parse::<u32>() else {
                continue;
            };
            match key.trim().to_ascii_lowercase().as_str() {
                "maxplaybackrate" => playback = Some(value),
                "sprop-maxcapturerate" => capture = Some(value),
                _ => {}
            }
        }
    }
    (playback, capture)
}

/// The fake's Opus rate under a declared limit: the highest of 8, 16 and 24 kHz not above it
/// (8 kHz below that), 24 kHz when nothing is declared.
fn opus_rate_up_to(limit: Option<u32>) -> u32 {
    let Some(limit) = limit else {
        return OPUS_RATE;
    };
    [OPUS_RATE, 16_000, 8_000]
        .into_iter()
        .find(|&rate| rate <= limit)
        .unwrap_or(8_000)
}

#[cfg(test)]
mod rate_tests {
    use super::*;

    #[test]
    fn the_offers_opus_rates_are_read_from_its_fmtp_line() {
        let sdp = "a=rtpmap:111 opus/48000/2\r\n\
                   a=fmtp:111 minptime=10;maxplaybackrate=16000; sprop-maxcapturerate=8000\r\n\
                   a=rtpmap:0 PCMU/8000\r\na=fmtp:0 maxplaybackrate=4000\r\n";
        assert_eq!(offered_opus_rates(sdp), (Some(16_000), Some(8_000)));
        assert_eq!(
            offered_opus_rates("a=rtpmap:111 opus/48000/2\n"),
            (None, None)
        );
        let garbage = "a=rtpmap:111 opus/48000/2\na=fmtp:111 maxplaybackrate=lots;=;;x\n";
        assert_eq!(offered_opus_rates(garbage), (None, None));
    }

    #[test]
    fn a_declared_rate_picks_the_highest_opus_rate_not_above_it() {
        assert_eq!(opus_rate_up_to(None), OPUS_RATE);
        assert_eq!(opus_rate_up_to(Some(48_000)), OPUS_RATE);
        assert_eq!(opus_rate_up_to(Some(24_000)), 24_000);
        assert_eq!(opus_rate_up_to(Some(22_050)), 16_000);
        assert_eq!(opus_rate_up_to(Some(8_000)), 8_000);
        assert_eq!(opus_rate_up_to(Some(0)), 8_000);
    }
}
