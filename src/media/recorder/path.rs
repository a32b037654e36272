//! Where a recording is stored: `root/<tenant>/<yyyy>/<mm>/<dd>/<call_id>.wav`
//! (`.opus` for Ogg Opus, [`recording_path_as`]) with every component
//! sanitised (call recording issue: "path by tenant/date/call id").

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::format::RecordingFormat;

/// Longest sanitised component, in bytes (file systems allow 255; room is
/// left for the hash suffix and `.wav.part`).
pub(super) const MAX_COMPONENT_BYTES: usize = 160;

/// `root/<tenant>/<yyyy>/<mm>/<dd>/<call_id>.wav`.
///
/// `tenant` and `call_id` are sanitised so each stays one harmless path
/// component: path separators, control characters, Unicode bidi/zero-width
/// format characters and the characters Windows forbids become `_`, leading
/// dots become `_` (no `.`/`..`, no hidden files), an empty name becomes
/// `_`, and long names are cut at a character boundary. Non-ASCII text (a
/// Chinese tenant name) is kept. When anything was changed, `-` and 8 hex
/// digits of the original's SHA-256 are appended, so two distinct ids never
/// share a file. The date comes from the shell's clock and is formatted as
/// given.
pub fn recording_path(root: &Path, tenant: &str, date: (i32, u8, u8), call_id: &str) -> PathBuf {
    recording_path_as(root, tenant, date, call_id, RecordingFormat::Pcm16)
}

/// [`recording_path`] with the extension of `format`
/// ([`RecordingFormat::extension`]: `.wav` or `.opus`).
pub fn recording_path_as(
    root: &Path,
    tenant: &str,
    date: (i32, u8, u8),
    call_id: &str,
    format: RecordingFormat,
) -> PathBuf {
    let (year, month, day) = date;
    let mut p = root.to_path_buf();
    p.push(sanitize_component(tenant));
    p.push(format!("{year:04}"));
    p.push(format!("{month:02}"));
    p.push(format!("{day:02}"));
    p.push(format!(
        "{}.{}",
        sanitize_component(call_id),
        format.extension()
    ));
    p
}

pub(super) fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{FEFF}'
        )
}

fn sanitize_component(raw: &str) -> String {
    let mut out: String = raw
        .chars()
        .map(|c| if is_unsafe_char(c) { '_' } else { c })
        .collect();
    let dots = out.len() - out.trim_start_matches('.').len();
    if dots > 0 {
        out.replace_range(..dots, &"_".repeat(dots));
    }
    if out.len() > MAX_COMPONENT_BYTES {
        let mut cut = MAX_COMPONENT_BYTES;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    if out.is_empty() {
        out.push('_');
    }
    if out != raw {
        let digest = Sha256::digest(raw.as_bytes());
        out.push('-');
        out.push_str(&hex::encode(&digest[..4]));
    }
    out
}
