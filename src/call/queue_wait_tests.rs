//! Scenario tests of a queued caller's wait: the ACD's news, the caller's
//! keys and hang-up, agents' answers and shutdown through [`QueueWait`],
//! reading back exactly what the shell would do. No sockets, no sleeps.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::acd::{NextStep, TimeoutReason};
use crate::call::seeded::Rng;

const CALL: CallId = CallId(7);

/// Every prompt is loaded but those named in `missing`.
struct Loaded(&'static [&'static str]);

impl Prompts for Loaded {
    fn has(&self, name: &str) -> bool {
        !self.0.contains(&name)
    }
}

struct Wait(QueueWait);

impl Wait {
    fn new(back_to_flow: bool, media: Option<Option<char>>, answered: bool) -> (Self, Vec<Output>) {
        Wait::with_prompts(back_to_flow, media, answered, &[])
    }

    fn with_prompts(
        back_to_flow: bool,
        media: Option<Option<char>>,
        answered: bool,
        missing: &'static [&'static str],
    ) -> (Self, Vec<Output>) {
        let mut w = Wait(QueueWait::new(
            CALL,
            back_to_flow,
            media,
            answered,
            Arc::new(Loaded(missing)),
        ));
        let out = w.outputs();
        (w, out)
    }

    /// Queue media with callback key `9`, the caller answered for it.
    fn listening() -> Self {
        let (mut w, out) = Wait::new(false, Some(Some('9')), false);
        assert_eq!(out, [Output::Answer]);
        let out = w.input(Input::Answered(true));
        assert_eq!(
            out,
            [
                Output::StartPlayer,
                Output::Say {
                    prompts: vec!["queue_welcome".into(), "queue_callback_offer".into()],
                    interruptible: true
                }
            ]
        );
        w
    }

    fn outputs(&mut self) -> Vec<Output> {
        std::iter::from_fn(|| self.0.poll_output()).collect()
    }

    fn input(&mut self, input: Input) -> Vec<Output> {
        self.0.handle_input(input);
        self.outputs()
    }

    fn news(&mut self, news: QueueNews) -> Vec<Output> {
        self.input(Input::News(news))
    }

    fn finished(&mut self, name: &str) -> Vec<Output> {
        self.input(Input::Player(PlayerEvent::Finished(name.into())))
    }

    fn waited(&self) -> Option<&Waited> {
        self.0.waited()
    }
}

fn offer(agent: &str) -> QueueNews {
    QueueNews::Offer {
        agent: agent.into(),
        device: format!("phone-{agent}"),
    }
}

fn timeout(next: NextStep, reason: TimeoutReason) -> QueueNews {
    QueueNews::Timeout { next, reason }
}

#[test]
fn without_queue_media_the_caller_hears_ringing() {
    let (w, out) = Wait::new(false, None, false);
    assert_eq!(out, [Output::Progress]);
    assert_eq!(w.waited(), None);
}

#[test]
fn a_caller_who_cannot_be_answered_hears_ringing_instead_of_prompts() {
    let (mut w, _) = Wait::new(false, Some(None), false);
    assert_eq!(w.input(Input::Answered(false)), [Output::Progress]);
    // Nothing plays: announcements and keys have no player.
    let out = w.news(QueueNews::Announce {
        position: 2,
        estimated_wait: None,
    });
    assert!(out.is_empty(), "{out:#?}");
}

#[test]
fn a_caller_the_flow_answered_hears_the_welcome_at_once() {
    let (_, out) = Wait::new(true, Some(None), true);
    assert_eq!(
        out,
        [
            Output::StartPlayer,
            Output::Say {
                prompts: vec!["queue_welcome".into()],
                interruptible: false
            }
        ]
    );
}

