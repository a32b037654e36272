//! Masking confidential callers' numbers in exports (REQUIREMENTS.md §6:
//! "Confidential callers (保密) have their numbers masked in exports").

/// `number` with its middle replaced by `*`, one per character hidden:
/// 8 characters or more keep the first 3 and last 4 (`13812348000` →
/// `138****8000`, `057188001234` → `057*****1234`); 5–7 keep the first and
/// last 2; shorter ones are masked whole. Works on characters, not bytes.
pub fn mask_caller(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    let n = chars.len();
    let (head, tail) = match n {
        8.. => (3, 4),
        5..=7 => (2, 2),
        _ => (0, 0),
    };
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| if i < head || i >= n - tail { *c } else { '*' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::mask_caller;

    #[test]
    fn masks_like_the_buyers_show_it() {
        assert_eq!(mask_caller("13812348000"), "138****8000");
        assert_eq!(mask_caller("057188001234"), "057*****1234");
        assert_eq!(mask_caller("+8613812348000"), "+86*******8000");
        assert_eq!(mask_caller("12345"), "12*45");
        assert_eq!(mask_caller("1234567"), "12***67");
        assert_eq!(mask_caller("110"), "***");
        assert_eq!(mask_caller(""), "");
        assert_eq!(mask_caller("匿名号码来电人"), "匿名***电人");
    }

    proptest::proptest! {
        #[test]
        fn keeps_length_and_hides_the_middle(s in "\\PC{0,30}") {
            let m = mask_caller(&s);
            proptest::prop_assert_eq!(m.chars().count(), s.chars().count());
            if s.chars().count() >= 5 {
                proptest::prop_assert!(m.contains('*'));
            }
        }
    }
}
