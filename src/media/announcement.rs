//! The position announcement a queued caller hears (REQUIREMENTS §3 queue
//! media; issue 12 item 6): their place and the wait the ACD estimates,
//! spoken in Mandarin from short prompts that follow each other:
//!
//! - `queue_next` (您是下一位来电者) at the head of the queue, otherwise
//!   `queue_ahead` (您前面还有) + the number of callers ahead +
//!   `queue_ahead_unit` (位来电者);
//! - then `queue_wait` (预计等待) + minutes, rounded up, + `queue_minutes`
//!   (分钟), or `queue_wait_short` (预计等待不到一分钟) under a minute; no
//!   wait when the ACD has no estimate (nobody of the group signed in).
//!
//! Numbers are read as people say them (现代汉语 cardinal numbers): 十五
//! (not 一十五) at the start, 一百一十, 一百零五, 一千零一, 一万零五十;
//! a lone 2 is 两 (两位, 两分钟), and 2 before 百/千/万 too (两百, 两千).
//! The pieces are `num_0`…`num_9`, `num_liang`, `num_10` (十), `num_100`
//! (百), `num_1000` (千), `num_10000` (万). Pure: names in, names out.

use std::time::Duration;

/// The largest number read out (九千九百九十九万九千九百九十九); larger
/// figures are read as this.
pub const MAX_SPOKEN: u64 = 99_999_999;

const DIGITS: [&str; 10] = [
    "num_0", "num_1", "num_2", "num_3", "num_4", "num_5", "num_6", "num_7", "num_8", "num_9",
];

/// Every prompt [`announcement`] can name (the group's sounds must have
/// them all).
pub const PROMPTS: [&str; 21] = [
    "queue_next",
    "queue_ahead",
    "queue_ahead_unit",
    "queue_wait",
    "queue_minutes",
    "queue_wait_short",
    "num_0",
    "num_1",
    "num_2",
    "num_3",
    "num_4",
    "num_5",
    "num_6",
    "num_7",
    "num_8",
    "num_9",
    "num_liang",
    "num_10",
    "num_100",
    "num_1000",
    "num_10000",
];

/// The prompts of the announcement for a caller at 1-based `position`
/// (0 is read as the head) with the ACD's `estimated_wait`.
pub fn announcement(position: usize, estimated_wait: Option<Duration>) -> Vec<&'static str> {
    let ahead = u64::try_from(position.saturating_sub(1)).unwrap_or(MAX_SPOKEN);
    let mut out = Vec::new();
    if ahead == 0 {
        out.push("queue_next");
    } else {
        out.push("queue_ahead");
        out.extend(number(ahead));
        out.push("queue_ahead_unit");
    }
    match estimated_wait {
        None => {}
        Some(w) if w < Duration::from_secs(60) => out.push("queue_wait_short"),
        Some(w) => {
            out.push("queue_wait");
            out.extend(number(w.as_secs().div_ceil(60)));
            out.push("queue_minutes");
        }
    }
    out
}

/// `n` read as a Mandarin cardinal number (above [`MAX_SPOKEN`]: that).
pub fn number(n: u64) -> Vec<&'static str> {
    let n = n.min(MAX_SPOKEN);
    match n {
        0 => vec!["num_0"],
        2 => vec!["num_liang"],
        _ => {
            let (high, low) = (n / 10_000, n % 10_000);
            let mut out = Vec::new();
            if high > 0 {
                section(high, true, &mut out);
                out.push("num_10000");
                if low > 0 && low < 1000 {
                    out.push("num_0");
                }
            }
            if low > 0 {
                section(low, high == 0, &mut out);
            }
            out
        }
    }
}

