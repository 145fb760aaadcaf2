//! The structure, checked from the source: the crate's top-level modules import one
//! another without cycles, and the bottom layers import nothing above them (`protocol/`
//! never reaches `relay`, `session`, `auth` or `access`; `store/` never builds access
//! types). A `crate::x` in a comment does not count.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Top-level module → the top-level modules its files name as `crate::x`.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let top = top.trim_end_matches(".rs").to_owned();
        if top == "main" || top == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let deps = graph.entry(top.clone()).or_default();
        for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for (i, _) in line.match_indices("crate::") {
                let name: String = line[i + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() && name != top {
                    deps.insert(name);
                }
            }
        }
    }
    graph
}

/// A cycle through `start`, if there is one.
fn cycle_from(
    graph: &BTreeMap<String, BTreeSet<String>>,
    start: &str,
    path: &mut Vec<String>,
) -> Option<Vec<String>> {
    let at = path.last().cloned().unwrap_or_else(|| start.to_owned());
    for next in graph.get(&at).into_iter().flatten() {
        if next == start {
            let mut found = path.clone();
            found.push(next.clone());
            return Some(found);
        }
        if !path.contains(next) && path.len() < graph.len() {
            path.push(next.clone());
            if let Some(c) = cycle_from(graph, start, path) {
                return Some(c);
            }
            path.pop();
        }
    }
    None
}

#[test]
fn modules_import_each_other_without_cycles() {
    let graph = imports();
    for start in graph.keys() {
        let mut path = vec![start.clone()];
        if let Some(cycle) = cycle_from(&graph, start, &mut path) {
            panic!("import cycle: {}", cycle.join(" → "));
        }
    }
}

#[test]
fn the_bottom_layers_import_nothing_above_them() {
    let graph = imports();
    let allowed: &[(&str, &[&str])] = &[
        ("model", &[]),
        ("clock", &[]),
        ("tls", &["model", "fsutil"]),
        ("protocol", &["model", "tls"]),
        ("sql", &[]),
        ("guardrail", &["model", "sql"]),
        ("masking", &["model", "guardrail", "protocol"]),
        ("runbook", &["model", "sql", "protocol"]),
        ("config", &["model"]),
        ("snapshot", &["model", "config"]),
        ("auth", &["snapshot", "model", "clock"]),
        ("access", &["auth", "snapshot", "model", "runbook", "clock"]),
        (
            "store",
            &[
                "model", "config", "snapshot", "seal", "auth", "clock", "fsutil",
            ],
        ),
    ];
    for (layer, may) in allowed {
        let found = graph.get(*layer).cloned().unwrap_or_default();
        let upward: Vec<_> = found
            .iter()
            .filter(|d| !may.contains(&d.as_str()))
            .collect();
        assert!(
            upward.is_empty(),
            "`{layer}` imports {upward:?}; it may import only {may:?}"
        );
    }
}
