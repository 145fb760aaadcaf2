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
pub fn timestamp(secs: i64) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]Z");
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| secs.to_string())
}

/// Unix microseconds → `2026-11-30 21:04:05.123456Z`.
fn micros(us: i64) -> String {
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| us.to_string())
}

/// A table of `rows` (an array, or one object) with the given columns.
pub fn render(rows: &Value, columns: &[&str]) -> String {
    let (header, cells) = cells(rows, columns);
    let empty = cells.is_empty();
    let title = |c: &String| match c.as_str() {
        "ts_us" => "TIME".to_owned(),
        other => other.to_uppercase(),
    };
    let mut out = grid(header.iter().map(title).collect(), cells);
    if empty {
        out.push_str("(none)\n");
    }
    out
}

/// The same as CSV (RFC 4180), the header row first.
pub fn render_csv(rows: &Value, columns: &[&str]) -> String {
    let (header, cells) = cells(rows, columns);
    csv(&header, &cells)
}

fn cells(rows: &Value, columns: &[&str]) -> (Vec<String>, Vec<Vec<String>>) {
    let rows: Vec<&Value> = match rows {
        Value::Array(items) => items.iter().collect(),
        Value::Null => vec![],
        one => vec![one],
    };
    let cells = rows
        .iter()
        .map(|r| {
            columns
                .iter()
                .map(|c| {
                    let v = r.get(*c).unwrap_or(&Value::Null);
                    match v.as_i64() {
                        Some(us) if *c == "ts_us" => micros(us),
                        Some(secs) if c.ends_with("_at") || *c == "ts" => timestamp(secs),
                        _ => cell(v),
                    }
                })
                .collect()
        })
        .collect();
    (columns.iter().map(|c| (*c).to_owned()).collect(), cells)
}

/// A result set's rows (values by position) as cells.
pub fn positional(rows: &[Vec<Value>]) -> Vec<Vec<String>> {
    rows.iter().map(|r| r.iter().map(cell).collect()).collect()
}

/// Aligned columns under a header line.
pub fn grid(header: Vec<String>, cells: Vec<Vec<String>>) -> String {
    let widths: Vec<usize> = header
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|r| r.get(i).map_or(0, |v| v.chars().count()))
                .chain([c.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |values: &[String]| {
        let padded: Vec<String> = values
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_owned() + "\n"
    };
    let mut out = line(&header);
    for r in &cells {
        out.push_str(&line(r));
    }
    out
}

/// CSV (RFC 4180): fields with a comma, quote or line break are quoted.
pub fn csv(header: &[String], rows: &[Vec<String>]) -> String {
    let field = |f: &String| {
        if f.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", f.replace('"', "\"\""))
        } else {
            f.clone()
        }
    };
    let mut out = String::new();
    for r in std::iter::once(header).chain(rows.iter().map(Vec::as_slice)) {
        out.push_str(&r.iter().map(field).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
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

    #[test]
    fn csv_quotes_what_needs_it() {
        let header = vec!["a".to_owned(), "b".to_owned()];
        let rows = vec![vec!["x,y".to_owned(), "say \"hi\"".to_owned()]];
        assert_eq!(csv(&header, &rows), "a,b\r\n\"x,y\",\"say \"\"hi\"\"\"\r\n");
    }
}
