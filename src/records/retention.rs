//! Retention (events issue §5; REQUIREMENTS §4 "recordings kept ≥ 3
//! years"): a purge job deletes the records, recordings and voicemails of
//! calls older than their tenant's retention, and logs every call it
//! deleted; storage usage per tenant for the admin API.
//!
//! Defaults: 1095 days (three years) for every tenant; `[retention] days`
//! changes the default and `[[tenant]] retention_days` one tenant's.
//! Files go first, then the call's events (one transaction): a crash in
//! between leaves a record whose files are gone, never a file nobody can
//! find. `agent.state` events (no call) go after the default retention.
//!
//! The job never reads the clock itself: [`purge`] takes `now_ms`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path};

use tracing::{info, warn};

use crate::events::outbox::{Outbox, OutboxError};
use crate::events::time::format_rfc3339;

/// How long each tenant's records are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Days, for tenants without their own.
    pub default_days: u32,
    /// Days by tenant id.
    pub tenants: HashMap<String, u32>,
}

impl RetentionPolicy {
    fn days(&self, tenant: &str) -> u32 {
        self.tenants
            .get(tenant)
            .copied()
            .unwrap_or(self.default_days)
    }

    fn shortest(&self) -> u32 {
        self.tenants
            .values()
            .copied()
            .chain([self.default_days])
            .min()
            .unwrap_or(self.default_days)
    }
}

/// What one purge did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// Calls deleted.
    pub calls: usize,
    /// Events deleted (the calls' and old `agent.state`).
    pub events: usize,
    /// Files deleted.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
}

/// Files and bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Files.
    pub files: u64,
    /// Bytes.
    pub bytes: u64,
}

const DAY_MS: i64 = 86_400_000;
/// Calls handled per batch (one transaction each).
const BATCH: usize = 1000;

/// A relative path from a record, joined to `root` only if it stays below.
fn file_below(root: &Path, rel: &str) -> Option<std::path::PathBuf> {
    let p = Path::new(rel);
    p.components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then(|| root.join(p))
}

