//! Creating a Live session over WebRTC: `POST {base}/live/sessions` with JSON
//! `{session, transport: {type: "webrtc", sdp}}`. The answer is JSON too, with the SDP answer in
//! `transport.sdp` and the session id in `session.id` (not a `Location` header as in Realtime).

use std::time::Duration;

use serde_json::{Value, json};

use crate::output::{HttpRequest, HttpResponse, TransportFailure};

/// The session-creation request.
pub(crate) fn create_request(
    base_url: &str,
    api_key: &str,
    offer: &str,
    session: Value,
    timeout: Duration,
) -> HttpRequest {
    let body = json!({"session": session, "transport": {"type": "webrtc", "sdp": offer}});
    HttpRequest {
        method: "POST",
        url: format!("{}/live/sessions", base_url.trim_end_matches('/')),
        headers: vec![
            ("Authorization".to_owned(), format!("Bearer {api_key}")),
            ("Content-Type".to_owned(), "application/json".to_owned()),
        ],
        body: body.to_string().into_bytes(),
        timeout,
    }
}

/// A created session: the SDP answer and the session id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Created {
    pub(crate) answer: String,
    pub(crate) session_id: Option<String>,
}

/// Reads the answer to the session creation; `Err` carries a reason for the event log.
pub(crate) fn read_created(
    response: Result<HttpResponse, TransportFailure>,
) -> Result<Created, String> {
    let response = response.map_err(|e| format!("session creation failed: {}", e.0))?;
    let body = serde_json::from_slice::<Value>(&response.body).ok();
    if !(200..300).contains(&response.status) {
        let message = body
            .as_ref()
            .and_then(|v| v["error"]["message"].as_str())
            .unwrap_or("no error message");
        let message: String = message.chars().take(200).collect();
        return Err(format!(
            "session creation answered HTTP {}: {message}",
            response.status
        ));
    }
    let body = body.ok_or_else(|| "the session creation answer is not JSON".to_owned())?;
    let answer = body["transport"]["sdp"]
        .as_str()
        .ok_or_else(|| "the session creation answer has no transport.sdp".to_owned())?
        .to_owned();
    let session_id = body["session"]["id"].as_str().map(str::to_owned);
    Ok(Created { answer, session_id })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_is_json_with_session_and_webrtc_transport() {
        let request = create_request(
            "https://api.openai.com/v1/",
            "sk-1",
            "v=0\r\n",
            json!({"model": "gpt-live-1"}),
            Duration::from_secs(5),
        );
        assert_eq!(request.url, "https://api.openai.com/v1/live/sessions");
        assert!(
            request
                .headers
                .contains(&("Content-Type".to_owned(), "application/json".to_owned()))
        );
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(
            body,
            json!({"session": {"model": "gpt-live-1"}, "transport": {"type": "webrtc", "sdp": "v=0\r\n"}})
        );
    }

    #[test]
    fn created_session_gives_the_answer_and_the_id_from_the_body() {
        let response = HttpResponse {
            status: 201,
            headers: Vec::new(),
            body: br#"{"session":{"id":"live_123"},"transport":{"type":"webrtc","sdp":"v=0\r\n"}}"#
                .to_vec(),
        };
        assert_eq!(
            read_created(Ok(response)),
            Ok(Created {
                answer: "v=0\r\n".to_owned(),
                session_id: Some("live_123".to_owned())
            })
        );
    }

    #[test]
    fn refusals_and_garbage_are_reasons_not_panics() {
        let refused = HttpResponse {
            status: 401,
            headers: Vec::new(),
            body: br#"{"error":{"message":"Incorrect API key provided","code":"invalid_api_key"}}"#
                .to_vec(),
        };
        assert_eq!(
            read_created(Ok(refused)),
            Err("session creation answered HTTP 401: Incorrect API key provided".to_owned())
        );
        let garbage = HttpResponse {
            status: 201,
            headers: Vec::new(),
            body: b"v=0".to_vec(),
        };
        assert!(read_created(Ok(garbage)).is_err());
        assert!(read_created(Err(TransportFailure("refused".to_owned()))).is_err());
    }
}
