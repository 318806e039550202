//! The HTTP endpoints, on one router: the cXML webhook, the media-stream upgrade, the transfer
//! cXML, health and metrics.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State, WebSocketUpgrade};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::auth::unix_now;
use crate::{App, auth, call_task};

/// Largest webhook body read.
const MAX_BODY: usize = 64 * 1024;

pub(crate) fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/incoming-call", get(incoming_call).post(incoming_call))
        .route("/media-stream", get(media_stream))
        .route("/transfer", get(transfer).post(transfer))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(app)
}

/// A form request: its body fields (signed) and its query fields.
struct Form {
    body: Vec<(String, String)>,
    query: Vec<(String, String)>,
}

impl Form {
    fn parse(uri: &Uri, body: &[u8]) -> Option<Form> {
        Some(Form {
            body: serde_urlencoded::from_bytes(body).ok()?,
            query: serde_urlencoded::from_str(uri.query().unwrap_or("")).ok()?,
        })
    }

    fn get(&self, name: &str) -> Option<&str> {
        let mut fields = self.body.iter().chain(&self.query);
        fields.find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

fn rejected(app: &App, reason: &str, status: StatusCode) -> Response {
    app.metrics
        .add("barbara_rejected_total", &[("reason", reason)], 1.0);
    status.into_response()
}

/// Verifies SignalWire's signature when a signing key is set; without one, everything passes.
fn signed(app: &App, method: &Method, uri: &Uri, headers: &HeaderMap, form: &Form) -> bool {
    let Some(key) = &app.settings.signing_key else {
        return true;
    };
    let signature = ["x-signalwire-signature", "x-twilio-signature"]
        .iter()
        .find_map(|name| headers.get(*name)?.to_str().ok());
    let Some(signature) = signature else {
        return false;
    };
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let bases = match (&app.settings.public_url, host(headers)) {
        (Some(public), _) => vec![public.clone()],
        (None, Some(host)) => vec![format!("https://{host}"), format!("http://{host}")],
        (None, None) => return false,
    };
    let params: &[(String, String)] = if method == Method::POST {
        &form.body
    } else {
        &[]
    };
    bases
        .iter()
        .any(|base| auth::webhook_signature_ok(key, &format!("{base}{path}"), params, signature))
}

fn host(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::HOST)?.to_str().ok()
}

fn xml(body: String) -> Response {
    let body = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{body}\n");
    ([(header::CONTENT_TYPE, "application/xml")], body).into_response()
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The request's form fields, once its SignalWire signature checks out.
fn verified_form(
    app: &App,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Form, Box<Response>> {
    let Some(form) = Form::parse(uri, body) else {
        return Err(Box::new(rejected(app, "bad_form", StatusCode::BAD_REQUEST)));
    };
    if !signed(app, method, uri, headers, &form) {
        return Err(Box::new(rejected(
            app,
            "webhook_signature",
            StatusCode::FORBIDDEN,
        )));
    }
    Ok(form)
}

/// `POST /incoming-call`: SignalWire's voice webhook. Answers with `<Connect><Stream>` carrying
/// a per-call token both as `authBearerToken` and as a `<Parameter>`.
async fn incoming_call(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = match verified_form(&app, &method, &uri, &headers, &body) {
        Ok(form) => form,
        Err(refusal) => return *refusal,
    };
    let Some(call_sid) = form.get("CallSid").filter(|s| !s.is_empty()) else {
        return rejected(&app, "no_call_sid", StatusCode::BAD_REQUEST);
    };
    let token = escape(&app.tokens.mint(call_sid, unix_now()));
    let base = match (&app.settings.public_url, host(&headers)) {
        (Some(public), _) => public
            .replacen("https://", "wss://", 1)
            .replacen("http://", "ws://", 1),
        (None, Some(host)) => format!("wss://{host}"),
        (None, None) => return rejected(&app, "no_host", StatusCode::BAD_REQUEST),
    };
    let codec = app.live().codec.clone();
    let mut stream = format!(
        "<Stream url=\"{}/media-stream\" authBearerToken=\"{token}\"",
        escape(&base)
    );
    if let Some(codec) = codec {
        let _ = write!(stream, " codec=\"{}\"", escape(&codec));
    }
    let _ = write!(stream, "><Parameter name=\"token\" value=\"{token}\"/>");
    for name in ["From", "To"] {
        if let Some(value) = form.get(name) {
            let _ = write!(
                stream,
                "<Parameter name=\"{name}\" value=\"{}\"/>",
                escape(value)
            );
        }
    }
    xml(format!(
        "<Response><Connect>{stream}</Stream></Connect></Response>"
    ))
}

/// `GET /media-stream`: the WebSocket SignalWire streams the call on. A bearer token is checked
/// here; without one the call task waits for the token in `start`.
async fn media_stream(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let Ok(permit) = app.calls.clone().try_acquire_owned() else {
        return rejected(&app, "max_calls", StatusCode::SERVICE_UNAVAILABLE);
    };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let bearer_sid = match bearer {
        Some(token) => match app.tokens.redeem(token, unix_now()) {
            Some(call_sid) => Some(call_sid),
            None => return rejected(&app, "stream_token", StatusCode::UNAUTHORIZED),
        },
        None => None,
    };
    let max = app.live().call.limits.max_phone_message_bytes;
    upgrade
        .read_buffer_size(call_task::WS_READ_CHUNK)
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| call_task::run(app, socket, bearer_sid, permit))
}

/// `POST /transfer?to=…`: the cXML SignalWire fetches when the core transfers a call.
async fn transfer(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = match verified_form(&app, &method, &uri, &headers, &body) {
        Ok(form) => form,
        Err(refusal) => return *refusal,
    };
    let to = form
        .query
        .iter()
        .find(|(k, _)| k == "to")
        .map(|(_, v)| v.trim());
    let Some(to) = to.filter(|to| !to.is_empty() && to.len() <= 256) else {
        return rejected(&app, "bad_transfer", StatusCode::BAD_REQUEST);
    };
    let target = match to.strip_prefix("sip:") {
        Some(_) => format!("<Sip>{}</Sip>", escape(to)),
        None => escape(to),
    };
    xml(format!("<Response><Dial>{target}</Dial></Response>"))
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let content_type = "text/plain; version=0.0.4; charset=utf-8";
    ([(header::CONTENT_TYPE, content_type)], app.metrics.render()).into_response()
}
