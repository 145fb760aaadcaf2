//! What an admin-API caller's role allows (SPEC §1): `admin` changes everything, `auditor`
//! reads everything and changes nothing, `standard` reads only its own records. The API's
//! handlers (and the console's, which call them) ask here.

use crate::model::Role;

/// What a call does, as far as roles are concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action<'a> {
    /// Any write: users, groups, resources, grants, ending sessions, reloads.
    Change,
    /// Reading every record of a kind (sessions, users, the log, the upstream user name).
    ReadAll,
    /// Reading a record that belongs to `owner` (a user's profile, tokens, sessions).
    ReadOwn { owner: &'a str },
}

/// Whether a caller with `role`, named `caller`, may do `action`.
pub fn allows(role: Role, caller: &str, action: Action<'_>) -> bool {
    match action {
        Action::Change => role == Role::Admin,
        Action::ReadAll => matches!(role, Role::Admin | Role::Auditor),
        Action::ReadOwn { owner } => allows(role, caller, Action::ReadAll) || caller == owner,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_does_what_spec_says() {
        let table = [
            (Role::Admin, Action::Change, true),
            (Role::Auditor, Action::Change, false),
            (Role::Standard, Action::Change, false),
            (Role::Admin, Action::ReadAll, true),
            (Role::Auditor, Action::ReadAll, true),
            (Role::Standard, Action::ReadAll, false),
            (Role::Standard, Action::ReadOwn { owner: "me" }, true),
            (Role::Standard, Action::ReadOwn { owner: "other" }, false),
            (Role::Auditor, Action::ReadOwn { owner: "other" }, true),
            (Role::Admin, Action::ReadOwn { owner: "other" }, true),
        ];
        for (role, action, expected) in table {
            assert_eq!(allows(role, "me", action), expected, "{role} {action:?}");
        }
    }
}
