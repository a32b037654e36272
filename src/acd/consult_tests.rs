//! Consultations of a skill group and calls put through to an agent
//! directly (they keep agents busy without counting for the group).

use super::tests::*;
use super::*;

fn consult(h: &mut H, call: u64, group: &str) -> Result<(), AcdError> {
    h.try_in(Input::Consult {
        call: CallId(call),
        group: group.into(),
        priority: CONSULT_PRIORITY,
        caller: "citizen".into(),
    })
}

#[test]
fn a_consultation_is_offered_by_strategy_and_rings_on_after_no_answer() {
    let mut h = H::new(config(
        vec![group("g", Strategy::LongestIdle)],
        vec![agent("a", &[("g", 5)]), agent("b", &[("g", 5)])],
    ));
    h.login("a");
    h.at(s(1));
    h.login("b");
    h.take();
    // An ordinary caller waits; the consultation goes first.
    h.enqueue(1, "g", 0);
    assert_eq!(h.offers(), vec![off(1, "a")]);
    consult(&mut h, 2, "g").expect("queued");
    assert_eq!(h.offers(), vec![off(2, "b")]);
    h.answer(1, "a");
    // b does not answer: not ready, and the next free agent gets it.
    h.at(s(16));
    assert_eq!(h.state("b"), AgentState::NotReady);
    h.end(1);
    h.ok(Input::CompleteAcw { agent: "a".into() });
    assert_eq!(h.offers(), vec![off(2, "a")]);
    h.answer(2, "a");
    assert_eq!(h.state("a"), AgentState::Talking);
    h.end(2);
    assert_eq!(h.state("a"), AgentState::AfterCallWork);
    let g = &h.e.stats(h.now).groups[0].counters;
    assert_eq!(
        (g.entered, g.answered, g.handled),
        (1, 1, 1),
        "the caller only"
    );
}

#[test]
fn a_consultation_given_up_is_neither_abandoned_nor_missed() {
    let mut g = group("g", Strategy::LongestIdle);
    g.max_wait = s(30);
    g.overflow_after = Some((s(5), "h".into()));
    let mut h = H::new(config(
        vec![g, group("h", Strategy::LongestIdle)],
        vec![agent("a", &[("g", 5)])],
    ));
    consult(&mut h, 1, "g").expect("queued");
    // No time limit, no overflow while the agent waits.
    h.at(s(600));
    assert_eq!(h.order("g"), vec![1]);
    h.ok(Input::CallerHungUp { call: CallId(1) });
    assert!(h.e.call_view(CallId(1)).is_none());
    // Withdrawn while ringing: the agent is idle again.
    h.login("a");
    consult(&mut h, 2, "g").expect("queued");
    assert_eq!(h.offers(), vec![off(2, "a")]);
    h.ok(Input::CallerHungUp { call: CallId(2) });
    assert_eq!(h.state("a"), AgentState::Idle);
    assert!(h.e.missed_calls().is_empty());
    let c = &h.e.stats(h.now).groups[0].counters;
    assert_eq!((c.abandoned, c.timed_out, c.entered), (0, 0, 0));
}

#[test]
fn a_full_queue_refuses_a_consultation() {
    let mut g = group("g", Strategy::LongestIdle);
    g.max_queue = 1;
    let mut h = H::new(config(vec![g], vec![agent("a", &[("g", 5)])]));
    h.enqueue(1, "g", 0);
    assert_eq!(
        consult(&mut h, 2, "g"),
        Err(AcdError::QueueFull("g".into()))
    );
    assert!(h.e.call_view(CallId(2)).is_none());
    assert!(h.e.missed_calls().is_empty());
    assert_eq!(
        consult(&mut h, 3, "nope"),
        Err(AcdError::UnknownGroup("nope".into()))
    );
}

#[test]
fn an_agent_on_a_call_put_through_to_them_gets_no_queued_call_until_after_call_work() {
    let mut h = H::new(config(
        vec![group("g", Strategy::LongestIdle)],
        vec![
            agent("a", &[("g", 5)]),
            agent("b", &[("g", 5)]),
            agent("loner", &[]),
        ],
    ));
    h.login("a");
    h.login("loner");
    h.take();
    let direct = |h: &mut H, call: u64, agent: &str| {
        h.try_in(Input::DirectAnswered {
            call: CallId(call),
            agent: agent.into(),
            caller: "13800138000".into(),
        })
    };
    direct(&mut h, 100, "a").expect("idle: taken");
    assert_eq!(h.state("a"), AgentState::Talking);
    // A queued caller waits instead of ringing a's phone.
    h.enqueue(1, "g", 0);
    assert_eq!(h.offers(), Vec::<(u64, String)>::new());
    // Only idle agents with a group: the shell leaves the others alone.
    assert!(matches!(
        direct(&mut h, 101, "a"),
        Err(AcdError::WrongAgentState { .. })
    ));
    assert!(matches!(
        direct(&mut h, 102, "b"),
        Err(AcdError::WrongAgentState { .. })
    ));
    assert!(matches!(
        direct(&mut h, 103, "loner"),
        Err(AcdError::Config(_))
    ));
    // The direct call ends: after-call work, then the queued caller.
    h.end(100);
    assert_eq!(h.state("a"), AgentState::AfterCallWork);
    h.ok(Input::CompleteAcw { agent: "a".into() });
    assert_eq!(h.offers(), vec![off(1, "a")]);
    let st = h.e.stats(h.now);
    let g = &st.groups[0].counters;
    assert_eq!(
        (g.entered, g.answered),
        (1, 0),
        "the direct call is not the group's"
    );
    let a = st.agents.iter().find(|x| x.agent == "a").expect("a");
    assert_eq!(a.counters.answered, 1, "but it is the agent's");
}

