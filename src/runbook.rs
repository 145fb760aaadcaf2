//! Runbooks: named, reviewed task templates kept as files (`runbooks.dir`, one `NAME.sql`
//! each, version-controlled beside the config). SQL with typed parameters that are bound
//! by the server, never spliced into the text. This module reads and checks them (the same
//! checks `portcullis runbooks lint` runs) and turns a run's values into bound
//! parameters; running one is `oneoff`'s, under `AccessMode::Runbooks`.

mod file;
pub mod params;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

pub use file::Problem;
pub use params::Param;

use crate::model::Protocol;
use crate::protocol::exec::Bind;

/// A runbook as read from its file.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Runbook {
    pub name: String,
    pub description: String,
    /// The resource roles it may run on: names, or patterns with `*`.
    pub resource_roles: Vec<String>,
    /// Only members of these groups may run it (empty: access control alone decides).
    pub groups: Vec<String>,
    /// Its statements run in one transaction (the default).
    pub transaction: bool,
    /// The protocol its SQL is written for, when the header says.
    #[schema(value_type = Option<String>)]
    pub protocol: Option<Protocol>,
    pub params: Vec<Param>,
    pub statements: Vec<Statement>,
    /// SHA-256 of the file: what was reviewed, and what a run's `session_started` names.
    pub sha256: String,
}

/// One statement of the body, with its named placeholders, and its line in the file.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Statement {
    pub line: usize,
    pub text: String,
}

/// A statement ready to prepare: its text with `$n` / `?` and the values in order.
#[derive(Clone, Debug)]
pub struct Bound {
    pub text: String,
    pub binds: Vec<Bind>,
}

impl Runbook {
    /// Whether it may run on resource role `role` (a name, or a `*` pattern, matches).
    pub fn runs_on(&self, role: &str) -> bool {
        self.resource_roles.iter().any(|p| matches(p, role))
    }

