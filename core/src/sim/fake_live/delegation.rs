//! Responses delegation: the backend's function calls wrapped in `response.event`, the client's
//! `response.item.create` outputs and its single `response.create`.

use std::time::Instant;

use serde_json::{Map, Value, json};

use super::{DelegationRecord, FakeLive, Handled, Refusal, TimerKind, TurnTrigger, unknown_key};

/// One delegation to the Responses backend.
#[derive(Debug)]
pub(super) struct Delegation {
    id: String,
    response_id: String,
    /// Index in [`super::LiveReport::delegations`].
    record: usize,
    /// `(call_id, answered)` in issue order.
    calls: Vec<(String, bool)>,
    completed: bool,
    /// The continuation's response id, once `response.create` was accepted.
    continued: Option<String>,
    follow_up: (String, u32),
}

impl FakeLive {
    /// Sends one nested Responses event in a `response.event` envelope.
    fn nested(&mut self, delegation_id: &str, ty: &str, fields: Value) {
        self.next_sequence += 1;
        let mut event = Map::new();
        event.insert("type".into(), json!(ty));
        event.insert("sequence_number".into(), json!(self.next_sequence));
        if let Value::Object(fields) = fields {
            event.extend(fields);
        }
        self.send(
            "response.event",
            json!({"delegation_id": delegation_id, "event": Value::Object(event)}),
        );
    }

    fn backend_response(&self, id: &str, status: &str, usage: Value) -> Value {
        let model = self.session["delegation"]["responses"]["model"].clone();
        json!({
            "id": id,
            "object": "response",
            "status": status,
            "model": model,
            "output": [],
            "usage": usage,
        })
    }

    /// A turn's tool calls go to the backend: `session.delegation.created`, then the nested
    /// stream up to each call's `response.output_item.done`.
    pub(super) fn delegate(
        &mut self,
        at: Instant,
        turn: usize,
        calls: &[(String, Value)],
        follow_up: (String, u32),
    ) {
        if !self.responses_delegation {
            self.violate(
                "the script calls tools but the session has no Responses delegation".to_owned(),
            );
            return;
        }
        let id = self.id("del");
        let response_id = self.id("resp");
        if let Some(t) = self.report.turns.get_mut(turn) {
            t.delegation_id = Some(id.clone());
        }
        let offset_ms = self.timeline_ms(at);
        self.send(
            "session.delegation.created",
            json!({
                "offset_ms": offset_ms,
                "delegation": {
                    "id": id, "type": "delegation", "target": "responses",
                    "response_id": response_id,
                },
            }),
        );
        let created = self.backend_response(&response_id, "in_progress", Value::Null);
        self.nested(&id, "response.created", json!({ "response": created }));
        let mut issued = Vec::new();
        for (i, (name, arguments)) in calls.iter().enumerate() {
            let item_id = self.id("fc");
            let call_id = self.id("call");
            let args = arguments.to_string();
            let mut item = json!({
                "type": "function_call", "id": item_id, "status": "in_progress",
                "call_id": call_id, "name": name, "arguments": "",
            });
            self.nested(
                &id,
                "response.output_item.added",
                json!({"output_index": i, "item": item}),
            );
            self.nested(
                &id,
                "response.function_call_arguments.delta",
                json!({"item_id": item_id, "output_index": i, "delta": args}),
            );
            self.nested(
                &id,
                "response.function_call_arguments.done",
                json!({"item_id": item_id, "output_index": i, "name": name, "arguments": args}),
            );
            item["status"] = json!("completed");
            item["arguments"] = json!(args);
            self.nested(
                &id,
                "response.output_item.done",
                json!({"output_index": i, "item": item}),
            );
            issued.push((call_id, name.clone()));
        }
        self.report.delegations.push(DelegationRecord {
            id: id.clone(),
            response_id: response_id.clone(),
            created_at: self.since(at),
            calls: issued.clone(),
            completed_at: None,
            continued_at: None,
        });
        self.delegations.push(Delegation {
            id,
            response_id,
            record: self.report.delegations.len() - 1,
            calls: issued.into_iter().map(|(c, _)| (c, false)).collect(),
            completed: false,
            continued: None,
            follow_up,
        });
        let index = self.delegations.len() - 1;
        let delay = self.script.delegation_complete_delay;
        self.schedule(at, delay, TimerKind::DelegationComplete(index));
    }

    /// The nested response ends: the backend waits for the outputs and a `response.create`.
    pub(super) fn complete_delegation(&mut self, at: Instant, index: usize) {
        let Some(d) = self.delegations.get_mut(index) else {
            return;
        };
        d.completed = true;
        let (id, response_id, record) = (d.id.clone(), d.response_id.clone(), d.record);
        let usage = json!({"input_tokens": 350, "output_tokens": 40, "total_tokens": 390});
        let response = self.backend_response(&response_id, "completed", usage);
        self.nested(&id, "response.completed", json!({ "response": response }));
        let when = self.since(at);
        if let Some(r) = self.report.delegations.get_mut(record) {
            r.completed_at = Some(when);
        }
    }

