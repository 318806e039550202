//! HTTP plumbing: URLs, headers, the documented error JSON and `multipart/form-data`.

use serde_json::json;

use super::HttpAnswer;

/// Splits an absolute URL or a path into (path, query).
pub(super) fn split_url(url: &str) -> (&str, &str) {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .map_or(url, |r| r.find('/').map_or("", |i| &r[i..]));
    let rest = rest.split_once('#').map_or(rest, |(r, _)| r);
    rest.split_once('?').unwrap_or((rest, ""))
}

pub(super) fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// `Authorization: Bearer <non-empty key>`.
pub(super) fn authorized(headers: &[(String, String)]) -> bool {
    header(headers, "authorization")
        .and_then(|v| {
            v.get(..7)
                .filter(|p| p.eq_ignore_ascii_case("bearer "))
                .and(v.get(7..))
        })
        .is_some_and(|key| !key.trim().is_empty())
}

/// `{"error":{"message","type","code","param"}}` with `status`.
pub(super) fn error_json(
    status: u16,
    kind: &str,
    code: Option<&str>,
    param: Option<&str>,
    message: &str,
) -> HttpAnswer {
    let body = json!({"error": {"message": message, "type": kind, "code": code, "param": param}});
    let headers = vec![("Content-Type".to_owned(), "application/json".to_owned())];
    (status, headers, body.to_string().into_bytes())
}

pub(super) fn error_answer(
    status: u16,
    kind: &str,
    code: Option<&str>,
    message: &str,
) -> HttpAnswer {
    error_json(status, kind, code, None, message)
}

/// The scripted refusal of [`WebRtcFakeMode::refuse_with`].
pub(super) fn scripted_refusal(status: u16) -> HttpAnswer {
    let (kind, code, message) = match status {
        401 => (
            "invalid_request_error",
            "invalid_api_key",
            "Incorrect API key provided.",
        ),
        403 => (
            "invalid_request_error",
            "unsupported_country_region_territory",
            "Country, region, or territory not supported.",
        ),
        429 => (
            "insufficient_quota",
            "insufficient_quota",
            "You exceeded your current quota.",
        ),
        500..=599 => ("server_error", "server_error", "The server had an error."),
        _ => (
            "invalid_request_error",
            "invalid_request",
            "The request could not be processed.",
        ),
    };
    error_answer(status, kind, Some(code), message)
}

/// One part of a `multipart/form-data` body.
#[derive(Debug)]
pub(super) struct Part {
    pub(super) name: String,
    pub(super) content_type: Option<String>,
    pub(super) body: Vec<u8>,
}

/// Parses `multipart/form-data` (RFC 7578): the boundary comes from `content_type`.
pub(super) fn parse_multipart(content_type: &str, body: &[u8]) -> Result<Vec<Part>, String> {
    let boundary = content_type
        .split(';')
        .skip(1)
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim().trim_matches('"'))
        .filter(|b| (1..=70).contains(&b.len()))
        .ok_or("Missing or invalid multipart boundary.")?;
    let delimiter = format!("--{boundary}").into_bytes();
    let mut pos = find(body, &delimiter, 0).ok_or("No multipart delimiter in the body.")?;
    let mut parts = Vec::new();
    loop {
        pos += delimiter.len();
        let rest = body.get(pos..).unwrap_or_default();
        if rest.starts_with(b"--") {
            return if parts.is_empty() {
                Err("The multipart body has no parts.".to_owned())
            } else {
                Ok(parts)
            };
        }
        pos += line_break(rest).ok_or("A multipart delimiter is not followed by a line break.")?;
        // Part headers up to the blank line.
        let mut name = None;
        let mut part_type = None;
        loop {
            let line_end = find(body, b"\n", pos).ok_or("Unterminated part headers.")?;
            let line = body.get(pos..line_end).unwrap_or_default();
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            pos = line_end + 1;
            if line.is_empty() {
                break;
            }
            let line = std::str::from_utf8(line).map_err(|_| "A part header is not UTF-8.")?;
            let (key, value) = line.split_once(':').ok_or("A part header has no colon.")?;
            if key.trim().eq_ignore_ascii_case("content-disposition") {
                let mut params = value.split(';');
                let kind = params.next().unwrap_or("").trim();
                if !kind.eq_ignore_ascii_case("form-data") {
                    return Err(format!("Content-Disposition {kind:?} is not form-data."));
                }
                name = params
                    .filter_map(|p| p.split_once('='))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("name"))
                    .map(|(_, v)| v.trim().trim_matches('"').to_owned());
            } else if key.trim().eq_ignore_ascii_case("content-type") {
                part_type = Some(value.trim().to_owned());
            }
        }
        let name = name.ok_or("A part has no Content-Disposition name.")?;
        let next = find(body, &delimiter, pos).ok_or("The multipart body is not terminated.")?;
        // The line break before the delimiter belongs to the delimiter.
        let content = body.get(pos..next).unwrap_or_default();
        let content = content
            .strip_suffix(b"\r\n")
            .or_else(|| content.strip_suffix(b"\n"))
            .ok_or("A multipart delimiter does not start a line.")?;
        parts.push(Part {
            name,
            content_type: part_type,
            body: content.to_vec(),
        });
        pos = next;
    }
}

/// The length of a leading CRLF or LF.
fn line_break(s: &[u8]) -> Option<usize> {
    if s.starts_with(b"\r\n") {
        Some(2)
    } else if s.starts_with(b"\n") {
        Some(1)
    } else {
        None
    }
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}
