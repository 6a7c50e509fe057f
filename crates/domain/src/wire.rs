//! Conversions between the domain's types and the wire types of
//! `closeout-proto`, in one place so that every service reads and writes
//! enums the same way. Domain → wire always succeeds; wire → domain gives
//! None for UNSPECIFIED and for numbers the proto does not define (the
//! caller decides whether that is an error, and names the field).

use closeout_proto as pb;

use crate::{FindingKind, Grade, GradeScale, ItemStatus, OrganisationKind, Role};

impl From<OrganisationKind> for pb::OrganisationKind {
    fn from(kind: OrganisationKind) -> Self {
        match kind {
            OrganisationKind::PoliceForce => Self::PoliceForce,
            OrganisationKind::FireAndRescueService => Self::FireAndRescueService,
        }
    }
}

/// The organisation kind a wire value names; None when unspecified.
pub fn organisation_kind(value: i32) -> Option<OrganisationKind> {
    match pb::OrganisationKind::try_from(value).ok()? {
        pb::OrganisationKind::PoliceForce => Some(OrganisationKind::PoliceForce),
        pb::OrganisationKind::FireAndRescueService => Some(OrganisationKind::FireAndRescueService),
        pb::OrganisationKind::Unspecified => None,
    }
}

/// The wire value of an optional organisation kind (UNSPECIFIED for None).
pub fn organisation_kind_to_wire(kind: Option<OrganisationKind>) -> pb::OrganisationKind {
    kind.map_or(pb::OrganisationKind::Unspecified, Into::into)
}

impl From<Grade> for pb::Grade {
    fn from(grade: Grade) -> Self {
        match grade {
            Grade::Outstanding => Self::Outstanding,
            Grade::Good => Self::Good,
            Grade::Adequate => Self::Adequate,
            Grade::RequiresImprovement => Self::RequiresImprovement,
            Grade::Inadequate => Self::Inadequate,
            Grade::Ungraded => Self::Ungraded,
        }
    }
}

/// The grade a wire value names; None when unspecified.
pub fn grade(value: i32) -> Option<Grade> {
    match pb::Grade::try_from(value).ok()? {
        pb::Grade::Outstanding => Some(Grade::Outstanding),
        pb::Grade::Good => Some(Grade::Good),
        pb::Grade::Adequate => Some(Grade::Adequate),
        pb::Grade::RequiresImprovement => Some(Grade::RequiresImprovement),
        pb::Grade::Inadequate => Some(Grade::Inadequate),
        pb::Grade::Ungraded => Some(Grade::Ungraded),
        pb::Grade::Unspecified => None,
    }
}

impl From<GradeScale> for pb::GradeScale {
    fn from(scale: GradeScale) -> Self {
        match scale {
            GradeScale::FourTier => Self::FourTier,
            GradeScale::FiveTier => Self::FiveTier,
        }
    }
}

/// The grading scale a wire value names; None when unspecified.
pub fn grade_scale(value: i32) -> Option<GradeScale> {
    match pb::GradeScale::try_from(value).ok()? {
        pb::GradeScale::FourTier => Some(GradeScale::FourTier),
        pb::GradeScale::FiveTier => Some(GradeScale::FiveTier),
        pb::GradeScale::Unspecified => None,
    }
}

impl From<FindingKind> for pb::FindingKind {
    fn from(kind: FindingKind) -> Self {
        match kind {
            FindingKind::AreaForImprovement => Self::AreaForImprovement,
            FindingKind::CauseOfConcern => Self::CauseOfConcern,
            FindingKind::Recommendation => Self::Recommendation,
            FindingKind::NationalRecommendation => Self::NationalRecommendation,
            FindingKind::NoteworthyPractice => Self::NoteworthyPractice,
        }
    }
}

