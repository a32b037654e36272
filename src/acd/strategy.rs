//! Agent selection strategies per skill group (issue "Strategies per
//! group", REQUIREMENTS §3): longest idle, fewest calls today, skill-level
//! weighted, round-robin, ring-all. Pure functions over the group's idle
//! agents; the engine guarantees every agent passed here is idle.

use std::collections::BTreeSet;

use super::model::Strategy;
use crate::time::Time;

/// What a group knows about one idle member, looked up by the engine.
pub(crate) trait MemberInfo {
    fn level(&self, agent: usize) -> u8;
    fn calls_today(&self, agent: usize) -> u64;
    fn is_idle(&self, agent: usize) -> bool;
}

/// The agents to ring for the group's head call: one, or every idle member
/// for ring-all; empty when nobody is idle.
///
/// `idle` is the group's idle members ordered by idle-since (longest first),
/// `members` the configured order, `rr_next` the round-robin cursor.
pub(crate) fn select(
    strategy: Strategy,
    idle: &BTreeSet<(Time, usize)>,
    members: &[usize],
    rr_next: &mut usize,
    info: &impl MemberInfo,
) -> Vec<usize> {
    match strategy {
        Strategy::LongestIdle => idle.first().map(|(_, a)| *a).into_iter().collect(),
        Strategy::FewestCalls => idle
            .iter()
            .min_by_key(|(since, a)| (info.calls_today(*a), *since, *a))
            .map(|(_, a)| *a)
            .into_iter()
            .collect(),
        Strategy::SkillWeighted => idle
            .iter()
            .min_by_key(|(since, a)| (std::cmp::Reverse(info.level(*a)), *since, *a))
            .map(|(_, a)| *a)
            .into_iter()
            .collect(),
        Strategy::RoundRobin => {
            let n = members.len();
            for step in 0..n {
                let pos = (*rr_next + step) % n;
                let agent = members[pos];
                if info.is_idle(agent) {
                    *rr_next = (pos + 1) % n;
                    return vec![agent];
                }
            }
            Vec::new()
        }
        Strategy::RingAll => idle.iter().map(|(_, a)| *a).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Info {
        levels: Vec<u8>,
        calls: Vec<u64>,
        idle: Vec<bool>,
    }

    impl MemberInfo for Info {
        fn level(&self, agent: usize) -> u8 {
            self.levels[agent]
        }
        fn calls_today(&self, agent: usize) -> u64 {
            self.calls[agent]
        }
        fn is_idle(&self, agent: usize) -> bool {
            self.idle[agent]
        }
    }

    fn s(n: u64) -> Time {
        Time::from_unix_secs(n)
    }

    #[test]
    fn table() {
        // agent: 0 idle since 5, level 3, 4 calls; 1 idle since 2, level 7,
        // 9 calls; 2 busy; 3 idle since 8, level 7, 1 call.
        let info = Info {
            levels: vec![3, 7, 5, 7],
            calls: vec![4, 9, 0, 1],
            idle: vec![true, true, false, true],
        };
        let idle: BTreeSet<_> = [(s(5), 0), (s(2), 1), (s(8), 3)].into_iter().collect();
        let members = [0, 1, 2, 3];
        let cases: [(Strategy, usize, Vec<usize>, usize); 6] = [
            (Strategy::LongestIdle, 0, vec![1], 0),
            (Strategy::FewestCalls, 0, vec![3], 0),
            (Strategy::SkillWeighted, 0, vec![1], 0),
            (Strategy::RoundRobin, 2, vec![3], 0),
            (Strategy::RoundRobin, 0, vec![0], 1),
            (Strategy::RingAll, 0, vec![1, 0, 3], 0),
        ];
        for (strategy, cursor, want, want_cursor) in cases {
            let mut rr = cursor;
            let got = select(strategy, &idle, &members, &mut rr, &info);
            assert_eq!(got, want, "{strategy:?}");
            if strategy == Strategy::RoundRobin {
                assert_eq!(rr, want_cursor);
            }
        }
        let none = BTreeSet::new();
        let mut rr = 0;
        let info_none = Info {
            levels: vec![1; 4],
            calls: vec![0; 4],
            idle: vec![false; 4],
        };
        for strategy in [
            Strategy::LongestIdle,
            Strategy::FewestCalls,
            Strategy::SkillWeighted,
            Strategy::RoundRobin,
            Strategy::RingAll,
        ] {
            assert!(select(strategy, &none, &members, &mut rr, &info_none).is_empty());
        }
    }
}
