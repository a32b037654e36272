//! Caller-number normalisation, shared by the `area` node (caller's number →
//! administrative area) and the `blacklist` node, so that a number written
//! `+86 139-0571-0000`, `008613905710000`, `8613905710000`, `013905710000` or
//! `13905710000` is one key everywhere.
//!
//! Rules, in order (the SIP user part is extracted by the caller):
//! 1. separators are dropped: whitespace, `-`, `.`, `(`, `)`;
//! 2. `+86…` and `0086…` (international form of a Chinese number): a mobile
//!    number (`1[3-9]…`) is kept as is; anything else is a fixed-line number
//!    whose trunk prefix `0` international dialling drops, so it is put back
//!    (`+86 571 8888 1234` → `057188881234`, `+86 10 …` → `010…`) unless
//!    already there;
//! 3. other `+CC…` becomes `00CC…` (as dialled from China);
//! 4. `86` followed by an 11-digit mobile number (13 digits in all) loses the
//!    `86` (some carriers present mobiles that way);
//! 5. `0` followed by an 11-digit mobile number (12 digits in all) loses the
//!    `0` (the long-distance prefix some trunks add to out-of-area mobiles;
//!    no fixed-line number has that shape, area codes never start `1[3-9]`);
//! 6. anything else (`anonymous`, short codes like `12345`) is returned after
//!    step 1 unchanged.
//!
//! The function is total and cheap; it never fails.

/// Whether `s` is an 11-digit mainland mobile number `1[3-9]xxxxxxxxx`.
pub fn is_mobile(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 11 && b[0] == b'1' && (b'3'..=b'9').contains(&b[1]) && all_digits(s)
}

/// Whether `s` is non-empty and all ASCII digits.
pub fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit())
}

/// The canonical form of a caller number (module docs). Idempotent: rules
/// 2–5 are applied until none changes the number (`+860086…` is odd, but
/// still one key).
pub fn normalise_number(raw: &str) -> String {
    let mut s: String = raw
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '-' | '.' | '(' | ')'))
        .collect();
    // Every change removes a `+` or shortens the number: this terminates.
    loop {
        let next = step(&s);
        if next == s {
            return s;
        }
        s = next;
    }
}

/// One application of rules 2–5.
fn step(s: &str) -> String {
    if let Some(rest) = s.strip_prefix("+86").or_else(|| s.strip_prefix("0086")) {
        return national(rest);
    }
    if let Some(rest) = s.strip_prefix('+') {
        return format!("00{rest}");
    }
    if let Some(rest) = s.strip_prefix("86").filter(|r| is_mobile(r)) {
        return rest.to_string();
    }
    if let Some(rest) = s.strip_prefix('0').filter(|r| is_mobile(r)) {
        return rest.to_string();
    }
    s.to_string()
}

/// A Chinese number as it follows `+86`: the national form.
fn national(rest: &str) -> String {
    let b = rest.as_bytes();
    let mobile = b.len() >= 2 && b[0] == b'1' && (b'3'..=b'9').contains(&b[1]);
    if mobile || rest.is_empty() || rest.starts_with('0') {
        rest.to_string()
    } else {
        format!("0{rest}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn forms_of_one_mobile() {
        for raw in [
            "13905710000",
            "+86 139-0571-0000",
            "+8613905710000",
            "008613905710000",
            "8613905710000",
            "013905710000",
            " 139 0571 0000 ",
            "(139) 0571.0000",
        ] {
            assert_eq!(normalise_number(raw), "13905710000", "{raw:?}");
        }
    }

    #[test]
    fn fixed_lines_and_others() {
        assert_eq!(normalise_number("0571-8888 1234"), "057188881234");
        assert_eq!(normalise_number("+86 571 8888 1234"), "057188881234");
        assert_eq!(normalise_number("+86 (0)571 8888 1234"), "057188881234");
        assert_eq!(normalise_number("+86 10 6512 3456"), "01065123456");
        assert_eq!(normalise_number("0086 21 1234 5678"), "02112345678");
        assert_eq!(normalise_number("+1 202 555 0100"), "0012025550100");
        assert_eq!(normalise_number("12345"), "12345");
        assert_eq!(normalise_number("95555"), "95555");
        assert_eq!(normalise_number("anonymous"), "anonymous");
        assert_eq!(normalise_number(""), "");
        assert_eq!(normalise_number("+86"), "");
        // 86 or 0 before something that is not a mobile is left alone.
        assert_eq!(normalise_number("861234"), "861234");
        assert_eq!(normalise_number("8601065123456"), "8601065123456");
        assert_eq!(normalise_number("01065123456"), "01065123456");
        assert_eq!(normalise_number("012905710000"), "012905710000");
        assert_eq!(normalise_number("+86 0086 139 0571 0000"), "13905710000");
    }

    #[test]
    fn mobile_shape() {
        assert!(is_mobile("13905710000"));
        assert!(is_mobile("19912345678"));
        assert!(!is_mobile("12905710000"));
        assert!(!is_mobile("1390571000"));
        assert!(!is_mobile("1390571000x"));
        assert!(!all_digits(""));
    }

    proptest! {
        #[test]
        fn idempotent(raw in "[+0-9 ()./a-z-]{0,20}") {
            let once = normalise_number(&raw);
            prop_assert_eq!(normalise_number(&once), once.clone());
        }

        #[test]
        fn never_panics(raw in "\\PC{0,24}") {
            let _ = normalise_number(&raw);
        }
    }
}
