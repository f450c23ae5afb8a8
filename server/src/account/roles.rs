//! Roles and the scopes they hold: one check ([`chronos_proto::Scope::grants`])
//! serves API keys and people alike.

use chronos_proto::{Role, Scope};

/// The scopes a person of `role` acts with.
pub fn scopes(role: Role) -> Vec<Scope> {
    match role {
        // Reads, and never a secret: no route that shows one grants
        // `jobs:read`.
        Role::Viewer => vec![Scope::JobsRead],
        Role::Member => vec![Scope::JobsRead, Scope::JobsWrite, Scope::MonitorsWrite],
        Role::Admin | Role::Owner => vec![Scope::Admin],
    }
}

/// Why a change of someone's role (or an invite with a role) is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RoleError {
    #[error("only an owner may make, change or remove an owner")]
    OwnerOnly,
    #[error("an admin may only manage members below owner")]
    AdminOnly,
}

/// May `actor` give `role` to someone (or take it away)? Owners may do
/// anything; admins everything below owner. `actor` is `None` for an API
/// key with `admin`, which counts as an admin — and, while the
/// organization has no owner yet (created anonymously), may invite one.
pub fn may_assign(actor: Option<Role>, role: Role, has_owner: bool) -> Result<(), RoleError> {
    match (actor, role) {
        (Some(Role::Owner), _) => Ok(()),
        (None, Role::Owner) if !has_owner => Ok(()),
        (_, Role::Owner) => Err(RoleError::OwnerOnly),
        (Some(Role::Admin) | None, _) => Ok(()),
        _ => Err(RoleError::AdminOnly),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_grant_what_the_docs_say() {
        let may = |role, needed| scopes(role).iter().any(|s: &Scope| s.grants(needed));
        assert!(may(Role::Viewer, Scope::JobsRead));
        assert!(!may(Role::Viewer, Scope::JobsWrite));
        assert!(!may(Role::Viewer, Scope::Admin));
        assert!(may(Role::Member, Scope::MonitorsWrite));
        assert!(!may(Role::Member, Scope::Admin));
        assert!(!may(Role::Member, Scope::Worker));
        assert!(may(Role::Admin, Scope::Worker));
        assert!(!may(Role::Owner, Scope::InstanceAdmin));
    }

    #[test]
    fn only_owners_make_owners_unless_there_is_none() {
        assert_eq!(may_assign(Some(Role::Owner), Role::Owner, true), Ok(()));
        assert_eq!(
            may_assign(Some(Role::Admin), Role::Owner, true),
            Err(RoleError::OwnerOnly)
        );
        assert_eq!(may_assign(None, Role::Owner, false), Ok(()));
        assert_eq!(
            may_assign(None, Role::Owner, true),
            Err(RoleError::OwnerOnly)
        );
        assert_eq!(may_assign(Some(Role::Admin), Role::Admin, true), Ok(()));
        assert_eq!(
            may_assign(Some(Role::Member), Role::Viewer, true),
            Err(RoleError::AdminOnly)
        );
    }
}
