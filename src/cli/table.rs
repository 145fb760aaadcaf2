//! Human-readable tables from JSON rows; `--output json` bypasses this.

use serde_json::Value;

/// Renders a cell: strings bare, lists comma-joined, null empty, objects as JSON.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(","),
        Value::Object(map) => map
            .iter()
            .filter(|(_, v)| v.as_bool() == Some(true))
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    }
}

/// Unix seconds → `2026-11-30 21:04:05Z`.
fn timestamp(secs: i64) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]Z");
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| secs.to_string())
}

/// A table of `rows` (an array, or one object) with the given columns.
pub fn render(rows: &Value, columns: &[&str]) -> String {
    let rows: Vec<&Value> = match rows {
        Value::Array(items) => items.iter().collect(),
        Value::Null => vec![],
        one => vec![one],
    };
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            columns
                .iter()
                .map(|c| {
                    let v = r.get(*c).unwrap_or(&Value::Null);
                    match v.as_i64() {
                        Some(secs) if c.ends_with("_at") || *c == "ts" => timestamp(secs),
                        _ => cell(v),
                    }
                })
                .collect()
        })
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain([c.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |values: Vec<String>| {
        let padded: Vec<String> = values
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_owned() + "\n"
    };
    let mut out = line(columns.iter().map(|c| c.to_uppercase()).collect());
    for r in cells {
        out.push_str(&line(r));
    }
    if rows.is_empty() {
        out.push_str("(none)\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_timestamps_readably() {
        let rows = serde_json::json!([{"started_at": 0}]);
        assert_eq!(
            render(&rows, &["started_at"]),
            "STARTED_AT\n1970-01-01 00:00:00Z\n"
        );
    }

    #[test]
    fn renders_aligned_columns() {
        let rows = serde_json::json!([
            {"name": "alice", "groups": ["eng", "ops"], "modes": {"native": true, "web": false}},
            {"name": "bob", "groups": [], "modes": {"native": false}}
        ]);
        let out = render(&rows, &["name", "groups", "modes"]);
        assert_eq!(out, "NAME   GROUPS   MODES\nalice  eng,ops  native\nbob\n");
    }
}
