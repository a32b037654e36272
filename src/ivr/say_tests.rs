//! The readings of `say`, checked as the text a listener hears.

use super::*;

/// The prompts as the characters they speak (for readable assertions).
fn text(prompts: &[&str]) -> String {
    prompts
        .iter()
        .map(|p| match *p {
            "num_liang" => "两",
            "num_10" => "十",
            "num_100" => "百",
            "num_1000" => "千",
            "num_10000" => "万",
            "num_100000000" => "亿",
            "num_point" => "点",
            "num_minus" => "负",
            "num_yuan" => "元",
            "num_jiao" => "角",
            "num_fen" => "分",
            "num_year" => "年",
            "num_month" => "月",
            "num_day" => "日",
            d => ["零", "一", "二", "三", "四", "五", "六", "七", "八", "九"]
                [DIGITS.iter().position(|x| x == &d).expect("a digit prompt")],
        })
        .collect()
}

fn say(value: &str, how: SayAs) -> String {
    let prompts = speak(value, how).unwrap_or_else(|| panic!("{value:?} as {how:?}"));
    for p in &prompts {
        assert!(how.prompts().contains(p), "{p} not listed for {how:?}");
    }
    text(&prompts)
}

#[test]
fn digits_one_by_one_skipping_separators() {
    assert_eq!(say("2026-000123", SayAs::Digits), "二零二六零零零一二三");
    assert_eq!(
        say(" 138 0571 0000 ", SayAs::Digits),
        "一三八零五七一零零零零"
    );
    assert_eq!(say("0", SayAs::Digits), "零");
    for bad in ["", "-", "12a4", "１２", "+86"] {
        assert_eq!(speak(bad, SayAs::Digits), None, "{bad:?}");
    }
    assert!(speak(&"9".repeat(MAX_DIGITS), SayAs::Digits).is_some());
    assert_eq!(speak(&"9".repeat(MAX_DIGITS + 1), SayAs::Digits), None);
}

#[test]
fn numbers_read_as_people_say_them() {
    let cases = [
        ("0", "零"),
        ("1", "一"),
        ("2", "二"),
        ("10", "十"),
        ("11", "十一"),
        ("12", "十二"),
        ("19", "十九"),
        ("20", "二十"),
        ("22", "二十二"),
        ("100", "一百"),
        ("101", "一百零一"),
        ("110", "一百一十"),
        ("115", "一百一十五"),
        ("200", "两百"),
        ("220", "两百二十"),
        ("1000", "一千"),
        ("1001", "一千零一"),
        ("1010", "一千零一十"),
        ("1200", "一千二百"),
        ("1203", "一千二百零三"),
        ("2000", "两千"),
        ("10000", "一万"),
        ("10010", "一万零一十"),
        ("10100", "一万零一百"),
        ("12000", "一万两千"),
        ("20000", "两万"),
        ("100000", "十万"),
        ("120000", "十二万"),
        ("1000000", "一百万"),
        ("2000000", "两百万"),
        ("10001000", "一千万一千"),
        ("100000000", "一亿"),
        ("100000001", "一亿零一"),
        ("100010000", "一亿零一万"),
        ("110000000", "一亿一千万"),
        ("200000000", "两亿"),
        ("1000000000", "十亿"),
        (
            "999999999999",
            "九千九百九十九亿九千九百九十九万九千九百九十九",
        ),
        ("007", "七"),
        ("1,234", "一千二百三十四"),
        ("-5", "负五"),
        ("3.14", "三点一四"),
        ("0.5", "零点五"),
        ("2.20", "二点二零"),
        ("-12.5", "负十二点五"),
    ];
    for (value, expected) in cases {
        assert_eq!(say(value, SayAs::Number), expected, "{value}");
    }
    for bad in [
        "",
        "1000000000000",
        "1.",
        ".5",
        "1.2.3",
        "1e3",
        "十",
        ",1",
        "--1",
        "1 000",
    ] {
        assert_eq!(speak(bad, SayAs::Number), None, "{bad:?}");
    }
}

#[test]
fn dates_read_year_digits_then_month_and_day() {
    assert_eq!(say("2026-12-08", SayAs::Date), "二零二六年十二月八日");
    assert_eq!(say("2026/02/21", SayAs::Date), "二零二六年二月二十一日");
    assert_eq!(say("20261110", SayAs::Date), "二零二六年十一月十日");
    assert_eq!(say("2000.1.30", SayAs::Date), "二零零零年一月三十日");
    assert_eq!(say("2024-02-29", SayAs::Date), "二零二四年二月二十九日");
    for bad in [
        "2026-02-29",
        "1900-02-29",
        "2026-13-01",
        "2026-00-10",
        "2026-04-31",
        "2026-1-0",
        "26-01-01",
        "2026-01",
        "2026010",
        "2026-0a-01",
        "2026年12",
        "2026年1月8日",
        "",
    ] {
        assert_eq!(speak(bad, SayAs::Date), None, "{bad:?}");
    }
}