/// 1..=9999 read out; `leading`: at the very start of the number (where
/// 十 stands alone for 10–19).
fn section(n: u64, leading: bool, out: &mut Vec<&'static str>) {
    const UNITS: [&str; 4] = ["", "num_10", "num_100", "num_1000"];
    let mut started = false;
    let mut zero = false;
    for place in (0..4u32).rev() {
        let d = (n / 10u64.pow(place) % 10) as usize;
        if d == 0 {
            zero = started;
            continue;
        }
        if zero {
            out.push("num_0");
            zero = false;
        }
        let bare_ten = place == 1 && d == 1 && leading && !started;
        if !bare_ten {
            out.push(if d == 2 && place >= 2 {
                "num_liang"
            } else {
                DIGITS[d]
            });
        }
        if place > 0 {
            out.push(UNITS[place as usize]);
        }
        started = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A number as text, from its prompts (for readable assertions).
    fn say(n: u64) -> String {
        number(n)
            .iter()
            .map(|p| match *p {
                "num_liang" => "两",
                "num_10" => "十",
                "num_100" => "百",
                "num_1000" => "千",
                "num_10000" => "万",
                d => ["零", "一", "二", "三", "四", "五", "六", "七", "八", "九"]
                    [DIGITS.iter().position(|x| x == &d).expect("a digit")],
            })
            .collect()
    }

    #[test]
    fn numbers_read_as_people_say_them() {
        let cases = [
            (0, "零"),
            (1, "一"),
            (2, "两"),
            (9, "九"),
            (10, "十"),
            (11, "十一"),
            (12, "十二"),
            (19, "十九"),
            (20, "二十"),
            (22, "二十二"),
            (99, "九十九"),
            (100, "一百"),
            (101, "一百零一"),
            (105, "一百零五"),
            (110, "一百一十"),
            (115, "一百一十五"),
            (120, "一百二十"),
            (200, "两百"),
            (999, "九百九十九"),
            (1000, "一千"),
            (1001, "一千零一"),
            (1010, "一千零一十"),
            (1100, "一千一百"),
            (2005, "两千零五"),
            (9999, "九千九百九十九"),
            (10_000, "一万"),
            (10_050, "一万零五十"),
            (12_345, "一万两千三百四十五"),
            (100_000, "十万"),
            (100_010, "十万零一十"),
            (1_000_000, "一百万"),
            (MAX_SPOKEN, "九千九百九十九万九千九百九十九"),
            (u64::MAX, "九千九百九十九万九千九百九十九"),
        ];
        for (n, want) in cases {
            assert_eq!(say(n), want, "{n}");
        }
    }

    #[test]
    fn positions_and_waits() {
        let min = |m: u64| Some(Duration::from_secs(m * 60));
        assert_eq!(announcement(1, None), ["queue_next"]);
        assert_eq!(announcement(0, None), ["queue_next"], "read as the head");
        assert_eq!(
            announcement(2, Some(Duration::from_secs(59))),
            [
                "queue_ahead",
                "num_1",
                "queue_ahead_unit",
                "queue_wait_short"
            ]
        );
        assert_eq!(
            announcement(3, min(1)),
            [
                "queue_ahead",
                "num_liang",
                "queue_ahead_unit",
                "queue_wait",
                "num_1",
                "queue_minutes"
            ]
        );
        // 10 ahead, 61 s: rounded up to 2 minutes.
        assert_eq!(
            announcement(11, Some(Duration::from_secs(61))),
            [
                "queue_ahead",
                "num_10",
                "queue_ahead_unit",
                "queue_wait",
                "num_liang",
                "queue_minutes"
            ]
        );
        assert_eq!(
            announcement(12, None),
            ["queue_ahead", "num_10", "num_1", "queue_ahead_unit"]
        );
        assert_eq!(
            announcement(21, min(33)),
            [
                "queue_ahead",
                "num_2",
                "num_10",
                "queue_ahead_unit",
                "queue_wait",
                "num_3",
                "num_10",
                "num_3",
                "queue_minutes"
            ]
        );
        assert_eq!(
            announcement(100, None),
            [
                "queue_ahead",
                "num_9",
                "num_10",
                "num_9",
                "queue_ahead_unit"
            ]
        );
        assert_eq!(
            announcement(101, None),
            ["queue_ahead", "num_1", "num_100", "queue_ahead_unit"]
        );
        assert_eq!(
            announcement(106, min(120)),
            [
                "queue_ahead",
                "num_1",
                "num_100",
                "num_0",
                "num_5",
                "queue_ahead_unit",
                "queue_wait",
                "num_1",
                "num_100",
                "num_2",
                "num_10",
                "queue_minutes"
            ]
        );
    }

    #[test]
    fn every_prompt_named_is_listed_and_the_config_asks_for_it() {
        let mut named = std::collections::BTreeSet::new();
        for p in 0..3000 {
            named.extend(announcement(p, Some(Duration::from_secs(p as u64 * 7))));
        }
        named.extend(announcement(1, Some(Duration::from_secs(1))));
        named.extend(number(12_345_678));
        let listed: std::collections::BTreeSet<&str> = PROMPTS.into_iter().collect();
        assert_eq!(named, listed);
        for p in PROMPTS {
            assert!(
                crate::config::acd::QUEUE_PROMPTS.contains(&p),
                "{p} missing from QUEUE_PROMPTS"
            );
        }
    }

    #[test]
    fn the_shipped_sounds_have_every_queue_prompt() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sounds");
        let loaded =
            crate::media::prompts::PromptLibrary::load(&dir, crate::config::acd::QUEUE_PROMPTS);
        assert!(loaded.is_ok(), "{:?}", loaded.err());
    }
}
