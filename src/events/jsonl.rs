//! The JSON-lines file sink (issue 7 §3: "rotated JSONL files").
//!
//! One file per UTC day, `<dir>/events-YYYY-MM-DD.jsonl`, named by the day
//! the line is written (not the event's own time). Each batch is appended,
//! fsynced, then acknowledged in one outbox transaction, so a crash between
//! the fsync and the acknowledgement writes those lines again after the
//! restart: readers de-duplicate by `id`, as webhook receivers do. Lines:
//!
//! ```json
//! {"id":"…","call_id":"…","type":"call.ended","written_at_ms":1700000000000,"event":{…}}
//! ```
//!
//! The event is re-serialized compactly, so a pretty-printed body still
//! makes one line. Per-call order holds within and across files (the outbox
//! hands out one event per call per batch). A failed write (disk full) is
//! retried with the sink's backoff. A shell: reads the wall clock.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::outbox::{Outbox, OutboxError, Pending};
use crate::time::civil::civil_from_days;

/// JSONL sink errors, naming the sink and the file.
#[derive(Debug, thiserror::Error)]
pub enum JsonlError {
    /// The outbox failed.
    #[error("jsonl sink {sink}: {source}")]
    Outbox {
        /// Sink name.
        sink: String,
        /// The outbox's error.
        source: Box<OutboxError>,
    },
    /// The file cannot be written or synced (the batch backs off).
    #[error("jsonl sink {sink}: {path}: {source}")]
    Write {
        /// Sink name.
        sink: String,
        /// The day's file.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
}

/// A JSONL sink: where and how much per batch.
#[derive(Debug, Clone)]
pub struct JsonlSink {
    /// The sink's name in the outbox (register it first).
    pub name: String,
    /// Directory of the daily files (created if missing).
    pub dir: PathBuf,
    /// Most events written per batch (per fsync).
    pub batch: usize,
    /// Longest sleep when there is nothing to write.
    pub idle_poll: Duration,
}

/// The file for a UTC day: `events-YYYY-MM-DD.jsonl` (pure).
pub fn file_name(unix_ms: i64) -> String {
    let (y, m, d) = civil_from_days(unix_ms.div_euclid(86_400_000));
    format!("events-{y:04}-{m:02}-{d:02}.jsonl")
}

/// One JSONL line (without the newline) for an event (pure). Fails when the
/// body is not JSON.
pub fn line(p: &Pending, written_at_ms: i64) -> Result<String, serde_json::Error> {
    let event: serde_json::Value = serde_json::from_str(&p.body_json)?;
    serde_json::to_string(&serde_json::json!({
        "id": p.id,
        "call_id": p.call_id,
        "type": p.kind,
        "written_at_ms": written_at_ms,
        "event": event,
    }))
}

impl JsonlSink {
    /// A sink writing into `dir`: 256 events per batch, 1 s idle poll.
    pub fn new(name: impl Into<String>, dir: impl Into<PathBuf>) -> Self {
        Self {
            name: name.into(),
            dir: dir.into(),
            batch: 256,
            idle_poll: Duration::from_secs(1),
        }
    }

    /// Write until `shutdown` is cancelled. Errors are logged and retried.
    pub async fn run(self, outbox: Arc<Outbox>, shutdown: CancellationToken) {
        let mut appended = outbox.subscribe();
        let sink = Arc::new(self);
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            let (s, ob) = (Arc::clone(&sink), Arc::clone(&outbox));
            let wrote = tokio::task::spawn_blocking(move || s.step(&ob, now_ms())).await;
            let wrote = match wrote {
                Ok(Ok(n)) => n,
                Ok(Err(e)) => {
                    warn!(sink = %sink.name, error = %e, "jsonl sink");
                    0
                }
                Err(e) => {
                    warn!(sink = %sink.name, error = %e, "jsonl sink task failed");
                    0
                }
            };
            if wrote > 0 {
                continue;
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = appended.changed() => {}
                _ = tokio::time::sleep(sink.idle_poll) => {}
            }
        }
    }

