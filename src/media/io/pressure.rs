//! How hard a media IO worker works (issue 16: "under overload hotline
//! degrades by refusing new calls (503) before it loses packets of calls
//! in progress"): over one-second windows, the share of a core the worker
//! thread ran on (the kernel's own count, `/proc/thread-self/schedstat`)
//! how late its 20 ms ticks ran. Admission reads the busiest worker's
//! last window and refuses new calls while it is near its limit: a worker
//! that needs a whole core, or whose ticks run behind most of the time
//! (the machine does not give it the CPU it needs: packets wait in the
//! sockets, and the next step is loss).
//!
//! Lateness is judged by the share of late ticks, not their mean: one
//! stall (the allocator returning memory to the kernel, a scheduler's
//! hiccup on a shared machine) makes one tick late by hundreds of
//! milliseconds, and a mean over the window's few dozen ticks then reads
//! "a frame behind" while the worker keeps up (measured at 800 recorded
//! calls: 22 ms mean lateness at 48 % of a core, 166 calls refused).
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

/// A tick this late counts as late: a whole tick, the pacer a frame
/// behind. Half a tick is common on a busy shared machine with no packet
/// at risk (measured at 800 recorded calls: 57 % of the ticks 10 ms late
/// at 55 % of a core, 0.006 % loss).
const LATE: Duration = Duration::from_millis(20);

/// Late ticks in a window, per mille, that make a worker overloaded.
const LATE_SHARE: u32 = 500;

/// One window's figures, as published.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pressure {
    /// Share of one core the worker ran on during the window, in per mille
    /// (0 where the kernel does not say).
    pub cpu_permille: u32,
    /// Mean lateness of the window's ticks, in microseconds (shown).
    pub mean_late_us: u32,
    /// Share of the window's ticks that ran at least a whole tick late, in
    /// per mille (judged).
    pub late_permille: u32,
}

impl Pressure {
    /// The worse of two workers' figures, field by field.
    pub fn max(self, other: Pressure) -> Pressure {
        Pressure {
            cpu_permille: self.cpu_permille.max(other.cpu_permille),
            mean_late_us: self.mean_late_us.max(other.mean_late_us),
            late_permille: self.late_permille.max(other.late_permille),
        }
    }

    /// Near the limit: on a core at least `limit_percent` % of the time, or
    /// at least half of the ticks a whole tick late (the pacer a frame
    /// behind most of the time; one stall is one late tick). A limit of
    /// zero never holds.
    pub fn overloaded(self, limit_percent: u32) -> bool {
        if limit_percent == 0 {
            return false;
        }
        self.cpu_permille >= limit_percent.saturating_mul(10) || self.late_permille >= LATE_SHARE
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
    late_ticks: u32,
}

impl Window {
    /// A window starting at `now`, the thread having run `cpu` so far.
    pub fn new(now: Instant, cpu: Option<Duration>) -> Self {
        Self {
            start: now,
            cpu_start: cpu,
            late: Duration::ZERO,
            ticks: 0,
            late_ticks: 0,
        }
    }

    /// A tick due at `due` ran at `ran`.
    pub fn tick(&mut self, due: Instant, ran: Instant) {
        let late = ran.saturating_duration_since(due);
        self.late += late;
        self.ticks += 1;
        self.late_ticks += u32::from(late >= LATE);
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
        let (mean_late, late_permille) = match self.ticks {
            0 => (Duration::ZERO, 0),
            n => (self.late / n, self.late_ticks.saturating_mul(1000) / n),
        };
        *self = Window::new(now, cpu);
        Some(Pressure {
            cpu_permille: (share * 1000.0).round() as u32,
            mean_late_us: u32::try_from(mean_late.as_micros()).unwrap_or(u32::MAX),
            late_permille,
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
    late_permille: AtomicU32,
}

impl Published {
    /// Publish a closed window.
    pub fn set(&self, p: Pressure) {
        self.cpu_permille.store(p.cpu_permille, Ordering::Relaxed);
        self.mean_late_us.store(p.mean_late_us, Ordering::Relaxed);
        self.late_permille.store(p.late_permille, Ordering::Relaxed);
    }

    /// The last window's figures.
    pub fn get(&self) -> Pressure {
        Pressure {
            cpu_permille: self.cpu_permille.load(Ordering::Relaxed),
            mean_late_us: self.mean_late_us.load(Ordering::Relaxed),
            late_permille: self.late_permille.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
                mean_late_us: 4000,
                late_permille: 0
            }
        );
        // The next window starts empty; without the kernel's figures the
        // share is unknown (0), lateness still counts.
        assert_eq!(
            w.close(t0 + ms(2000), None),
            Some(Pressure {
                cpu_permille: 0,
                mean_late_us: 0,
                late_permille: 0
            })
        );
    }

    #[test]
    fn one_stall_is_one_late_tick_while_a_pacer_behind_is_late_throughout() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        // 25 ticks on time but one 500 ms late (a stall): the mean reads
        // "a frame behind", the share does not.
        let mut w = Window::new(t0, None);
        w.tick(t0 + ms(20), t0 + ms(520));
        for i in 1..25u64 {
            w.tick(t0 + ms(520 + 20 * i), t0 + ms(521 + 20 * i));
        }
        let p = w.close(t0 + ms(1000), None).expect("a whole window");
        assert!(p.mean_late_us >= 20_000, "{p:?}");
        assert_eq!(p.late_permille, 40);
        assert!(!p.overloaded(90));
        // Every tick 12 ms late: behind, not a frame behind.
        let mut w = Window::new(t0, None);
        for i in 1..=40u64 {
            w.tick(t0 + ms(25 * i), t0 + ms(25 * i + 12));
        }
        let p = w.close(t0 + ms(1000), None).expect("a whole window");
        assert_eq!(p.late_permille, 0);
        // Every tick 22 ms late: a frame behind throughout.
        let mut w = Window::new(t0, None);
        for i in 1..=24u64 {
            w.tick(t0 + ms(42 * i), t0 + ms(42 * i + 22));
        }
        let p = w.close(t0 + ms(1000), None).expect("a whole window");
        assert_eq!(p.late_permille, 1000);
        assert!(p.overloaded(90));
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
        let p = |cpu_permille, late_permille| Pressure {
            cpu_permille,
            mean_late_us: 0,
            late_permille,
        };
        assert!(!p(899, 0).overloaded(90));
        assert!(p(900, 0).overloaded(90));
        assert!(p(100, 500).overloaded(90));
        assert!(!p(100, 499).overloaded(90));
        assert!(!p(1000, 1000).overloaded(0), "0 turns it off");
        assert_eq!(p(10, 7).max(p(3, 9)), p(10, 9));
    }
}
