//! Prometheus counters and gauges, counted from the core's `Event`s and the server's own
//! decisions, rendered as text for `GET /metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use barbara_core::{Event, Leg};

/// Series kept at most; past it new label sets are dropped (labels can come from peers).
const MAX_SERIES: usize = 2000;

/// Every metric: its name, type and help.
const METRICS: &[&str] = &[
    "barbara_active_calls gauge Calls in progress, by model transport.",
    "barbara_calls_total counter Calls whose model session became ready, by transport.",
    "barbara_calls_ended_total counter Calls that ended, by reason.",
    "barbara_fallbacks_total counter Model transport fallbacks.",
    "barbara_model_session_restarts_total counter Reconnect attempts and rollovers of the model session, by cause.",
    "barbara_live_billed_seconds_total counter Live session seconds billed, summed over calls.",
    "barbara_live_sessions_closed_total counter Live sessions closed (session.closed), by reason.",
    "barbara_tool_calls_total counter Tool calls completed, by tool and outcome.",
    "barbara_tool_call_seconds_total counter Tool call latency, summed, by tool.",
    "barbara_bad_input_total counter Peer messages dropped, by leg and kind.",
    "barbara_openai_errors_total counter Errors reported by OpenAI, by code.",
    "barbara_rejected_total counter Requests and streams refused, by reason.",
];

/// One call's place in the metrics: the transport it is counted under, and whether it has
/// been counted in `barbara_calls_total`.
#[derive(Debug)]
pub struct CallGauge {
    transport: &'static str,
    counted: bool,
    /// The current Live session's billed seconds counted so far.
    billed: f64,
}

/// The server's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    series: Mutex<BTreeMap<(&'static str, String), f64>>,
}

impl Metrics {
    /// Adds `value` to the series `name{labels}`.
    pub fn add(&self, name: &'static str, labels: &[(&str, &str)], value: f64) {
        let mut text = String::new();
        for (i, (k, v)) in labels.iter().enumerate() {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            let _ = write!(text, "{}{k}=\"{v}\"", if i == 0 { "" } else { "," });
        }
        let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let len = series.len();
        match series.get_mut(&(name, text.clone())) {
            Some(total) => *total += value,
            None if len < MAX_SERIES => {
                series.insert((name, text), value);
            }
            None => {}
        }
    }

    /// A call began: it counts as active, under `connecting` until its transport is known.
    pub fn call_started(&self) -> CallGauge {
        let gauge = CallGauge {
            transport: "connecting",
            counted: false,
            billed: 0.0,
        };
        self.add(
            "barbara_active_calls",
            &[("transport", gauge.transport)],
            1.0,
        );
        gauge
    }

    /// The call of `gauge` is over.
    pub fn call_finished(&self, gauge: &CallGauge) {
        self.add(
            "barbara_active_calls",
            &[("transport", gauge.transport)],
            -1.0,
        );
    }

    /// Counts one event of the call of `gauge`.
    pub fn observe(&self, event: &Event, gauge: &mut CallGauge) {
        match event {
            Event::ModelReady { transport } => {
                if !gauge.counted {
                    gauge.counted = true;
                    self.add("barbara_calls_total", &[("transport", transport)], 1.0);
                }
                self.move_active(gauge, transport);
            }
            Event::Fallback { from, to, .. } => {
                let labels = [("from", *from), ("to", *to)];
                self.add("barbara_fallbacks_total", &labels, 1.0);
                self.move_active(gauge, to);
            }
            Event::ModelReconnecting { .. } => {
                let labels = [("cause", "reconnect")];
                self.add("barbara_model_session_restarts_total", &labels, 1.0);
            }
            Event::ModelSessionRollover => {
                let labels = [("cause", "rollover")];
                self.add("barbara_model_session_restarts_total", &labels, 1.0);
            }
            Event::BilledSeconds { seconds } => self.billed(gauge, *seconds),
            Event::ModelSessionClosed {
                reason,
                billed_seconds,
            } => {
                if let Some(seconds) = billed_seconds {
                    self.billed(gauge, *seconds);
                }
                let labels = [("reason", reason.as_str())];
                self.add("barbara_live_sessions_closed_total", &labels, 1.0);
            }
            Event::ToolCallCompleted {
                name,
                latency,
                timed_out,
                ..
            } => {
                let outcome = if *timed_out { "timed_out" } else { "answered" };
                let labels = [("tool", name.as_str()), ("outcome", outcome)];
                self.add("barbara_tool_calls_total", &labels, 1.0);
                let tool = [("tool", name.as_str())];
                self.add(
                    "barbara_tool_call_seconds_total",
                    &tool,
                    latency.as_secs_f64(),
                );
            }
            Event::BadInput { leg, kind } => {
                let leg = match leg {
                    Leg::Phone => "phone",
                    Leg::Model => "model",
                };
                let kind = serde_json::to_value(kind).unwrap_or_default();
                let kind = kind.as_str().unwrap_or("unknown");
                self.add(
                    "barbara_bad_input_total",
                    &[("leg", leg), ("kind", kind)],
                    1.0,
                );
            }
            Event::ModelError { code, .. } => {
                let code = code.as_deref().unwrap_or("none");
                self.add("barbara_openai_errors_total", &[("code", code)], 1.0);
            }
            Event::CallEnded { reason } => {
                let reason = serde_json::to_value(reason).unwrap_or_default();
                let reason = reason["reason"].as_str().unwrap_or("unknown");
                self.add("barbara_calls_ended_total", &[("reason", reason)], 1.0);
            }
            _ => {}
        }
    }