    /// Checks `values` against the parameters (every problem, by parameter name), then
    /// binds them into each statement for `protocol`.
    pub fn bind(
        &self,
        values: &serde_json::Map<String, Value>,
        protocol: Protocol,
    ) -> Result<Vec<Bound>, Vec<(String, String)>> {
        let mut problems = Vec::new();
        for name in values.keys() {
            if !self.params.iter().any(|p| p.name == *name) {
                problems.push((
                    name.clone(),
                    "is not a parameter of this runbook".to_owned(),
                ));
            }
        }
        let mut bound = BTreeMap::new();
        for p in &self.params {
            match p.bind(values.get(&p.name)) {
                Ok(b) => {
                    bound.insert(p.name.as_str(), b);
                }
                Err(e) => problems.push((p.name.clone(), e)),
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let mysql = protocol == Protocol::Mysql;
        let mut out = Vec::new();
        for s in &self.statements {
            let marked =
                crate::sql::placeholders(&s.text, mysql).map_err(|e| vec![(String::new(), e)])?;
            let binds = marked
                .names
                .iter()
                .map(|n| bound.get(n.as_str()).cloned().unwrap_or(Bind::Null))
                .collect();
            out.push(Bound {
                text: marked.text,
                binds,
            });
        }
        Ok(out)
    }
}

/// `*` matches any run of characters; everything else itself.
fn matches(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// The runbooks of a directory, by name.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    pub runbooks: BTreeMap<String, Arc<Runbook>>,
}

/// A file's problems.
#[derive(Clone, Debug)]
pub struct FileProblems {
    pub path: PathBuf,
    pub problems: Vec<Problem>,
}

/// Reads every `.sql` file of `dir`: the good ones, and each bad file's problems. A
/// missing directory is an error (the caller decides whether that matters).
pub fn load(dir: &Path) -> std::io::Result<(Catalog, Vec<FileProblems>)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    paths.sort();
    let mut catalog = Catalog::default();
    let mut bad = Vec::new();
    for path in paths {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let read = std::fs::read_to_string(&path)
            .map_err(|e| {
                vec![file::Problem {
                    line: 0,
                    message: e.to_string(),
                }]
            })
            .and_then(|text| file::read(&name, &text));
        match read {
            Ok(r) => {
                catalog.runbooks.insert(name, Arc::new(r));
            }
            Err(problems) => bad.push(FileProblems { path, problems }),
        }
    }
    Ok((catalog, bad))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const REFUND: &str = r#"-- description = "Refund an order"
-- resource_roles = ["orders-*", "demo-pg"]
--
-- [[params]]
-- name = "order_id"
-- type = "integer"
-- min = 1
--
-- [[params]]
-- name = "reason"
-- type = "text"
-- default = "customer request"

update orders set status = 'refunded', reason = :reason where id = :order_id;
insert into events (order_id, what) values (:order_id, 'refund');
"#;

    #[test]
    fn a_good_file_reads_and_binds_for_each_protocol() {
        let r = file::read("refund-order", REFUND).expect("test input");
        assert_eq!(r.statements.len(), 2);
        assert_eq!(r.statements[0].line, 14);
        assert!(r.runs_on("orders-rw") && r.runs_on("demo-pg") && !r.runs_on("billing"));
        let values = json!({"order_id": 7})
            .as_object()
            .cloned()
            .expect("test input");
        let pg = r.bind(&values, Protocol::Postgres).expect("test input");
        assert_eq!(
            pg[0].text,
            "update orders set status = 'refunded', reason = $1 where id = $2"
        );
        assert_eq!(
            pg[0].binds,
            [Bind::Text("customer request".into()), Bind::Int(7)]
        );
        let my = r.bind(&values, Protocol::Mysql).expect("test input");
        assert_eq!(
            my[1].text,
            "insert into events (order_id, what) values (?, 'refund')"
        );
        let bad = json!({"order_id": "x", "extra": 1})
            .as_object()
            .cloned()
            .expect("test input");
        let problems = r.bind(&bad, Protocol::Postgres).expect_err("test input");
        let names: Vec<&str> = problems.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["extra", "order_id"]);
    }

    #[test]
    fn lint_finds_each_problem_with_its_line() {
        let text = r#"-- description = "Broken"
-- resource_roles = ["x"]
-- [[params]]
-- name = "used"
-- type = "integer"
-- [[params]]
-- name = "unused"
-- type = "text"
-- [[params]]
-- name = "wrong_default"
-- type = "integer"
-- default = "ten"

select :used;
select :nope
  from t;
selec 1;
"#;
        let problems = file::read("broken", text).expect_err("test input");
        let has = |line: usize, words: &str| {
            problems
                .iter()
                .any(|p| p.line == line && p.message.contains(words))
        };
        assert!(
            has(0, "parameter `wrong_default`: the default does not fit"),
            "{problems:?}"
        );
        assert!(has(15, "unknown placeholder :nope"), "{problems:?}");
        assert!(has(0, "parameter `unused` is never used"), "{problems:?}");
        assert!(has(17, "does not parse"), "{problems:?}");
        let header = file::read(
            "h",
            "-- description = \n-- resource_roles = [\"x\"]\nselect 1",
        )
        .expect_err("test input");
        assert_eq!(header[0].line, 1, "{header:?}");
        let unknown = file::read("u", "-- descripton = \"x\"\nselect 1").expect_err("test input");
        assert!(unknown[0].message.contains("descripton"), "{unknown:?}");
    }

    #[test]
    fn patterns() {
        for (p, n, want) in [
            ("a", "a", true),
            ("a", "ab", false),
            ("a*", "ab", true),
            ("*-rw", "orders-rw", true),
            ("o*s-*w", "orders-rw", true),
            ("o*s-*w", "orders-ro", false),
            ("*", "", true),
        ] {
            assert_eq!(matches(p, n), want, "{p} {n}");
        }
    }
}
