//! An organisation renamed (findings' `OrganisationRenamed`): the read
//! models that findings' events key by organisation move from the old id
//! to the new one — the inspections (all of the old id's, or the one named)
//! and, for a whole organisation, its registration. Judgments and
//! indicators follow their inspection.
//!
//! Items, and every tally (which count items by their organisation), are
//! not moved here: the tracker publishes an `ItemOrganisationChanged` for
//! each item it moves, and the item fold (`model`) takes the new id from it,
//! so the tallies move by the item's difference like any other change, in
//! whatever order a replay brings the two services' events.
//!
//! A rename applied again finds nothing left under the old id. One that is
//! not valid (an id missing, or the same on both sides) changes nothing.

use crate::model::Fact;
use closeout_domain::OrganisationRename;
use closeout_proto::{self as pb, event_envelope::Payload};
use sqlx::PgConnection;

/// The move an event asks for, by the domain's rule; None when it cannot
/// be applied.
pub fn plan(renamed: &pb::OrganisationRenamed) -> Option<OrganisationRename> {
    OrganisationRename::check(&renamed.old_id, &renamed.new_id, &renamed.inspection_id).ok()
}

/// Applies `fact` if it is a rename (any other event: nothing to do).
pub(crate) async fn apply(tx: &mut PgConnection, fact: &Fact) -> Result<(), sqlx::Error> {
    let Payload::OrganisationRenamed(renamed) = &fact.payload else {
        return Ok(());
    };
    let Some(rename) = plan(renamed) else {
        tracing::warn!(event = %fact.event_id, ?renamed, "organisation rename not applied: invalid");
        return Ok(());
    };
    sqlx::query(
        "UPDATE inspections SET organisation_id = $2 \
         WHERE organisation_id = $1 AND ($3::text IS NULL OR id = $3)",
    )
    .bind(rename.old_id.as_str())
    .bind(rename.new_id.as_str())
    .bind(rename.inspection_id.as_deref())
    .execute(&mut *tx)
    .await?;
    if rename.inspection_id.is_none() {
        // The old registration stands for the new id until the new id's
        // own (announced after the rename) replaces it.
        sqlx::query(
            "INSERT INTO organisations (id, name, kind, most_similar_group, version) \
             SELECT $2, name, kind, most_similar_group, version FROM organisations \
             WHERE id = $1 ON CONFLICT (id) DO NOTHING",
        )
        .bind(rename.old_id.as_str())
        .bind(rename.new_id.as_str())
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM organisations WHERE id = $1")
            .bind(rename.old_id.as_str())
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn renamed(old: &str, new: &str, inspection: &str) -> pb::OrganisationRenamed {
        pb::OrganisationRenamed {
            old_id: old.into(),
            new_id: new.into(),
            inspection_id: inspection.into(),
        }
    }

    #[test]
    fn a_rename_moves_an_organisation_or_one_inspection() {
        let whole = plan(&renamed("kent", "kent-fire", "")).expect("valid");
        assert_eq!(
            (
                whole.old_id.as_str(),
                whole.new_id.as_str(),
                whole.inspection_id
            ),
            ("kent", "kent-fire", None)
        );
        let one = plan(&renamed("essex", "essex-fire", "i-1")).expect("valid");
        assert_eq!(one.inspection_id.as_deref(), Some("i-1"));
    }

    #[test]
    fn invalid_renames_move_nothing() {
        for (old, new) in [
            ("", "kent-fire"),
            ("kent", ""),
            ("kent", "kent"),
            ("kent", "Kent Fire"),
        ] {
            assert_eq!(plan(&renamed(old, new, "")), None, "{old:?} -> {new:?}");
        }
    }
}
