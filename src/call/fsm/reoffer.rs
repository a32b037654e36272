//! Re-INVITEs in a connected call (RFC 3261 §14, RFC 3264 §8): one side's
//! offer is reflected to the other with the same direction and answered
//! with what the other side agreed; the agent's own hold is answered
//! locally with music on hold to the caller; an offerless re-INVITE gets
//! our current offer; a re-INVITE while one is pending gets 491 or 500
//! (RFC 3261 §14.2).

use super::{Fact, Fsm, Media, Now, Output, ReqId, Side, TxId};
use crate::media::sdp::{self, Direction, LocalMedia, SessionDescription};

impl Fsm {
    /// A re-INVITE from `side` with `body`.
    pub(super) fn reoffer(&mut self, now: Now, side: Side, tx: TxId, body: &[u8]) {
        if let Some(pending) = &self.reflecting {
            if pending.from == side {
                // Our answer to its last re-INVITE is still out (§14.2):
                // 500 with a Retry-After of 0–10 s.
                let secs = (now.unix_millis() % 10).to_string();
                self.push(Output::Respond {
                    tx,
                    code: 500,
                    headers: vec![("Retry-After".into(), secs)],
                    sdp: None,
                });
            } else {
                // Glare: our re-INVITE to this side is still out (§14.2).
                self.respond(tx, 491, None);
            }
            return;
        }
        if body.is_empty() {
            // Offerless re-INVITE (RFC 3261 §14.2): offer our current SDP.
            self.locals(side).session_version += 1;
            let offer = self.current_offer(side).to_string().into_bytes();
            self.respond(tx, 200, Some(offer));
            return;
        }
        let text = String::from_utf8_lossy(body);
        let offer = match SessionDescription::parse(&text) {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(error = %e, "bad SDP in re-INVITE: 488");
                self.respond(tx, 488, None);
                return;
            }
        };
        if side == Side::B && offer.is_hold() != self.held {
            self.held = offer.is_hold();
            self.push(Output::Fact(if self.held {
                Fact::Held
            } else {
                Fact::Resumed
            }));
        }
        // The agent holds: hotline answers the hold itself and plays music
        // to the caller (who never sees a re-INVITE); resuming stops it.
        if side == Side::B && self.music_loaded && (offer.is_hold() || self.music_on_hold) {
            return self.agent_hold(tx, &offer);
        }
        self.move_remote(side, &offer);
        let on_hold = offer.is_hold();
        let offered = offer.audio_direction();
        self.push(Output::Media(Media::SetHold(on_hold)));
        tracing::info!(?side, direction = offered.as_str(), on_hold, "re-INVITE");

