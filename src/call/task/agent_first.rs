//! An agent-first call from its ports to its record: the shell of a
//! [`Kind::Callback`] or [`Kind::Outbound`] [`Machine`] (issue "ACD" §7
//! callbacks, CTI issue §3 outbound calls). The agent's phone rings first
//! (showing the number to be dialled); once the agent answers the citizen
//! is dialled through the tenant's trunk chain with the tenant's caller ID
//! (`reach`, the shell of the pure `AgentFirst`), then the two are bridged
//! by the same `session` as every call (recording, hold, supervisors,
//! transfer, three-way). The ACD hears what the machine says: a callback's
//! offer answered, rejected or failed and its result; an outbound call's
//! start (which it may refuse) and end.

use std::sync::Arc;

use tokio::sync::mpsc;
use tracing::{info, warn};

use super::end_record;
use crate::acd::{CallId, Input as Acd};
use crate::call::agent_first::NotReached;
use crate::call::machine::{AcdNews, Input, Kind, Machine, Output, SetupFailure};
use crate::call::queue::QueueNews;
use crate::call::reach::{invite, reach, Citizen, Dial, Reached};
use crate::call::record::CallRecord;
use crate::call::web_phone;
use crate::call::{local_media, open_recording, session, CallContext, Contact};
use crate::media::caller::CallerMedia;
use crate::media::player::Target;
use crate::media::ports::PortPair;
use crate::media::sdp::{self, LocalMedia};
use crate::sip::stack::LegEventSender;
use crate::sip::stack::OutboundInvite;
use crate::sip::LegEvents;

/// Who calls whom, and how.
pub(in crate::call) struct AgentFirstCall {
    /// [`Kind::Callback`] or [`Kind::Outbound`].
    pub kind: Kind,
    /// The record's call id.
    pub call_id: String,
    /// The ACD's agent id.
    pub agent: String,
    /// The SIP user of the agent's phone.
    pub device: String,
    /// Where the agent's phone is rung.
    pub contacts: Vec<Contact>,
    /// The citizen's number.
    pub number: String,
    /// The caller ID the citizen sees.
    pub caller_id: String,
    /// The first trunk toward the citizen (its backups follow).
    pub trunk: Option<String>,
    /// The tenant whose folder holds the recording (`None`: not recorded).
    pub recording_tenant: Option<String>,
    /// The record's start (its serial is taken when it starts).
    pub start: crate::events::CallStart,
    /// A callback's id in the ACD.
    pub acd_call: Option<CallId>,
    /// A callback's news from the ACD (a withdrawn reservation).
    pub news: Option<mpsc::UnboundedReceiver<QueueNews>>,
    /// The display name the agent's phone shows (a follow-up's ticket).
    pub agent_display: Option<String>,
}

/// Run an agent-first call to its end.
pub(in crate::call) async fn run(ctx: Arc<CallContext>, call: AgentFirstCall) {
    let mut m = Machine::new(call.kind);
    let (events_tx, events) = ctx.stack.leg_channel();
    let mut shell = Shell {
        ctx: &ctx,
        call,
        record: None,
        ports: None,
        reached: None,
        events_tx,
        events,
    };
    while let Some(output) = m.poll_output() {
        let input = match output {
            Output::Reach => Some(shell.reach(&mut m).await),
            other => shell.execute(other).await,
        };
        if let Some(input) = input {
            m.handle_input(input);
        }
    }
}

/// What carries out the machine's outputs.
struct Shell<'s> {
    ctx: &'s Arc<CallContext>,
    call: AgentFirstCall,
    record: Option<CallRecord>,
    /// Toward the citizen, toward the agent.
    ports: Option<(PortPair, PortPair)>,
    /// Both legs, and our media toward the agent.
    reached: Option<(Reached, LocalMedia)>,
    events_tx: LegEventSender,
    events: LegEvents,
}

