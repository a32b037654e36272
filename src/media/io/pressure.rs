//! How hard a media IO worker works (issue 16: "under overload hotline
//! degrades by refusing new calls (503) before it loses packets of calls
//! in progress"): over one-second windows, the share of a core the worker
//! thread ran on (the kernel's own count, `/proc/thread-self/schedstat`)
//! and how late its 20 ms ticks ran on average. Admission reads the
//! busiest worker's last window and refuses new calls while it is near
//! its limit: a worker that needs a whole core, or whose ticks run a whole
//! frame late (the machine does not give it the CPU it needs: packets
//! wait in the sockets, and the next step is loss).
//!
//! Not wall time between polls: on a shared machine a worker that always
//! finds a datagram waiting looks busy all the time while it runs half of
//! it (measured: 966 ‰ "busy" at 44 % of a core with no loss), which would
//! refuse calls long before any packet is at risk. Pure: the worker
//! passes the instants and its CPU time in.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// The window a figure covers.
pub const WINDOW: Duration = Duration::from_secs(1);

/// One window's figures, as published.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pressure {
    /// Share of one core the worker ran on during the window, in per mille
    /// (0 where the kernel does not say).
    pub cpu_permille: u32,
    /// Mean lateness of the window's ticks, in microseconds.
    pub mean_late_us: u32,
}

impl Pressure {
    /// The worse of two workers' figures, field by field.
    pub fn max(self, other: Pressure) -> Pressure {
        Pressure {
            cpu_permille: self.cpu_permille.max(other.cpu_permille),
            mean_late_us: self.mean_late_us.max(other.mean_late_us),
        }
    }

    /// Near the limit: on a core at least `limit_percent` % of the time, or
    /// ticks late by a whole tick on average (the pacer a frame behind: a
    /// scheduler's hiccup on a shared machine is far less). A limit of
    /// zero never holds.
    pub fn overloaded(self, limit_percent: u32, tick: Duration) -> bool {
        if limit_percent == 0 {
            return false;
        }
        let late_limit = u32::try_from(tick.as_micros()).unwrap_or(u32::MAX);
        self.cpu_permille >= limit_percent.saturating_mul(10) || self.mean_late_us >= late_limit
    }
}

/// A worker's current window, counted by the worker.
#[derive(Debug)]
pub struct Window {
    start: Instant,
    /// The thread's CPU time at the start, if known.
    cpu_start: Option<Duration>,
    late: Duration,
    ticks: u32,
}

impl Window {
    /// A window starting at `now`, the thread having run `cpu` so far.
    pub fn new(now: Instant, cpu: Option<Duration>) -> Self {
        Self {
            start: now,
            cpu_start: cpu,
            late: Duration::ZERO,
            ticks: 0,
        }
    }

    /// A tick due at `due` ran at `ran`.
    pub fn tick(&mut self, due: Instant, ran: Instant) {
        self.late += ran.saturating_duration_since(due);
        self.ticks += 1;
    }

    /// Whether the window has run its course at `now`.
    pub fn due(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.start) >= WINDOW
    }

    /// At `now`, the thread having run `cpu` so far: the figures of a
    /// window that has run its course (and a new window begun), else
    /// `None`.
    pub fn close(&mut self, now: Instant, cpu: Option<Duration>) -> Option<Pressure> {
        if !self.due(now) {
            return None;
        }
        let span = now.saturating_duration_since(self.start);
        let share = match (self.cpu_start, cpu) {
            (Some(a), Some(b)) => (b.saturating_sub(a).as_secs_f64() / span.as_secs_f64()).min(1.0),
            _ => 0.0,
        };
        let mean_late = match self.ticks {
            0 => Duration::ZERO,
            n => self.late / n,
        };
        *self = Window::new(now, cpu);
        Some(Pressure {
            cpu_permille: (share * 1000.0).round() as u32,
            mean_late_us: u32::try_from(mean_late.as_micros()).unwrap_or(u32::MAX),
        })
    }
}

/// The calling thread's CPU time so far, from the kernel's scheduler
/// statistics (`None` where they are not available).
pub fn thread_cpu() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    parse_schedstat(&text)
}

/// The first field of a `schedstat` line: nanoseconds on a CPU.
fn parse_schedstat(text: &str) -> Option<Duration> {
    let ns = text.split_whitespace().next()?.parse::<u64>().ok()?;
    Some(Duration::from_nanos(ns))
}

/// A worker's last published figures, read by admission.
#[derive(Debug, Default)]
pub struct Published {
    cpu_permille: AtomicU32,
    mean_late_us: AtomicU32,
}

impl Published {
    /// Publish a closed window.
    pub fn set(&self, p: Pressure) {
        self.cpu_permille.store(p.cpu_permille, Ordering::Relaxed);
        self.mean_late_us.store(p.mean_late_us, Ordering::Relaxed);
    }

    /// The last window's figures.
    pub fn get(&self) -> Pressure {
        Pressure {
            cpu_permille: self.cpu_permille.load(Ordering::Relaxed),
            mean_late_us: self.mean_late_us.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: Duration = Duration::from_millis(20);

    #[test]
    fn a_window_reports_its_cpu_share_and_mean_lateness_once_it_has_run() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut w = Window::new(t0, Some(ms(5_000)));
        w.tick(t0 + ms(20), t0 + ms(22));
        w.tick(t0 + ms(40), t0 + ms(46));
        assert_eq!(
            w.close(t0 + ms(999), Some(ms(5_400))),
            None,
            "not a whole window yet"
        );
        let p = w
            .close(t0 + ms(1000), Some(ms(5_500)))
            .expect("a whole window");
        assert_eq!(
            p,
            Pressure {
                cpu_permille: 500,
                mean_late_us: 4000
            }
        );
        // The next window starts empty; without the kernel's figures the
        // share is unknown (0), lateness still counts.
        assert_eq!(
            w.close(t0 + ms(2000), None),
            Some(Pressure {
                cpu_permille: 0,
                mean_late_us: 0
            })
        );
    }

    #[test]
    fn schedstat_gives_the_time_on_a_cpu() {
        assert_eq!(
            parse_schedstat("123456789 4242 17\n"),
            Some(Duration::from_nanos(123_456_789))
        );
        assert_eq!(parse_schedstat(""), None);
        assert_eq!(parse_schedstat("x 1 2"), None);
        // This machine's kernel keeps them (Linux with schedstats).
        if std::path::Path::new("/proc/thread-self/schedstat").exists() {
            assert!(thread_cpu().is_some());
        }
    }

    #[test]
    fn overloaded_when_busy_near_the_limit_or_the_ticks_fall_behind() {
        let p = |cpu_permille, mean_late_us| Pressure {
            cpu_permille,
            mean_late_us,
        };
        assert!(!p(899, 0).overloaded(90, TICK));
        assert!(p(900, 0).overloaded(90, TICK));
        assert!(p(100, 20_000).overloaded(90, TICK));
        assert!(!p(100, 19_999).overloaded(90, TICK));
        assert!(!p(1000, 50_000).overloaded(0, TICK), "0 turns it off");
        assert_eq!(p(10, 7).max(p(3, 9)), p(10, 9));
    }
}
