//! Ceilings on what one call holds in memory for its whole life (issue 16,
//! "RSS growth ≤ 64 KiB per call"; BENCHMARKS.md "Memory per call"): the
//! futures of a call's task, which tokio keeps in one allocation per call.
//! An async fn keeps room for the largest thing it awaits and for its
//! arguments, so one big rare branch (a rejection, a supervisor's
//! command, an IVR flow) awaited in place would make every call carry it;
//! those are boxed where they are awaited. The sizes are measured without
//! running anything (the futures are never built); the ceilings leave
//! room for compiler changes, not for another unboxed branch.

#![allow(unreachable_code, unused_variables, clippy::diverging_sub_expression)]

use std::future::Future;
use std::sync::Arc;

use super::*;
use crate::sip::{InboundLeg, OutboundLeg};

/// The size of the future `make` would return (it is never called).
fn future_size<F: Future>(_make: impl FnOnce() -> F) -> usize {
    std::mem::size_of::<F>()
}

/// The whole of a call's task (`spawn`'s future holds `run`'s).
#[test]
fn a_calls_task_stays_under_8_kib() {
    let size = future_size(|| {
        let (ctx, invite, route, tenant): (Arc<CallContext>, Box<PendingInvite>, Route, String) =
            unreachable!();
        run(ctx, invite, route, tenant)
    });
    // 29.5 KiB before the rare branches were boxed; 8.7 KiB before the
    // setup was taken apart and the once-only steps boxed.
    assert!(size <= 8 * 1024, "call::run's future is {size} bytes");
}

/// A connected conversation (boxed by whoever runs the call).
#[test]
fn a_conversation_stays_under_9_kib() {
    let size = future_size(|| {
        let (ctx, ringer, parts, connected): (
            &'static Arc<CallContext>,
            &'static mut ringing::Ringer<'static>,
            &'static mut converse::Parts,
            ringing::Connected,
        ) = unreachable!();
        converse::converse(ctx, ringer, parts, connected, String::new(), false, None)
    });
    // 15.5 KiB, then 12.2 KiB before the session's end was boxed.
    assert!(size <= 9 * 1024, "converse's future is {size} bytes");
    let size = future_size(|| {
        let s: &'static mut session::Session<'static, InboundLeg, OutboundLeg> = unreachable!();
        s.run()
    });
    // 13.1 KiB before a command (consultations, dial-outs) was boxed, 7.9
    // KiB before the end (hang-ups, the relay's report), the extra
    // parties' events and in-dialog replies were.
    assert!(size <= 4 * 1024, "Session::run's future is {size} bytes");
}

/// An IVR flow's call (the conversation it may reach is boxed).
#[test]
fn a_flow_stays_under_8_kib() {
    let size = future_size(|| {
        let (ctx, ringer, route, parts): (
            &'static Arc<CallContext>,
            &'static mut ringing::Ringer<'static>,
            &'static flow::FlowRoute,
            converse::Parts,
        ) = unreachable!();
        flow::drive(ctx, ringer, route, parts)
    });
    // 18.7 KiB before.
    assert!(size <= 8 * 1024, "flow::drive's future is {size} bytes");
}

/// Rejecting an INVITE is boxed at once: a task that may reject does not
/// carry rsipstack's reply (6.3 KiB) until it does.
#[test]
fn a_rejection_is_boxed() {
    let size = future_size(|| {
        let invite: PendingInvite = unreachable!();
        invite.reject(488, vec![])
    });
    assert!(size <= 16, "PendingInvite::reject's future is {size} bytes");
}