    /// Counts a session's cumulative billed `seconds`: what is new since its last report. Less
    /// than before means a new session (after a fallback), billed from zero.
    fn billed(&self, gauge: &mut CallGauge, seconds: f64) {
        if !seconds.is_finite() || seconds < 0.0 {
            return;
        }
        let new = if seconds >= gauge.billed {
            seconds - gauge.billed
        } else {
            seconds
        };
        gauge.billed = seconds;
        if new > 0.0 {
            self.add("barbara_live_billed_seconds_total", &[], new);
        }
    }

    fn move_active(&self, gauge: &mut CallGauge, to: &'static str) {
        if gauge.transport != to {
            self.add(
                "barbara_active_calls",
                &[("transport", gauge.transport)],
                -1.0,
            );
            self.add("barbara_active_calls", &[("transport", to)], 1.0);
            gauge.transport = to;
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        for metric in METRICS {
            let mut parts = metric.splitn(3, ' ');
            let (name, kind, help) = (parts.next(), parts.next(), parts.next());
            let (Some(name), Some(kind), Some(help)) = (name, kind, help) else {
                continue;
            };
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            let of_name = series.range((name, String::new())..);
            for ((_, labels), value) in of_name.take_while(|((n, _), _)| *n == name) {
                if labels.is_empty() {
                    let _ = writeln!(out, "{name} {value}");
                } else {
                    let _ = writeln!(out, "{name}{{{labels}}} {value}");
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn restarts_billed_seconds_and_close_reasons_are_counted() {
        let metrics = Metrics::default();
        let mut gauge = metrics.call_started();
        let events = [
            Event::ModelReady {
                transport: "live/websocket",
            },
            Event::BilledSeconds { seconds: 60.0 },
            Event::BilledSeconds { seconds: 120.0 },
            Event::ModelSessionClosed {
                reason: "close_requested".to_owned(),
                billed_seconds: Some(125.0),
            },
            Event::ModelReconnecting {
                attempt: 1,
                after: Duration::from_millis(500),
            },
            Event::ModelReconnecting {
                attempt: 2,
                after: Duration::from_secs(1),
            },
            Event::ModelSessionRollover,
        ];
        for event in &events {
            metrics.observe(event, &mut gauge);
        }
        // A second call: its own session, billed from zero.
        let mut other = metrics.call_started();
        metrics.observe(&Event::BilledSeconds { seconds: 10.0 }, &mut other);
        metrics.observe(
            &Event::ModelSessionClosed {
                reason: "expired".to_owned(),
                billed_seconds: None,
            },
            &mut other,
        );
        let text = metrics.render();
        for line in [
            "barbara_live_billed_seconds_total 135",
            "barbara_model_session_restarts_total{cause=\"reconnect\"} 2",
            "barbara_model_session_restarts_total{cause=\"rollover\"} 1",
            "barbara_live_sessions_closed_total{reason=\"close_requested\"} 1",
            "barbara_live_sessions_closed_total{reason=\"expired\"} 1",
            "# TYPE barbara_live_billed_seconds_total counter",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
    }
}
