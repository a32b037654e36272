//! The phone bar's audio endpoint on the live WebSocket (issue 17 §2):
//! the `phone.*` messages a signed-in agent's page sends, handed to the
//! call core's browser phones (`call::web_phone`, whose module docs give
//! the protocol), and what those send back to the page.
//!
//! Only an agent may register a phone, and only as their own phone (the
//! SIP user of their roster entry); a page acts only on its own legs.
//! A message that cannot be taken is answered `{"type": "phone.error",
//! "code", "message", "leg"?}` and the socket stays open.

use serde_json::{json, Value};

use super::ApiState;
use crate::auth::{Principal, Role};
use crate::call::web_phone::{PageError, PhoneLine};

/// The page's phone, once it registered.
#[derive(Default)]
pub(super) struct PagePhone {
    line: Option<PhoneLine>,
}

impl PagePhone {
    /// The next message for the page (never, without a phone).
    pub(super) async fn next(&mut self) -> Option<Value> {
        match &mut self.line {
            Some(line) => line.to_page.recv().await,
            None => std::future::pending().await,
        }
    }

    /// A text message from the page: `Some(reply)` when it must be told
    /// something at once (an error); `None` otherwise (also for messages
    /// that are not the phone's).
    pub(super) fn on_page_message(
        &mut self,
        s: &ApiState,
        p: &Principal,
        text: &str,
    ) -> Option<Value> {
        let Ok(message) = serde_json::from_str::<Value>(text) else {
            return Some(error(None, "bad_request", "not a JSON message"));
        };
        let kind = message["type"].as_str().unwrap_or_default();
        if !kind.starts_with("phone.") {
            return None;
        }
        let leg = message["leg"].as_str().map(str::to_string);
        match kind {
            "phone.register" => self.register(s, p, &message).err(),
            "phone.unregister" => {
                self.line = None;
                Some(json!({ "type": "phone.unregistered" }))
            }
            _ => {
                let Some(line) = &self.line else {
                    return Some(error(leg, "not_registered", "send phone.register first"));
                };
                match line.on_page_message(&message) {
                    Ok(()) => None,
                    Err(e @ PageError::NoSuchLeg(_)) => {
                        Some(error(leg, "not_found", &e.to_string()))
                    }
                    Err(e) => Some(error(leg, "bad_request", &e.to_string())),
                }
            }
        }
    }

    fn register(&mut self, s: &ApiState, p: &Principal, message: &Value) -> Result<(), Value> {
        if p.role != Role::Agent {
            return Err(error(None, "forbidden", "only an agent's page is a phone"));
        }
        let Some(cti) = s.cti.as_ref() else {
            return Err(error(None, "unavailable", "no calls in this process"));
        };
        let agent = p.agent_id.as_deref().unwrap_or_default();
        let Some(info) = cti.agent(agent) else {
            return Err(error(
                None,
                "not_found",
                "this user is no agent of the roster",
            ));
        };
        let resume: Vec<String> = message["resume"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        // A second registration replaces the first (its legs stay, to be
        // resumed by name).
        self.line = None;
        match cti.calls.web_phones.register(&info.device, &resume) {
            Some(line) => {
                tracing::info!(%agent, device = %info.device, phone = line.id(), "browser phone registered");
                self.line = Some(line);
                Ok(())
            }
            None => Err(error(None, "unavailable", "the switch is stopping")),
        }
    }
}

fn error(leg: Option<String>, code: &str, message: &str) -> Value {
    json!({
        "type": "phone.error",
        "code": code,
        "message": message,
        "message_zh": super::zh::message_zh(code, 400),
        "leg": leg,
    })
}
