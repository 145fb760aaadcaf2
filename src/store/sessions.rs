//! The session index: written when sessions start and end, filtered by the API.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{Result, Store};

type Query<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// One write to the session index.
#[derive(Debug)]
pub enum IndexWrite {
    Started(Box<SessionRecord>),
    Ended(SessionEnd),
}

/// Sessions per `INSERT`: 16 parameters each stays under SQLite's oldest limit of 999.
const ROWS: usize = 60;

/// Inserts sessions, each with its end when it is known.
fn inserted<'q>(rows: &[(&'q SessionRecord, Option<&'q SessionEnd>)]) -> Query<'q> {
    let mut sql = String::from(
        "INSERT INTO sessions (id, user_name, resource_role, resource, protocol, mode, client_addr, \
         application_name, started_at, instance, ended_at, statements, bytes_in, bytes_out, \
         ended_by, error) VALUES ",
    );
    for i in 0..rows.len() {
        let p = i * 16;
        sql.push_str(if i == 0 { "(" } else { ", (" });
        for k in 1..=16 {
            sql.push_str(if k == 1 { "$" } else { ", $" });
            sql.push_str(itoa::Buffer::new().format(p + k));
        }
        sql.push(')');
    }
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for &(s, e) in rows {
        q = q
            .bind(&s.id)
            .bind(&s.user)
            .bind(&s.resource_role)
            .bind(&s.resource)
            .bind(&s.protocol)
            .bind(&s.mode)
            .bind(&s.client_addr)
            .bind(
                e.and_then(|e| e.application_name.as_ref())
                    .unwrap_or(&s.application_name),
            )
            .bind(s.started_at)
            .bind(&s.instance)
            .bind(e.map(|e| e.ended_at))
            .bind(e.map_or(0, |e| e.statements))
            .bind(e.map_or(0, |e| e.bytes_in))
            .bind(e.map_or(0, |e| e.bytes_out))
            .bind(e.map(|e| e.ended_by.as_str()))
            .bind(e.and_then(|e| e.error.as_deref()));
    }
    q
}

fn ended(e: &SessionEnd) -> Query<'_> {
    sqlx::query(
        "UPDATE sessions SET ended_at = $2, statements = $3, bytes_in = $4, bytes_out = $5, \
         ended_by = $6, error = $7, application_name = COALESCE($8, application_name) \
         WHERE id = $1",
    )
    .bind(&e.id)
    .bind(e.ended_at)
    .bind(e.statements)
    .bind(e.bytes_in)
    .bind(e.bytes_out)
    .bind(&e.ended_by)
    .bind(&e.error)
    .bind(&e.application_name)
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SessionRecord {
    pub id: String,
    pub user: String,
    pub resource_role: String,
    pub resource: String,
    pub protocol: String,
    pub mode: String,
    pub client_addr: String,
    pub application_name: String,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    /// Statements relayed (the `queries` of `session_ended`; `GET /api/sessions/{id}`
    /// lists them as `statements`).
    #[serde(rename = "queries")]
    pub statements: i64,
    pub bytes_in: i64,
    pub bytes_out: i64,
    pub ended_by: Option<String>,
    pub error: Option<String>,
    /// The gateway instance that relays (relayed) it.
    pub instance: String,
}

/// How a session ended, for the index.
#[derive(Clone, Debug)]
pub struct SessionEnd {
    pub id: String,
    pub ended_at: i64,
    pub statements: i64,
    pub bytes_in: i64,
    pub bytes_out: i64,
    pub ended_by: String,
    pub error: Option<String>,
    /// The application name the client set during the session, if it set one.
    pub application_name: Option<String>,
}

/// Filters of `GET /api/sessions`; every field optional.
#[derive(Clone, Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SessionFilter {
    pub user: Option<String>,
    pub resource_role: Option<String>,
    pub mode: Option<String>,
    /// `live` or `ended`.
    pub status: Option<String>,
    /// Unix seconds.
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub limit: Option<i64>,
    /// Rows skipped first (paging).
    #[serde(default)]
    pub offset: Option<i64>,
    /// Only sessions whose statements contain this text (searched in the monitoring log).
    #[serde(default)]
    pub q: Option<String>,
}

macro_rules! columns {
    () => {
        "id, user_name, resource_role, resource, protocol, mode, client_addr, application_name, \
         started_at, ended_at, statements, bytes_in, bytes_out, ended_by, error, instance"
    };
}

impl Store {
    pub async fn session_ended(&self, e: &SessionEnd) -> Result<()> {
        ended(e).execute(&self.pool).await?;
        Ok(())
    }

