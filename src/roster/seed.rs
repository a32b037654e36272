//! How `[[agent]]` / `[[group]]` entries of `hotline.toml` and the stored
//! roster merge, at start and on every config reload (CTI issue §6 "the
//! config file seeds them"). Pure: rows in, row changes out.
//!
//! The rule an admin can keep in their head: **the file manages what it
//! seeded until someone edits it through the API; from then on the API
//! owns it.** In detail, per entry (agents keyed by SIP user, groups by
//! id):
//! - in the file, not stored → stored (origin "config");
//! - stored from the file, the file's entry changed → updated from the file;
//! - stored from the file, gone from the file → removed;
//! - created, edited or deleted through the API → the file's entry is
//!   ignored (a note says so when the file's entry differs from what it was
//!   when the API took over), and a deletion stays a deletion: it is kept as
//!   a tombstone so the seed does not come back at the next start.
//!
//! The seed (the file entry's canonical JSON) is kept with each row to tell
//! "the file changed" from "the file still says what it said".

use std::collections::BTreeMap;

/// Which table of the roster a row belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `[[agent]]`, keyed by SIP user.
    Agent,
    /// `[[group]]`, keyed by id.
    Group,
}

impl Kind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Agent => "agent",
            Kind::Group => "group",
        }
    }

    /// The kind stored as `s`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "agent" => Some(Kind::Agent),
            "group" => Some(Kind::Group),
            _ => None,
        }
    }
}

/// Who owns a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Seeded from the config file, never touched through the API.
    Config,
    /// Created, edited or deleted through the API.
    Api,
}

impl Origin {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Config => "config",
            Origin::Api => "api",
        }
    }

    /// The origin stored as `s`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "config" => Some(Origin::Config),
            "api" => Some(Origin::Api),
            _ => None,
        }
    }
}

/// One stored row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub kind: Kind,
    /// SIP user (agents) or group id.
    pub key: String,
    /// The entry as JSON; `None` for a tombstone (deleted through the API).
    pub body: Option<String>,
    pub origin: Origin,
    /// The file entry this row last came from (canonical JSON), if any.
    pub seed: Option<String>,
}

/// One entry of the config file, as canonical JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    pub kind: Kind,
    pub key: String,
    pub body: String,
}

/// A change to the stored rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowChange {
    /// Insert or replace this row.
    Put(Row),
    /// Remove the row (kind, key) entirely.
    Remove(Kind, String),
}

/// The outcome of [`merge`]: the row changes to store, and one line per
/// entry worth telling the admin about.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Merge {
    pub changes: Vec<RowChange>,
    pub notes: Vec<String>,
}

/// Merge the file's entries into the stored rows (see the module docs).
pub fn merge(stored: &[Row], file: &[FileEntry]) -> Merge {
    let mut out = Merge::default();
    let rows: BTreeMap<(Kind, &str), &Row> = stored
        .iter()
        .map(|r| ((r.kind, r.key.as_str()), r))
        .collect();
    let mut in_file = std::collections::HashSet::new();
    for f in file {
        if !in_file.insert((f.kind, f.key.as_str())) {
            continue; // the config validation reports duplicates
        }
        let name = format!("{} {:?}", f.kind.as_str(), f.key);
        match rows.get(&(f.kind, f.key.as_str())) {
            None => {
                out.changes.push(RowChange::Put(Row {
                    kind: f.kind,
                    key: f.key.clone(),
                    body: Some(f.body.clone()),
                    origin: Origin::Config,
                    seed: Some(f.body.clone()),
                }));
                out.notes.push(format!("{name} added from the config file"));
            }
            Some(r) if r.origin == Origin::Config => {
                if r.seed.as_deref() != Some(f.body.as_str())
                    || r.body.as_deref() != Some(f.body.as_str())
                {
                    out.changes.push(RowChange::Put(Row {
                        body: Some(f.body.clone()),
                        seed: Some(f.body.clone()),
                        ..(*r).clone()
                    }));
                    out.notes
                        .push(format!("{name} updated from the config file"));
                }
            }
            Some(r) => {
                if r.seed.as_deref() != Some(f.body.as_str()) {
                    let what = if r.body.is_some() {
                        "edited"
                    } else {
                        "deleted"
                    };
                    out.notes.push(format!(
                        "{name} was {what} through the API; the config file's entry is ignored"
                    ));
                }
            }
        }
    }
    for r in stored {
        if r.origin == Origin::Config && !in_file.contains(&(r.kind, r.key.as_str())) {
            out.changes.push(RowChange::Remove(r.kind, r.key.clone()));
            out.notes.push(format!(
                "{} {:?} removed: no longer in the config file",
                r.kind.as_str(),
                r.key
            ));
        }
    }
    out
}

