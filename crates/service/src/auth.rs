//! Who is calling. For now the caller states its identity in request
//! metadata; a bearer-token layer will later set the same fields after
//! verifying a credential, so handlers need not change.
//!
//! Headers: `x-closeout-role` (`inspectorate`, `inspected-body`, `viewer`),
//! `x-closeout-organisation` (required for an inspected body),
//! `x-closeout-subject` (who, for the audit trail; defaults to the role).

use crate::error::ApiError;
use closeout_proto::{Actor, Role};
use tonic::metadata::MetadataMap;

/// Metadata key naming the caller's role.
pub const ROLE_HEADER: &str = "x-closeout-role";
/// Metadata key naming the organisation an inspected body acts for.
pub const ORGANISATION_HEADER: &str = "x-closeout-organisation";
/// Metadata key naming the person or system acting.
pub const SUBJECT_HEADER: &str = "x-closeout-subject";

/// Parses a role as written in metadata or on the command line.
pub fn parse_role(text: &str) -> Option<Role> {
    match text.trim().to_ascii_lowercase().replace('_', "-").as_str() {
        "inspectorate" => Some(Role::Inspectorate),
        "inspected-body" => Some(Role::InspectedBody),
        "viewer" => Some(Role::Viewer),
        _ => None,
    }
}

/// The role's metadata spelling.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Inspectorate => "inspectorate",
        Role::InspectedBody => "inspected-body",
        Role::Viewer => "viewer",
        Role::System => "system",
        Role::Unspecified => "unspecified",
    }
}

fn header<'a>(metadata: &'a MetadataMap, key: &str) -> Result<Option<&'a str>, ApiError> {
    match metadata.get(key) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .map(|s| Some(s.trim()).filter(|s| !s.is_empty()))
            .map_err(|_| ApiError::Unauthenticated(format!("metadata {key} is not ASCII text"))),
    }
}

/// The caller of a request. A missing role is UNAUTHENTICATED; an inspected
/// body without an organisation is refused too.
pub fn caller(metadata: &MetadataMap) -> Result<Actor, ApiError> {
    let role_text = header(metadata, ROLE_HEADER)?.ok_or_else(|| {
        ApiError::Unauthenticated(format!(
            "no caller identity: set metadata {ROLE_HEADER} to inspectorate, inspected-body or viewer"
        ))
    })?;
    let role = parse_role(role_text).ok_or_else(|| {
        ApiError::Unauthenticated(format!(
            "metadata {ROLE_HEADER}={role_text:?} is not a role (inspectorate, inspected-body, viewer)"
        ))
    })?;
    let organisation_id = header(metadata, ORGANISATION_HEADER)?
        .unwrap_or_default()
        .to_string();
    if role == Role::InspectedBody && organisation_id.is_empty() {
        return Err(ApiError::Unauthenticated(format!(
            "an inspected body must name its organisation in metadata {ORGANISATION_HEADER}"
        )));
    }
    let subject = header(metadata, SUBJECT_HEADER)?
        .map(str::to_string)
        .unwrap_or_else(|| role_name(role).to_string());
    Ok(Actor {
        subject,
        role: role as i32,
        organisation_id,
    })
}

/// A service acting on its own behalf (consumers, schedulers).
pub fn system_actor(service: &str) -> Actor {
    Actor {
        subject: format!("service:{service}"),
        role: Role::System as i32,
        organisation_id: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(pairs: &[(&'static str, &'static str)]) -> MetadataMap {
        let mut map = MetadataMap::new();
        for (k, v) in pairs {
            map.insert(*k, v.parse().unwrap());
        }
        map
    }

    #[test]
    fn reads_an_inspected_body() {
        let actor = caller(&metadata(&[
            (ROLE_HEADER, "inspected-body"),
            (ORGANISATION_HEADER, "hertfordshire"),
            (SUBJECT_HEADER, "jo@herts"),
        ]))
        .unwrap();
        assert_eq!(actor.role, Role::InspectedBody as i32);
        assert_eq!(actor.organisation_id, "hertfordshire");
        assert_eq!(actor.subject, "jo@herts");
    }

    #[test]
    fn refuses_missing_or_unknown_roles() {
        assert!(matches!(
            caller(&metadata(&[])),
            Err(ApiError::Unauthenticated(_))
        ));
        assert!(matches!(
            caller(&metadata(&[(ROLE_HEADER, "chief")])),
            Err(ApiError::Unauthenticated(_))
        ));
        assert!(matches!(
            caller(&metadata(&[(ROLE_HEADER, "inspected-body")])),
            Err(ApiError::Unauthenticated(_))
        ));
    }
}
