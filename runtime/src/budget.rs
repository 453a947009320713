//! The budget of bytes a receiver holds in bodies it has not verified yet.
//!
//! Anybody can send a body; only a signature says it was worth holding. The budget
//! bounds what unsigned senders can make the process hold, and shares it so that no
//! one sender can take it all:
//!
//! - **one pool**, [`unverified_bytes`](crate::ReceiverBuilder::unverified_bytes)
//!   (64 MiB), of which
//! - **a reserve for small bodies** (a quarter): a body is charged to the general part
//!   while there is room, and a body of at most [`SMALL_BODY`] (64 KiB: most webhooks)
//!   may go on in the reserve when the general part is full, so large stalled uploads
//!   cannot keep ordinary deliveries out;
//! - **a share per peer**, [`unverified_bytes_per_peer`](crate::ReceiverBuilder::unverified_bytes_per_peer)
//!   (an eighth of the pool, at least the body limit): the bytes held for one address
//!   (an IPv6 /64) are counted together. The peer is the [`ClientAddr`] in the request's
//!   extensions, which `hookroute::axum::serve` puts there;
//!   a request without one (another server, a proxy in front) is not counted per peer.
//!
//! A request whose next bytes would go past its share or the pool is answered 503 at
//! once and its bytes are let go.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, PoisonError};

use tokio::sync::Semaphore;
#[cfg(feature = "tower")]
use tokio::sync::SemaphorePermit;

/// The largest body the reserve of the unverified-bytes budget takes (64 KiB).
pub const SMALL_BODY: usize = 64 * 1024;

/// The address of the client that sent a request: put it in the request's extensions
/// (`request.extensions_mut().insert(ClientAddr(peer))`) for the receiver to count the
/// [unverified bytes](crate::ReceiverBuilder::unverified_bytes_per_peer) each client
/// holds. `hookroute::axum::serve` does; behind a proxy,
/// every request has the proxy's address, so leave it out there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

/// The unit a share is counted in: an IPv4 address, or the /64 network of an IPv6
/// one (one host is given a whole /64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Peer {
    V4(u32),
    V6(u64),
}

impl Peer {
    pub(crate) fn of(address: IpAddr) -> Self {
        match address {
            IpAddr::V4(v4) => Self::V4(u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::V4(u32::from(v4)),
                None => Self::V6((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

/// The bytes held in bodies not yet verified, across the requests to one receiver (and
/// its clones). See the [module](self).
#[derive(Debug)]
pub struct UnverifiedBudget {
    total: usize,
    general: Semaphore,
    reserve: Semaphore,
    per_peer: usize,
    peers: Mutex<HashMap<Peer, usize>>,
}

impl UnverifiedBudget {
    pub(crate) fn new(total: usize, per_peer: usize) -> Self {
        let total = total.min(Semaphore::MAX_PERMITS);
        let reserve = total / 4;
        Self {
            total,
            general: Semaphore::new(total - reserve),
            reserve: Semaphore::new(reserve),
            per_peer,
            peers: Mutex::default(),
        }
    }

    /// The whole budget, in bytes.
    pub fn total(&self) -> usize {
        self.total
    }

    /// How many bytes may still be held, reserve included.
    pub fn available(&self) -> usize {
        self.general.available_permits() + self.reserve.available_permits()
    }

    /// How many bytes one client may hold at once.
    pub fn per_peer(&self) -> usize {
        self.per_peer
    }

    /// How many bytes the client at `address` holds now.
    pub fn held_by(&self, address: IpAddr) -> usize {
        self.peers.lock().unwrap_or_else(PoisonError::into_inner).get(&Peer::of(address)).copied().unwrap_or(0)
    }

    #[cfg(feature = "tower")]
    /// Starts holding one request's body, counted against `client`'s share if known.
    pub(crate) fn hold(&self, client: Option<&ClientAddr>) -> Held<'_> {
        Held {
            budget: self,
            peer: client.map(|client| Peer::of(client.0.ip())),
            peer_bytes: 0,
            general: None,
            reserve: None,
        }
    }
}

/// What one request's body holds of the budget; let go when dropped.
#[cfg(feature = "tower")]
#[derive(Debug)]
pub(crate) struct Held<'a> {
    budget: &'a UnverifiedBudget,
    peer: Option<Peer>,
    peer_bytes: usize,
    general: Option<SemaphorePermit<'a>>,
    reserve: Option<SemaphorePermit<'a>>,
}

#[cfg(feature = "tower")]
impl Held<'_> {
    /// Takes `bytes` more, the body being `body` bytes long with them. False when they
    /// would go past the client's share or the pool (nothing more is taken then). A
    /// body `whole` with them is not waited for again: a client cannot hold its bytes
    /// by stalling it, so they are not counted in its share (no lock taken).
    pub(crate) fn take(&mut self, bytes: usize, body: usize, whole: bool) -> bool {
        let Ok(count) = u32::try_from(bytes) else { return false };
        if let Some(peer) = self.peer.filter(|_| !whole) {
            let mut peers = self.budget.peers.lock().unwrap_or_else(PoisonError::into_inner);
            let held = peers.entry(peer).or_insert(0);
            if held.saturating_add(bytes) > self.budget.per_peer {
                if *held == 0 {
                    peers.remove(&peer);
                }
                return false;
            }
            *held += bytes;
            self.peer_bytes += bytes;
        }
        let permit = match self.budget.general.try_acquire_many(count) {
            Ok(permit) => Some((permit, false)),
            Err(_) if body <= SMALL_BODY => {
                self.budget.reserve.try_acquire_many(count).ok().map(|permit| (permit, true))
            }
            Err(_) => None,
        };
        let Some((permit, reserved)) = permit else {
            if self.peer.is_some() && !whole {
                self.give_back_peer(bytes);
            }
            return false;
        };
        let slot = if reserved { &mut self.reserve } else { &mut self.general };
        match slot {
            Some(held) => held.merge(permit),
            None => *slot = Some(permit),
        }
        true
    }

    fn give_back_peer(&mut self, bytes: usize) {
        let Some(peer) = self.peer else { return };
        if bytes == 0 {
            return;
        }
        self.peer_bytes -= bytes;
        let mut peers = self.budget.peers.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(held) = peers.get_mut(&peer) {
            *held = held.saturating_sub(bytes);
            if *held == 0 {
                peers.remove(&peer);
            }
        }
    }
}

#[cfg(feature = "tower")]
impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.give_back_peer(self.peer_bytes);
    }
}

#[cfg(all(test, feature = "tower"))]
mod tests {
    use super::*;

