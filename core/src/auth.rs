//! Who may talk to a server, without I/O: SignalWire's webhook signatures, the per-call stream
//! tokens, and the admission of a new media stream (its `start` must carry a token bound to
//! its `callSid` before any OpenAI connection is made).
//!
//! Every runtime adapter shares this code; it only reads frames, keeps the admission deadline
//! and passes the wall clock in (`now_unix`, seconds since the epoch) along with any randomness
//! (the nonce of a minted token).
//!
//! ```text
//! let mut admission = Admission::new(now, bearer_sid);   // bearer redeemed at the upgrade
//! loop {                                                   // until admission.deadline()
//!     match admission.handle_text(unix_secs, next_text_frame, &mut tokens) {
//!         Verdict::Pending => continue,
//!         Verdict::Admitted { frames, start } => break /* run the call, frames first */,
//!         Verdict::Refused => break /* close with 1008 */,
//!     }
//! }
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::hmac;

use crate::media_stream::messages::{InboundMessage, StartInfo, parse_inbound};

/// How long a minted stream token stays valid, in seconds.
pub const TOKEN_TTL_SECS: u64 = 300;

/// How long a new media stream has to show its `start` with a valid token.
pub const ADMIT_WITHIN: Duration = Duration::from_secs(2);

/// How many text frames a new media stream may send before its `start`.
pub const ADMIT_MAX_FRAMES: usize = 4;

/// Checks `X-SignalWire-Signature` / `X-Twilio-Signature`: base64(HMAC-SHA1(key, url + the
/// form fields sorted by name, each as name + value)), against `url` with and without its
/// scheme's default port. The comparison is constant-time.
pub fn webhook_signature_ok(
    key: &str,
    url: &str,
    params: &[(String, String)],
    signature: &str,
) -> bool {
    let Ok(signature) = STANDARD.decode(signature.trim()) else {
        return false;
    };
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0)); // stable: repeated names keep their order
    let fields: String = sorted.iter().flat_map(|(k, v)| [k.as_str(), v]).collect();
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key.as_bytes());
    url_variants(url).iter().any(|candidate| {
        let data = format!("{candidate}{fields}");
        hmac::verify(&key, data.as_bytes(), &signature).is_ok()
    })
}

/// `url` as given, and with its scheme's default port added or removed.
fn url_variants(url: &str) -> Vec<String> {
    let mut variants = vec![url.to_owned()];
    let Some((scheme, rest)) = url.split_once("://") else {
        return variants;
    };
    let port = match scheme {
        "https" | "wss" => ":443",
        "http" | "ws" => ":80",
        _ => return variants,
    };
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(split);
    let other = match authority.strip_suffix(port) {
        Some(host) => format!("{scheme}://{host}{tail}"),
        None if !authority.contains(':') || authority.ends_with(']') => {
            format!("{scheme}://{authority}{port}{tail}")
        }
        None => return variants,
    };
    variants.push(other);
    variants
}

/// Per-call stream tokens: `{expiry}.{CallSid}.{nonce}.{mac}` (the last three base64url), with
/// mac = HMAC-SHA256(secret, "CallSid.expiry.nonce"); minted in the cXML answer, accepted once.
///
/// Only genuine tokens are remembered as used, until they expire.
pub struct StreamTokens {
    key: hmac::Key,
    used: BTreeMap<String, u64>,
}

impl std::fmt::Debug for StreamTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key stays out of logs.
        f.debug_struct("StreamTokens")
            .field("used", &self.used.len())
            .finish_non_exhaustive()
    }
}

impl StreamTokens {
    /// Tokens signed with `secret` (the SignalWire signing key, or random bytes).
    pub fn new(secret: &[u8]) -> StreamTokens {
        StreamTokens {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            used: BTreeMap::new(),
        }
    }

    /// A token for `call_sid`, valid for [`TOKEN_TTL_SECS`] from `now_unix`; `nonce` must be
    /// fresh random bytes, so that two tokens for one call differ.
    pub fn mint(&self, now_unix: u64, call_sid: &str, nonce: [u8; 9]) -> String {
        let expiry = now_unix.saturating_add(TOKEN_TTL_SECS);
        let nonce = URL_SAFE_NO_PAD.encode(nonce);
        let mac = hmac::sign(&self.key, format!("{call_sid}.{expiry}.{nonce}").as_bytes());
        format!(
            "{expiry}.{}.{nonce}.{}",
            URL_SAFE_NO_PAD.encode(call_sid),
            URL_SAFE_NO_PAD.encode(mac.as_ref())
        )
    }

