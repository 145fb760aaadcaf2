//! Access request rules and requests. A request is stored whole (JSON) beside the columns
//! lists filter on; every change is read, checked and written in one transaction, so two
//! approvers (on any instances) never overwrite each other's votes, and bumps the revision
//! (approved grants are part of the snapshot).

use sqlx::Row;

use super::definitions::{Definitions, json, parse};
use super::{Result, Store, StoreError, now};
use crate::model::{
    AccessRequest, AccessRequestRule, AccessRequestRuleView, Guardrail, GuardrailView, MaskingRule,
    MaskingRuleView, RequestStatus,
};

const RULES: Definitions = Definitions {
    table: "access_request_rules",
    what: "access request rule",
};
const GUARDRAILS: Definitions = Definitions {
    table: "guardrails",
    what: "guardrail",
};
const MASKING: Definitions = Definitions {
    table: "masking_rules",
    what: "masking rule",
};

/// Which requests a list shows.
#[derive(Clone, Debug, Default)]
pub struct RequestFilter {
    pub status: Option<RequestStatus>,
    pub requester: Option<String>,
    pub limit: i64,
}

impl Store {
    pub async fn list_rules(&self) -> Result<Vec<AccessRequestRuleView>> {
        let all = self.list_definitions(RULES).await?;
        Ok(all
            .into_iter()
            .map(|(rule, managed)| AccessRequestRuleView { rule, managed })
            .collect())
    }

    /// Creates (`create`) or replaces a rule.
    pub async fn put_rule(
        &self,
        rule: &AccessRequestRule,
        managed: bool,
        create: bool,
    ) -> Result<()> {
        self.put_definition(RULES, &rule.name, rule, managed, create)
            .await
    }

    pub async fn delete_rule(&self, name: &str) -> Result<()> {
        self.delete_definition(RULES, name).await
    }

    /// The guardrails in the order they are evaluated: the config's, then the API's, each
    /// by name.
    pub async fn list_guardrails(&self) -> Result<Vec<GuardrailView>> {
        let mut all: Vec<GuardrailView> = self
            .list_definitions(GUARDRAILS)
            .await?
            .into_iter()
            .map(|(rule, managed)| GuardrailView { rule, managed })
            .collect();
        all.sort_by_key(|v| !v.managed); // stable: by name within each
        Ok(all)
    }

    /// Creates (`create`) or replaces a guardrail.
    pub async fn put_guardrail(&self, rule: &Guardrail, managed: bool, create: bool) -> Result<()> {
        self.put_definition(GUARDRAILS, &rule.name, rule, managed, create)
            .await
    }

    pub async fn delete_guardrail(&self, name: &str) -> Result<()> {
        self.delete_definition(GUARDRAILS, name).await
    }

    /// The masking rules: the config's, then the API's, each by name.
    pub async fn list_masking(&self) -> Result<Vec<MaskingRuleView>> {
        let mut all: Vec<MaskingRuleView> = self
            .list_definitions(MASKING)
            .await?
            .into_iter()
            .map(|(rule, managed)| MaskingRuleView { rule, managed })
            .collect();
        all.sort_by_key(|v| !v.managed);
        Ok(all)
    }

    /// Creates (`create`) or replaces a masking rule.
    pub async fn put_masking(&self, rule: &MaskingRule, managed: bool, create: bool) -> Result<()> {
        self.put_definition(MASKING, &rule.name, rule, managed, create)
            .await
    }

    pub async fn delete_masking(&self, name: &str) -> Result<()> {
        self.delete_definition(MASKING, name).await
    }

    pub async fn create_request(&self, r: &AccessRequest) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO access_requests (id, requester, resource_role, kind, status, body, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&r.id)
        .bind(&r.requester)
        .bind(&r.resource_role)
        .bind(r.kind.as_str())
        .bind(r.status.as_str())
        .bind(json(r)?)
        .bind(r.created_at)
        .bind(r.expires_at)
        .execute(&mut *tx)
        .await?;
        Self::commit(tx).await
    }

    pub async fn get_request(&self, id: &str) -> Result<AccessRequest> {
        let row = sqlx::query("SELECT body FROM access_requests WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("access request `{id}`")))?;
        parse(&row.try_get::<String, _>(0)?)
    }

    /// Newest first.
    pub async fn list_requests(&self, f: &RequestFilter) -> Result<Vec<AccessRequest>> {
        let rows = sqlx::query(
            "SELECT body FROM access_requests WHERE ($1 IS NULL OR status = $1) \
             AND ($2 IS NULL OR requester = $2) ORDER BY created_at DESC, id LIMIT $3",
        )
        .bind(f.status.map(|s| s.as_str()))
        .bind(f.requester.as_deref())
        .bind(if f.limit > 0 { f.limit } else { 200 })
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| parse(&r.try_get::<String, _>(0)?))
            .collect()
    }

    /// Changes one request in a transaction: `change` sees it as stored and says what it
    /// becomes (or why not, untouched).
    pub async fn update_request<E>(
        &self,
        id: &str,
        change: impl FnOnce(&mut AccessRequest) -> std::result::Result<(), E>,
    ) -> Result<std::result::Result<AccessRequest, E>> {
        let mut tx = self.begin().await?;
        let row = sqlx::query("SELECT body FROM access_requests WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("access request `{id}`")))?;
        let mut r: AccessRequest = parse(&row.try_get::<String, _>(0)?)?;
        if let Err(e) = change(&mut r) {
            return Ok(Err(e));
        }
        sqlx::query(
            "UPDATE access_requests SET status = $2, body = $3, expires_at = $4 WHERE id = $1",
        )
        .bind(id)
        .bind(r.status.as_str())
        .bind(json(&r)?)
        .bind(r.expires_at)
        .execute(&mut *tx)
        .await?;
        Self::commit(tx).await?;
        Ok(Ok(r))
    }

    /// Pending and approved requests whose time is up (`expires_at` passed).
    pub async fn due_requests(&self, at: i64) -> Result<Vec<AccessRequest>> {
        let rows = sqlx::query(
            "SELECT body FROM access_requests WHERE status IN ('pending', 'approved') AND expires_at <= $1",
        )
        .bind(at)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| parse(&r.try_get::<String, _>(0)?))
            .collect()
    }

    /// Approved just-in-time requests whose grant still runs: the snapshot's grants.
    pub(super) async fn live_grants(&self) -> Result<Vec<AccessRequest>> {
        let rows = sqlx::query(
            "SELECT body FROM access_requests WHERE kind = 'jit' AND status = 'approved' AND expires_at > $1",
        )
        .bind(now())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| parse(&r.try_get::<String, _>(0)?))
            .collect()
    }
}
