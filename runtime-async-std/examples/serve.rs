//! Serves `/media-stream` on async-std (or on smol with `BARBARA_EXECUTOR=smol`), configured
//! from the tokio server's environment variables for what this server supports:
//!
//! `OPENAI_API_KEY` (required), `OPENAI_BASE_URL`, `OPENAI_MODEL`, `OPENAI_VOICE`,
//! `BARBARA_BACKEND`, `USE_WEBRTC`, `BARBARA_WEBRTC_IP`, `PORT` and `SIGNALWIRE_SIGNING_KEY`
//! (required: the stream tokens the tokio server's cXML webhook mints are signed with it).
//!
//! `cargo run -p barbara-async-std --example serve`

use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use barbara_async_std::{Settings, Spawn, serve};
use barbara_core::{Backend, Call, CallConfig, DEFAULT_BASE_URL, TransportChoice};

fn main() -> ExitCode {
    let debug = matches!(var("ENABLE_DEBUG_LOGGING").as_deref(), Some("true" | "1"));
    let level = if debug {
        tracing::Level::DEBUG
    } else {
        tracing::Level::INFO
    };
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(ansi)
        .init();
    let (settings, port) = match settings() {
        Ok(settings) => settings,
        Err((name, problem)) => {
            eprintln!("barbara-async-std: {name}: {problem}");
            return ExitCode::from(2);
        }
    };
    let smol = var("BARBARA_EXECUTOR").as_deref() == Some("smol");
    let spawn: Spawn = if smol {
        Arc::new(|task| smol::spawn(task).detach())
    } else {
        Arc::new(|task| drop(async_std::task::spawn(task)))
    };
    let run = async move {
        let listener = match async_net::TcpListener::bind(("0.0.0.0", port)).await {
            Ok(listener) => listener,
            Err(e) => {
                eprintln!("barbara-async-std: PORT: cannot listen on port {port}: {e}");
                return ExitCode::from(2);
            }
        };
        let server = match serve(settings, listener, spawn) {
            Ok(server) => server,
            Err(e) => {
                eprintln!("barbara-async-std: cannot start the server: {e}");
                return ExitCode::FAILURE;
            }
        };
        let executor = if smol { "smol" } else { "async-std" };
        tracing::info!(addr = %server.local_addr(), executor, "listening on /media-stream");
        // Serves until the process is stopped; draining on a signal is the tokio server's.
        let _server = server;
        std::future::pending().await
    };
    if smol {
        smol::block_on(run)
    } else {
        async_std::task::block_on(run)
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn settings() -> Result<(Settings, u16), (&'static str, String)> {
    let api_key = var("OPENAI_API_KEY").ok_or(("OPENAI_API_KEY", "is not set".into()))?;
    let mut call = CallConfig::new(api_key.trim());
    call.openai.base_url = var("OPENAI_BASE_URL").unwrap_or_else(|| DEFAULT_BASE_URL.into());
    if let Some(model) = var("OPENAI_MODEL") {
        call.openai.model = model.trim().to_owned();
    }
    if let Some(voice) = var("OPENAI_VOICE") {
        call.openai.voice = voice.trim().to_owned();
    }
    if let Some(name) = var("BARBARA_BACKEND") {
        let problem = format!("expected realtime or live, got {name:?}");
        call.backend = Backend::parse(&name).ok_or(("BARBARA_BACKEND", problem))?;
    }
    if let Some(value) = var("USE_WEBRTC") {
        let use_webrtc = match value.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => true,
            "false" | "0" | "no" | "off" => false,
            _ => {
                return Err((
                    "USE_WEBRTC",
                    format!("expected true or false, got {value:?}"),
                ));
            }
        };
        call.transport = TransportChoice::from_use_webrtc(use_webrtc);
    }
    let port = match var("PORT") {
        Some(port) => port
            .trim()
            .parse()
            .map_err(|_| ("PORT", format!("expected a port number, got {port:?}")))?,
        None => 8080,
    };
    let webrtc_ip: IpAddr = match var("BARBARA_WEBRTC_IP") {
        Some(ip) => ip
            .trim()
            .parse()
            .map_err(|_| ("BARBARA_WEBRTC_IP", format!("{ip:?} is not an IP address")))?,
        None => IpAddr::from([127, 0, 0, 1]),
    };
    let secret = var("SIGNALWIRE_SIGNING_KEY").ok_or((
        "SIGNALWIRE_SIGNING_KEY",
        "is not set (stream tokens are checked with it)".into(),
    ))?;
    // The core validates its own configuration; a throwaway call asks it.
    if let Err(e) = Call::new(call.clone(), [0; 32], Instant::now(), Duration::ZERO) {
        return Err((
            "OPENAI_API_KEY, OPENAI_BASE_URL or OPENAI_MODEL",
            e.to_string(),
        ));
    }
    let settings = Settings {
        call,
        stream_secret: secret.into_bytes(),
        webrtc_ip,
        on_event: None,
    };
    Ok((settings, port))
}
