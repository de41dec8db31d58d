//! Agent phone registration (RFC 3261 §10), for Art. 46 and 88: at shift start the
//! phone must be in the waiting state, and a phone that drops off is reported at once.
//! A REGISTER for an agent's extension is remembered until its final response; a 2xx
//! makes the phone registered until the granted expiry (the 2xx's Contact `expires` or
//! Expires header, else the request's), `Expires: 0` unregisters it, and an expiry that
//! passes without a refresh makes it expired. Challenges (401/407) change nothing.

use foldhash::HashMap;
use std::net::SocketAddr;

use crate::time::CaptureTime;

/// The registration state of one agent's phone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegState {
    Registered {
        until: CaptureTime,
    },
    /// The phone sent `Expires: 0` (logged off, shut down cleanly).
    Unregistered,
    /// The registration ran out without a refresh (phone off, network down).
    Expired,
}

impl RegState {
    pub fn as_str(self) -> &'static str {
        match self {
            RegState::Registered { .. } => "registered",
            RegState::Unregistered => "unregistered",
            RegState::Expired => "expired",
        }
    }

    pub fn is_online(self) -> bool {
        matches!(self, RegState::Registered { .. })
    }
}

/// A change of an agent's registration state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegChange {
    pub at: CaptureTime,
    pub agent: String,
    pub state: RegState,
    pub contact: Option<SocketAddr>,
}

struct Pending {
    agent: String,
    requested_s: Option<u32>,
    at: CaptureTime,
    phone: SocketAddr,
}

/// Registrations of agents' phones, bounded.
#[derive(Default)]
pub struct Registrations {
    pending: HashMap<(Vec<u8>, u32), Pending>,
    pending_order: std::collections::VecDeque<(Vec<u8>, u32)>,
    state: HashMap<String, (RegState, u64)>,
}

/// REGISTER transactions waiting for a final response.
const MAX_PENDING: usize = 4096;
/// Expiry granted beyond this is clamped (a week): a bad value cannot pin the state.
const MAX_EXPIRES_S: u32 = 7 * 24 * 3600;

impl Registrations {
    /// A REGISTER request for `agent` sent from `phone`.
    pub fn on_request(
        &mut self,
        call_id: &[u8],
        cseq: u32,
        agent: String,
        requested_s: Option<u32>,
        at: CaptureTime,
        phone: SocketAddr,
    ) {
        let key = (call_id.to_vec(), cseq);
        if self.pending.contains_key(&key) {
            return; // a retransmission or a copy
        }
        if self.pending.len() >= MAX_PENDING {
            if let Some(old) = self.pending_order.pop_front() {
                self.pending.remove(&old);
            }
        }
        self.pending.insert(
            key.clone(),
            Pending {
                agent,
                requested_s,
                at,
                phone,
            },
        );
        self.pending_order.push_back(key);
    }

    /// A final response to a REGISTER. Returns the change, if the state changed, and
    /// the generation of an expiry deadline to schedule at `until`.
    pub fn on_response(
        &mut self,
        call_id: &[u8],
        cseq: u32,
        status: u16,
        granted_s: Option<u32>,
        at: CaptureTime,
    ) -> Option<(RegChange, u64)> {
        if status < 200 || status == 401 || status == 407 {
            return None;
        }
        let p = self.pending.remove(&(call_id.to_vec(), cseq))?;
        if !(200..300).contains(&status) {
            return None;
        }
        let at = at.max(p.at);
        let expires = granted_s
            .or(p.requested_s)
            .unwrap_or(3600)
            .min(MAX_EXPIRES_S);
        let state = if expires == 0 {
            RegState::Unregistered
        } else {
            RegState::Registered {
                until: at.plus_millis(u64::from(expires) * 1000),
            }
        };
        let entry = self.state.entry(p.agent.clone()).or_insert((state, 0));
        entry.0 = state;
        entry.1 += 1;
        Some((
            RegChange {
                at,
                agent: p.agent,
                state,
                contact: Some(p.phone),
            },
            entry.1,
        ))
    }

