//! What every listener (PostgreSQL, MySQL, the admin API) holds to: a cap on its
//! connections and on each client address's, so one flood cannot take the process's file
//! descriptors from the others; and the process's descriptor budget, raised to the hard
//! limit at start, which the caps must fit in with a reserve for the store, the log and
//! the upstream connections.

use std::net::IpAddr;
use std::sync::Arc;

use dashmap::DashMap;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::Limits;

/// Descriptors kept for everything that is not a client connection's: the store, the
/// monitoring log, listeners, kept upstream connections, DNS.
const RESERVE: u64 = 256;

/// One listener's caps.
pub struct Caps {
    total: Arc<Semaphore>,
    per_address: Arc<DashMap<IpAddr, usize>>,
    per_address_max: usize,
}

/// A connection's place under the caps; dropping it frees the place.
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    addr: IpAddr,
    per_address: Arc<DashMap<IpAddr, usize>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let gone = match self.per_address.get_mut(&self.addr) {
            Some(mut n) => {
                *n = n.saturating_sub(1);
                *n == 0
            }
            None => false,
        };
        if gone {
            self.per_address.remove_if(&self.addr, |_, n| *n == 0);
        }
    }
}

impl Caps {
    pub fn new(total: usize, per_address: usize) -> Caps {
        Caps {
            total: Arc::new(Semaphore::new(total)),
            per_address: Arc::default(),
            per_address_max: per_address,
        }
    }

    /// A place for a connection from `addr`, or `None` when the listener or that address
    /// is at its cap.
    pub fn admit(&self, addr: IpAddr) -> Option<Slot> {
        let permit = Arc::clone(&self.total).try_acquire_owned().ok()?;
        let mut n = self.per_address.entry(addr).or_insert(0);
        if *n >= self.per_address_max {
            return None;
        }
        *n += 1;
        drop(n);
        Some(Slot {
            _permit: permit,
            addr,
            per_address: Arc::clone(&self.per_address),
        })
    }
}

/// Each listener's cap, fitted into the descriptors the process may open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// PostgreSQL and MySQL listeners, each (a session holds two descriptors).
    pub sessions: usize,
    pub admin: usize,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and returns it (`None` if it cannot
/// be read).
pub fn raise_nofile() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => Some(n),
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise the open-files limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE)
                .ok()
                .map(|(soft, _)| soft)
        }
    }
}

/// The caps of `limits`, lowered (proportionally, with a warning) when two session
/// listeners at their cap, the admin API at its cap and the reserve would need more
/// descriptors than `nofile`.
pub fn budget(limits: &Limits, nofile: Option<u64>) -> Budget {
    let asked = Budget {
        sessions: limits.max_connections,
        admin: limits.max_admin_connections,
    };
    let Some(nofile) = nofile else {
        return asked;
    };
    let needed = 4 * asked.sessions as u64 + asked.admin as u64 + RESERVE;
    if needed <= nofile {
        return asked;
    }
    let room = nofile.saturating_sub(RESERVE);
    let scale = |n: usize| ((n as u64 * room) / (needed - RESERVE)).max(1) as usize;
    let fitted = Budget {
        sessions: scale(asked.sessions),
        admin: scale(asked.admin),
    };
    tracing::warn!(
        open_files = nofile,
        max_connections = fitted.sessions,
        max_admin_connections = fitted.admin,
        "the caps were lowered to fit the open-files limit (raise it with ulimit -n, or lower limits.max_connections)"
    );
    fitted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_and_a_listener_each_have_their_cap() {
        let caps = Caps::new(3, 2);
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let b: IpAddr = "10.0.0.2".parse().expect("ip");
        let s1 = caps.admit(a).expect("first");
        let _s2 = caps.admit(a).expect("second");
        assert!(caps.admit(a).is_none(), "per address");
        let _s3 = caps.admit(b).expect("another address");
        assert!(caps.admit(b).is_none(), "the listener is full");
        drop(s1);
        assert!(caps.admit(a).is_some(), "a place freed is a place again");
    }

    #[test]
    fn caps_shrink_to_fit_the_descriptor_limit() {
        let limits = Limits {
            max_connections: 10_000,
            max_admin_connections: 256,
            ..Limits::for_tests()
        };
        assert_eq!(
            budget(&limits, Some(1_000_000)),
            Budget {
                sessions: 10_000,
                admin: 256
            }
        );
        let b = budget(&limits, Some(1024));
        assert!(4 * b.sessions + b.admin + RESERVE as usize <= 1024, "{b:?}");
        assert!(b.sessions > 0 && b.admin > 0);
    }
}