/// `stored` with `changes` applied, in (kind, key) order.
pub fn apply(stored: &[Row], changes: &[RowChange]) -> Vec<Row> {
    let mut rows: BTreeMap<(Kind, String), Row> = stored
        .iter()
        .map(|r| ((r.kind, r.key.clone()), r.clone()))
        .collect();
    for c in changes {
        match c {
            RowChange::Put(r) => {
                rows.insert((r.kind, r.key.clone()), r.clone());
            }
            RowChange::Remove(kind, key) => {
                rows.remove(&(*kind, key.clone()));
            }
        }
    }
    rows.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(key: &str, body: &str) -> FileEntry {
        FileEntry {
            kind: Kind::Agent,
            key: key.into(),
            body: body.into(),
        }
    }

    fn run(stored: &[Row], f: &[FileEntry]) -> (Vec<Row>, Vec<String>) {
        let m = merge(stored, f);
        (apply(stored, &m.changes), m.notes)
    }

    fn bodies(rows: &[Row]) -> Vec<(String, Option<String>)> {
        rows.iter()
            .map(|r| (r.key.clone(), r.body.clone()))
            .collect()
    }

    #[test]
    fn the_file_seeds_updates_and_removes_what_it_owns() {
        let (rows, notes) = run(&[], &[file("1001", "a"), file("1002", "b")]);
        assert_eq!(rows.len(), 2);
        assert_eq!(notes.len(), 2);
        // Nothing changed: nothing to do.
        let m = merge(&rows, &[file("1001", "a"), file("1002", "b")]);
        assert_eq!(m, Merge::default());
        // Edited and removed in the file.
        let (rows, notes) = run(&rows, &[file("1001", "a2")]);
        assert_eq!(bodies(&rows), vec![("1001".into(), Some("a2".into()))]);
        assert!(notes.iter().any(|n| n.contains("updated")), "{notes:?}");
        assert!(notes.iter().any(|n| n.contains("removed")), "{notes:?}");
    }

    #[test]
    fn the_api_owns_what_it_touched() {
        let (rows, _) = run(&[], &[file("1001", "a"), file("1002", "b")]);
        // The API edits 1001 and deletes 1002 (a tombstone keeps the seed).
        let edited: Vec<Row> = rows
            .into_iter()
            .map(|r| Row {
                origin: Origin::Api,
                body: (r.key == "1001").then(|| "api".to_string()),
                ..r
            })
            .collect();
        // The same file: silence, nothing comes back.
        let m = merge(&edited, &[file("1001", "a"), file("1002", "b")]);
        assert_eq!(m, Merge::default());
        // The file changes both: still ignored, and said so.
        let (rows, notes) = run(&edited, &[file("1001", "a3"), file("1002", "b3")]);
        assert_eq!(
            bodies(&rows),
            vec![("1001".into(), Some("api".into())), ("1002".into(), None)]
        );
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[1].contains("deleted through the API"), "{notes:?}");
        // Gone from the file: the API's rows stay.
        let (rows, _) = run(&edited, &[]);
        assert_eq!(rows.len(), 2);
    }

    #[test]
    fn agents_and_groups_with_the_same_key_are_different_rows() {
        let g = FileEntry {
            kind: Kind::Group,
            key: "1001".into(),
            body: "g".into(),
        };
        let (rows, _) = run(&[], &[file("1001", "a"), g]);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].kind, Kind::Agent);
        assert_eq!(rows[1].kind, Kind::Group);
    }
}