#[test]
fn the_music_follows_the_welcome_and_announcements_interrupt_it() {
    let mut w = Wait::listening();
    assert!(
        w.finished("queue_welcome").is_empty(),
        "one prompt still plays"
    );
    assert_eq!(w.finished("queue_callback_offer"), [Output::Music]);
    assert!(w.finished("moh").is_empty(), "the music loops");
    let out = w.news(QueueNews::Announce {
        position: 1,
        estimated_wait: None,
    });
    match &out[..] {
        [Output::Say {
            prompts,
            interruptible: true,
        }] => {
            assert_eq!(prompts.first().map(String::as_str), Some("queue_next"));
            assert_eq!(
                prompts.last().map(String::as_str),
                Some("queue_callback_offer")
            );
        }
        other => panic!("{other:#?}"),
    }
}

#[test]
fn an_announcement_still_playing_is_not_cut_by_the_next() {
    let mut w = Wait::listening();
    w.finished("queue_welcome");
    w.finished("queue_callback_offer");
    let first = w.news(QueueNews::Announce {
        position: 3,
        estimated_wait: Some(Duration::from_secs(120)),
    });
    assert_eq!(first.len(), 1, "{first:#?}");
    let second = w.news(QueueNews::Announce {
        position: 2,
        estimated_wait: None,
    });
    assert!(second.is_empty(), "skipped: {second:#?}");
}

#[test]
fn missing_prompts_are_skipped_and_no_music_is_no_music() {
    let (mut w, out) = Wait::with_prompts(false, Some(None), true, &["queue_welcome", "moh"]);
    assert_eq!(out, [Output::StartPlayer], "nothing loaded to say or loop");
    assert!(w.finished("x").is_empty());
}

#[test]
fn offers_ring_the_agent_and_a_cancel_stops_them_on_the_record() {
    let mut w = Wait::listening();
    assert_eq!(
        w.news(offer("A01")),
        [Output::Ring {
            agent: "A01".into(),
            device: "phone-A01".into()
        }]
    );
    assert_eq!(
        w.news(QueueNews::Cancel {
            agent: "A01".into()
        }),
        [
            Output::Record(Fact::OfferCancelled("A01".into())),
            Output::StopRinging(Some("A01".into()))
        ]
    );
    assert_eq!(
        w.input(Input::OfferEnded {
            agent: "A02".into()
        }),
        [Output::Record(Fact::OfferCancelled("A02".into()))]
    );
}

#[test]
fn an_agent_answering_cuts_the_prompt_and_tells_the_acd() {
    let mut w = Wait::listening();
    w.news(offer("A01"));
    let out = w.input(Input::AgentAnswered {
        agent: "A01".into(),
    });
    assert_eq!(
        out,
        [
            Output::Record(Fact::Answered("A01".into())),
            Output::Acd(acd::Input::OfferAnswered {
                call: CALL,
                agent: "A01".into()
            }),
            Output::EndPlay
        ]
    );
    assert_eq!(w.waited(), Some(&Waited::Connected("A01".into())));
    // Late news is not read.
    assert!(w.news(offer("A02")).is_empty());
}

#[test]
fn the_callback_key_books_a_callback_and_says_goodbye() {
    let mut w = Wait::listening();
    let out = w.input(Input::Player(PlayerEvent::Key('9')));
    assert_eq!(
        out,
        [
            Output::Acd(acd::Input::RequestCallback {
                call: CALL,
                number: None
            }),
            Output::Record(Fact::Callback),
            Output::StopRinging(None),
            Output::Farewell("queue_callback_confirmed")
        ]
    );
    assert_eq!(w.waited(), Some(&Waited::Ended(Outcome::CallbackRequested)));
}

#[test]
fn another_key_is_only_heard() {
    let mut w = Wait::listening();
    assert!(w.input(Input::Player(PlayerEvent::Key('1'))).is_empty());
    assert_eq!(w.waited(), None);
}

#[test]
fn an_info_key_reaches_the_player_which_reads_the_callback_key() {
    use crate::media::dtmf::DtmfKey;
    let key = DtmfKey::from_char('9').expect("key");
    let mut w = Wait::listening();
    assert_eq!(w.input(Input::InfoKey(key)), [Output::InfoKey(key)]);
    let (mut silent, _) = Wait::new(false, None, false);
    assert!(silent.input(Input::InfoKey(key)).is_empty(), "no player");
}