    /// `response.item.create`: one `function_call_output` per issued call.
    pub(super) fn on_item_create(&mut self, now: Instant, event: &Value) -> Handled {
        if let Some(k) = unknown_key(event, &["type", "event_id", "item"]) {
            let msg = format!("Unknown parameter: '{k}'.");
            return Err(Refusal::new("unknown_parameter", &k, msg));
        }
        let Some(item) = event.get("item").filter(|i| i.is_object()) else {
            let msg = "Missing required parameter: 'item' (an object).";
            return Err(Refusal::new("missing_required_parameter", "item", msg));
        };
        if !self.responses_delegation {
            let msg = "response.item.create needs Responses delegation.";
            return Err(Refusal::new("invalid_request", "type", msg));
        }
        let ty = item.get("type").and_then(Value::as_str).unwrap_or("");
        if ty != "function_call_output" {
            self.violate(format!(
                "response.item.create with a '{ty}' item; the bridge only answers function calls"
            ));
            return Ok(());
        }
        if let Some(k) = unknown_key(item, &["type", "call_id", "output", "id", "status"]) {
            let param = format!("item.{k}");
            let msg = format!("Unknown parameter: '{param}'.");
            return Err(Refusal::new("unknown_parameter", &param, msg));
        }
        let Some(call_id) = item.get("call_id").and_then(Value::as_str) else {
            let msg = "Missing required parameter: 'item.call_id'.";
            return Err(Refusal::new(
                "missing_required_parameter",
                "item.call_id",
                msg,
            ));
        };
        let Some(output) = item.get("output").and_then(Value::as_str) else {
            let msg = "Invalid 'item.output': expected a string.";
            return Err(Refusal::new("invalid_type", "item.output", msg));
        };
        let found = self.delegations.iter().enumerate().find_map(|(di, d)| {
            d.calls
                .iter()
                .position(|(c, _)| c == call_id)
                .map(|ci| (di, ci, d.calls[ci].1, d.continued.is_some()))
        });
        match found {
            None => {
                let msg = format!("No tool call found with call_id '{call_id}'.");
                Err(Refusal::new("invalid_value", "item.call_id", msg))
            }
            Some((_, _, true, _)) => {
                let msg = format!("Tool call '{call_id}' already has an output.");
                Err(Refusal::new("invalid_value", "item.call_id", msg))
            }
            Some((di, ci, false, continued)) => {
                self.delegations[di].calls[ci].1 = true;
                if continued {
                    self.violate(format!("output for {call_id} after its response.create"));
                }
                let at = self.since(now);
                let record = (at, call_id.to_owned(), output.to_owned());
                self.report.function_outputs.push(record);
                Ok(())
            }
        }
    }

    /// `response.create`: continues the oldest delegation waiting for it, once every call of it
    /// has its output and its nested response completed.
    pub(super) fn on_response_create(&mut self, now: Instant, event: &Value) -> Handled {
        self.report.response_creates.push(self.since(now));
        if let Some(k) = unknown_key(event, &["type", "event_id"]) {
            let msg = format!("Unknown parameter: '{k}'. response.create takes no body.");
            return Err(Refusal::new("unknown_parameter", &k, msg));
        }
        let Some(index) = self.delegations.iter().position(|d| d.continued.is_none()) else {
            let msg = match self.delegations.last() {
                Some(d) => format!(
                    "response.create sent more than once: {} already continued.",
                    d.id
                ),
                None => "response.create with no delegation open.".to_owned(),
            };
            return Err(Refusal::new("no_pending_response", "", msg));
        };
        let d = &self.delegations[index];
        if !d.completed {
            let msg = format!(
                "response.create before the nested response.completed of {}.",
                d.id
            );
            return Err(Refusal::new("response_in_progress", "", msg));
        }
        if let Some((missing, _)) = d.calls.iter().find(|(_, answered)| !answered) {
            let msg = format!(
                "response.create before every output arrived: no tool output found for function call {missing}."
            );
            return Err(Refusal::new("missing_tool_output", "", msg));
        }
        let (id, record) = (d.id.clone(), d.record);
        let continuation = self.id("resp");
        self.delegations[index].continued = Some(continuation.clone());
        let when = self.since(now);
        if let Some(r) = self.report.delegations.get_mut(record) {
            r.continued_at = Some(when);
        }
        let created = self.backend_response(&continuation, "in_progress", Value::Null);
        self.nested(&id, "response.created", json!({ "response": created }));
        let delay = self.script.response_delay;
        self.schedule(now, delay, TimerKind::Continue(index));
        Ok(())
    }

    /// The backend answers: its text streams back and the voice speaks it.
    pub(super) fn continue_delegation(&mut self, _at: Instant, index: usize) {
        let Some(d) = self.delegations.get(index) else {
            return;
        };
        let id = d.id.clone();
        let response_id = d.continued.clone().unwrap_or_default();
        let (text, ms) = d.follow_up.clone();
        let item_id = self.id("msg");
        self.nested(
            &id,
            "response.output_text.delta",
            json!({"item_id": item_id, "output_index": 0, "content_index": 0, "delta": text}),
        );
        let usage = json!({"input_tokens": 420, "output_tokens": 30, "total_tokens": 450});
        let response = self.backend_response(&response_id, "completed", usage);
        self.nested(&id, "response.completed", json!({ "response": response }));
        let record = self.queue_speech(TurnTrigger::FollowUp, &text, ms);
        if let Some(t) = self.report.turns.get_mut(record) {
            t.delegation_id = Some(id);
        }
    }
}
