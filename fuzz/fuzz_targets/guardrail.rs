//! The guardrail path on arbitrary statement text, for both protocols: it must decide
//! (or call the text unreadable), never panic. `cargo +nightly fuzz run guardrail`
//! (from `fuzz/`); the property test `guardrail::tests::never_panics_on_any_text` runs the
//! same check on every `cargo nextest run`.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use portcullis::guardrail::Guard;
use portcullis::model::{Guardrail, Protocol};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let rules: Vec<Arc<Guardrail>> = serde_json::from_str::<Vec<Guardrail>>(
        r#"[{"name": "b", "resource_roles": ["r"], "action": "block",
             "classes": ["ddl"], "tables": ["s.*"], "select_star": true},
            {"name": "w", "resource_roles": ["r"], "action": "warn", "allow_multi": false,
             "delete_without_where": true}]"#,
    )
    .map(|v| v.into_iter().map(Arc::new).collect())
    .unwrap_or_default();
    for protocol in [Protocol::Postgres, Protocol::Mysql] {
        if let Some(mut guard) = Guard::new(&rules, "r", &[], protocol, "public") {
            let _ = guard.check(text);
        }
    }
});
