//! JSON Schemas (draft 2020-12) of every event kind, published as
//! `docs/events/<type>.schema.json` (issue 7 §1: "versioned, documented as
//! JSON Schema in docs/events/").
//!
//! They are written here, in one place, next to the types they describe; a
//! test checks that the files on disk equal what this module produces (run
//! the tests with `HOTLINE_BLESS=1` to rewrite them) and that sample events
//! of every kind satisfy them. Every property is `required` (absent values
//! are `null`). The schemas leave `additionalProperties` open so that
//! consumers keep validating when fields are added (see the versioning
//! policy in docs/events/README.md).

use serde_json::{json, Map, Value};

use super::model::{EventData, SCHEMA_VERSION};

/// The draft the schemas follow.
pub const DRAFT: &str = "https://json-schema.org/draft/2020-12/schema";

/// File name of a kind's schema, e.g. `call.ended.schema.json`.
pub fn file_name(kind: &str) -> String {
    format!("{kind}.schema.json")
}

/// Every kind with its schema, in documentation order.
pub fn all() -> Vec<(&'static str, Value)> {
    EventData::KINDS
        .iter()
        .filter_map(|k| schema(k).map(|s| (*k, s)))
        .collect()
}

/// The schema of the event kind `kind`, or `None` for an unknown kind.
pub fn schema(kind: &str) -> Option<Value> {
    let (description, data) = match kind {
        "call.started" => ("A call reached hotline.", call_started()),
        "ivr.step" => ("The IVR entered a node.", ivr_step()),
        "queue.entered" => ("The caller entered a skill group's queue.", queue_entered()),
        "agent.offered" => ("An agent's phone rings with the call.", agent_offered()),
        "agent.answered" => ("An agent answered.", agent_answered()),
        "call.held" => ("The agent put the caller on hold.", call_held()),
        "call.resumed" => ("The caller is back from hold.", call_resumed()),
        "call.transferred" => (
            "The call was handed to an agent, group or outside number.",
            call_transferred(),
        ),
        "call.transfer_failed" => (
            "A blind transfer did not reach its target; the caller went back.",
            call_transfer_failed(),
        ),
        "conference.changed" => (
            "Someone joined or left a three-way call.",
            conference_changed(),
        ),
        "survey.result" => (
            "The caller rated the service by keypad (按键满意度).",
            survey_result(),
        ),
        "voicemail.saved" => ("The caller left a message (客户留言).", voicemail_saved()),
        "recording.ready" => (
            "The call's recording is complete on disk (随录信息).",
            recording(),
        ),
        "call.ended" => ("The call record (CDR): the call's last event.", cdr()),
        "agent.state" => ("An agent's state changed.", agent_state()),
        _ => return None,
    };
    Some(envelope(kind, description, data))
}

/// The envelope around `data`.
fn envelope(kind: &str, description: &str, data: Value) -> Value {
    let call_id = if kind == "agent.state" {
        json!({"description": "Always null: agents have no call (see data.call_id).", "type": "null"})
    } else {
        json!({"description": "The call the event belongs to.", "type": "string"})
    };
    let seq = if kind == "agent.state" {
        "Position among this agent's events, from 1, without gaps."
    } else {
        "Position among this call's events, from 1, without gaps."
    };
    let mut root = obj(
        description,
        vec![
            (
                "id",
                json!({"description": "Unique event id; the idempotency key.", "type": "string", "pattern": "^ev-[0-9]{13}-"}),
            ),
            (
                "v",
                json!({"description": "Schema version.", "const": SCHEMA_VERSION}),
            ),
            ("at", ts("When it happened (UTC).")),
            ("tenant", string("Tenant (operations centre).")),
            ("call_id", call_id),
            (
                "seq",
                json!({"description": seq, "type": "integer", "minimum": 1, "maximum": u32::MAX}),
            ),
            (
                "type",
                json!({"description": "The event kind.", "const": kind}),
            ),
            ("data", data),
        ],
    );
    if let Value::Object(m) = &mut root {
        let mut head = Map::new();
        head.insert("$schema".into(), json!(DRAFT));
        head.insert(
            "$id".into(),
            json!(format!("urn:hotline:event:{kind}:v{SCHEMA_VERSION}")),
        );
        head.insert("title".into(), json!(kind));
        head.append(m);
        return Value::Object(head);
    }
    root
}

// ---- building blocks -------------------------------------------------------

/// An object whose properties are all required.
fn obj(description: &str, props: Vec<(&str, Value)>) -> Value {
    let required: Vec<&str> = props.iter().map(|(k, _)| *k).collect();
    let properties: Map<String, Value> =
        props.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    json!({"description": description, "type": "object", "properties": properties, "required": required})
}

