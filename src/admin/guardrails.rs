//! `/api/guardrails`: what sessions may do on a resource role (anyone signed in reads
//! them; admins write; config-declared ones read-only). The work is `definitions`'.

use crate::model::{Guardrail, GuardrailView};

super::definitions::handlers!(
    Guardrail,
    GuardrailView,
    path = "/api/guardrails",
    item = "/api/guardrails/{name}",
    tag = "guardrails",
    what = "guardrail",
    name = "guardrail name"
);
