//! The live MySQL sessions as `KILL` names them. A session answers to two ids: the
//! connection id the gateway's handshake gave the client (`mysql_thread_id()`, what the
//! `mariadb` client's Ctrl-C and Connector/J's timers send; from `FIRST_ID` up, so it never
//! looks like a server's) and the upstream server's thread id (`CONNECTION_ID()`,
//! `SHOW PROCESSLIST`), which is unique only within one resource.

use std::sync::atomic::{AtomicU32, Ordering};

use dashmap::DashMap;

use crate::access::{KillParty, Permit, may_kill};

/// The first connection id the gateway hands out. Servers count theirs up from 1; ids
/// from here on are the gateway's.
pub const FIRST_ID: u32 = 1 << 30;

/// A session as `KILL` sees it: whose it is, where it runs upstream, and the permit that
/// lets a control session log in beside it to end its statement.
#[derive(Clone, Debug)]
pub struct Conn {
    pub party: KillParty,
    pub thread_id: u32,
    pub permit: Permit,
}

/// Why a `KILL` names nothing it may reach.
#[derive(Debug, PartialEq, Eq)]
pub enum Miss {
    /// No such session, or not the caller's: the server's "Unknown thread id".
    Unknown,
    /// A control session named a server thread id that two of the caller's sessions on
    /// different resources have.
    Ambiguous,
}

#[derive(Default)]
pub struct Conns {
    next: AtomicU32,
    live: DashMap<u32, Conn>,
}

impl Conns {
    /// A fresh gateway connection id, `FIRST_ID` and up (wrapping back to it).
    pub fn next_id(&self) -> u32 {
        FIRST_ID | (self.next.fetch_add(1, Ordering::Relaxed) & (FIRST_ID - 1))
    }

    pub fn insert(&self, id: u32, conn: Conn) {
        self.live.insert(id, conn);
    }

    pub fn get(&self, id: u32) -> Option<Conn> {
        self.live.get(&id).map(|c| c.clone())
    }

    pub fn remove(&self, id: u32) {
        self.live.remove(&id);
    }

    /// The session `id` names for `killer`: by the gateway's connection id, else by the
    /// server's thread id on the killer's resource (a control session: on any resource,
    /// if only one of the sessions it may reach has that id).
    pub fn target(&self, id: u32, killer: &KillParty) -> Result<Conn, Miss> {
        if id >= FIRST_ID {
            return self
                .live
                .get(&id)
                .filter(|c| may_kill(killer, &c.party))
                .map(|c| c.clone())
                .ok_or(Miss::Unknown);
        }
        let mut found = self
            .live
            .iter()
            .filter(|c| c.thread_id == id && may_kill(killer, &c.party))
            .map(|c| c.clone());
        match (found.next(), found.next()) {
            (Some(c), None) => Ok(c),
            (None, _) => Err(Miss::Unknown),
            (Some(_), Some(_)) => Err(Miss::Ambiguous),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_ids_start_above_any_servers_and_wrap_within_their_range() {
        let conns = Conns::default();
        assert_eq!(conns.next_id(), FIRST_ID);
        assert_eq!(conns.next_id(), FIRST_ID + 1);
        conns.next.store(u32::MAX, Ordering::Relaxed);
        assert_eq!(
            conns.next_id(),
            i32::MAX as u32,
            "positive as a signed id too"
        );
        assert_eq!(conns.next_id(), FIRST_ID);
    }
}