fn string(description: &str) -> Value {
    json!({"description": description, "type": "string"})
}

fn ts(description: &str) -> Value {
    json!({"description": description, "type": "string", "format": "date-time"})
}

fn boolean(description: &str) -> Value {
    json!({"description": description, "type": "boolean"})
}

fn uint(description: &str, max: u64) -> Value {
    json!({"description": description, "type": "integer", "minimum": 0, "maximum": max})
}

fn ms(description: &str) -> Value {
    json!({"description": description, "type": "integer", "minimum": 0})
}

fn int(description: &str) -> Value {
    json!({"description": description, "type": "integer"})
}

fn number(description: &str) -> Value {
    json!({"description": description, "type": "number"})
}

fn one_of(description: &str, values: &[&str]) -> Value {
    json!({"description": description, "type": "string", "enum": values})
}

fn array(description: &str, items: Value) -> Value {
    json!({"description": description, "type": "array", "items": items})
}

fn map(description: &str, values: Value) -> Value {
    json!({"description": description, "type": "object", "additionalProperties": values})
}

/// `schema` or `null`.
fn nullable(mut schema: Value) -> Value {
    if let Value::Object(m) = &mut schema {
        if let Some(t) = m.get("type").cloned() {
            m.insert("type".into(), json!([t, "null"]));
        }
        if let Some(Value::Array(values)) = m.get_mut("enum") {
            values.push(Value::Null);
        }
    }
    schema
}

// ---- shared pieces -----------------------------------------------------------

fn agent_id(description: &str) -> Value {
    string(description)
}

fn area() -> Value {
    obj(
        "The caller's administrative area (号码归属地 / 受理地行政区划).",
        vec![
            ("code", string("Area code, e.g. 0771.")),
            ("region", string("Region name.")),
        ],
    )
}

fn direction() -> Value {
    one_of(
        "Which way the call goes.",
        &["inbound", "outbound", "callback"],
    )
}

fn transfer_kind() -> Value {
    one_of("What the transfer goes to.", &["agent", "group", "number"])
}

fn transfer_mode() -> Value {
    one_of("Blind (盲转) or attended (咨询转).", &["blind", "attended"])
}

fn party() -> Value {
    obj(
        "A party of a conference.",
        vec![
            (
                "role",
                one_of("Role.", &["caller", "agent", "supervisor", "external"]),
            ),
            ("id", string("Number or job number.")),
        ],
    )
}

fn agent_state_name(description: &str) -> Value {
    one_of(
        description,
        &[
            "logged_out",
            "idle",
            "not_ready",
            "ringing",
            "talking",
            "on_hold",
            "after_call_work",
            "outbound",
        ],
    )
}

// ---- data of each kind -------------------------------------------------------

fn call_started() -> Value {
    obj(
        "call.started data.",
        vec![
            ("serial", string("Call serial number (呼叫流水号).")),
            ("direction", direction()),
            (
                "caller",
                string("Calling number (masked in exports when confidential)."),
            ),
            ("called", string("Called number (DID).")),
            ("caller_area", nullable(area())),
            ("confidential", boolean("Confidential caller (保密).")),
        ],
    )
}

fn ivr_step() -> Value {
    obj(
        "ivr.step data.",
        vec![
            (
                "flow",
                string("Flow being walked (a subflow while in one)."),
            ),
            ("version", string("That flow's version.")),
            ("node", string("Node entered.")),
            ("kind", string("Node kind (menu, play, queue …).")),
            (
                "step",
                uint(
                    "Position of the node in the call's IVR path, from 1.",
                    u64::from(u32::MAX),
                ),
            ),
        ],
    )
}

fn queue_entered() -> Value {
    obj(
        "queue.entered data.",
        vec![
            ("group_id", string("Skill group (技能组) id.")),
            ("group_name", nullable(string("Skill group name."))),
            ("priority", uint("0-255, higher served first.", 255)),
            (
                "from_group",
                nullable(string("Group the call overflowed or was transferred from.")),
            ),
        ],
    )
}

fn agent_offered() -> Value {
    obj(
        "agent.offered data.",
        vec![
            ("agent_id", agent_id("Agent job number (工号).")),
            ("group_id", nullable(string("Group the offer comes from."))),
            (
                "attempt",
                uint(
                    "Offers made for this call so far, from 1.",
                    u64::from(u32::MAX),
                ),
            ),
        ],
    )
}

fn agent_answered() -> Value {
    obj(
        "agent.answered data.",
        vec![
            ("agent_id", agent_id("Agent job number (工号).")),
            (
                "group_id",
                nullable(string("Group the call was waiting in.")),
            ),
            (
                "wait_ms",
                nullable(ms(
                    "From asking for an agent (or entering the queue) to the answer.",
                )),
            ),
            ("ring_ms", nullable(ms("How long this agent's phone rang."))),
        ],
    )
}