    /// An expiry deadline of generation `gen` for `agent` fired at `now`.
    pub fn on_expiry(&mut self, agent: &str, gen: u64, now: CaptureTime) -> Option<RegChange> {
        let entry = self.state.get_mut(agent)?;
        match entry.0 {
            RegState::Registered { until } if entry.1 == gen && now >= until => {
                entry.0 = RegState::Expired;
                Some(RegChange {
                    at: until,
                    agent: agent.to_string(),
                    state: RegState::Expired,
                    contact: None,
                })
            }
            _ => None,
        }
    }

    pub fn state_of(&self, agent: &str) -> Option<RegState> {
        self.state.get(agent).map(|e| e.0)
    }

    /// Every agent seen registering, with its state.
    pub fn all(&self) -> impl Iterator<Item = (&str, RegState)> {
        self.state.iter().map(|(a, e)| (a.as_str(), e.0))
    }
}

/// The expiry a REGISTER or its 2xx asks for: the `expires` parameter of the first
/// Contact, else the Expires header (RFC 3261 §10.2.1.1).
pub fn expires_of(contact_param: Option<&[u8]>, expires_header: Option<&[u8]>) -> Option<u32> {
    let parse = |b: &[u8]| -> Option<u32> {
        let s = std::str::from_utf8(b.trim_ascii()).ok()?;
        // RFC 3261 §20.19: values beyond 2^32-1 are taken as 2^32-1.
        s.parse::<u64>()
            .ok()
            .map(|v| v.min(u64::from(u32::MAX)) as u32)
    };
    contact_param
        .and_then(parse)
        .or_else(|| expires_header.and_then(parse))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phone() -> SocketAddr {
        "10.0.1.1:5060".parse().unwrap()
    }

    #[test]
    fn register_refresh_expire_and_unregister() {
        let mut r = Registrations::default();
        let t0 = CaptureTime::from_millis(1_000);
        r.on_request(b"reg1", 1, "8001".into(), Some(3600), t0, phone());
        assert!(
            r.on_response(b"reg1", 1, 401, None, t0).is_none(),
            "a challenge changes nothing"
        );
        r.on_request(b"reg1", 2, "8001".into(), Some(3600), t0, phone());
        let (c, gen1) = r.on_response(b"reg1", 2, 200, Some(120), t0).unwrap();
        assert_eq!(
            c.state,
            RegState::Registered {
                until: CaptureTime::from_millis(121_000)
            }
        );
        // A refresh before expiry makes the first deadline stale.
        r.on_request(
            b"reg1",
            3,
            "8001".into(),
            Some(120),
            CaptureTime::from_millis(60_000),
            phone(),
        );
        let (_, gen2) = r
            .on_response(b"reg1", 3, 200, Some(120), CaptureTime::from_millis(60_000))
            .unwrap();
        assert!(r
            .on_expiry("8001", gen1, CaptureTime::from_millis(121_000))
            .is_none());
        let e = r
            .on_expiry("8001", gen2, CaptureTime::from_millis(180_000))
            .unwrap();
        assert_eq!(e.state, RegState::Expired);
        assert_eq!(e.at, CaptureTime::from_millis(180_000));
        r.on_request(
            b"reg1",
            4,
            "8001".into(),
            Some(0),
            CaptureTime::from_millis(200_000),
            phone(),
        );
        let (c, _) = r
            .on_response(b"reg1", 4, 200, None, CaptureTime::from_millis(200_000))
            .unwrap();
        assert_eq!(c.state, RegState::Unregistered);
        assert_eq!(r.state_of("8001"), Some(RegState::Unregistered));
    }

    #[test]
    fn expires_values() {
        assert_eq!(expires_of(Some(b"60"), Some(b"3600")), Some(60));
        assert_eq!(expires_of(None, Some(b" 3600 ")), Some(3600));
        assert_eq!(expires_of(None, Some(b"99999999999999")), Some(u32::MAX));
        assert_eq!(expires_of(Some(b"x"), None), None);
    }
}