impl Shell<'_> {
    /// Carry out `output`; the news it waits for, if any.
    async fn execute(&mut self, output: Output) -> Option<Input> {
        let ctx = self.ctx;
        match output {
            Output::Prepare => {
                let (Ok(a), Ok(b)) = (ctx.ports.allocate().await, ctx.ports.allocate().await)
                else {
                    warn!("no RTP ports for the call");
                    return Some(Input::Prepared(Err(SetupFailure::NoPorts)));
                };
                self.ports = Some((a, b));
                Some(Input::Prepared(Ok(())))
            }
            Output::Acd(AcdNews::StartOutbound) => {
                let Some(queues) = &ctx.queues else {
                    return Some(Input::AcdTook(true));
                };
                let start = Acd::StartOutbound {
                    agent: self.call.agent.clone(),
                };
                Some(Input::AcdTook(match queues.try_input(start).await {
                    Ok(_) => true,
                    Err(e) => {
                        info!(error = %e, "the ACD refused the outbound call");
                        false
                    }
                }))
            }
            Output::Acd(news) => {
                tell_acd(ctx, &self.call, news);
                None
            }
            Output::StartRecord => {
                self.record = Some(start_record(ctx, &self.call));
                None
            }
            Output::Connected => {
                match self.call.kind {
                    Kind::Callback => info!(number = %self.call.number, "callback connected"),
                    _ => info!("outbound call connected"),
                }
                if let Some(record) = &self.record {
                    let agent = &self.call.agent;
                    record.fact("answered", |b, t| b.answered(t, agent));
                }
                None
            }
            Output::Talk => {
                self.talk().await;
                Some(Input::Talked)
            }
            Output::EndRecord(end) => {
                if let Some(record) = &self.record {
                    end_record(record, end);
                }
                None
            }
            Output::Finish => {
                if let Some(record) = self.record.take() {
                    record.finish();
                }
                None
            }
            // Carried out by `run` (it lends the machine to `reach`).
            Output::Reach => None,
            // Not an agent-first call's.
            Output::Reject(_)
            | Output::Forget
            | Output::RunFlow
            | Output::Ring
            | Output::AnswerCaller
            | Output::DropAnswer
            | Output::Converse
            | Output::Bye
            | Output::EndRecording => None,
        }
    }

    /// Ring the agent, then the citizen; what the machine says when the
    /// agent answers is done at once (the ACD must hear of the answer
    /// before the citizen is dialled).
    async fn reach(&mut self, m: &mut Machine) -> Input {
        let ctx = self.ctx;
        let Some((a_ports, b_ports)) = &self.ports else {
            return Input::Reached(Err(NotReached::Withdrawn));
        };
        let b_local = local_media(ctx, b_ports.port(), ctx.codecs.clone());
        let b_offer = sdp::build_offer(&b_local);
        let mut news = self.call.news.take();
        let call = &self.call;
        // A browser phone among the agent's contacts gets the WebRTC form.
        let web_offer = call
            .contacts
            .iter()
            .any(|c| web_phone::phone_of(&c.uri).is_some())
            .then(|| web_phone::offer_for(&b_offer, b_ports))
            .flatten();
        let invites = call
            .contacts
            .iter()
            .filter_map(|c| {
                let inv = OutboundInvite {
                    route: c.route.clone(),
                    from_display: call.agent_display.clone(),
                    ..invite(c.uri.clone(), Some(c.source), c.tcp, &call.number, &b_offer)
                };
                web_phone::for_browser(inv, web_offer.as_deref())
            })
            .collect();
        let dial = Dial {
            number: &call.number,
            caller_id: &call.caller_id,
            trunk: call.trunk.as_deref(),
            port: a_ports.port(),
        };
        let record = &mut self.record;
        let reached = reach(
            ctx,
            (&self.events_tx, &mut self.events),
            invites,
            &b_offer,
            news.as_mut(),
            dial,
            || {
                m.handle_input(Input::AgentAnswered);
                while let Some(output) = m.poll_output() {
                    match output {
                        Output::Acd(news) => tell_acd(ctx, call, news),
                        Output::StartRecord => *record = Some(start_record(ctx, call)),
                        _ => {}
                    }
                }
            },
        )
        .await;
        match reached {
            Ok(r) => {
                self.reached = Some((r, b_local));
                Input::Reached(Ok(()))
            }
            Err(e) => {
                info!(?e, "not reached");
                Input::Reached(Err(e))
            }
        }
    }

    /// Bridge the citizen and the agent until the call is over.
    async fn talk(&mut self) {
        let ctx = self.ctx;
        let (Some((reached, b_local)), Some((a_ports, b_ports))) =
            (self.reached.take(), self.ports.take())
        else {
            return;
        };
        let Reached {
            agent: (agent_leg, b_neg),
            citizen:
                Citizen {
                    leg: citizen_leg,
                    neg: a_neg,
                    local: a_local,
                    offer: a_offer,
                },
        } = reached;
        let record = self.record.take().unwrap_or_else(CallRecord::disabled);
        let call = &self.call;
        let mut media = CallerMedia::new(a_ports, Target::from_negotiated(&a_neg));
        if let Some(tenant) = &call.recording_tenant {
            if let Some(r) = open_recording(ctx, tenant, &call.call_id, &record).await {
                media.record(r);
            }
        }
        let agent = match call.kind {
            Kind::Callback => session::AgentSide::callback(call.agent.clone(), call.device.clone()),
            _ => session::AgentSide::outbound(call.agent.clone(), call.device.clone()),
        };
        let mut session = session::Session::connect(session::SessionParts {
            ctx,
            a: &citizen_leg,
            b: agent_leg,
            events: &mut self.events,
            events_tx: self.events_tx.clone(),
            media: &mut media,
            record: &record,
            a_side: session::SideMedia {
                local: a_local,
                neg: a_neg,
            },
            a_answer: a_offer,
            b_side: session::SideMedia {
                local: b_local,
                neg: b_neg,
            },
            b_ports: Some(b_ports),
            bridged: None,
            caller: call.number.clone(),
            agent,
            rules: session::Rules::AGENT_FIRST,
        });
        session.run().await;
        self.record = Some(record);
    }
}

/// Tell the ACD `news` about `call`.
fn tell_acd(ctx: &CallContext, call: &AgentFirstCall, news: AcdNews) {
    let Some(queues) = &ctx.queues else { return };
    let agent = call.agent.clone();
    let input = match (news, call.acd_call) {
        (AcdNews::EndOutbound, _) => Acd::EndOutbound { agent },
        (AcdNews::OfferAnswered, Some(call)) => Acd::OfferAnswered { call, agent },
        (AcdNews::OfferRejected, Some(call)) => Acd::OfferRejected { call, agent },
        (AcdNews::OfferFailed, Some(call)) => Acd::OfferFailed { call, agent },
        (AcdNews::CallbackResult(answered), Some(call)) => {
            if let Some(campaigns) = ctx.campaigns.get() {
                campaigns.callback_result(call, answered);
            }
            Acd::CallbackResult { call, answered }
        }
        (AcdNews::CallEnded, Some(call)) => Acd::CallEnded { call },
        // A callback's news without its id; the start is asked, not told.
        _ => return,
    };
    queues.input(input);
}

/// The call's record, from now (a callback's from its agent's answer).
fn start_record(ctx: &CallContext, call: &AgentFirstCall) -> CallRecord {
    let Some(records) = &ctx.records else {
        return CallRecord::disabled();
    };
    let mut start = call.start.clone();
    start.serial = records.next_serial(ctx.utc_offset_minutes);
    records.start(start)
}
