//! Admission of a new media stream: before any OpenAI connection, its `start` must show a
//! valid stream token bound to its `callSid` (the upgrade's bearer token, or the
//! `customParameters.token` the cXML put there). Only `start` is looked at, and only this much.

use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};

use crate::App;
use crate::auth::unix_now;

/// How long a new media stream has to show its `start` with a valid token.
const ADMIT_WITHIN: Duration = Duration::from_secs(2);

/// What the media stream's `start` says, as far as admission needs it.
#[derive(serde::Deserialize)]
struct Frame {
    event: String,
    start: Option<Start>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Start {
    pub(crate) call_sid: Option<String>,
    #[serde(default)]
    pub(crate) custom_parameters: std::collections::BTreeMap<String, String>,
}

/// Reads the first frames (at most a few, within [`ADMIT_WITHIN`]) until `start`, and checks
/// its token: the upgrade's bearer token, or `customParameters.token`, bound to `callSid`.
pub(crate) async fn admit(
    app: &App,
    phone: &mut WebSocket,
    bearer_sid: Option<String>,
) -> Option<(Vec<String>, Start)> {
    let deadline = tokio::time::Instant::now() + ADMIT_WITHIN;
    let mut frames = Vec::new();
    while frames.len() < 4 {
        let message = tokio::time::timeout_at(deadline, phone.recv())
            .await
            .ok()??
            .ok()?;
        let text = match message {
            Message::Text(text) => text.to_string(),
            Message::Ping(_) | Message::Pong(_) => continue,
            Message::Binary(_) | Message::Close(_) => return None,
        };
        let frame: Option<Frame> = serde_json::from_str(&text).ok();
        frames.push(text);
        let Some(Frame {
            event,
            start: Some(start),
        }) = frame
        else {
            continue;
        };
        if event != "start" {
            continue;
        }
        let call_sid = start.call_sid.as_deref()?;
        // The bearer token was redeemed at the upgrade; a parameter token is redeemed only
        // once it is known to be this call's.
        if let Some(sid) = bearer_sid {
            return (sid == call_sid).then_some((frames, start));
        }
        let token = start.custom_parameters.get("token")?;
        if app.tokens.verify(token, unix_now())? != call_sid {
            return None;
        }
        app.tokens.redeem(token, unix_now())?;
        return Some((frames, start));
    }
    None
}