        // Reflect on the other leg with the same direction.
        let other = other(side);
        let theirs = self.locals(other);
        theirs.session_version += 1;
        theirs.direction = if offer
            .audio_endpoint()
            .is_some_and(|a| a.ip().is_unspecified())
        {
            // RFC 2543 hold: the holder neither sends nor wants media.
            Direction::SendOnly.intersect(offered)
        } else {
            offered
        };
        let forward = self.current_offer(other).to_string().into_bytes();
        // The other side may take its time: 100 Trying stops the asking
        // side's retransmissions (RFC 3261 §17.2.1).
        self.respond(tx, 100, None);
        let req = self.req();
        self.push(Output::Reinvite {
            side: other,
            req,
            sdp: forward,
        });
        self.reflecting = Some(super::Reflecting {
            from: side,
            tx,
            offer,
            req,
        });
    }

    /// The other side answered our reflected re-INVITE `req` (or did not):
    /// answer the side that asked with what was agreed.
    pub(super) fn reinvite_done(&mut self, req: ReqId, result: Result<(u16, Vec<u8>), String>) {
        let Some(pending) = self.reflecting.take_if(|p| p.req == req) else {
            return; // a late answer to a re-INVITE the call gave up
        };
        let offered = pending.offer.audio_direction();
        let other = other(pending.from);
        let agreed = match result {
            Ok((code, answer)) if (200..300).contains(&code) => {
                match SessionDescription::parse(&String::from_utf8_lossy(&answer)) {
                    Ok(ans) => {
                        self.move_remote(other, &ans);
                        // The answer to our re-offer may carry a new key.
                        let ours = self.current_offer(other);
                        if let Ok(neg) = sdp::read_answer(&ours, &ans) {
                            self.set_keys(other, &neg);
                        }
                        ans.audio_direction()
                    }
                    Err(_) => offered.reverse(),
                }
            }
            Ok((code, _)) => {
                tracing::warn!(
                    code,
                    "the other leg refused the re-INVITE; answering locally"
                );
                offered.reverse()
            }
            Err(e) => {
                tracing::warn!(error = %e, "re-INVITE to the other leg failed; answering locally");
                offered.reverse()
            }
        };
        let mine = self.locals(pending.from);
        mine.session_version += 1;
        mine.direction = agreed;
        let local = mine.clone();
        match sdp::negotiate_answer(&pending.offer, &local) {
            Ok((answer, neg)) => {
                self.set_keys(pending.from, &neg);
                let body = answer.to_string().into_bytes();
                if pending.from == Side::A {
                    self.a_answer = answer;
                }
                self.respond(pending.tx, 200, Some(body));
            }
            Err(e) => {
                tracing::warn!(error = %e, "re-INVITE offer not acceptable: 488");
                self.respond(pending.tx, 488, None);
            }
        }
    }

    /// The agent put the caller on hold (or resumed): music on hold to the
    /// caller while held; the agent gets our answer directly.
    fn agent_hold(&mut self, tx: TxId, offer: &SessionDescription) {
        self.move_remote(Side::B, offer);
        let hold = offer.is_hold();
        self.push(Output::Media(Media::MusicOnHold(hold)));
        if hold {
            tracing::info!("agent holds: music on hold to the caller");
        } else {
            tracing::info!("agent resumes");
        }
        self.music_on_hold = hold;
        self.agent_holds = hold;
        self.b_local.session_version += 1;
        self.b_local.direction = Direction::SendRecv;
        match sdp::negotiate_answer(offer, &self.b_local) {
            Ok((answer, neg)) => {
                self.set_keys(Side::B, &neg);
                self.respond(tx, 200, Some(answer.to_string().into_bytes()))
            }
            Err(e) => {
                tracing::warn!(error = %e, "hold offer not acceptable: 488");
                self.respond(tx, 488, None);
            }
        }
    }

    /// `side`'s RTP goes where its SDP says (unless it says 0.0.0.0).
    fn move_remote(&mut self, side: Side, sdp: &SessionDescription) {
        let Some(addr) = sdp.audio_endpoint().filter(|a| !a.ip().is_unspecified()) else {
            return;
        };
        let current = match side {
            Side::A => &mut self.a_remote,
            Side::B => &mut self.b_remote,
        };
        if *current != addr {
            *current = addr;
            self.push(Output::Media(Media::SetRemote { side, addr }));
        }
    }

    /// `side` settled on SRTP keys: its media uses them (a phone that
    /// rekeys in a re-INVITE is decrypted with its new key).
    fn set_keys(&mut self, side: Side, neg: &sdp::Negotiated) {
        if let Some(keys) = neg.srtp {
            self.push(Output::Media(Media::SetKeys { side, keys }));
        }
    }

    fn locals(&mut self, side: Side) -> &mut LocalMedia {
        match side {
            Side::A => &mut self.a_local,
            Side::B => &mut self.b_local,
        }
    }

    /// Our offer on `side` as it stands: its negotiated codec and
    /// telephone-event payload type only.
    fn current_offer(&self, side: Side) -> SessionDescription {
        let (format, mine) = match side {
            Side::A => (self.a_format, &self.a_local),
            Side::B => (self.b_format, &self.b_local),
        };
        let mut o = sdp::build_offer(&LocalMedia {
            codecs: vec![format.codec],
            telephone_event: format.telephone_event.is_some(),
            ..mine.clone()
        });
        if let Some(pt) = format.telephone_event {
            crate::call::retarget_telephone_event(&mut o, pt);
        }
        o
    }
}

/// The other side.
pub(super) fn other(side: Side) -> Side {
    match side {
        Side::A => Side::B,
        Side::B => Side::A,
    }
}
