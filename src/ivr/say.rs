//! Figures read aloud in Mandarin from recorded pieces (issue 18 §2, IVR
//! lookups: the `say` node reads back a ticket number, a count, a date or
//! an amount). Pure: a value and how to read it in, prompt names out
//! (`None` when the value cannot be read that way).
//!
//! How each form is read (the conventions of 现代汉语 as callers expect
//! them from a service line):
//!
//! - `digits` (逐位): every digit on its own, `一` for 1 (not the
//!   telephone `幺`), `零` for 0: `2026-000123` → 二零二六零零零一二三.
//!   Separators `-`, `/`, `.` and spaces are skipped; any other character
//!   makes the value unreadable.
//! - `number` (cardinal): 十五 (not 一十五) at the very start,
//!   一百一十, 一百零五, 一千零一, 一万零一十, 一亿零一万; 两 for a 2
//!   that leads its group before 百/千/万/亿 (两百, 两千, 一万两千, 两万,
//!   两亿), 二 everywhere else (十二, 二十, 一千二百); 2 alone is 二.
//!   Up to 9999亿9999万9999; a minus sign is 负, decimals are read digit
//!   by digit after 点 (3.14 → 三点一四). Thousands separators (`,`) are
//!   allowed.
//! - `date`: `YYYY-MM-DD` (also `/`, `.` or no separator): the year digit
//!   by digit, month and day as numbers: 2026-02-08 → 二零二六年二月八日.
//!   Dates that do not exist are unreadable.
//! - `amount` (元角分): at most two decimals; 两 for a 2 alone before a
//!   unit (两元, 两角, 两分); zero jiao between yuan and fen is 零:
//!   1203.45 → 一千二百零三元四角五分, 12.05 → 十二元零五分,
//!   0.5 → 五角, 0 → 零元; a minus sign is 负.

/// How a `say` node reads its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SayAs {
    /// Digit by digit.
    Digits,
    /// A cardinal number.
    Number,
    /// A calendar date.
    Date,
    /// Money in 元, 角, 分.
    Amount,
}

impl SayAs {
    /// The names the flow file uses, in documentation order.
    pub const NAMES: [&'static str; 4] = ["digits", "number", "date", "amount"];

    /// From the flow file's `as` value.
    pub fn from_name(name: &str) -> Option<SayAs> {
        match name {
            "digits" => Some(SayAs::Digits),
            "number" => Some(SayAs::Number),
            "date" => Some(SayAs::Date),
            "amount" => Some(SayAs::Amount),
            _ => None,
        }
    }

    /// The flow file's name of it.
    pub fn name(self) -> &'static str {
        match self {
            SayAs::Digits => "digits",
            SayAs::Number => "number",
            SayAs::Date => "date",
            SayAs::Amount => "amount",
        }
    }

    /// Every prompt this form can name (validation checks they exist).
    pub fn prompts(self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = DIGITS.to_vec();
        match self {
            SayAs::Digits => {}
            SayAs::Number => out.extend([LIANG, TEN, HUNDRED, THOUSAND, WAN, YI, POINT, MINUS]),
            SayAs::Date => out.extend([TEN, YEAR, MONTH, DAY]),
            SayAs::Amount => {
                out.extend([
                    LIANG, TEN, HUNDRED, THOUSAND, WAN, YI, MINUS, YUAN, JIAO, FEN,
                ]);
            }
        }
        out
    }
}

const DIGITS: [&str; 10] = [
    "num_0", "num_1", "num_2", "num_3", "num_4", "num_5", "num_6", "num_7", "num_8", "num_9",
];
const LIANG: &str = "num_liang";
const TEN: &str = "num_10";
const HUNDRED: &str = "num_100";
const THOUSAND: &str = "num_1000";
const WAN: &str = "num_10000";
const YI: &str = "num_100000000";
const POINT: &str = "num_point";
const MINUS: &str = "num_minus";
const YUAN: &str = "num_yuan";
const JIAO: &str = "num_jiao";
const FEN: &str = "num_fen";
const YEAR: &str = "num_year";
const MONTH: &str = "num_month";
const DAY: &str = "num_day";

/// The largest whole number read (9999亿9999万9999).
pub const MAX_NUMBER: u64 = 999_999_999_999;
/// The longest value read digit by digit.
pub const MAX_DIGITS: usize = 64;

/// `value` read `how`, as prompt names; `None` when it cannot be.
pub fn speak(value: &str, how: SayAs) -> Option<Vec<&'static str>> {
    let value = value.trim();
    match how {
        SayAs::Digits => digits(value),
        SayAs::Number => number(value),
        SayAs::Date => date(value),
        SayAs::Amount => amount(value),
    }
}

fn digit(c: char) -> Option<&'static str> {
    c.to_digit(10).and_then(|d| DIGITS.get(d as usize).copied())
}

fn digits(value: &str) -> Option<Vec<&'static str>> {
    let mut out = Vec::new();
    for c in value.chars() {
        match c {
            '-' | '/' | '.' | ' ' => {}
            c => out.push(digit(c)?),
        }
    }
    (!out.is_empty() && out.len() <= MAX_DIGITS).then_some(out)
}

/// Splits an optional minus sign off.
fn sign(value: &str) -> (bool, &str) {
    match value.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, value),
    }
}