    /// The CallSid a genuine, unexpired token was minted for; `None` for anything else.
    pub fn verify(&self, now_unix: u64, token: &str) -> Option<String> {
        let mut parts = token.trim().splitn(4, '.');
        let expiry: u64 = parts.next()?.parse().ok()?;
        let call_sid = String::from_utf8(URL_SAFE_NO_PAD.decode(parts.next()?).ok()?).ok()?;
        let nonce = parts.next()?;
        let mac = URL_SAFE_NO_PAD.decode(parts.next()?).ok()?;
        let data = format!("{call_sid}.{expiry}.{nonce}");
        hmac::verify(&self.key, data.as_bytes(), &mac).ok()?;
        (expiry >= now_unix).then_some(call_sid)
    }

    /// Verifies `token` and marks it used; a second use gives `None`.
    pub fn redeem(&mut self, now_unix: u64, token: &str) -> Option<String> {
        let call_sid = self.verify(now_unix, token)?;
        self.used.retain(|_, expiry| *expiry >= now_unix);
        let expiry = now_unix.saturating_add(TOKEN_TTL_SECS);
        self.used
            .insert(token.trim().to_owned(), expiry)
            .is_none()
            .then_some(call_sid)
    }
}

/// What [`Admission::handle_text`] decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// No `start` yet: read the next frame (until [`Admission::deadline`]).
    Pending,
    /// The stream may go on: feed `frames` (all read so far, `start` last) to the call first.
    Admitted {
        /// Every text frame read, in order.
        frames: Vec<String>,
        /// The `start` that carried the token.
        start: StartInfo,
    },
    /// Close the stream (1008) without connecting to OpenAI.
    Refused,
}

/// A new media stream waiting to show its `start`: the token is the one redeemed at the
/// upgrade (`bearer_sid` is its CallSid) or `start.customParameters.token`, bound to
/// `start.callSid`. Binary frames, a close, the deadline or too many frames refuse it: the
/// adapter sees those itself.
#[derive(Debug)]
pub struct Admission {
    bearer_sid: Option<String>,
    frames: Vec<String>,
    deadline: Instant,
}

impl Admission {
    /// A stream accepted at `now`; `bearer_sid` is the CallSid of a token already redeemed at
    /// the upgrade.
    pub fn new(now: Instant, bearer_sid: Option<String>) -> Admission {
        Admission {
            bearer_sid,
            frames: Vec::new(),
            deadline: now + ADMIT_WITHIN,
        }
    }

