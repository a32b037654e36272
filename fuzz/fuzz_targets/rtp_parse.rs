//! Fuzz target: the RTP header parser and the RTCP compound parser must
//! never panic; what parses must be self-consistent, and RTP/RTCP we build
//! from parsed values must parse back to the same values.
#![no_main]

use hotline::media::rtp::{
    is_rtcp, parse_rtcp, write_rr, write_rtp, write_sr, RtcpReport, RtpHeader,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = is_rtcp(data);

    if let Ok(header) = RtpHeader::parse(data) {
        // Payload, CSRCs, extension and padding all lie inside the datagram.
        let ext_len = header.extension.map_or(0, |e| 4 + e.data.len());
        assert!(
            12 + 4 * header.csrc_count() + ext_len + header.payload.len()
                + usize::from(header.padding)
                == data.len()
        );
        assert_eq!(header.csrcs().count(), header.csrc_count());
        // Re-writing the fixed header + payload round-trips.
        let mut buf = vec![0u8; 12 + header.payload.len()];
        let n = write_rtp(&mut buf, &header.fields(), header.payload).expect("buffer sized");
        let again = RtpHeader::parse(&buf[..n]).expect("written RTP must parse");
        assert_eq!(again.fields(), header.fields());
        assert_eq!(again.payload, header.payload);
    }

    if let Ok(reports) = parse_rtcp(data) {
        let mut buf = vec![0u8; 1500];
        for report in reports {
            let n = match &report {
                RtcpReport::Sender { ssrc, info, blocks } => write_sr(&mut buf, *ssrc, info, blocks),
                RtcpReport::Receiver { ssrc, blocks } => write_rr(&mut buf, *ssrc, blocks),
            }
            .expect("31 blocks at most fit 1500 bytes");
            let again = parse_rtcp(&buf[..n]).expect("written RTCP must parse");
            assert_eq!(again, vec![report]);
        }
    }
});