#[test]
fn amounts_in_yuan_jiao_fen() {
    let cases = [
        ("1203.45", "一千二百零三元四角五分"),
        ("12.05", "十二元零五分"),
        ("12.30", "十二元三角"),
        ("12.3", "十二元三角"),
        ("100.00", "一百元"),
        ("0.5", "五角"),
        ("0.05", "五分"),
        ("0.25", "两角五分"),
        ("0.02", "两分"),
        ("0", "零元"),
        ("0.00", "零元"),
        ("2", "两元"),
        ("2.22", "两元两角两分"),
        ("20", "二十元"),
        ("10000.01", "一万元零一分"),
        ("-3.5", "负三元五角"),
        ("1,000,000", "一百万元"),
    ];
    for (value, expected) in cases {
        assert_eq!(say(value, SayAs::Amount), expected, "{value}");
    }
    for bad in ["", "1.234", "1.", "¥5", "5元", "1e2", "abc"] {
        assert_eq!(speak(bad, SayAs::Amount), None, "{bad:?}");
    }
}

#[test]
fn every_form_has_its_name() {
    for name in SayAs::NAMES {
        let how = SayAs::from_name(name).expect("known");
        assert_eq!(how.name(), name);
    }
    assert_eq!(SayAs::from_name("money"), None);
}

/// The value a reading of [`SayAs::Number`] stands for, as a listener
/// adds it up (digits, 十百千 within a group, 万 and 亿 closing groups).
fn value_of(prompts: &[&str]) -> u64 {
    let (mut yi, mut wan, mut group, mut digit) = (0u64, 0u64, 0u64, 0u64);
    for p in prompts {
        match *p {
            "num_liang" => digit = 2,
            "num_10" | "num_100" | "num_1000" => {
                let unit = match *p {
                    "num_10" => 10,
                    "num_100" => 100,
                    _ => 1000,
                };
                // 十 alone is 一十.
                group += if digit == 0 && unit == 10 { 1 } else { digit } * unit;
                digit = 0;
            }
            "num_10000" => {
                wan = group + digit;
                (group, digit) = (0, 0);
            }
            "num_100000000" => {
                yi = group + digit;
                (group, digit) = (0, 0);
            }
            d => digit = DIGITS.iter().position(|x| x == &d).expect("a digit") as u64,
        }
    }
    yi * 100_000_000 + wan * 10_000 + group + digit
}

proptest::proptest! {
    /// Every whole number reads back as itself, with 零 never first (but
    /// for 0), last or twice in a row, and 两 only before 百千万亿.
    #[test]
    fn every_number_reads_back_as_itself(n in 0u64..=MAX_NUMBER) {
        let prompts = speak(&n.to_string(), SayAs::Number).expect("readable");
        proptest::prop_assert_eq!(value_of(&prompts), n, "{}", text(&prompts));
        if n > 0 {
            proptest::prop_assert_ne!(prompts.first(), Some(&"num_0"));
            proptest::prop_assert_ne!(prompts.last(), Some(&"num_0"));
        }
        for pair in prompts.windows(2) {
            proptest::prop_assert!(pair != ["num_0", "num_0"], "{}", text(&prompts));
            if pair[0] == "num_liang" {
                proptest::prop_assert!(
                    ["num_100", "num_1000", "num_10000", "num_100000000"].contains(&pair[1]),
                    "{}",
                    text(&prompts)
                );
            }
        }
        proptest::prop_assert_ne!(prompts.last(), Some(&"num_liang"));
    }

    /// Whatever a web service answers, reading it never panics: a value
    /// is read or refused.
    #[test]
    fn any_text_is_read_or_refused(value in "[0-9０-９.,/ 年月日元-]{0,16}|.{0,16}") {
        for how in SayAs::NAMES.iter().filter_map(|n| SayAs::from_name(n)) {
            if let Some(prompts) = speak(&value, how) {
                proptest::prop_assert!(!prompts.is_empty());
            }
        }
    }

    /// Amounts read back as their 分.
    #[test]
    fn every_amount_reads_back_as_itself(fen in 0u64..=100_000_000_000) {
        let value = format!("{}.{:02}", fen / 100, fen % 100);
        let prompts = speak(&value, SayAs::Amount).expect("readable");
        let yuan_at = prompts.iter().position(|p| *p == "num_yuan");
        let yuan = yuan_at.map_or(0, |i| value_of(&prompts[..i]));
        let rest = &prompts[yuan_at.map_or(0, |i| i + 1)..];
        let mut cents = 0;
        let mut digit = 0;
        for p in rest {
            match *p {
                "num_jiao" => cents += digit * 10,
                "num_fen" => cents += digit,
                "num_liang" => digit = 2,
                d => digit = DIGITS.iter().position(|x| x == &d).expect("a digit") as u64,
            }
        }
        proptest::prop_assert_eq!(yuan * 100 + cents, fen, "{}: {}", value, text(&prompts));
    }
}
