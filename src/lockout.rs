//! Failed-login throttling against password guessing. Every failed login counts against the
//! claimed user name (whether or not it exists, so a lockout reveals nothing) and against
//! the client's address; past `limits.failed_logins_per_user` / `_per_address` a minute,
//! that user or address is locked out for `limits.lockout`: its logins are refused
//! with the same generic message as a wrong password, on both protocols and the admin API,
//! until the lockout expires or an admin clears it. Counted per instance.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::Serialize;

use crate::config::Limits;

/// What a lockout applies to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    User(String),
    Address(IpAddr),
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Subject::User(u) => write!(f, "user {u}"),
            Subject::Address(a) => write!(f, "address {a}"),
        }
    }
}

/// One active lockout, as the API lists it.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct LockView {
    /// `user` or `address`.
    pub kind: String,
    pub subject: String,
    /// Seconds until it expires.
    pub remaining_s: u64,
}

#[derive(Debug)]
pub struct Lockout {
    per_user: Option<DefaultKeyedRateLimiter<String>>,
    per_address: Option<DefaultKeyedRateLimiter<IpAddr>>,
    locked: DashMap<Subject, Instant>,
    duration: Duration,
}

fn limiter<K: std::hash::Hash + Eq + Clone>(per_minute: u32) -> Option<DefaultKeyedRateLimiter<K>> {
    NonZeroU32::new(per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n)))
}

impl Lockout {
    pub fn new(limits: &Limits) -> Lockout {
        Lockout {
            per_user: limiter(limits.failed_logins_per_user),
            per_address: limiter(limits.failed_logins_per_address),
            locked: DashMap::new(),
            duration: limits.lockout,
        }
    }

    /// Refuses a login attempt while the user (none when empty) or the address is locked
    /// out; the error is the reason for the monitoring log.
    pub fn check(&self, user: &str, addr: IpAddr) -> Result<(), String> {
        let user = (!user.is_empty()).then(|| Subject::User(user.to_owned()));
        for subject in user.into_iter().chain([Subject::Address(addr)]) {
            if let Some(until) = self.locked.get(&subject).map(|u| *u) {
                if until > Instant::now() {
                    return Err(format!(
                        "{subject} is locked out after repeated failed logins ({}s left)",
                        until.saturating_duration_since(Instant::now()).as_secs()
                    ));
                }
                self.locked.remove(&subject);
            }
        }
        Ok(())
    }

    /// Counts a failed login (`user` empty when none was claimed, as for a bad API token).
    /// Returns what this failure locked out, for the log.
    pub fn failed(&self, user: &str, addr: IpAddr) -> Vec<Subject> {
        let mut locked = Vec::new();
        if let Some(l) = &self.per_user
            && !user.is_empty()
            && l.check_key(&user.to_owned()).is_err()
        {
            locked.push(Subject::User(user.to_owned()));
        }
        if let Some(l) = &self.per_address
            && l.check_key(&addr).is_err()
        {
            locked.push(Subject::Address(addr));
        }
        let until = Instant::now() + self.duration;
        for s in &locked {
            if self.locked.insert(s.clone(), until).is_none() {
                tracing::warn!(subject = %s, seconds = self.duration.as_secs(), "locked out after repeated failed logins");
            }
        }
        locked
    }

    /// The active lockouts.
    pub fn list(&self) -> Vec<LockView> {
        let now = Instant::now();
        let mut out: Vec<LockView> = self
            .locked
            .iter()
            .filter(|e| *e.value() > now)
            .map(|e| {
                let (kind, subject) = match e.key() {
                    Subject::User(u) => ("user", u.clone()),
                    Subject::Address(a) => ("address", a.to_string()),
                };
                LockView {
                    kind: kind.to_owned(),
                    subject,
                    remaining_s: e.value().saturating_duration_since(now).as_secs(),
                }
            })
            .collect();
        out.sort_by(|a, b| (&a.kind, &a.subject).cmp(&(&b.kind, &b.subject)));
        out
    }

    /// Lifts a lockout. The failures behind it keep replenishing at the quota's rate, so
    /// a burst of new failures right after locks again. False when there was none.
    pub fn clear(&self, subject: &Subject) -> bool {
        self.locked.remove(subject).is_some()
    }

    /// Drops expired lockouts and idle limiter state (called periodically).
    pub fn sweep(&self) {
        let now = Instant::now();
        self.locked.retain(|_, until| *until > now);
        if let Some(l) = &self.per_user {
            l.retain_recent();
        }
        if let Some(l) = &self.per_address {
            l.retain_recent();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_user: u32, per_address: u32) -> Limits {
        Limits {
            failed_logins_per_user: per_user,
            failed_logins_per_address: per_address,
            lockout: Duration::from_secs(60),
            max_connections: 10,
            ..Limits::for_tests()
        }
    }

    #[test]
    fn a_user_is_locked_out_past_the_quota_and_an_admin_can_clear_it() {
        let l = Lockout::new(&limits(3, 100));
        let addr = IpAddr::from([10, 0, 0, 1]);
        for _ in 0..3 {
            assert!(l.failed("alice", addr).is_empty());
            assert!(l.check("alice", addr).is_ok());
        }
        assert_eq!(l.failed("alice", addr), vec![Subject::User("alice".into())]);
        assert!(l.check("alice", addr).is_err());
        assert!(l.check("bob", addr).is_ok(), "other users are not affected");
        assert_eq!(l.list().len(), 1);
        assert!(l.clear(&Subject::User("alice".into())));
        assert!(l.check("alice", addr).is_ok());
        assert!(l.list().is_empty());
    }

    #[test]
    fn an_address_guessing_many_users_is_locked_out() {
        let l = Lockout::new(&limits(100, 5));
        let addr = IpAddr::from([192, 0, 2, 7]);
        for i in 0..5 {
            assert!(l.failed(&format!("user{i}"), addr).is_empty());
        }
        assert_eq!(l.failed("user9", addr), vec![Subject::Address(addr)]);
        assert!(l.check("someone-else", addr).is_err());
        assert!(
            l.check("someone-else", IpAddr::from([192, 0, 2, 8]))
                .is_ok()
        );
    }

    #[test]
    fn zero_disables_a_limit() {
        let l = Lockout::new(&limits(0, 0));
        let addr = IpAddr::from([192, 0, 2, 9]);
        for _ in 0..1000 {
            assert!(l.failed("alice", addr).is_empty());
        }
        assert!(l.check("alice", addr).is_ok());
    }
}
