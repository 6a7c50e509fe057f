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
use closeout_proto::{self as pb, event_envelope::Payload};
use sqlx::PgConnection;

/// What a rename moves: `inspection` None for the whole organisation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Move<'a> {
    pub old_id: &'a str,
    pub new_id: &'a str,
    pub inspection: Option<&'a str>,
}

/// The move an event asks for; None when it cannot be applied.
pub fn plan(renamed: &pb::OrganisationRenamed) -> Option<Move<'_>> {
    let valid = |id: &str| closeout_domain::OrganisationId::parse(id).is_ok();
    if !valid(&renamed.old_id) || !valid(&renamed.new_id) || renamed.old_id == renamed.new_id {
        return None;
    }
    Some(Move {
        old_id: &renamed.old_id,
        new_id: &renamed.new_id,
        inspection: Some(renamed.inspection_id.as_str()).filter(|i| !i.is_empty()),
    })
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
    .bind(rename.old_id)
    .bind(rename.new_id)
    .bind(rename.inspection)
    .execute(&mut *tx)
    .await?;
    if rename.inspection.is_none() {
        // The old registration stands for the new id until the new id's
        // own (announced after the rename) replaces it.
        sqlx::query(
            "INSERT INTO organisations (id, name, kind, most_similar_group, version) \
             SELECT $2, name, kind, most_similar_group, version FROM organisations \
             WHERE id = $1 ON CONFLICT (id) DO NOTHING",
        )
        .bind(rename.old_id)
        .bind(rename.new_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM organisations WHERE id = $1")
            .bind(rename.old_id)
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
        let whole = renamed("kent", "kent-fire", "");
        assert_eq!(
            plan(&whole),
            Some(Move {
                old_id: "kent",
                new_id: "kent-fire",
                inspection: None
            })
        );
        let one = renamed("essex", "essex-fire", "i-1");
        assert_eq!(plan(&one).and_then(|m| m.inspection), Some("i-1"));
    }

    #[test]
    fn invalid_renames_move_nothing() {
        assert_eq!(plan(&renamed("", "kent-fire", "")), None);
        assert_eq!(plan(&renamed("kent", "", "")), None);
        assert_eq!(plan(&renamed("kent", "kent", "")), None);
        assert_eq!(plan(&renamed("kent", "Kent Fire", "")), None);
    }
}