#[test]
fn the_caller_hanging_up_leaves_the_queue() {
    let mut w = Wait::listening();
    w.news(offer("A01"));
    let out = w.input(Input::CallerHungUp);
    assert_eq!(
        out,
        [
            Output::Acd(acd::Input::CallerHungUp { call: CALL }),
            Output::StopRinging(None),
            Output::EndPlay
        ]
    );
    assert_eq!(w.waited(), Some(&Waited::Ended(Outcome::CallerCancelled)));
}

#[test]
fn a_flows_queue_timing_out_goes_back_to_the_flow() {
    let (mut w, _) = Wait::new(true, Some(None), true);
    let out = w.news(timeout(NextStep::Hangup, TimeoutReason::QueueFull));
    assert_eq!(
        out,
        [
            Output::StopRinging(None),
            Output::EndPlay,
            Output::Record(Fact::TimedOut)
        ]
    );
    assert_eq!(
        w.waited(),
        Some(&Waited::Ended(Outcome::QueueEnded { full: true }))
    );
}

#[test]
fn a_listening_caller_timing_out_is_told_why_before_the_bye() {
    let mut w = Wait::listening();
    let out = w.news(timeout(NextStep::Hangup, TimeoutReason::MaxWait));
    assert_eq!(
        out,
        [
            Output::StopRinging(None),
            Output::Record(Fact::TimedOut),
            Output::Farewell("queue_sorry")
        ]
    );
    assert_eq!(w.waited(), Some(&Waited::Ended(Outcome::NotAnswered(480))));
    let mut w = Wait::listening();
    let out = w.news(timeout(NextStep::Callback, TimeoutReason::MaxWait));
    assert_eq!(out[1], Output::Record(Fact::Callback));
    assert_eq!(out[2], Output::Farewell("queue_callback_confirmed"));
    assert_eq!(w.waited(), Some(&Waited::Ended(Outcome::CallbackRequested)));
}

#[test]
fn a_caller_hearing_ringing_times_out_with_480() {
    let (mut w, _) = Wait::new(false, None, false);
    let out = w.news(timeout(NextStep::Callback, TimeoutReason::MaxWait));
    assert_eq!(
        out,
        [Output::StopRinging(None), Output::Record(Fact::Callback)]
    );
    assert_eq!(w.waited(), Some(&Waited::Ended(Outcome::NotAnswered(480))));
}

#[test]
fn the_acd_gone_ends_the_wait_with_480() {
    let (mut w, _) = Wait::new(false, None, false);
    assert_eq!(w.input(Input::AcdGone), [Output::StopRinging(None)]);
    assert_eq!(w.waited(), Some(&Waited::Ended(Outcome::NotAnswered(480))));
    let mut w = Wait::listening();
    assert_eq!(
        w.input(Input::AcdGone),
        [Output::StopRinging(None), Output::EndPlay]
    );
}

#[test]
fn shutdown_says_bye_to_an_answered_caller_and_503_to_a_ringing_one() {
    let mut w = Wait::listening();
    let out = w.input(Input::Shutdown);
    assert_eq!(
        out,
        [
            Output::StopRinging(None),
            Output::Acd(acd::Input::CallerHungUp { call: CALL }),
            Output::Record(Fact::Shutdown),
            Output::EndPlay,
            Output::Bye
        ]
    );
    let (mut w, _) = Wait::new(false, None, false);
    let out = w.input(Input::Shutdown);
    assert_eq!(out.last(), Some(&Output::Reject(503)));
    assert_eq!(w.waited(), Some(&Waited::Ended(Outcome::CallerCancelled)));
}