fn call_held() -> Value {
    obj(
        "call.held data.",
        vec![("agent_id", agent_id("Agent job number (工号)."))],
    )
}

fn call_resumed() -> Value {
    obj(
        "call.resumed data.",
        vec![
            ("agent_id", agent_id("Agent job number (工号).")),
            ("held_ms", ms("Length of this hold.")),
        ],
    )
}

fn call_transferred() -> Value {
    obj(
        "call.transferred data.",
        vec![
            (
                "from_agent",
                nullable(agent_id("The agent who transferred; null: the IVR.")),
            ),
            ("target_kind", transfer_kind()),
            ("target", string("Job number, group id or phone number.")),
            ("mode", transfer_mode()),
        ],
    )
}

/// Why a transfer failed and where the caller went (shared by the event
/// and the record's `transfers[].failure`).
fn transfer_failure_fields() -> Vec<(&'static str, Value)> {
    vec![
        (
            "reason",
            one_of(
                "busy (486/600/603), no_answer (ring timeout, 408/480), unreachable (not registered, nobody signed in, no trunk) or failed (any other status).",
                &["busy", "no_answer", "unreachable", "failed"],
            ),
        ),
        (
            "sip_code",
            nullable(uint("The target's final SIP status, if it sent one.", 699)),
        ),
        (
            "back_to",
            one_of(
                "Where the caller went: the agent who transferred, the queue of the call's group (at its old place), or none (hung up).",
                &["agent", "queue", "none"],
            ),
        ),
        (
            "back_to_id",
            nullable(string("The agent's job number or the group's id.")),
        ),
    ]
}

fn call_transfer_failed() -> Value {
    let mut fields = vec![
        (
            "from_agent",
            nullable(agent_id("The agent who transferred.")),
        ),
        ("target_kind", transfer_kind()),
        ("target", string("Job number, group id or phone number.")),
        ("mode", transfer_mode()),
    ];
    fields.extend(transfer_failure_fields());
    obj("call.transfer_failed data.", fields)
}

fn conference_changed() -> Value {
    obj(
        "conference.changed data.",
        vec![
            ("change", one_of("Joined or left.", &["joined", "left"])),
            ("party", party()),
            (
                "members",
                array("Everyone in the conference after the change.", party()),
            ),
        ],
    )
}

fn survey_result() -> Value {
    obj(
        "survey.result data.",
        vec![
            (
                "dimension",
                string("What was rated (attitude, efficiency, resolution …)."),
            ),
            ("score", uint("The score.", 255)),
            (
                "key",
                json!({"description": "The key pressed.", "type": "string", "minLength": 1, "maxLength": 1}),
            ),
            ("agent_id", nullable(agent_id("The agent rated."))),
        ],
    )
}

fn voicemail_saved() -> Value {
    obj(
        "voicemail.saved data.",
        vec![
            ("path", string("Where the message is stored.")),
            ("duration_ms", ms("Its length.")),
            (
                "group_id",
                nullable(string("The group the caller was waiting for.")),
            ),
        ],
    )
}

fn recording() -> Value {
    obj(
        "A finished recording (随录信息).",
        vec![
            ("id", string("Recording id.")),
            ("path", string("Where the file is.")),
            ("duration_ms", ms("Length of the audio.")),
            ("bytes", ms("File size in bytes.")),
            ("sha256", string("SHA-256 of the file, lowercase hex (empty if the record closed before it was ready).")),
            ("dropped_chunks", ms("Audio chunks lost while recording.")),
        ],
    )
}

fn leg_quality() -> Value {
    obj(
        "RTP quality of one leg at the end of the call.",
        vec![
            (
                "leg",
                string("caller, agent:<job number>, external:<number> …"),
            ),
            ("received", ms("RTP packets received from the leg.")),
            ("lost", int("Packets lost on the way in.")),
            ("loss_fraction", number("Lost / expected, 0-1.")),
            ("jitter_ms", number("Interarrival jitter, ms.")),
            (
                "peer_fraction_lost",
                nullable(number("Peer's RTCP report: fraction lost.")),
            ),
            (
                "peer_jitter_ms",
                nullable(number("Peer's RTCP report: jitter, ms.")),
            ),
            ("rtt_ms", nullable(number("Round-trip time from RTCP, ms."))),
            ("rtcp_sent", ms("RTCP reports sent to the leg.")),
            ("rtcp_received", ms("RTCP reports received from the leg.")),
            (
                "refused",
                ms("Packets refused: from other sources than the leg's (strict latching), or failing SRTP authentication on an SRTP leg."),
            ),
        ],
    )
}