#[test]
fn a_caller_put_back_through_to_an_agent_in_after_call_work_ends_the_work() {
    // The agent transferred the caller blind (the call ended for them:
    // after-call work); the transfer failed and the caller is put back
    // through to them directly: talking again, never idle in between, so
    // the waiting caller is not offered to them meanwhile.
    let mut h = H::new(config(
        vec![group("g", Strategy::LongestIdle)],
        vec![agent("a", &[("g", 5)])],
    ));
    h.login("a");
    h.enqueue(1, "g", 0);
    assert_eq!(h.offers(), vec![off(1, "a")]);
    h.answer(1, "a");
    h.at(s(60));
    h.end(1);
    assert_eq!(h.state("a"), AgentState::AfterCallWork);
    h.enqueue(2, "g", 0);
    h.at(s(62));
    h.ok(Input::DirectAnswered {
        call: CallId(100),
        agent: "a".into(),
        caller: "13800138000".into(),
    });
    assert_eq!(h.state("a"), AgentState::Talking);
    assert_eq!(h.offers(), Vec::<(u64, String)>::new());
    // The ACW timer of the first conversation is gone: nothing fires.
    h.at(s(200));
    assert_eq!(h.state("a"), AgentState::Talking);
    let st = h.e.stats(h.now);
    let a = st.agents.iter().find(|x| x.agent == "a").expect("a");
    assert_eq!(
        a.counters.acw_total,
        s(2),
        "the 2 s of work before the call came back"
    );
    h.end(100);
    assert_eq!(h.state("a"), AgentState::AfterCallWork);
    h.ok(Input::CompleteAcw { agent: "a".into() });
    assert_eq!(h.offers(), vec![off(2, "a")]);
}

#[test]
fn a_consultation_never_overtakes_an_emergency_caller_but_goes_before_ordinary_ones() {
    let mut g = group("g", Strategy::LongestIdle);
    // Even a boost configured into the emergency band stays ordinary.
    g.priority_boost = vec![(s(5), EMERGENCY_PRIORITY)];
    let mut h = H::new(config(vec![g], vec![agent("a", &[("g", 5)])]));
    h.login("a");
    h.enqueue(1, "g", 0);
    assert_eq!(h.offers(), vec![off(1, "a")]);
    h.answer(1, "a");
    // While a talks: an ordinary caller (boosted after 5 s), the agent's
    // consultation, an emergency at the bottom of the lane, a Level I
    // caller as the shipped flows queue them, another ordinary caller.
    h.at(s(1));
    h.enqueue(2, "g", 0);
    h.at(s(2));
    consult(&mut h, 3, "g").expect("queued");
    h.at(s(3));
    h.enqueue(4, "g", EMERGENCY_PRIORITY_MIN);
    h.at(s(4));
    h.enqueue(5, "g", EMERGENCY_PRIORITY);
    h.at(s(5));
    h.enqueue(6, "g", ORDINARY_PRIORITY_MAX);
    h.at(s(30));
    assert_eq!(h.order("g"), vec![5, 4, 3, 2, 6]);
    let snap = h.e.queue_snapshot("g").expect("group");
    assert_eq!(
        snap.iter().map(|q| q.priority).collect::<Vec<_>>(),
        vec![
            EMERGENCY_PRIORITY,
            EMERGENCY_PRIORITY_MIN,
            CONSULT_PRIORITY,
            ORDINARY_PRIORITY_MAX,
            ORDINARY_PRIORITY_MAX
        ],
        "the boost lifted call 2 to the top of the ordinary band only"
    );
    // The agent is served in that order.
    let mut call = 1;
    for next in [5, 4, 3, 2, 6] {
        h.end(call);
        h.ok(Input::CompleteAcw { agent: "a".into() });
        assert_eq!(h.offers(), vec![off(next, "a")], "after {call}");
        h.answer(next, "a");
        call = next;
    }
}
