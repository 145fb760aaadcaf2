//! `/api/masking`: which result columns sessions read masked on a resource role (anyone signed in reads
//! them; admins write; config-declared ones read-only). The work is `definitions`'.

use crate::model::{MaskingRule, MaskingRuleView};

super::definitions::handlers!(
    MaskingRule,
    MaskingRuleView,
    path = "/api/masking",
    item = "/api/masking/{name}",
    tag = "masking",
    what = "masking rule",
    name = "masking rule name"
);