/// The whole part: digits with optional `,` separators, at most
/// [`MAX_NUMBER`].
fn whole(text: &str) -> Option<u64> {
    let plain: String = text.chars().filter(|c| *c != ',').collect();
    if plain.is_empty() || !plain.bytes().all(|b| b.is_ascii_digit()) || text.starts_with(',') {
        return None;
    }
    let trimmed = plain.trim_start_matches('0');
    if trimmed.len() > 12 {
        return None;
    }
    let n = if trimmed.is_empty() {
        0
    } else {
        trimmed.parse().ok()?
    };
    (n <= MAX_NUMBER).then_some(n)
}

fn number(value: &str) -> Option<Vec<&'static str>> {
    let (negative, rest) = sign(value);
    let (int, frac) = match rest.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (rest, None),
    };
    let n = whole(int)?;
    let mut out = Vec::new();
    if negative {
        out.push(MINUS);
    }
    if n == 2 {
        out.push(DIGITS[2]);
    } else {
        cardinal(n, &mut out);
    }
    if let Some(frac) = frac {
        if frac.is_empty() || frac.len() > MAX_DIGITS {
            return None;
        }
        out.push(POINT);
        for c in frac.chars() {
            out.push(digit(c)?);
        }
    }
    Some(out)
}

/// `n` (at most [`MAX_NUMBER`]) as a cardinal number; 2 alone is 两.
fn cardinal(n: u64, out: &mut Vec<&'static str>) {
    if n == 0 {
        out.push(DIGITS[0]);
        return;
    }
    let groups = [
        (n / 100_000_000, Some(YI)),
        (n / 10_000 % 10_000, Some(WAN)),
        (n % 10_000, None),
    ];
    let mut started = false;
    let mut gap = false;
    for (group, unit) in groups {
        if group == 0 {
            gap |= started;
            continue;
        }
        if started && (gap || group < 1000) {
            out.push(DIGITS[0]);
        }
        gap = false;
        if group == 2 && (unit.is_some() || !started) {
            out.push(LIANG);
        } else {
            four(group, !started, out);
        }
        if let Some(unit) = unit {
            out.push(unit);
        }
        started = true;
    }
}

/// 1..=9999 read out; `leading`: at the very start of the number (where
/// 十 stands alone for 10–19).
fn four(n: u64, leading: bool, out: &mut Vec<&'static str>) {
    const UNITS: [&str; 4] = ["", TEN, HUNDRED, THOUSAND];
    let mut started = false;
    let mut zero = false;
    for place in (0..4u32).rev() {
        let d = (n / 10u64.pow(place) % 10) as usize;
        if d == 0 {
            zero = started;
            continue;
        }
        if zero {
            out.push(DIGITS[0]);
            zero = false;
        }
        let bare_ten = place == 1 && d == 1 && leading && !started;
        if !bare_ten {
            out.push(if d == 2 && place >= 2 && !started {
                LIANG
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

fn date(value: &str) -> Option<Vec<&'static str>> {
    let parts: Vec<&str> = value.split(['-', '/', '.']).collect();
    let (y, m, d) = match parts.as_slice() {
        [y, m, d] => (*y, *m, *d),
        [all] if all.len() == 8 && all.is_ascii() => (&all[..4], &all[4..6], &all[6..]),
        _ => return None,
    };
    let numeric = |s: &str, max_len: usize| {
        (!s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u32>().ok())
            .flatten()
    };
    if y.len() != 4 {
        return None;
    }
    let year = numeric(y, 4)?;
    let month = numeric(m, 2)?;
    let day = numeric(d, 2)?;
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day == 0 || day > days {
        return None;
    }
    let mut out = digits(y)?;
    out.push(YEAR);
    small(month, &mut out);
    out.push(MONTH);
    small(day, &mut out);
    out.push(DAY);
    Some(out)
}

/// 1..=99 as in dates: 八, 十二, 二十一 (二, never 两).
fn small(n: u32, out: &mut Vec<&'static str>) {
    let (tens, ones) = ((n / 10) as usize, (n % 10) as usize);
    if tens > 1 {
        out.push(DIGITS[tens]);
    }
    if tens > 0 {
        out.push(TEN);
    }
    if ones > 0 || tens == 0 {
        out.push(DIGITS[ones]);
    }
}

fn amount(value: &str) -> Option<Vec<&'static str>> {
    let (negative, rest) = sign(value);
    let (int, frac) = match rest.split_once('.') {
        Some((i, f)) if !f.is_empty() && f.len() <= 2 => (i, f),
        Some(_) => return None,
        None => (rest, ""),
    };
    let yuan = whole(int)?;
    let mut cents = frac.chars().map(|c| c.to_digit(10));
    let jiao = cents.next().unwrap_or(Some(0))? as usize;
    let fen = cents.next().unwrap_or(Some(0))? as usize;
    let mut out = Vec::new();
    if negative {
        out.push(MINUS);
    }
    let one = |d: usize| if d == 2 { LIANG } else { DIGITS[d] };
    if yuan > 0 || (jiao == 0 && fen == 0) {
        cardinal(yuan, &mut out);
        out.push(YUAN);
    }
    if jiao > 0 {
        out.push(one(jiao));
        out.push(JIAO);
    }
    if fen > 0 {
        if jiao == 0 && yuan > 0 {
            out.push(DIGITS[0]);
        }
        out.push(one(fen));
        out.push(FEN);
    }
    Some(out)
}

#[cfg(test)]
#[path = "say_tests.rs"]
mod tests;