    /// Several index writes in one transaction: one commit for a burst of logins instead
    /// of one each. Starts go in one multi-row `INSERT` per `ROWS` sessions; a session
    /// that also ended within the burst is inserted whole, so a short session costs one
    /// row written once.
    pub async fn index_writes(&self, writes: &[IndexWrite]) -> Result<()> {
        let starts: HashSet<&str> = writes
            .iter()
            .filter_map(|w| match w {
                IndexWrite::Started(s) => Some(s.id.as_str()),
                IndexWrite::Ended(_) => None,
            })
            .collect();
        let (mut whole, mut later) = (HashMap::new(), Vec::new());
        for w in writes {
            if let IndexWrite::Ended(e) = w {
                if starts.contains(e.id.as_str()) {
                    whole.insert(e.id.as_str(), e);
                } else {
                    later.push(e);
                }
            }
        }
        let rows: Vec<_> = writes
            .iter()
            .filter_map(|w| match w {
                IndexWrite::Started(s) => Some((&**s, whole.get(s.id.as_str()).copied())),
                IndexWrite::Ended(_) => None,
            })
            .collect();
        let mut tx = self.index.begin().await?;
        for chunk in rows.chunks(ROWS) {
            inserted(chunk).execute(&mut *tx).await?;
        }
        for e in later {
            ended(e).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn list_sessions(&self, f: &SessionFilter) -> Result<Vec<SessionRecord>> {
        // Only the filters given, so the planner can use the index that fits each
        // (user, live, time) on a large index; values are always bound.
        let mut clauses: Vec<String> = Vec::new();
        let mut n = 0;
        let mut mark = |clause: &str| {
            n += 1;
            clauses.push(clause.replace('?', &format!("${n}")));
        };
        let texts = [
            ("user_name = ?", &f.user),
            ("resource_role = ?", &f.resource_role),
            ("mode = ?", &f.mode),
        ];
        for (clause, value) in texts {
            if value.is_some() {
                mark(clause);
            }
        }
        for (clause, value) in [("started_at >= ?", f.since), ("started_at <= ?", f.until)] {
            if value.is_some() {
                mark(clause);
            }
        }
        match f.status.as_deref() {
            Some("live") => clauses.push("ended_at IS NULL".into()),
            Some("ended") => clauses.push("ended_at IS NOT NULL".into()),
            _ => {}
        }
        let filter = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let sql = format!(
            "SELECT {} FROM sessions {filter} ORDER BY started_at DESC, id LIMIT ${} OFFSET ${}",
            columns!(),
            n + 1,
            n + 2
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for value in texts.iter().filter_map(|(_, v)| v.as_ref()) {
            q = q.bind(value);
        }
        for value in [f.since, f.until].into_iter().flatten() {
            q = q.bind(value);
        }
        let rows = q
            .bind(f.limit.unwrap_or(100).clamp(1, 10_000))
            .bind(f.offset.unwrap_or(0).max(0))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(record).collect()
    }

    /// Sessions of `instance` the index still shows as live: at start, the ones a crash
    /// left behind.
    pub async fn open_sessions(&self, instance: &str) -> Result<Vec<SessionRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM sessions WHERE instance = $1 AND ended_at IS NULL ORDER BY started_at"
        ))
        .bind(instance)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record).collect()
    }

    /// These sessions (those the index has), newest first.
    pub async fn sessions_by_id(&self, ids: &[String]) -> Result<Vec<SessionRecord>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(500) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT {} FROM sessions WHERE id IN ({})",
                columns!(),
                marks.join(", ")
            );
            // Only numbered placeholders are formatted in; the ids are bound.
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(id);
            }
            for row in query.fetch_all(&self.pool).await? {
                out.push(record(&row)?);
            }
        }
        out.sort_by(|a, b| (b.started_at, &b.id).cmp(&(a.started_at, &a.id)));
        Ok(out)
    }

    pub async fn get_session(&self, id: &str) -> Result<Option<SessionRecord>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM sessions WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(record).transpose()
    }
}

fn record(r: &sqlx::any::AnyRow) -> Result<SessionRecord> {
    Ok(SessionRecord {
        id: r.try_get(0)?,
        user: r.try_get(1)?,
        resource_role: r.try_get(2)?,
        resource: r.try_get(3)?,
        protocol: r.try_get(4)?,
        mode: r.try_get(5)?,
        client_addr: r.try_get(6)?,
        application_name: r.try_get(7)?,
        started_at: r.try_get(8)?,
        ended_at: r.try_get(9)?,
        statements: r.try_get(10)?,
        bytes_in: r.try_get(11)?,
        bytes_out: r.try_get(12)?,
        ended_by: r.try_get(13)?,
        error: r.try_get(14)?,
        instance: r.try_get(15)?,
    })
}

impl Store {
    /// The last time each (user, resource role) had a session: the access review's "last
    /// used".
    pub async fn last_uses(&self) -> Result<std::collections::HashMap<(String, String), i64>> {
        let rows = sqlx::query(
            "SELECT user_name, resource_role, MAX(started_at) FROM sessions GROUP BY user_name, resource_role",
        )
        .fetch_all(&self.index)
        .await?;
        let mut out = std::collections::HashMap::new();
        for r in rows {
            let key: (String, String) = (r.try_get(0)?, r.try_get(1)?);
            out.insert(key, r.try_get::<i64, _>(2)?);
        }
        Ok(out)
    }
}
