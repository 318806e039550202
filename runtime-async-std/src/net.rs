//! The two outgoing connections a call makes: the OpenAI WebSocket (TCP from async-net, TLS
//! from futures-rustls on ring, the handshake from async-tungstenite's generic client) and
//! HTTP requests (ureq, run on a blocking thread by the caller).

use std::sync::Arc;

use async_net::TcpStream;
use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::client::IntoClientRequest as _;
use async_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use barbara_core::{ConnectRequest, HttpRequest, HttpResponse, TransportFailure};
use futures_io::{AsyncRead, AsyncWrite};
use futures_rustls::TlsConnector;
use rustls::pki_types::ServerName;

/// A byte stream: TLS, or plain TCP for a local fake.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// The OpenAI WebSocket.
pub(crate) type ModelSocket = WebSocketStream<Box<dyn Io>>;

/// Largest HTTP answer body read for the core.
const MAX_HTTP_BODY: u64 = 1 << 20;

/// rustls with the ring provider and the webpki roots.
pub(crate) fn tls_config() -> std::io::Result<Arc<rustls::ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Opens the OpenAI WebSocket exactly as the core asked (URL and headers).
pub(crate) async fn connect_model(
    tls: Arc<rustls::ClientConfig>,
    request: ConnectRequest,
    max_message: usize,
) -> Result<ModelSocket, String> {
    let text = |e: &dyn std::fmt::Display| e.to_string();
    let mut upgrade = request
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| text(&e))?;
    for (name, value) in &request.headers {
        let name = HeaderName::from_bytes(name.as_bytes());
        let value = HeaderValue::from_str(value);
        let (Ok(name), Ok(value)) = (name, value) else {
            return Err("a header the core asked for is not valid HTTP".to_owned());
        };
        upgrade.headers_mut().insert(name, value);
    }
    let uri = upgrade.uri();
    let secure = match uri.scheme_str() {
        Some("wss") => true,
        Some("ws") => false,
        _ => return Err(format!("not a WebSocket URL: {}", request.url)),
    };
    let host = uri.host().unwrap_or_default();
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
    let tcp = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| text(&e))?;
    let _ = tcp.set_nodelay(true);
    let stream: Box<dyn Io> = if secure {
        let name = ServerName::try_from(host).map_err(|e| text(&e))?;
        let tls = TlsConnector::from(tls).connect(name, tcp).await;
        Box::new(tls.map_err(|e| text(&e))?)
    } else {
        Box::new(tcp)
    };
    let config = WebSocketConfig::default()
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message));
    let (socket, _) = async_tungstenite::client_async_with_config(upgrade, stream, Some(config))
        .await
        .map_err(|e| text(&e))?;
    Ok(socket)
}

/// Performs one HTTP request for the core (blocking; run it on a blocking thread).
pub(crate) fn http(
    agent: &ureq::Agent,
    request: HttpRequest,
) -> Result<HttpResponse, TransportFailure> {
    use ureq::RequestExt as _;
    let failed = |e: &dyn std::fmt::Display| TransportFailure(e.to_string());
    let mut builder = ureq::http::Request::builder()
        .method(request.method)
        .uri(&request.url);
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    let sent = builder
        .body(request.body)
        .map_err(|e| failed(&e))?
        .with_agent(agent)
        .configure()
        .timeout_global(Some(request.timeout))
        .http_status_as_error(false)
        .allow_non_standard_methods(true)
        .run();
    let mut response = sent.map_err(|e| failed(&e))?;
    let headers = response
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_owned())))
        .collect();
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_HTTP_BODY)
        .read_to_vec()
        .map_err(|e| failed(&e))?;
    Ok(HttpResponse {
        status: response.status().as_u16(),
        headers,
        body,
    })
}
