//! Typed ids over UUIDs, so an item id cannot be passed where a finding id is
//! meant. New ids are v7 (time-ordered), which keeps database indexes compact.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

use crate::DomainError;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            /// The field name used in errors ("item_id").
            pub const FIELD: &'static str = $field;

            /// A new time-ordered (v7) id.
            pub fn new_v7() -> Self {
                Self(Uuid::now_v7())
            }

            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }

            /// Parses the textual form; the error names the field.
            pub fn parse(text: &str) -> Result<Self, DomainError> {
                Uuid::parse_str(text.trim()).map(Self).map_err(|_| DomainError::InvalidId {
                    field: $field,
                    value: text.to_string(),
                })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl FromStr for $name {
            type Err = DomainError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Self {
                id.0
            }
        }
    };
}

uuid_id!(
    /// An inspection (one published report).
    InspectionId,
    "inspection_id"
);
uuid_id!(
    /// A finding recorded from a report.
    FindingId,
    "finding_id"
);
uuid_id!(
    /// A tracked item: one finding, for one organisation.
    ItemId,
    "item_id"
);
uuid_id!(
    /// A reconciliation proposal.
    ProposalId,
    "proposal_id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_v7() {
        let id = ItemId::new_v7();
        assert_eq!(id.as_uuid().get_version_num(), 7);
        assert_eq!(id.to_string().parse::<ItemId>(), Ok(id));
    }

    #[test]
    fn error_names_the_field() {
        let err = "nope".parse::<FindingId>().unwrap_err();
        assert_eq!(
            err,
            DomainError::InvalidId {
                field: "finding_id",
                value: "nope".into()
            }
        );
        assert!(err.to_string().contains("finding_id"));
        assert!(
            ProposalId::parse("")
                .unwrap_err()
                .to_string()
                .contains("proposal_id")
        );
        assert!(
            InspectionId::parse("x")
                .unwrap_err()
                .to_string()
                .contains("inspection_id")
        );
    }
}