    /// When the stream is refused if still [`Verdict::Pending`].
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// A text frame arrived; `now_unix` is the wall clock in seconds since the epoch.
    pub fn handle_text(
        &mut self,
        now_unix: u64,
        text: String,
        tokens: &mut StreamTokens,
    ) -> Verdict {
        if self.frames.len() >= ADMIT_MAX_FRAMES {
            return Verdict::Refused;
        }
        let parsed = parse_inbound(&text);
        self.frames.push(text);
        let Ok(InboundMessage::Start(start)) = parsed else {
            return if self.frames.len() < ADMIT_MAX_FRAMES {
                Verdict::Pending
            } else {
                Verdict::Refused
            };
        };
        let Some(call_sid) = start.call_sid.as_deref() else {
            return Verdict::Refused;
        };
        let admitted = match &self.bearer_sid {
            Some(sid) => sid == call_sid,
            // A parameter token is redeemed only once it is known to be this call's.
            None => start.custom_parameters.get("token").is_some_and(|token| {
                tokens.verify(now_unix, token).as_deref() == Some(call_sid)
                    && tokens.redeem(now_unix, token).is_some()
            }),
        };
        if !admitted {
            return Verdict::Refused;
        }
        Verdict::Admitted {
            frames: std::mem::take(&mut self.frames),
            start,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_example_signature_verifies() {
        // Computed independently (Python hmac) for a made-up key.
        let params: Vec<(String, String)> = [
            ("To", "+15551230002"),
            ("CallSid", "CA1"),
            ("From", "+15551230001"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let url = "https://bridge.example.com/incoming-call";
        let sig = "g+IyIhu5JKwVZHyKsstMCJ40Luc=";
        assert!(webhook_signature_ok("PSKkey", url, &params, sig));
        let with_port = "https://bridge.example.com:443/incoming-call";
        assert!(webhook_signature_ok("PSKkey", with_port, &params, sig));
        assert!(!webhook_signature_ok("other", url, &params, sig));
        assert!(!webhook_signature_ok("PSKkey", url, &params[1..], sig));
        assert!(!webhook_signature_ok("PSKkey", url, &params, "not base64!"));
    }

    #[test]
    fn url_variants_add_and_remove_the_default_port() {
        assert_eq!(
            url_variants("http://h:80/x?y=1"),
            ["http://h:80/x?y=1", "http://h/x?y=1"]
        );
        assert_eq!(
            url_variants("https://h/x"),
            ["https://h/x", "https://h:443/x"]
        );
        assert_eq!(url_variants("https://h:8443/x"), ["https://h:8443/x"]);
    }

    #[test]
    fn tokens_are_bound_expire_and_redeem_once() {
        let mut tokens = StreamTokens::new(b"secret");
        let token = tokens.mint(1000, "CA42", [1; 9]);
        assert_eq!(tokens.verify(1000, &token).as_deref(), Some("CA42"));
        assert_eq!(tokens.verify(1000 + TOKEN_TTL_SECS + 1, &token), None);
        assert_eq!(StreamTokens::new(b"other").verify(1000, &token), None);
        assert_ne!(tokens.mint(1000, "CA42", [2; 9]), token, "nonces differ");
        let forged = token.replacen("Q0E0Mg", "Q0E0Mw", 1);
        assert_ne!(forged, token);
        assert_eq!(tokens.verify(1000, &forged), None);
        assert_eq!(tokens.redeem(1001, &token).as_deref(), Some("CA42"));
        assert_eq!(tokens.redeem(1002, &token), None);
        assert_eq!(tokens.verify(0, "garbage"), None);
        assert!(!format!("{tokens:?}").contains("secret"));
    }

    fn start(call_sid: &str, token: Option<&str>) -> String {
        let params = token.map_or(String::new(), |t| {
            format!(r#","customParameters":{{"token":"{t}"}}"#)
        });
        format!(
            r#"{{"event":"start","start":{{"streamSid":"MZ1","callSid":"{call_sid}","mediaFormat":{{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}}{params}}}}}"#
        )
    }

    #[test]
    fn admission_takes_the_parameter_token_once_and_bound_to_the_call() {
        let t0 = crate::tests::origin();
        let mut tokens = StreamTokens::new(b"secret");
        let token = tokens.mint(1000, "CA1", [3; 9]);
        let connected = r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#;

        let mut a = Admission::new(t0, None);
        assert_eq!(a.deadline(), t0 + ADMIT_WITHIN);
        assert_eq!(
            a.handle_text(1000, connected.into(), &mut tokens),
            Verdict::Pending
        );
        let Verdict::Admitted { frames, start: s } =
            a.handle_text(1000, start("CA1", Some(&token)), &mut tokens)
        else {
            panic!("a genuine token for this call is admitted");
        };
        assert_eq!((frames.len(), s.call_sid.as_deref()), (2, Some("CA1")));

        let mut again = Admission::new(t0, None);
        let verdict = again.handle_text(1000, start("CA1", Some(&token)), &mut tokens);
        assert_eq!(verdict, Verdict::Refused, "a token is good once");

        let other = tokens.mint(1000, "CA1", [4; 9]);
        let mut a = Admission::new(t0, None);
        let verdict = a.handle_text(1000, start("CA2", Some(&other)), &mut tokens);
        assert_eq!(verdict, Verdict::Refused, "bound to another call");
        let mut a = Admission::new(t0, None);
        assert!(
            matches!(
                a.handle_text(1000, start("CA1", Some(&other)), &mut tokens),
                Verdict::Admitted { .. }
            ),
            "the refusal for another call did not use it up"
        );

        let mut a = Admission::new(t0, None);
        assert_eq!(
            a.handle_text(1000, start("CA1", None), &mut tokens),
            Verdict::Refused
        );
    }

    #[test]
    fn admission_with_a_bearer_token_checks_the_call_and_gives_up_after_a_few_frames() {
        let t0 = crate::tests::origin();
        let mut tokens = StreamTokens::new(b"secret");
        let mut a = Admission::new(t0, Some("CA1".to_owned()));
        assert!(matches!(
            a.handle_text(0, start("CA1", None), &mut tokens),
            Verdict::Admitted { .. }
        ));
        let mut a = Admission::new(t0, Some("CA1".to_owned()));
        assert_eq!(
            a.handle_text(0, start("CA9", None), &mut tokens),
            Verdict::Refused
        );

        let mut a = Admission::new(t0, Some("CA1".to_owned()));
        for _ in 1..ADMIT_MAX_FRAMES {
            assert_eq!(
                a.handle_text(0, "not json".into(), &mut tokens),
                Verdict::Pending
            );
        }
        assert_eq!(
            a.handle_text(0, "not json".into(), &mut tokens),
            Verdict::Refused
        );
        assert_eq!(
            a.handle_text(0, start("CA1", None), &mut tokens),
            Verdict::Refused
        );
    }
}