fn cdr() -> Value {
    let transfer = obj(
        "One transfer.",
        vec![
            ("at", ts("When.")),
            (
                "from_agent",
                nullable(agent_id("The agent who transferred; null: the IVR.")),
            ),
            ("target_kind", transfer_kind()),
            ("target", string("Job number, group id or phone number.")),
            ("mode", transfer_mode()),
            (
                "failure",
                nullable(obj(
                    "Set when the transfer did not reach its target.",
                    transfer_failure_fields(),
                )),
            ),
        ],
    );
    let voicemail = obj(
        "The caller's message.",
        vec![
            ("path", string("Where it is stored.")),
            ("duration_ms", ms("Its length.")),
        ],
    );
    let flow = obj(
        "Top-level IVR flow.",
        vec![
            ("name", string("Flow name.")),
            ("version", string("Flow version.")),
        ],
    );
    obj(
        "call.ended data: the call record (CDR). Times UTC, durations in ms.",
        vec![
            ("serial", string("Call serial number (呼叫流水号).")),
            ("call_id", string("Hotline's call id.")),
            ("tenant", string("Tenant (operations centre).")),
            ("direction", direction()),
            ("caller", string("Calling number (masked in exports when confidential).")),
            ("called", string("Called number (DID).")),
            ("caller_area", nullable(area())),
            ("confidential", boolean("Confidential caller (保密).")),
            ("flow", nullable(flow)),
            ("ivr_path", array("Nodes entered, in order; subflow nodes as flow/node.", string("Node."))),
            ("ivr_vars", map("IVR variables at the end of the call.", string("Value."))),
            ("started_at", ts("Call time: the call reached hotline.")),
            ("agent_requested_at", nullable(ts("When the caller asked for an agent."))),
            ("queued_at", nullable(ts("Queue-entry time (first).")),),
            ("ring_at", nullable(ts("Ringing time: first offer to an agent."))),
            ("connected_at", nullable(ts("Agent-connect time (first answer)."))),
            ("ended_at", ts("Hang-up time.")),
            ("hangup_by", one_of("Who hung up.", &["caller", "agent", "system"])),
            ("sip_code", nullable(uint("SIP status of a failed leg; null for a BYE.", 699))),
            ("hangup_reason", nullable(string("Hotline's reason text (normal, no-input, max-wait …)."))),
            ("system_fault", boolean("A system fault ended the call.")),
            ("group_id", nullable(string("Last skill group waited in (id)."))),
            ("group_name", nullable(string("Its name."))),
            ("groups", array("Every group waited in, in order.", string("Group id."))),
            ("agent_id", nullable(agent_id("Job number (工号) of the first agent who answered."))),
            ("agents", array("Every agent who answered, in order.", string("Job number."))),
            ("offers", uint("Offers made.", u64::from(u32::MAX))),
            ("duration_ms", ms("Whole call: started_at to ended_at.")),
            ("wait_ms", nullable(ms("Asking for an agent (or queue entry) to the first answer, leaving the queue, or hang-up."))),
            ("ring_ms", nullable(ms("First ring to first answer (or to the end)."))),
            ("talk_ms", ms("Connected to agents, holds excluded.")),
            ("hold_ms", ms("On hold.")),
            ("hold_count", uint("Number of holds.", u64::from(u32::MAX))),
            ("acw_ms", nullable(ms("After-call work (话后整理) of the call's agents, summed; null if no agent answered."))),
            ("transfers", array("Transfers, in order.", transfer)),
            ("conference_max", uint("Most parties at once in a conference (0: never).", u64::from(u32::MAX))),
            ("survey", map("Keypad ratings: dimension → score.", uint("Score.", 255))),
            ("voicemail", nullable(voicemail)),
            ("callback_requested_at", nullable(ts("When the caller chose a callback."))),
            ("recording", nullable(recording())),
            ("quality", array("RTP quality per leg.", leg_quality())),
            (
                "outcome",
                one_of(
                    "How the call ended.",
                    &[
                        "answered",
                        "abandoned_in_ivr",
                        "abandoned_in_queue",
                        "abandoned_ringing",
                        "queue_timeout",
                        "voicemail",
                        "callback",
                        "transferred_out",
                        "ivr_completed",
                        "blocked",
                        "failed",
                    ],
                ),
            ),
            ("complete", boolean("False when closed before after-call work or the recording arrived.")),
        ],
    )
}

fn agent_state() -> Value {
    obj(
        "agent.state data.",
        vec![
            ("agent_id", agent_id("Agent job number (工号).")),
            ("state", agent_state_name("The new state.")),
            (
                "previous",
                nullable(agent_state_name("The state before, if known.")),
            ),
            ("reason", nullable(string("Not-ready reason code."))),
            ("call_id", nullable(string("The call the agent is on."))),
        ],
    )
}