/// The finding kind a wire value names; None when unspecified.
pub fn finding_kind(value: i32) -> Option<FindingKind> {
    match pb::FindingKind::try_from(value).ok()? {
        pb::FindingKind::AreaForImprovement => Some(FindingKind::AreaForImprovement),
        pb::FindingKind::CauseOfConcern => Some(FindingKind::CauseOfConcern),
        pb::FindingKind::Recommendation => Some(FindingKind::Recommendation),
        pb::FindingKind::NationalRecommendation => Some(FindingKind::NationalRecommendation),
        pb::FindingKind::NoteworthyPractice => Some(FindingKind::NoteworthyPractice),
        pb::FindingKind::Unspecified => None,
    }
}

impl From<ItemStatus> for pb::ItemStatus {
    fn from(status: ItemStatus) -> Self {
        match status {
            ItemStatus::Open => Self::Open,
            ItemStatus::InProgress => Self::InProgress,
            ItemStatus::AwaitingVerification => Self::AwaitingVerification,
            ItemStatus::Closed => Self::Closed,
            ItemStatus::Superseded => Self::Superseded,
        }
    }
}

/// The item status a wire value names; None when unspecified.
pub fn item_status(value: i32) -> Option<ItemStatus> {
    match pb::ItemStatus::try_from(value).ok()? {
        pb::ItemStatus::Open => Some(ItemStatus::Open),
        pb::ItemStatus::InProgress => Some(ItemStatus::InProgress),
        pb::ItemStatus::AwaitingVerification => Some(ItemStatus::AwaitingVerification),
        pb::ItemStatus::Closed => Some(ItemStatus::Closed),
        pb::ItemStatus::Superseded => Some(ItemStatus::Superseded),
        pb::ItemStatus::Unspecified => None,
    }
}

impl From<Role> for pb::Role {
    fn from(role: Role) -> Self {
        match role {
            Role::Inspectorate => Self::Inspectorate,
            Role::InspectedBody => Self::InspectedBody,
            Role::Viewer => Self::Viewer,
            Role::System => Self::System,
        }
    }
}

/// The role a wire value names; None when unspecified.
pub fn role(value: i32) -> Option<Role> {
    match pb::Role::try_from(value).ok()? {
        pb::Role::Inspectorate => Some(Role::Inspectorate),
        pb::Role::InspectedBody => Some(Role::InspectedBody),
        pb::Role::Viewer => Some(Role::Viewer),
        pb::Role::System => Some(Role::System),
        pb::Role::Unspecified => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip_and_unspecified_is_none() {
        for kind in [
            OrganisationKind::PoliceForce,
            OrganisationKind::FireAndRescueService,
        ] {
            assert_eq!(
                organisation_kind(pb::OrganisationKind::from(kind) as i32),
                Some(kind)
            );
        }
        for g in [
            Grade::Outstanding,
            Grade::Good,
            Grade::Adequate,
            Grade::RequiresImprovement,
            Grade::Inadequate,
            Grade::Ungraded,
        ] {
            assert_eq!(grade(pb::Grade::from(g) as i32), Some(g));
        }
        for s in [GradeScale::FourTier, GradeScale::FiveTier] {
            assert_eq!(grade_scale(pb::GradeScale::from(s) as i32), Some(s));
        }
        for k in FindingKind::ALL {
            assert_eq!(finding_kind(pb::FindingKind::from(k) as i32), Some(k));
        }
        for s in ItemStatus::ALL {
            assert_eq!(item_status(pb::ItemStatus::from(s) as i32), Some(s));
        }
        for r in Role::ALL {
            assert_eq!(role(pb::Role::from(r) as i32), Some(r));
        }
        for unknown in [0, 99, -1] {
            assert_eq!(organisation_kind(unknown), None);
            assert_eq!(grade(unknown), None);
            assert_eq!(grade_scale(unknown), None);
            assert_eq!(finding_kind(unknown), None);
            assert_eq!(item_status(unknown), None);
            assert_eq!(role(unknown), None);
        }
        assert_eq!(
            organisation_kind_to_wire(None),
            pb::OrganisationKind::Unspecified
        );
    }
}
