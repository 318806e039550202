//! Who may talk to the server: SignalWire's webhook signatures and the per-call stream tokens.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::hmac;
use ring::rand::{SecureRandom as _, SystemRandom};

/// How long a minted stream token stays valid, in seconds.
const TOKEN_TTL_SECS: u64 = 300;

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Checks `X-SignalWire-Signature` / `X-Twilio-Signature`: base64(HMAC-SHA1(key, url + the
/// form fields sorted by name, each as name + value)), against `url` with and without its
/// scheme's default port. The comparison is constant-time.
pub(crate) fn webhook_signature_ok(
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
pub(crate) struct Tokens {
    key: hmac::Key,
    rng: SystemRandom,
    used: Mutex<BTreeMap<String, u64>>,
}

impl Tokens {
    pub(crate) fn new(secret: &[u8]) -> Tokens {
        Tokens {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            rng: SystemRandom::new(),
            used: Mutex::new(BTreeMap::new()),
        }
    }

    /// A token for `call_sid`, valid for a few minutes from `now_unix`.
    pub(crate) fn mint(&self, call_sid: &str, now_unix: u64) -> String {
        let expiry = now_unix + TOKEN_TTL_SECS;
        let mut nonce = [0u8; 9];
        let _ = self.rng.fill(&mut nonce);
        let nonce = URL_SAFE_NO_PAD.encode(nonce);
        let mac = hmac::sign(&self.key, format!("{call_sid}.{expiry}.{nonce}").as_bytes());
        format!(
            "{expiry}.{}.{nonce}.{}",
            URL_SAFE_NO_PAD.encode(call_sid),
            URL_SAFE_NO_PAD.encode(mac.as_ref())
        )
    }

    /// The CallSid a genuine, unexpired token was minted for.
    pub(crate) fn verify(&self, token: &str, now_unix: u64) -> Option<String> {
        let mut parts = token.trim().splitn(4, '.');
        let expiry: u64 = parts.next()?.parse().ok()?;
        let call_sid = String::from_utf8(URL_SAFE_NO_PAD.decode(parts.next()?).ok()?).ok()?;
        let nonce = parts.next()?;
        let mac = URL_SAFE_NO_PAD.decode(parts.next()?).ok()?;
        let data = format!("{call_sid}.{expiry}.{nonce}");
        hmac::verify(&self.key, data.as_bytes(), &mac).ok()?;
        (expiry >= now_unix).then_some(call_sid)
    }

    /// Verifies `token` and marks it used; a second use fails.
    pub(crate) fn redeem(&self, token: &str, now_unix: u64) -> Option<String> {
        let call_sid = self.verify(token, now_unix)?;
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        used.retain(|_, expiry| *expiry >= now_unix);
        let expiry = now_unix + TOKEN_TTL_SECS;
        used.insert(token.trim().to_owned(), expiry)
            .is_none()
            .then_some(call_sid)
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
        let tokens = Tokens::new(b"secret");
        let token = tokens.mint("CA42", 1000);
        assert_eq!(tokens.verify(&token, 1000).as_deref(), Some("CA42"));
        assert_eq!(tokens.verify(&token, 1000 + TOKEN_TTL_SECS + 1), None);
        assert_eq!(Tokens::new(b"other").verify(&token, 1000), None);
        assert_ne!(tokens.mint("CA42", 1000), token, "tokens are unique");
        let forged = token.replacen("Q0E0Mg", "Q0E0Mw", 1);
        assert_ne!(forged, token);
        assert_eq!(tokens.verify(&forged, 1000), None);
        assert_eq!(tokens.redeem(&token, 1001).as_deref(), Some("CA42"));
        assert_eq!(tokens.redeem(&token, 1002), None);
        assert_eq!(tokens.verify("garbage", 0), None);
    }
}
