//! Readable flow diffs (issue 18 §4: "`hotline flow diff`"): two versions
//! of a flow file as a unified line diff, the way reviewers read patches.

/// A unified diff (3 lines of context) from `old` to `new`, headed
/// `--- old_label` / `+++ new_label`; empty when the texts are equal.
pub fn unified(old_label: &str, old: &str, new_label: &str, new: &str) -> String {
    if old == new {
        return String::new();
    }
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(old_label, new_label)
        .missing_newline_hint(false)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_option_is_one_hunk_with_context() {
        let old = "a\nb\nc\n\"2\" = \"general\"\nd\ne\n";
        let new = "a\nb\nc\n\"2\" = \"water\"\nd\ne\n";
        let d = unified("main@aaa", old, "main@bbb", new);
        assert_eq!(
            d,
            "--- main@aaa\n+++ main@bbb\n@@ -1,6 +1,6 @@\n a\n b\n c\n-\"2\" = \"general\"\n+\"2\" = \"water\"\n d\n e\n"
        );
    }

    #[test]
    fn equal_texts_have_no_diff() {
        assert_eq!(unified("a", "x\n", "b", "x\n"), "");
    }
}
