//! Admission of a new media stream: before any OpenAI connection, its `start` must show a
//! valid stream token bound to its `callSid` (the upgrade's bearer token, or the
//! `customParameters.token` the cXML put there). The decision is the core's
//! ([`barbara_core::auth::Admission`]); this file reads the frames within its deadline.

use std::time::Instant;

use axum::extract::ws::{Message, WebSocket};
use barbara_core::auth::{Admission, Verdict};
use barbara_core::media_stream::messages::StartInfo;

use crate::App;
use crate::auth::unix_now;

/// Reads the first frames until `start` (within the core's few frames and seconds) and checks
/// its token: the upgrade's bearer token, or `customParameters.token`, bound to `callSid`.
pub(crate) async fn admit(
    app: &App,
    phone: &mut WebSocket,
    bearer_sid: Option<String>,
) -> Option<(Vec<String>, StartInfo)> {
    let mut admission = Admission::new(Instant::now(), bearer_sid);
    let deadline = tokio::time::Instant::from_std(admission.deadline());
    loop {
        let message = tokio::time::timeout_at(deadline, phone.recv())
            .await
            .ok()??
            .ok()?;
        let text = match message {
            Message::Text(text) => text.to_string(),
            Message::Ping(_) | Message::Pong(_) => continue,
            Message::Binary(_) | Message::Close(_) => return None,
        };
        let verdict = admission.handle_text(unix_now(), text, &mut app.tokens.lock());
        match verdict {
            Verdict::Pending => {}
            Verdict::Admitted { frames, start } => return Some((frames, start)),
            Verdict::Refused => return None,
        }
    }
}
