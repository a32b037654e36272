//! The errors of the IVR's schedule and holiday files, and the one check
//! both kinds of file make of their `name` (issue §2: every problem in every
//! file reported at once as `path:line: key: message`). Its own file so
//! [`super::calendar`] (schedules) and [`super::holidays`] (holiday
//! calendars) share them without importing each other.

use std::path::{Path, PathBuf};

use toml_edit::TableLike;

use super::tomlfile::{Problem, Reader};

/// A problem with a schedule or holiday file.
#[derive(Debug, thiserror::Error)]
pub enum CalendarError {
    /// A file or directory could not be read.
    #[error("{}: cannot read: {source}", .path.display())]
    Read {
        /// File or directory at fault.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// A syntax or semantic problem at a place in a file.
    #[error("{}{}: {}{message}", .path.display(), line_suffix(*.line), key_prefix(.key))]
    Invalid {
        /// File at fault.
        path: PathBuf,
        /// 1-based line, when known.
        line: Option<usize>,
        /// Dotted key (`weekly.mon[1]`); empty for TOML syntax errors.
        key: String,
        /// What is wrong.
        message: String,
    },
}

fn line_suffix(line: Option<usize>) -> String {
    line.map(|l| format!(":{l}")).unwrap_or_default()
}

fn key_prefix(key: &str) -> String {
    if key.is_empty() {
        String::new()
    } else {
        format!("{key}: ")
    }
}

impl CalendarError {
    /// A [`Problem`] found in the file at `path`.
    pub fn from_problem(path: &Path, p: Problem) -> CalendarError {
        CalendarError::Invalid {
            path: path.to_path_buf(),
            line: p.line,
            key: p.key,
            message: p.message,
        }
    }
}

/// The name of the file's object: its stem, checked against `name = "…"`.
pub(crate) fn file_name(r: &mut Reader<'_>, top: &dyn TableLike, path: &Path) -> Option<String> {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .map(str::to_string);
    let given = r.string(top, "", "name");
    match (stem, given) {
        (Some(stem), Some((given, span))) if given != stem => {
            r.problem(
                span,
                "name",
                format!(
                    "{given:?} differs from the file name; name it {stem:?} or rename the file"
                ),
            );
            None
        }
        (Some(stem), _) if !stem.is_empty() => Some(stem),
        _ => {
            r.problem(None, "name", "the file has no usable name (UTF-8 stem)");
            None
        }
    }
}
