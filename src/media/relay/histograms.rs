//! The RTP quality of every relayed leg, as process-wide histograms for
//! `/metrics` (issue 15 §4: "RTP loss/jitter histograms"): the fraction of
//! packets lost on the way in and the interarrival jitter (RFC 3550 §6.4.1)
//! at the leg's end, observed once per leg when its relay stops.

use std::sync::LazyLock;

use prometheus_client::metrics::histogram::Histogram;

use super::LegQuality;

/// Loss fraction buckets: 0.1 %, 0.5 %, 1 %, 2 %, 5 %, 10 %, 20 %.
const LOSS_BUCKETS: [f64; 7] = [0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2];
/// Jitter buckets in ms (G.114-ish comfort up to ~30 ms).
const JITTER_BUCKETS: [f64; 9] = [1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 50.0, 100.0, 200.0];

/// The legs' histograms (cheap clones share the counts).
pub struct LegHistograms {
    /// Fraction of packets lost on the way in, per leg.
    pub loss_fraction: Histogram,
    /// Interarrival jitter at the leg's end, in ms.
    pub jitter_ms: Histogram,
}

impl LegHistograms {
    fn new() -> Self {
        Self {
            loss_fraction: Histogram::new(LOSS_BUCKETS),
            jitter_ms: Histogram::new(JITTER_BUCKETS),
        }
    }

    /// Count one leg that received RTP (a leg that got none says nothing
    /// about the network).
    fn observe(&self, q: &LegQuality) {
        if q.received == 0 {
            return;
        }
        let lost = q.lost.max(0) as f64;
        self.loss_fraction
            .observe(lost / (lost + q.received as f64));
        self.jitter_ms.observe(q.jitter_ms.max(0.0));
    }
}

static LEGS: LazyLock<LegHistograms> = LazyLock::new(LegHistograms::new);

/// The process's histograms.
pub fn leg_histograms() -> &'static LegHistograms {
    &LEGS
}

/// Count one leg of a relay that stopped.
pub(super) fn observe(q: &LegQuality) {
    LEGS.observe(q);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leg_without_rtp_is_not_counted_and_one_with_loss_is() {
        let h = LegHistograms::new();
        h.observe(&LegQuality::default());
        h.observe(&LegQuality {
            received: 990,
            lost: 10,
            jitter_ms: 3.5,
            ..LegQuality::default()
        });
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register("loss", "l", h.loss_fraction.clone());
        registry.register("jitter_ms", "j", h.jitter_ms.clone());
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
        for line in [
            "loss_count 1",
            "loss_sum 0.01",
            "loss_bucket{le=\"0.005\"} 0",
            "loss_bucket{le=\"0.01\"} 1",
            "jitter_ms_bucket{le=\"2.0\"} 0",
            "jitter_ms_bucket{le=\"5.0\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}