    /// One batch at `now_ms`: take, write, fsync, acknowledge. Returns how
    /// many events were written. Blocking (file and SQLite I/O).
    pub fn step(&self, outbox: &Outbox, now_ms: i64) -> Result<usize, JsonlError> {
        let ob_err = |source| JsonlError::Outbox {
            sink: self.name.clone(),
            source: Box::new(source),
        };
        let batch = outbox
            .next_batch(&self.name, self.batch.max(1), now_ms)
            .map_err(ob_err)?;
        if batch.is_empty() {
            return Ok(0);
        }
        let mut text = String::new();
        let mut good: Vec<&str> = Vec::with_capacity(batch.len());
        for p in &batch {
            match line(p, now_ms) {
                Ok(l) => {
                    text.push_str(&l);
                    text.push('\n');
                    good.push(&p.id);
                }
                Err(e) => {
                    let reason = format!("body is not JSON: {e}");
                    outbox
                        .dead_letter(&self.name, &p.id, now_ms, &reason)
                        .map_err(ob_err)?;
                }
            }
        }
        let path = self.dir.join(file_name(now_ms));
        if let Err(source) = write_synced(&self.dir, &path, text.as_bytes()) {
            let reason = format!("{}: {source}", path.display());
            for id in &good {
                outbox
                    .fail(&self.name, id, now_ms, &reason)
                    .map_err(ob_err)?;
            }
            return Err(JsonlError::Write {
                sink: self.name.clone(),
                path,
                source,
            });
        }
        outbox.ack_many(&self.name, &good).map_err(ob_err)?;
        Ok(good.len())
    }
}

fn write_synced(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_data()
}

/// Wall clock, unix milliseconds (the shells' clock, `util`).
fn now_ms() -> i64 {
    crate::util::unix_now_ms()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::backoff::RetryPolicy;
    use crate::events::outbox::NewEvent;

    #[test]
    fn file_names_by_utc_day() {
        assert_eq!(file_name(0), "events-1970-01-01.jsonl");
        assert_eq!(file_name(86_399_999), "events-1970-01-01.jsonl");
        assert_eq!(file_name(86_400_000), "events-1970-01-02.jsonl");
        assert_eq!(file_name(951_782_400_000), "events-2000-02-29.jsonl");
        assert_eq!(file_name(1_735_689_599_999), "events-2024-12-31.jsonl");
        assert_eq!(file_name(1_735_689_600_000), "events-2025-01-01.jsonl");
        assert_eq!(file_name(-1), "events-1969-12-31.jsonl");
    }

    #[test]
    fn writes_rotates_and_acks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ob = Outbox::open(&dir.path().join("e.db")).expect("open");
        ob.register_sink("jsonl", RetryPolicy::default())
            .expect("register");
        let evs: Vec<NewEvent> = (0..3)
            .map(|i| NewEvent {
                id: format!("e{i}"),
                call_id: Some("c1".into()),
                kind: "call.started".into(),
                body_json: format!("{{\n  \"n\": {i}\n}}"),
            })
            .collect();
        ob.append(&evs).expect("append");
        let sink = JsonlSink::new("jsonl", dir.path().join("out"));
        let day1 = 1_735_689_599_000; // 2024-12-31T23:59:59Z
        assert_eq!(sink.step(&ob, day1).expect("step"), 1);
        assert_eq!(sink.step(&ob, day1).expect("step"), 1);
        assert_eq!(sink.step(&ob, day1 + 1_000).expect("step"), 1);
        assert_eq!(sink.step(&ob, day1 + 1_000).expect("step"), 0);
        let a =
            std::fs::read_to_string(dir.path().join("out/events-2024-12-31.jsonl")).expect("day 1");
        let b =
            std::fs::read_to_string(dir.path().join("out/events-2025-01-01.jsonl")).expect("day 2");
        assert_eq!(a.lines().count(), 2);
        assert_eq!(b.lines().count(), 1);
        let v: serde_json::Value =
            serde_json::from_str(a.lines().next().unwrap_or_default()).expect("json line");
        assert_eq!(v["id"], "e0");
        assert_eq!(v["event"]["n"], 0);
        assert_eq!(ob.stats(day1).expect("stats")[0].delivered, 3);
    }

    #[test]
    fn unwritable_directory_backs_off() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ob = Outbox::open(&dir.path().join("e.db")).expect("open");
        ob.register_sink("jsonl", RetryPolicy::default())
            .expect("register");
        ob.append(&[NewEvent {
            id: "e".into(),
            call_id: None,
            kind: "k".into(),
            body_json: "{}".into(),
        }])
        .expect("append");
        // A file where the directory should be.
        let blocker = dir.path().join("out");
        std::fs::write(&blocker, b"x").expect("blocker");
        let sink = JsonlSink::new("jsonl", blocker);
        let err = sink.step(&ob, 0).expect_err("cannot write");
        assert!(matches!(err, JsonlError::Write { .. }), "{err}");
        assert!(err.to_string().contains("jsonl sink jsonl"), "{err}");
        let dl = ob.dead_letters("jsonl", 10).expect("dead letters");
        assert!(dl.is_empty());
        let st = &ob.stats(0).expect("stats")[0];
        assert_eq!(
            (st.pending + st.in_backoff, st.in_flight, st.delivered),
            (1, 0, 0)
        );
    }
}
