//! Built-in tools the core runs itself.

use std::time::Duration;

use serde_json::json;

use crate::config::{Builtins, ToolSpec};

/// Name of the built-in hang-up tool.
pub(crate) const END_CALL: &str = "end_call";
/// Name of the built-in transfer tool.
pub(crate) const TRANSFER_CALL: &str = "transfer_call";
/// Name of the built-in DTMF tool.
pub(crate) const SEND_DTMF: &str = "send_dtmf";

/// The specs of the enabled built-ins, for the session's tool list.
pub(crate) fn specs(builtins: Builtins) -> Vec<ToolSpec> {
    let mut specs = Vec::new();
    if builtins.end_call {
        specs.push(ToolSpec {
            name: END_CALL.to_owned(),
            description: "End the phone call. Say goodbye first, in the same turn.".to_owned(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "reason": {"type": "string", "description": "Why the call ends."}
                }
            }),
            timeout: Duration::ZERO,
            webhook: None,
            filler: None,
        });
    }
    if builtins.transfer_call {
        specs.push(ToolSpec {
            name: TRANSFER_CALL.to_owned(),
            description: "Transfer the caller to a phone number. Tell the caller first, in the same turn."
                .to_owned(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "to": {"type": "string", "description": "E.164 number like +15551234567, or a sip: URI."}
                },
                "required": ["to"]
            }),
            timeout: Duration::ZERO,
            webhook: None,
            filler: None,
        });
    }
    if builtins.send_dtmf {
        specs.push(ToolSpec {
            name: SEND_DTMF.to_owned(),
            description: "Send DTMF tones (keypad presses) on the call, e.g. to navigate a menu."
                .to_owned(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "digits": {"type": "string", "description": "Digits 0-9, *, #, A-D."}
                },
                "required": ["digits"]
            }),
            timeout: Duration::ZERO,
            webhook: None,
            filler: None,
        });
    }
    specs
}

/// The digits of a `send_dtmf` call, if every one is a DTMF key.
pub(crate) fn dtmf_digits(arguments: &serde_json::Value) -> Option<String> {
    let digits = arguments.get("digits")?.as_str()?;
    let digits: String = digits.chars().filter(|c| !c.is_whitespace()).collect();
    let valid = !digits.is_empty() && digits.len() <= 32 && digits.chars().all(is_dtmf_digit);
    valid.then(|| digits.to_ascii_uppercase())
}

/// The target of a `transfer_call`, if it is an E.164-style number or a `sip:` URI.
pub(crate) fn transfer_target(arguments: &serde_json::Value) -> Option<String> {
    let to = arguments.get("to")?.as_str()?.trim();
    let number = to.strip_prefix('+').unwrap_or(to);
    let is_number = (3..=20).contains(&number.len()) && number.bytes().all(|b| b.is_ascii_digit());
    let is_sip =
        to.starts_with("sip:") && to.len() <= 256 && to.bytes().all(|b| b.is_ascii_graphic());
    (is_number || is_sip).then(|| to.to_owned())
}

/// `0-9`, `*`, `#`, `A-D`.
pub(crate) fn is_dtmf_digit(c: char) -> bool {
    c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D' | 'a'..='d')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfer_accepts_numbers_and_sip_uris_only() {
        assert_eq!(
            transfer_target(&json!({"to": "+15551234567"})),
            Some("+15551234567".to_owned())
        );
        assert_eq!(
            transfer_target(&json!({"to": "sip:desk@example.com"})),
            Some("sip:desk@example.com".to_owned())
        );
        assert_eq!(transfer_target(&json!({"to": "+1 555 123"})), None);
        assert_eq!(transfer_target(&json!({"to": "<Dial>"})), None);
        assert_eq!(transfer_target(&json!({})), None);
    }

    #[test]
    fn send_dtmf_accepts_keypad_digits_only() {
        assert_eq!(
            dtmf_digits(&json!({"digits": "12 3#a"})),
            Some("123#A".to_owned())
        );
        assert_eq!(dtmf_digits(&json!({"digits": "12x"})), None);
        assert_eq!(dtmf_digits(&json!({"digits": ""})), None);
        assert_eq!(dtmf_digits(&json!({"digit": "1"})), None);
    }
}