fn remove(path: &Path, report: &mut PurgeReport) {
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    match std::fs::remove_file(path) {
        Ok(()) => {
            report.files += 1;
            report.bytes += size;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => warn!(path = %path.display(), error = %e, "retention: cannot delete"),
    }
}

/// Delete what expired at `now_ms`.
pub fn purge(
    outbox: &Outbox,
    recordings: Option<&Path>,
    voicemails: &Path,
    policy: &RetentionPolicy,
    now_ms: i64,
) -> Result<PurgeReport, OutboxError> {
    let mut report = PurgeReport::default();
    let cutoff = |days: u32| now_ms.saturating_sub(i64::from(days) * DAY_MS);
    let text = |ms: i64| format_rfc3339(ms).unwrap_or_default();
    // Candidates: older than the shortest retention; each then checked
    // against its own tenant's.
    let candidates_before = text(cutoff(policy.shortest()));
    let mut after = String::new();
    loop {
        let batch = outbox.calls_started_between(&after, &candidates_before, BATCH * 4)?;
        let Some(last) = batch.last().map(|c| c.started_at.clone()) else {
            break;
        };
        let expired: Vec<_> = batch
            .into_iter()
            .filter(|c| c.started_at < text(cutoff(policy.days(&c.tenant))))
            .take(BATCH)
            .collect();
        if expired.is_empty() {
            // Everything left in this window is kept by a longer retention.
            after = last;
            continue;
        }
        let mut ids = Vec::with_capacity(expired.len());
        for c in &expired {
            let mut files = Vec::new();
            if let (Some(root), Some(rel)) = (recordings, &c.recording) {
                files.extend(file_below(root, rel));
            }
            if let Some(rel) = &c.voicemail {
                files.extend(file_below(voicemails, rel));
            }
            for f in &files {
                remove(f, &mut report);
            }
            info!(
                call = %c.call_id,
                tenant = %c.tenant,
                started_at = %c.started_at,
                files = files.len(),
                "retention: call record deleted"
            );
            ids.push(c.call_id.clone());
        }
        report.events += outbox.delete_calls(&ids)?;
        report.calls += ids.len();
    }
    report.events += outbox.delete_agent_events_before(&text(cutoff(policy.default_days)))?;
    if report.calls > 0 || report.events > 0 {
        info!(
            calls = report.calls,
            events = report.events,
            files = report.files,
            bytes = report.bytes,
            "retention: purge done"
        );
    }
    Ok(report)
}

/// Files and bytes below each first-level directory (a tenant) of `root`.
pub fn usage_by_tenant(root: &Path) -> BTreeMap<String, Usage> {
    fn walk(dir: &Path, usage: &mut Usage, depth: u32) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() && depth < 16 {
                walk(&e.path(), usage, depth + 1);
            } else if meta.is_file() {
                usage.files += 1;
                usage.bytes += meta.len();
            }
        }
    }
    let mut out = BTreeMap::new();
    let Ok(rd) = std::fs::read_dir(root) else {
        return out;
    };
    for e in rd.flatten() {
        if e.metadata().is_ok_and(|m| m.is_dir()) {
            let mut u = Usage::default();
            walk(&e.path(), &mut u, 0);
            out.insert(e.file_name().to_string_lossy().into_owned(), u);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::appender::Appender;
    use crate::events::model::RecordingInfo;
    use crate::events::outbox::NewEvent;
    use crate::events::{CallStart, CdrBuilder, EndCause, HangupParty, IdGenerator, IdSource};
    use std::sync::Arc;

    const DAY: i64 = DAY_MS;

    fn call(
        ids: &Arc<dyn IdSource>,
        id: &str,
        tenant: &str,
        at: i64,
        recording: Option<&str>,
    ) -> Vec<NewEvent> {
        let start = CallStart {
            call_id: id.into(),
            serial: id.into(),
            tenant: tenant.into(),
            direction: crate::events::model::Direction::Inbound,
            caller: "138".into(),
            called: "12345".into(),
            caller_area: None,
            confidential: false,
        };
        let (mut b, e) = CdrBuilder::started(ids.clone(), at, start).expect("start");
        let mut evs = vec![e];
        if let Some(path) = recording {
            b.recording_started(id, path).expect("rec");
            evs.extend(
                b.recording_ready(
                    at + 500,
                    RecordingInfo {
                        id: id.into(),
                        path: path.into(),
                        duration_ms: 500,
                        bytes: 5,
                        sha256: String::new(),
                        dropped_chunks: 0,
                    },
                )
                .expect("ready"),
            );
        }
        evs.extend(
            b.ended(at + 1_000, HangupParty::Caller, EndCause::default())
                .expect("end"),
        );
        evs.into_iter()
            .map(|e| NewEvent {
                id: e.id.clone(),
                call_id: e.call_id.clone(),
                kind: e.kind().into(),
                body_json: serde_json::to_string(&e).expect("json"),
            })
            .collect()
    }

    #[tokio::test]
    async fn expired_calls_and_their_files_go_each_by_its_tenant_retention() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rec = dir.path().join("recordings");
        let vm = dir.path().join("voicemail");
        for (t, name) in [("a", "old"), ("a", "new"), ("b", "old")] {
            let d = rec.join(t);
            std::fs::create_dir_all(&d).expect("dir");
            std::fs::write(d.join(format!("{name}.wav")), b"RIFF!").expect("file");
        }
        let outbox = Arc::new(Outbox::open(&dir.path().join("events.db")).expect("outbox"));
        let app = Appender::start(outbox.clone()).expect("appender");
        let ids: Arc<dyn IdSource> = Arc::new(IdGenerator::new("t", 0));
        let now = 1_795_400_000_000;
        // a keeps 30 days, b the default 1095.
        app.send(call(&ids, "a-old", "a", now - 40 * DAY, Some("a/old.wav")));
        app.send(call(&ids, "a-new", "a", now - 10 * DAY, Some("a/new.wav")));
        app.send(call(&ids, "b-old", "b", now - 40 * DAY, Some("b/old.wav")));
        app.send(call(
            &ids,
            "b-ancient",
            "b",
            now - 1200 * DAY,
            Some("../escape.wav"),
        ));
        app.flush().await;
        let usage = usage_by_tenant(&rec);
        assert_eq!(
            usage["a"],
            Usage {
                files: 2,
                bytes: 10
            }
        );
        let policy = RetentionPolicy {
            default_days: 1095,
            tenants: [("a".to_string(), 30)].into(),
        };
        let report = purge(&outbox, Some(&rec), &vm, &policy, now).expect("purge");
        assert_eq!(report.calls, 2, "{report:?}");
        assert_eq!(report.files, 1, "the escaping path is never followed");
        assert!(!rec.join("a/old.wav").exists());
        assert!(rec.join("a/new.wav").exists());
        assert!(rec.join("b/old.wav").exists());
        let left = outbox
            .calls_started_between("", "9999", 100)
            .expect("left")
            .into_iter()
            .map(|c| c.call_id)
            .collect::<Vec<_>>();
        assert_eq!(left, ["b-old", "a-new"]);
        // Idempotent.
        let again = purge(&outbox, Some(&rec), &vm, &policy, now).expect("purge");
        assert_eq!(again, PurgeReport::default());
    }
}
