//! The call's one task (issue 13 §2, DESIGN.md "call::task"): the shell
//! around the call's [`Machine`]. Every kind of call — a carrier's
//! INVITE (`inbound`), a callback or an outbound call (`agent_first`) —
//! runs in one tokio task that carries out the machine's outputs and feeds
//! back their results. Each phase it starts is the shell of its own pure
//! machine (the flow, the ringing, a queue's wait, the conversations, the
//! connected call), awaited in place and boxed where it is large (issue 16,
//! "Memory per call"). The task holds no call logic: which phase follows
//! which, what the caller and the ACD are told, and how the record ends
//! are the machine's.

pub(super) mod agent_first;
pub(super) mod inbound;

use super::machine::RecordEnd;
use super::record::CallRecord;

/// Tell `record` how the call ended, unless the call's parts already did
/// (a connected call's session, a flow's hang-up).
fn end_record(record: &CallRecord, end: RecordEnd) {
    match end {
        RecordEnd::Caller => {
            record.ended(crate::events::HangupParty::Caller, Default::default());
        }
        RecordEnd::System {
            reason,
            code,
            failure,
        } => record.end_by_system(&reason, code, failure),
    }
}
