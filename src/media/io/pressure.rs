//! How hard a media IO worker works (issue 16: "under overload hotline
//! degrades by refusing new calls (503) before it loses packets of calls
//! in progress"): over one-second windows, the share of wall time it
//! spent serving its tasks rather than waiting for datagrams, and how
//! late its 20 ms ticks ran on average. Admission reads the busiest
//! worker's last window and refuses new calls while it is near its limit.
//!
//! Busy time is wall time from a poll's return to the next poll, so a
//! worker the machine starves of CPU looks busier, not idler: exactly
//! when new calls must wait. Pure: the worker passes the instants in.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// The window a figure covers.
pub const WINDOW: Duration = Duration::from_secs(1);

/// One window's figures, as published.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pressure {
    /// Busy share of the window, in per mille.
    pub busy_permille: u32,
    /// Mean lateness of the window's ticks, in microseconds.
    pub mean_late_us: u32,
}

impl Pressure {
    /// The worse of two workers' figures, field by field.
    pub fn max(self, other: Pressure) -> Pressure {
        Pressure {
            busy_permille: self.busy_permille.max(other.busy_permille),
            mean_late_us: self.mean_late_us.max(other.mean_late_us),
        }
    }

    /// Near the limit: busy at least `limit_percent` % of the time, or
    /// ticks late by a whole tick on average (the pacer a frame behind: a
    /// scheduler's hiccup on a shared machine is far less). A limit of
    /// zero never holds.
    pub fn overloaded(self, limit_percent: u32, tick: Duration) -> bool {
        if limit_percent == 0 {
            return false;
        }
        let late_limit = u32::try_from(tick.as_micros()).unwrap_or(u32::MAX);
        self.busy_permille >= limit_percent.saturating_mul(10) || self.mean_late_us >= late_limit
    }
}

/// A worker's current window, counted by the worker.
#[derive(Debug)]
pub struct Window {
    start: Instant,
    busy: Duration,
    late: Duration,
    ticks: u32,
}

impl Window {
    /// A window starting at `now`.
    pub fn new(now: Instant) -> Self {
        Self {
            start: now,
            busy: Duration::ZERO,
            late: Duration::ZERO,
            ticks: 0,
        }
    }

    /// The worker served its tasks from `from` to `to`.
    pub fn busy(&mut self, from: Instant, to: Instant) {
        self.busy += to.saturating_duration_since(from);
    }

    /// A tick due at `due` ran at `ran`.
    pub fn tick(&mut self, due: Instant, ran: Instant) {
        self.late += ran.saturating_duration_since(due);
        self.ticks += 1;
    }

    /// At `now`: the figures of a window that has run its course (and a
    /// new window begun), else `None`.
    pub fn close(&mut self, now: Instant) -> Option<Pressure> {
        let span = now.saturating_duration_since(self.start);
        if span < WINDOW {
            return None;
        }
        let busy = (self.busy.as_secs_f64() / span.as_secs_f64()).min(1.0);
        let mean_late = match self.ticks {
            0 => Duration::ZERO,
            n => self.late / n,
        };
        *self = Window::new(now);
        Some(Pressure {
            busy_permille: (busy * 1000.0).round() as u32,
            mean_late_us: u32::try_from(mean_late.as_micros()).unwrap_or(u32::MAX),
        })
    }
}

/// A worker's last published figures, read by admission.
#[derive(Debug, Default)]
pub struct Published {
    busy_permille: AtomicU32,
    mean_late_us: AtomicU32,
}

impl Published {
    /// Publish a closed window.
    pub fn set(&self, p: Pressure) {
        self.busy_permille.store(p.busy_permille, Ordering::Relaxed);
        self.mean_late_us.store(p.mean_late_us, Ordering::Relaxed);
    }

    /// The last window's figures.
    pub fn get(&self) -> Pressure {
        Pressure {
            busy_permille: self.busy_permille.load(Ordering::Relaxed),
            mean_late_us: self.mean_late_us.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: Duration = Duration::from_millis(20);

    #[test]
    fn a_window_reports_its_busy_share_and_mean_lateness_once_it_has_run() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut w = Window::new(t0);
        w.busy(t0, t0 + ms(300));
        w.busy(t0 + ms(500), t0 + ms(700));
        w.tick(t0 + ms(20), t0 + ms(22));
        w.tick(t0 + ms(40), t0 + ms(46));
        assert_eq!(w.close(t0 + ms(999)), None, "not a whole window yet");
        let p = w.close(t0 + ms(1000)).expect("a whole window");
        assert_eq!(
            p,
            Pressure {
                busy_permille: 500,
                mean_late_us: 4000
            }
        );
        // The next window starts empty.
        assert_eq!(
            w.close(t0 + ms(2000)),
            Some(Pressure {
                busy_permille: 0,
                mean_late_us: 0
            })
        );
    }

    #[test]
    fn overloaded_when_busy_near_the_limit_or_the_ticks_fall_behind() {
        let p = |busy_permille, mean_late_us| Pressure {
            busy_permille,
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
