//! Instruction templates: `{{From}}`, `{{To}}`, `{{CallSid}}`, `{{date}}`, `{{time}}` and
//! `{{param.NAME}}` filled in from the call when the model session starts.
//!
//! `From` and `To` come from `start.customParameters` (the server puts them there from the
//! signed voice webhook). Unknown placeholders are left as they are so a typo shows.

use std::time::Duration;

use crate::output::CallContext;

/// Renders `template` for the call described by `context` at wall-clock `unix_time`.
pub(crate) fn render(template: &str, context: &CallContext, unix_time: Duration) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = after[..end].trim();
        match value(name, context, unix_time) {
            Some(v) => out.push_str(&v),
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

fn value(name: &str, context: &CallContext, unix_time: Duration) -> Option<String> {
    let param = |key: &str| {
        context
            .custom_parameters
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    match name {
        "From" | "To" => Some(param(name).unwrap_or_default()),
        "CallSid" => Some(context.call_sid.clone().unwrap_or_default()),
        "date" => {
            let (y, m, d) = civil_date(unix_time.as_secs() / 86_400);
            Some(format!("{y:04}-{m:02}-{d:02}"))
        }
        "time" => {
            let secs = unix_time.as_secs() % 86_400;
            Some(format!("{:02}:{:02} UTC", secs / 3600, secs / 60 % 60))
        }
        other => other
            .strip_prefix("param.")
            .map(|key| param(key).unwrap_or_default()),
    }
}

/// Year, month, day of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_date(days: u64) -> (i64, u32, u32) {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> CallContext {
        CallContext {
            call_sid: Some("CA1".to_owned()),
            stream_sid: Some("MZ1".to_owned()),
            custom_parameters: vec![
                ("From".to_owned(), "+15550001".to_owned()),
                ("To".to_owned(), "+15550002".to_owned()),
                ("tier".to_owned(), "gold".to_owned()),
            ],
        }
    }

    #[test]
    fn placeholders_are_filled_from_the_call_and_the_clock() {
        // 2026-11-25 14:40:00 UTC
        let unix = Duration::from_secs(1_795_617_600);
        let text = render(
            "Caller {{From}} dialled {{ To }} ({{CallSid}}), a {{param.tier}} customer, on {{date}} at {{time}}.",
            &context(),
            unix,
        );
        assert_eq!(
            text,
            "Caller +15550001 dialled +15550002 (CA1), a gold customer, on 2026-11-25 at 14:40 UTC."
        );
    }

    #[test]
    fn unknown_or_unclosed_placeholders_stay_as_written() {
        let unix = Duration::ZERO;
        assert_eq!(
            render("Hi {{nope}} {{From", &context(), unix),
            "Hi {{nope}} {{From"
        );
        assert_eq!(
            render("{{param.missing}}|{{date}}", &context(), unix),
            "|1970-01-01"
        );
    }

    #[test]
    fn civil_date_handles_leap_days() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(11_016), (2000, 2, 29));
        assert_eq!(civil_date(20_513), (2026, 3, 1));
    }
}
