//! Failed-login throttling against password guessing. Every failed login counts against the
//! claimed user name (whether or not it exists, so a lockout reveals nothing) and against
//! the client's address; past `limits.failed_logins_per_user` / `_per_address` a minute,
//! that user or address is locked out for `limits.lockout`: its logins are refused
//! with the same generic message as a wrong password, on both protocols and the admin API,
//! until the lockout expires or an admin clears it. Counted per instance at once; with a
//! PostgreSQL store, also shared by every instance through it (`sync`, each second): the
//! failures on all instances in the current and previous minute count against the same
//! quota, and a lockout made (or cleared) on one holds on all — so N instances do not give
//! N times the attempts, give or take one second's worth.

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

/// A lockout in force here: until when, and whether the store has it (`sync`).
#[derive(Clone, Copy, Debug)]
struct Lock {
    until: Instant,
    shared: bool,
}

#[derive(Debug)]
pub struct Lockout {
    per_user: Option<DefaultKeyedRateLimiter<String>>,
    per_address: Option<DefaultKeyedRateLimiter<IpAddr>>,
    locked: DashMap<Subject, Lock>,
    duration: Duration,
    quotas: (u32, u32),
    /// Shared through the store: failures and clears since the last sync.
    sharing: std::sync::atomic::AtomicBool,
    pending: DashMap<Subject, i64>,
    cleared: std::sync::Mutex<Vec<Subject>>,
}

impl Subject {
    /// As the store keeps it: `user:NAME`, `address:IP`.
    fn key(&self) -> String {
        match self {
            Subject::User(u) => format!("user:{u}"),
            Subject::Address(a) => format!("address:{a}"),
        }
    }

    fn from_key(key: &str) -> Option<Subject> {
        match key.split_once(':')? {
            ("user", u) => Some(Subject::User(u.to_owned())),
            ("address", a) => a.parse().ok().map(Subject::Address),
            _ => None,
        }
    }
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
            quotas: (
                limits.failed_logins_per_user,
                limits.failed_logins_per_address,
            ),
            sharing: std::sync::atomic::AtomicBool::new(false),
            pending: DashMap::new(),
            cleared: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Shares failures and lockouts through the store from now on (`sync`).
    pub fn share(&self) {
        self.sharing
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    fn shared(&self) -> bool {
        self.sharing.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Refuses a login attempt while the user (none when empty) or the address is locked
    /// out; the error is the reason for the monitoring log.
    pub fn check(&self, user: &str, addr: IpAddr) -> Result<(), String> {
        let user = (!user.is_empty()).then(|| Subject::User(user.to_owned()));
        for subject in user.into_iter().chain([Subject::Address(addr)]) {
            if let Some(until) = self.locked.get(&subject).map(|l| l.until) {
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
        if self.shared() {
            let user = (!user.is_empty()).then(|| Subject::User(user.to_owned()));
            for s in user.into_iter().chain([Subject::Address(addr)]) {
                *self.pending.entry(s).or_default() += 1;
            }
        }
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
        for s in &locked {
            self.lock(s.clone());
        }
        locked
    }

    fn lock(&self, s: Subject) {
        let until = Instant::now() + self.duration;
        let lock = Lock {
            until,
            shared: false,
        };
        if self.locked.insert(s.clone(), lock).is_none() {
            tracing::warn!(subject = %s, seconds = self.duration.as_secs(), "locked out after repeated failed logins");
        }
    }

    /// The active lockouts.
    pub fn list(&self) -> Vec<LockView> {
        let now = Instant::now();
        let mut out: Vec<LockView> = self
            .locked
            .iter()
            .filter(|e| e.value().until > now)
            .map(|e| {
                let (kind, subject) = match e.key() {
                    Subject::User(u) => ("user", u.clone()),
                    Subject::Address(a) => ("address", a.to_string()),
                };
                LockView {
                    kind: kind.to_owned(),
                    subject,
                    remaining_s: e.value().until.saturating_duration_since(now).as_secs(),
                }
            })
            .collect();
        out.sort_by(|a, b| (&a.kind, &a.subject).cmp(&(&b.kind, &b.subject)));
        out
    }

    /// Lifts a lockout. The failures behind it keep replenishing at the quota's rate, so
    /// a burst of new failures right after locks again. False when there was none.
    pub fn clear(&self, subject: &Subject) -> bool {
        if self.shared()
            && let Ok(mut c) = self.cleared.lock()
        {
            c.push(subject.clone());
        }
        self.locked.remove(subject).is_some()
    }

    /// Drops expired lockouts and idle limiter state (called periodically).
    pub fn sweep(&self) {
        let now = Instant::now();
        self.locked.retain(|_, l| l.until > now);
        if let Some(l) = &self.per_user {
            l.retain_recent();
        }
        if let Some(l) = &self.per_address {
            l.retain_recent();
        }
    }
}

impl Lockout {
    /// One exchange with the store (each second when shared): this instance's failures,
    /// lockouts and clears go out; subjects over their quota across instances are locked;
    /// the lockouts in force everywhere come in, and those lifted elsewhere go.
    pub async fn sync(&self, store: &crate::store::Store) -> Result<(), crate::store::StoreError> {
        let cleared = self
            .cleared
            .lock()
            .map(|mut c| std::mem::take(&mut *c))
            .unwrap_or_default();
        for s in &cleared {
            store.clear_lockout(&s.key()).await?;
        }
        let keys: Vec<Subject> = self.pending.iter().map(|e| e.key().clone()).collect();
        let failures: Vec<(String, i64)> = keys
            .iter()
            .filter_map(|k| self.pending.remove(k).map(|(s, n)| (s.key(), n)))
            .collect();
        store.add_login_failures(&failures).await?;
        self.over_quota(store).await?;
        let unix = crate::clock::now();
        let now = Instant::now();
        let new: Vec<(String, i64)> = self
            .locked
            .iter_mut()
            .filter(|e| !e.shared)
            .map(|mut e| {
                e.shared = true;
                let left = e.until.saturating_duration_since(now).as_secs() as i64;
                (e.key().key(), unix + left)
            })
            .collect();
        store.put_lockouts(&new).await?;
        let live = store.live_lockouts().await?;
        let mut everywhere = std::collections::HashSet::new();
        for (key, until) in live {
            let Some(subject) = Subject::from_key(&key) else {
                continue;
            };
            let until = now + Duration::from_secs(until.saturating_sub(unix).max(0) as u64);
            let mut e = self.locked.entry(subject.clone()).or_insert(Lock {
                until,
                shared: true,
            });
            e.until = e.until.max(until);
            e.shared = true;
            everywhere.insert(subject);
        }
        // Lifted on another instance (or ended): published here before, gone there now.
        self.locked
            .retain(|s, l| !l.shared || everywhere.contains(s));
        store.sweep_lockouts().await
    }

    /// Locks the subjects whose failures across instances pass their quota.
    async fn over_quota(
        &self,
        store: &crate::store::Store,
    ) -> Result<(), crate::store::StoreError> {
        let (per_user, per_address) = self.quotas;
        let Some(lowest) = [per_user, per_address].into_iter().filter(|q| *q > 0).min() else {
            return Ok(());
        };
        for (key, n) in store.recent_login_failures(i64::from(lowest) + 1).await? {
            let quota = match Subject::from_key(&key) {
                Some(s @ Subject::User(_)) if per_user > 0 => (s, per_user),
                Some(s @ Subject::Address(_)) if per_address > 0 => (s, per_address),
                _ => continue,
            };
            if n > i64::from(quota.1) && !self.locked.contains_key(&quota.0) {
                self.lock(quota.0);
            }
        }
        Ok(())
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
