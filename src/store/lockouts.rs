//! Failed logins and lockouts shared by the instances of one store (`lockout::Shared`
//! syncs with them): failures counted per subject and minute, lockouts with their end.

use sqlx::Row;

use super::{Result, Store, now};

impl Store {
    /// Adds failures counted since the last sync, in the current minute's bucket.
    pub async fn add_login_failures(&self, failures: &[(String, i64)]) -> Result<()> {
        let minute = now() / 60;
        for (subject, n) in failures {
            sqlx::query(
                "INSERT INTO login_failures (subject, minute, failures) VALUES ($1, $2, $3) \
                 ON CONFLICT (subject, minute) DO UPDATE SET failures = login_failures.failures + $3",
            )
            .bind(subject)
            .bind(minute)
            .bind(*n)
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    /// Each subject's failures in the current and the previous minute, where at least
    /// `at_least`.
    pub async fn recent_login_failures(&self, at_least: i64) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT subject, CAST(SUM(failures) AS BIGINT) FROM login_failures WHERE minute >= $1 \
             GROUP BY subject HAVING SUM(failures) >= $2",
        )
        .bind(now() / 60 - 1)
        .bind(at_least)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// Records lockouts (subject, until in Unix seconds); a longer one already there stays.
    pub async fn put_lockouts(&self, locks: &[(String, i64)]) -> Result<()> {
        for (subject, until) in locks {
            sqlx::query(
                "INSERT INTO lockouts (subject, until_at) VALUES ($1, $2) \
                 ON CONFLICT (subject) DO UPDATE SET until_at = \
                 CASE WHEN lockouts.until_at > $2 THEN lockouts.until_at ELSE $2 END",
            )
            .bind(subject)
            .bind(*until)
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    /// The lockouts in force: (subject, until in Unix seconds).
    pub async fn live_lockouts(&self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query("SELECT subject, until_at FROM lockouts WHERE until_at > $1")
            .bind(now())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// Lifts a lockout everywhere, with the failures behind it.
    pub async fn clear_lockout(&self, subject: &str) -> Result<()> {
        sqlx::query("DELETE FROM lockouts WHERE subject = $1")
            .bind(subject)
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM login_failures WHERE subject = $1")
            .bind(subject)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Drops failures older than the window and lockouts that have ended.
    pub async fn sweep_lockouts(&self) -> Result<()> {
        sqlx::query("DELETE FROM login_failures WHERE minute < $1")
            .bind(now() / 60 - 1)
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM lockouts WHERE until_at <= $1")
            .bind(now())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