/// Thousands of seeded waits with random news, each checked against what
/// the shell may see: one answer asked, prompts only with a player, the
/// player given back once, the ACD told the caller left exactly when the
/// caller left (or shutdown), a farewell only for a listening caller,
/// nothing after the end, and every wait ending.
#[test]
fn random_news_never_breaks_the_shells_rules() {
    let mut ends = std::collections::BTreeSet::new();
    for seed in 1..=5_000u64 {
        let mut rng = Rng::seeded(seed);
        let media = match rng.below(3) {
            0 => None,
            1 => Some(None),
            _ => Some(Some('9')),
        };
        let answered = rng.below(2) == 0;
        let (mut w, out) = Wait::new(rng.below(2) == 0, media, answered);
        let mut playing = false;
        let mut answer_asked = false;
        let check = |out: &[Output], playing: &mut bool, answer_asked: &mut bool| {
            for o in out {
                match o {
                    Output::Answer => {
                        assert!(
                            !answered && !*answer_asked,
                            "seed {seed}: answer asked twice"
                        );
                        *answer_asked = true;
                    }
                    Output::StartPlayer => {
                        assert!(!*playing, "seed {seed}: two players");
                        *playing = true;
                    }
                    Output::Say { prompts, .. } => {
                        assert!(*playing && !prompts.is_empty(), "seed {seed}: {o:?}")
                    }
                    Output::Music | Output::InfoKey(_) => assert!(*playing, "seed {seed}: {o:?}"),
                    Output::EndPlay | Output::Farewell(_) => {
                        assert!(*playing, "seed {seed}: {o:?} with no player");
                        *playing = false;
                    }
                    _ => {}
                }
            }
        };
        check(&out, &mut playing, &mut answer_asked);
        let mut left_told = 0;
        for _ in 0..100 {
            if w.waited().is_some() {
                break;
            }
            let input = if answer_asked {
                answer_asked = false;
                Input::Answered(rng.below(4) != 0)
            } else {
                match rng.below(20) {
                    0..=2 => Input::News(offer("A01")),
                    3 | 4 => Input::News(QueueNews::Cancel {
                        agent: "A01".into(),
                    }),
                    5..=7 => Input::News(QueueNews::Announce {
                        position: 1 + rng.below(5) as usize,
                        estimated_wait: None,
                    }),
                    8..=11 => Input::Player(PlayerEvent::Finished(
                        ["queue_welcome", "moh", "queue_next"][rng.below(3) as usize].into(),
                    )),
                    12 | 13 => {
                        Input::Player(PlayerEvent::Key(['1', '9', '#'][rng.below(3) as usize]))
                    }
                    14 => Input::OfferEnded {
                        agent: "A01".into(),
                    },
                    15 => Input::News(timeout(
                        [NextStep::Hangup, NextStep::Callback][rng.below(2) as usize].clone(),
                        [TimeoutReason::MaxWait, TimeoutReason::QueueFull][rng.below(2) as usize],
                    )),
                    16 => Input::CallerHungUp,
                    17 => Input::AgentAnswered {
                        agent: "A01".into(),
                    },
                    18 => Input::AcdGone,
                    _ => Input::Shutdown,
                }
            };
            let out = w.input(input);
            left_told += out
                .iter()
                .filter(|o| matches!(o, Output::Acd(acd::Input::CallerHungUp { .. })))
                .count();
            check(&out, &mut playing, &mut answer_asked);
        }
        if w.waited().is_none() {
            let out = w.input(Input::CallerHungUp);
            left_told += 1;
            check(&out, &mut playing, &mut answer_asked);
        }
        let waited = w.waited().cloned().expect("every wait ends");
        assert!(!playing, "seed {seed}: a player left running: {waited:?}");
        let left = matches!(waited, Waited::Ended(Outcome::CallerCancelled));
        assert_eq!(left_told, usize::from(left), "seed {seed}: {waited:?}");
        assert!(
            w.input(Input::CallerHungUp).is_empty(),
            "seed {seed}: after the end"
        );
        ends.insert(format!("{waited:?}"));
    }
    assert!(ends.len() >= 6, "the runs ended every way: {ends:?}");
}
