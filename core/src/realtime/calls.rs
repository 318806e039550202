//! WebRTC call creation and hang-up over OpenAI's REST API (`/realtime/calls`).
//!
//! The offer goes as `multipart/form-data` with a part `sdp` (`application/sdp`) and a part
//! `session` (`application/json`), exactly as openai-python's `calls.create` sends it. A `201`
//! carries the answer in its body and the call id at the end of `Location`.

use crate::output::{HttpRequest, HttpResponse, TransportFailure};
use std::time::Duration;

/// The call-creation request.
pub(crate) fn create_request(
    base_url: &str,
    api_key: &str,
    offer: &str,
    session: &serde_json::Value,
    boundary: &str,
    timeout: Duration,
) -> HttpRequest {
    let mut body = Vec::with_capacity(offer.len() + 1024);
    for (name, content_type, content) in [
        ("sdp", "application/sdp", offer.to_owned()),
        ("session", "application/json", session.to_string()),
    ] {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        body.extend_from_slice(
            format!("Content-Disposition: form-data; name=\"{name}\"\r\n").as_bytes(),
        );
        body.extend_from_slice(format!("Content-Type: {content_type}\r\n\r\n").as_bytes());
        body.extend_from_slice(content.as_bytes());
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    HttpRequest {
        method: "POST",
        url: format!("{}/realtime/calls", base_url.trim_end_matches('/')),
        headers: vec![
            ("Authorization".to_owned(), format!("Bearer {api_key}")),
            (
                "Content-Type".to_owned(),
                format!("multipart/form-data; boundary={boundary}"),
            ),
            ("Accept".to_owned(), "application/sdp".to_owned()),
        ],
        body,
        timeout,
    }
}

/// `POST {base}/realtime/calls/{id}/hangup`.
pub(crate) fn hangup_request(
    base_url: &str,
    api_key: &str,
    call_id: &str,
    timeout: Duration,
) -> HttpRequest {
    HttpRequest {
        method: "POST",
        url: format!(
            "{}/realtime/calls/{call_id}/hangup",
            base_url.trim_end_matches('/')
        ),
        headers: vec![("Authorization".to_owned(), format!("Bearer {api_key}"))],
        body: Vec::new(),
        timeout,
    }
}

/// A created call: the SDP answer and the call id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Created {
    pub(crate) answer: String,
    pub(crate) call_id: Option<String>,
}

/// Reads the answer to the call creation; `Err` carries a reason for the event log.
pub(crate) fn read_created(
    response: Result<HttpResponse, TransportFailure>,
) -> Result<Created, String> {
    let response = response.map_err(|e| format!("call creation failed: {}", e.0))?;
    if response.status != 201 {
        let message = serde_json::from_slice::<serde_json::Value>(&response.body)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "no error message".to_owned());
        return Err(format!(
            "call creation answered HTTP {}: {}",
            response.status,
            truncate(&message, 200)
        ));
    }
    let answer =
        String::from_utf8(response.body).map_err(|_| "the SDP answer is not UTF-8".to_owned())?;
    let call_id = response
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("location"))
        .and_then(|(_, v)| {
            let path = v.split('?').next()?;
            let id = path.trim_end_matches('/').rsplit('/').next()?;
            (!id.is_empty()).then(|| id.to_owned())
        });
    Ok(Created { answer, call_id })
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_body_is_well_formed() {
        let session = serde_json::json!({"type": "realtime", "model": "gpt-realtime-2.1"});
        let request = create_request(
            "https://api.openai.com/v1/",
            "sk-1",
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n",
            &session,
            "barbara-b0undary",
            Duration::from_secs(5),
        );
        assert_eq!(request.url, "https://api.openai.com/v1/realtime/calls");
        assert!(request.headers.contains(&(
            "Content-Type".to_owned(),
            "multipart/form-data; boundary=barbara-b0undary".to_owned()
        )));
        let body = String::from_utf8(request.body).unwrap();
        let expected = "--barbara-b0undary\r\n\
            Content-Disposition: form-data; name=\"sdp\"\r\n\
            Content-Type: application/sdp\r\n\r\n\
            v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n\r\n\
            --barbara-b0undary\r\n\
            Content-Disposition: form-data; name=\"session\"\r\n\
            Content-Type: application/json\r\n\r\n\
            {\"model\":\"gpt-realtime-2.1\",\"type\":\"realtime\"}\r\n\
            --barbara-b0undary--\r\n";
        assert_eq!(body, expected);
        // The boundary never occurs inside a part.
        assert_eq!(body.matches("--barbara-b0undary").count(), 3);
    }

    #[test]
    fn created_call_gives_the_answer_and_the_id_from_location() {
        let response = HttpResponse {
            status: 201,
            headers: vec![(
                "location".to_owned(),
                "/v1/realtime/calls/rtc_abc123?x=1".to_owned(),
            )],
            body: b"v=0\r\n".to_vec(),
        };
        assert_eq!(
            read_created(Ok(response)),
            Ok(Created {
                answer: "v=0\r\n".to_owned(),
                call_id: Some("rtc_abc123".to_owned())
            })
        );
    }

    #[test]
    fn refused_call_reports_the_error_message() {
        let response = HttpResponse {
            status: 401,
            headers: Vec::new(),
            body: br#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key","param":null}}"#.to_vec(),
        };
        assert_eq!(
            read_created(Ok(response)),
            Err("call creation answered HTTP 401: Incorrect API key provided".to_owned())
        );
        assert!(read_created(Err(TransportFailure("refused".to_owned()))).is_err());
    }
}
