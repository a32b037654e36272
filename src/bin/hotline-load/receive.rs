//! The receiving side: one small task per socket counts packets and
//! measures loss (RFC 3550 A.3), lateness against the stream's 20 ms grid
//! and transit from the moment the ticker sent each packet.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::sync::oneshot;

use super::shared::{Clock, RecvStats, SendTimes, Shared, LATE_SECONDS, PTIME};

/// Receive one leg's RTP until `stop` fires.
pub(crate) async fn receive(
    socket: Arc<UdpSocket>,
    mut stop: oneshot::Receiver<()>,
    shared: Arc<Shared>,
    clock: Clock,
    late_ns: i64,
) -> RecvStats {
    let mut st = RecvStats {
        streams: 1,
        ..Default::default()
    };
    let mut buf = [0u8; 1500];
    let mut ssrc: Option<u32> = None;
    let mut times: Option<Arc<SendTimes>> = None;
    // Extended sequence numbers.
    let mut last_seq: u16 = 0;
    let mut ext: i64 = 0;
    let mut base: i64 = 0;
    let mut highest: i64 = 0;
    // Grid anchor: arrival_ns - (ext - base) * 20 ms, the earliest seen.
    let mut anchor: i64 = 0;
    let ptime = PTIME.as_nanos() as i64;
    loop {
        let r = tokio::select! {
            biased;
            _ = &mut stop => break,
            r = socket.recv_from(&mut buf) => r,
        };
        let Ok((n, _)) = r else { continue };
        let now = clock.ns() as i64;
        if n < 12 || buf[0] >> 6 != 2 {
            st.not_rtp += 1;
            continue;
        }
        let seq = u16::from_be_bytes([buf[2], buf[3]]);
        let pkt_ssrc = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
        match ssrc {
            None => {
                ssrc = Some(pkt_ssrc);
                times = shared.send_times.get(&pkt_ssrc).map(|t| t.clone());
                last_seq = seq;
                ext = i64::from(seq);
                base = ext;
                highest = ext;
                anchor = now;
                st.received += 1;
            }
            Some(s) if s != pkt_ssrc => {
                st.foreign_ssrc += 1;
                continue;
            }
            Some(_) => {
                let delta = i64::from(seq.wrapping_sub(last_seq) as i16);
                let e = ext + delta;
                if delta > 0 {
                    last_seq = seq;
                    ext = e;
                }
                if e > highest {
                    // A gap counts as loss unless the packets arrive later.
                    highest = e;
                } else if e < highest {
                    st.out_of_order += 1;
                } else {
                    st.duplicates_or_old += 1;
                    continue;
                }
                st.received += 1;
                let slot = (e - base) * ptime;
                let offset = now - slot;
                if offset < anchor {
                    anchor = offset;
                } else {
                    let late = offset - anchor;
                    let ms = late as f64 / 1e6;
                    if ms > st.max_late_ms {
                        st.max_late_ms = ms;
                    }
                    if late > 5_000_000 {
                        st.late_5ms += 1;
                    }
                    if late > 10_000_000 {
                        st.late_10ms += 1;
                    }
                    if late > 40_000_000 {
                        st.late_40ms += 1;
                    }
                    if late > late_ns {
                        st.late += 1;
                        let sec = (now / 1_000_000_000) as usize;
                        if let Some(c) = shared.late_by_second.get(sec.min(LATE_SECONDS - 1)) {
                            c.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
        }
        if let Some(sent) = times.as_ref().and_then(|t| t.load(seq)) {
            let transit = (now - sent as i64).max(0);
            let ms = transit as f64 / 1e6;
            st.transit_samples += 1;
            st.transit_sum_ms += ms;
            if ms > st.max_transit_ms {
                st.max_transit_ms = ms;
            }
            if transit > late_ns {
                st.transit_over_late_ms += 1;
            }
        }
    }
    if ssrc.is_some() {
        st.expected = (highest - base + 1) as u64;
        st.lost = st.expected.saturating_sub(st.received);
    }
    st
}
