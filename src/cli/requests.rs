//! `portcullis request …` and `portcullis requests`: ask, list, vote, revoke, cancel,
//! run — through `/api/access-requests`.

use hyper::Method;
use serde_json::{Value, json};

use super::client::{Client, ClientError};
use super::commands::{Printed, seg};
use super::table::{render, render_csv};
use super::{Output, RequestArgs, RequestCmd};
use crate::api::{Decision, Executed, NewAccessRequest};
use crate::model::{AccessRequestRuleView, AccessRequestView};

const COLS: &[&str] = &[
    "id",
    "requester",
    "resource_role",
    "kind",
    "status",
    "votes",
    "duration",
    "expires_at",
    "reason",
];
const RULE_COLS: &[&str] = &[
    "name",
    "kind",
    "resource_roles",
    "requester_groups",
    "approver_groups",
    "min_approvals",
    "max_duration",
    "managed",
];

/// A request as a table row: votes so far / needed, the duration as people write it.
fn row(v: &AccessRequestView) -> Value {
    let mut row = serde_json::to_value(v).unwrap_or_default();
    row["votes"] = json!(format!("{}/{}", v.approvals, v.approvals_needed));
    row["duration"] = json!(v.request.duration_s.map(crate::clock::human_duration));
    row
}

fn shown(rows: Value, cols: &[&str], output: Output) -> Printed {
    Printed::ok(match output {
        Output::Json => serde_json::to_string_pretty(&rows).unwrap_or_default() + "\n",
        Output::Csv => render_csv(&rows, cols),
        Output::Table => render(&rows, cols),
    })
}

pub async fn requests(
    c: &Client,
    mine: bool,
    pending: bool,
    status: Option<&str>,
    output: Output,
) -> Result<Printed, ClientError> {
    let scope = if mine {
        "mine"
    } else if pending {
        "pending"
    } else {
        "all"
    };
    let mut path = format!("/api/access-requests?scope={scope}");
    if let Some(s) = status {
        path.push_str(&format!("&status={}", seg(s)));
    }
    let all: Vec<AccessRequestView> = c.fetch(&path).await?;
    let rows = Value::Array(all.iter().map(row).collect());
    Ok(shown(rows, COLS, output))
}

pub async fn request(
    c: &Client,
    args: &RequestArgs,
    output: Output,
) -> Result<Printed, ClientError> {
    let path = |id: &str, what: &str| format!("/api/access-requests/{}/{what}", seg(id));
    let one = |v: AccessRequestView| shown(row(&v), COLS, output);
    let decide = async |id: &str, what: &str, comment: &str| -> Result<Printed, ClientError> {
        let body = Decision {
            comment: comment.to_owned(),
        };
        let v: AccessRequestView = c.typed(Method::POST, &path(id, what), Some(&body)).await?;
        Ok(one(v))
    };
    match &args.action {
        None => {
            let Some(role) = &args.resource_role else {
                return Err(ClientError::Local(
                    "name a resource role (`portcullis request ROLE --for 1h --reason …`) or an action (approve, deny, …)".into(),
                ));
            };
            let body = NewAccessRequest {
                resource_role: role.clone(),
                duration: args.duration.clone(),
                reason: args.reason.clone().unwrap_or_default(),
            };
            let v: AccessRequestView = c
                .typed(Method::POST, "/api/access-requests", Some(&body))
                .await?;
            let mut printed = one(v);
            printed.err =
                "the request is pending: `portcullis requests --mine` shows where it stands\n"
                    .into();
            Ok(printed)
        }
        Some(RequestCmd::Show { id }) => Ok(one(c
            .fetch(&format!("/api/access-requests/{}", seg(id)))
            .await?)),
        Some(RequestCmd::Approve { id, comment }) => decide(id, "approve", comment).await,
        Some(RequestCmd::Deny { id, reason }) => decide(id, "deny", reason).await,
        Some(RequestCmd::Revoke { id, reason }) => decide(id, "revoke", reason).await,
        Some(RequestCmd::Cancel { id }) => decide(id, "cancel", "").await,
        Some(RequestCmd::Run { id }) => {
            let done: Executed = c.typed(Method::POST, &path(id, "run"), None::<&()>).await?;
            Ok(super::oneoffs::executed(&done, output))
        }
        Some(RequestCmd::Rules) => {
            let rules: Vec<AccessRequestRuleView> = c.fetch("/api/access-request-rules").await?;
            let rows = rules
                .iter()
                .map(|r| {
                    let mut v = serde_json::to_value(r).unwrap_or_default();
                    v["max_duration"] =
                        json!(r.rule.max_duration_s.map(crate::clock::human_duration));
                    v
                })
                .collect();
            Ok(shown(Value::Array(rows), RULE_COLS, output))
        }
    }
}
