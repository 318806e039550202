//! The Opus rates our offer declares (RFC 7587 §6.1): a phone leg never plays or captures
//! above its own rate, so the offer says so with `maxplaybackrate` and `sprop-maxcapturerate`.
//!
//! An encoder that honours `maxplaybackrate` sends narrowband or wideband SILK instead of
//! full-band hybrid Opus: fewer bits on the wire, and about half the decoding work for us.
//! Whether OpenAI's encoder honours it is UNCONFIRMED; an encoder that ignores it costs us
//! nothing more than today. str0m keeps no unknown fmtp parameter, so the parameters are
//! added to the offer's text.

/// The highest rate Opus codes; declaring it says nothing.
const OPUS_FULL_RATE: u32 = 48_000;

/// `sdp` with `maxplaybackrate` and `sprop-maxcapturerate` set to `rate_hz` on every Opus
/// payload type (an `a=fmtp` line is added where there is none). At 48 kHz and above, and
/// when `sdp` has no Opus, it comes back unchanged.
pub(crate) fn declare_rates(sdp: &str, rate_hz: u32) -> String {
    if rate_hz >= OPUS_FULL_RATE {
        return sdp.to_owned();
    }
    let opus_pts: Vec<&str> = sdp.lines().filter_map(opus_payload_type).collect();
    if opus_pts.is_empty() {
        return sdp.to_owned();
    }
    let params = format!("maxplaybackrate={rate_hz};sprop-maxcapturerate={rate_hz}");
    let newline = if sdp.contains("\r\n") { "\r\n" } else { "\n" };
    let mut out = String::with_capacity(sdp.len() + 2 * params.len() + 32);
    let mut with_fmtp: Vec<&str> = Vec::new();
    for line in sdp.lines() {
        match fmtp_of(line).filter(|(pt, _)| opus_pts.contains(pt)) {
            Some((pt, existing)) => {
                with_fmtp.push(pt);
                let kept: Vec<&str> = existing
                    .split(';')
                    .map(str::trim)
                    .filter(|p| !p.is_empty() && !is_rate_param(p))
                    .collect();
                out.push_str("a=fmtp:");
                out.push_str(pt);
                out.push(' ');
                for p in kept {
                    out.push_str(p);
                    out.push(';');
                }
                out.push_str(&params);
            }
            None => out.push_str(line),
        }
        out.push_str(newline);
        // An Opus payload type with no fmtp line gets one right after its rtpmap.
        if let Some(pt) = opus_payload_type(line)
            && !has_fmtp(sdp, pt)
        {
            out.push_str(&format!("a=fmtp:{pt} {params}{newline}"));
        }
    }
    if !sdp.ends_with('\n') {
        out.truncate(out.len() - newline.len());
    }
    out
}

/// The payload type of an `a=rtpmap:<pt> opus/48000/2` line.
fn opus_payload_type(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("a=rtpmap:")?;
    let (pt, encoding) = rest.split_once(' ')?;
    let name = encoding.split('/').next()?;
    name.trim()
        .eq_ignore_ascii_case("opus")
        .then_some(pt.trim())
}

/// The payload type and parameters of an `a=fmtp:<pt> <params>` line.
fn fmtp_of(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix("a=fmtp:")?;
    match rest.split_once(' ') {
        Some((pt, params)) => Some((pt.trim(), params)),
        None => Some((rest.trim(), "")),
    }
}

fn has_fmtp(sdp: &str, pt: &str) -> bool {
    sdp.lines()
        .filter_map(fmtp_of)
        .any(|(fmtp_pt, _)| fmtp_pt == pt)
}

fn is_rate_param(param: &str) -> bool {
    let key = param.split('=').next().unwrap_or("").trim();
    key.eq_ignore_ascii_case("maxplaybackrate") || key.eq_ignore_ascii_case("sprop-maxcapturerate")
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111 0 8\r\n\
        a=mid:0\r\n\
        a=rtpmap:111 opus/48000/2\r\n\
        a=fmtp:111 minptime=10;useinbandfec=1\r\n\
        a=rtpmap:0 PCMU/8000\r\n\
        a=rtpmap:8 PCMA/8000\r\n\
        m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n";

    #[test]
    fn the_opus_fmtp_line_gains_the_phone_rate_and_keeps_its_parameters() {
        let out = declare_rates(OFFER, 8_000);
        assert!(out.contains(
            "a=fmtp:111 minptime=10;useinbandfec=1;maxplaybackrate=8000;sprop-maxcapturerate=8000\r\n"
        ));
        assert_eq!(out.lines().count(), OFFER.lines().count());
        // Nothing else changed.
        let rest = |s: &str| {
            s.lines()
                .filter(|l| !l.starts_with("a=fmtp:111"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(rest(&out), rest(OFFER));
        assert!(out.ends_with("\r\n"));
    }

    #[test]
    fn an_opus_payload_type_without_fmtp_gets_one_after_its_rtpmap() {
        let sdp = "m=audio 9 RTP/AVP 96\na=rtpmap:96 OPUS/48000/2\na=rtpmap:0 PCMU/8000";
        let out = declare_rates(sdp, 16_000);
        assert_eq!(
            out,
            "m=audio 9 RTP/AVP 96\na=rtpmap:96 OPUS/48000/2\n\
             a=fmtp:96 maxplaybackrate=16000;sprop-maxcapturerate=16000\na=rtpmap:0 PCMU/8000"
        );
    }

    #[test]
    fn rates_already_there_are_replaced_not_repeated() {
        let sdp = "a=rtpmap:111 opus/48000/2\na=fmtp:111 maxplaybackrate=48000;usedtx=0\n";
        let out = declare_rates(sdp, 24_000);
        assert_eq!(
            out,
            "a=rtpmap:111 opus/48000/2\n\
             a=fmtp:111 usedtx=0;maxplaybackrate=24000;sprop-maxcapturerate=24000\n"
        );
    }

    #[test]
    fn full_rate_and_offers_without_opus_are_left_alone() {
        assert_eq!(declare_rates(OFFER, 48_000), OFFER);
        let g711 = "a=rtpmap:0 PCMU/8000\r\na=fmtp:0 x=1\r\n";
        assert_eq!(declare_rates(g711, 8_000), g711);
        assert_eq!(declare_rates("", 8_000), "");
    }

    #[test]
    fn other_payload_types_fmtp_lines_are_untouched() {
        let sdp = "a=rtpmap:111 opus/48000/2\na=rtpmap:101 telephone-event/8000\n\
                   a=fmtp:101 0-15\na=fmtp:111 minptime=10\n";
        let out = declare_rates(sdp, 8_000);
        assert!(out.contains("a=fmtp:101 0-15\n"));
        assert!(out.contains("a=fmtp:111 minptime=10;maxplaybackrate=8000;"));
    }
}