    fn client(address: &str) -> ClientAddr {
        ClientAddr(SocketAddr::new(address.parse().expect("an address"), 1234))
    }

    #[test]
    fn one_peer_holds_at_most_its_share_and_others_still_get_in() {
        let budget = UnverifiedBudget::new(1000, 300);
        let attacker = client("10.0.0.1");
        let mut held = budget.hold(Some(&attacker));
        assert!(held.take(300, 300_000, false));
        let mut more = budget.hold(Some(&attacker));
        assert!(!more.take(1, 300_000, false), "past the share");
        assert_eq!(budget.held_by(attacker.0.ip()), 300);
        let mut other = budget.hold(Some(&client("10.0.0.2")));
        assert!(other.take(300, 300_000, false));
        drop(held);
        assert_eq!(budget.held_by(attacker.0.ip()), 0);
        assert!(more.take(1, 300_000, false), "let go when dropped");
    }

    #[test]
    fn the_reserve_takes_small_bodies_only() {
        let budget = UnverifiedBudget::new(400 * 1024, usize::MAX);
        let mut large = budget.hold(None);
        assert!(large.take(300 * 1024, 300 * 1024, false), "the general part");
        let mut next_large = budget.hold(None);
        assert!(!next_large.take(70 * 1024, 70 * 1024, false), "a large body does not go into the reserve");
        let mut small = budget.hold(None);
        assert!(small.take(10 * 1024, 10 * 1024, false), "a small one does");
        assert_eq!(budget.available(), 90 * 1024);
        drop(small);
        drop(large);
        assert_eq!(budget.available(), 400 * 1024);
    }

    #[test]
    fn an_ipv6_client_is_counted_by_its_slash_64() {
        let budget = UnverifiedBudget::new(1000, 300);
        let mut one = budget.hold(Some(&client("2001:db8::1")));
        assert!(one.take(300, 300, false));
        let mut same_network = budget.hold(Some(&client("2001:db8::ffff:1")));
        assert!(!same_network.take(1, 1, false));
        let mut mapped = budget.hold(Some(&client("::ffff:10.0.0.1")));
        assert!(mapped.take(1, 1, false));
        assert_eq!(budget.held_by("10.0.0.1".parse().unwrap()), 1);
    }
}
