//! An organisation's id changed (findings' `OrganisationRenamed`: fire and
//! rescue services' ids end in "-fire" since findings' migration 0018).
//! What the tracker keeps under the old id moves to the new one: the whole
//! organisation, or only one inspection and what came from it (its items,
//! their proposals and links, the inspection's findings and follow-up
//! statements), when a fire report had been stored under a police force.
//!
//! Each moved item gets an `ItemOrganisationChanged` event through the
//! journal, published under the new id, so its history says so, WatchItems
//! subscribers see it and metrics moves the item (and its tallies) by
//! folding that event like any other. The item's earlier events stay as
//! they were published, under the old id. Tables that only this service
//! reads (inspections, findings, follow-ups, proposals, links, policy,
//! successions) move without events.
//!
//! Applying a rename again moves nothing (nothing is left under the old
//! id). An item whose finding already has an item under the new id (the
//! same national recommendation opened for both) cannot move without two
//! items for one finding: it stays, with a warning.

use crate::error::TrackerError;
use crate::journal::{Cause, Journal};
use closeout_domain::{DomainError, OrganisationRename};
use closeout_proto::{self as pb, event_envelope::Payload};
use sqlx::PgConnection;
use uuid::Uuid;

/// Checks the event by the domain's rule ([`OrganisationRename::check`]).
pub fn check(renamed: &pb::OrganisationRenamed) -> Result<OrganisationRename, TrackerError> {
    OrganisationRename::check(&renamed.old_id, &renamed.new_id, &renamed.inspection_id).map_err(
        |e| match e {
            DomainError::InvalidRename { field, reason } => TrackerError::invalid(field, reason),
            other => TrackerError::invalid("organisation_renamed", other.to_string()),
        },
    )
}

/// Applies a rename on the consumer's transaction (the caller holds the
/// fan-out lock, as for every change of the organisations known).
pub(crate) async fn organisation_renamed(
    tx: &mut PgConnection,
    renamed: &pb::OrganisationRenamed,
    cause: &Cause,
) -> Result<(), TrackerError> {
    let rename = check(renamed)?;
    let (old, new) = (rename.old_id.as_str(), rename.new_id.as_str());
    let inspection = rename.inspection_id.as_deref();

    // The new id is known from now on: as the old one was, for a whole
    // organisation; of unknown kind otherwise, until its registration
    // (announced right after the rename) says.
    sqlx::query(
        "INSERT INTO organisations (id, name, kind, learned_at) \
         SELECT $2, o.name, o.kind, o.learned_at FROM organisations o \
         WHERE o.id = $1 AND $3 \
         UNION ALL SELECT $2, '', 0, now() WHERE NOT $3 \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(old)
    .bind(new)
    .bind(inspection.is_none())
    .execute(&mut *tx)
    .await?;

    let moved = move_items(tx, &rename, cause).await?;
    let moved_text: Vec<String> = moved.iter().map(Uuid::to_string).collect();
    sqlx::query("UPDATE proposals SET organisation_id = $2 WHERE item_id = ANY($1)")
        .bind(&moved)
        .bind(new)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE item_links SET organisation_id = $2 WHERE from_item_id = ANY($1)")
        .bind(&moved_text)
        .bind(new)
        .execute(&mut *tx)
        .await?;

    match inspection {
        Some(inspection) => {
            for table in ["inspection_findings", "follow_ups"] {
                sqlx::query(&format!(
                    "UPDATE {table} SET organisation_id = $3 \
                     WHERE inspection_id = $1 AND organisation_id = $2"
                ))
                .bind(inspection)
                .bind(old)
                .bind(new)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query(
                "UPDATE inspections SET organisation_id = $3 WHERE id = $1 AND organisation_id = $2",
            )
            .bind(inspection)
            .bind(old)
            .bind(new)
            .execute(&mut *tx)
            .await?;
        }
        None => move_organisation(tx, old, new).await?,
    }
    tracing::info!(
        old,
        new,
        inspection = inspection.unwrap_or(""),
        items = moved.len(),
        "organisation rename applied"
    );
    Ok(())
}

/// Moves the items under the old id (of the inspection, if one) to the new
/// id, each with its event. Returns the ids moved.
async fn move_items(
    tx: &mut PgConnection,
    rename: &OrganisationRename,
    cause: &Cause,
) -> Result<Vec<Uuid>, TrackerError> {
    let candidates: Vec<(Uuid, bool)> = sqlx::query_as(
        "SELECT i.id, EXISTS (SELECT 1 FROM items n \
                              WHERE n.finding_id = i.finding_id AND n.organisation_id = $2) \
         FROM items i WHERE i.organisation_id = $1 AND ($3::text IS NULL OR i.inspection_id = $3) \
         ORDER BY i.id",
    )
    .bind(rename.old_id.as_str())
    .bind(rename.new_id.as_str())
    .bind(rename.inspection_id.as_deref())
    .fetch_all(&mut *tx)
    .await?;
    let reason = rename.reason();
    let mut moved = Vec::with_capacity(candidates.len());
    for (id, taken) in candidates {
        if taken {
            tracing::warn!(
                item = %id,
                old = %rename.old_id,
                new = %rename.new_id,
                "item not moved: its finding already has an item under the new id"
            );
            continue;
        }
        let Some(mut item) = crate::store::lock_item(tx, id).await? else {
            continue;
        };
        if item.organisation_id != rename.old_id.as_str() {
            continue;
        }
        // Published under the new id: the organisation the item is in after.
        item.organisation_id = rename.new_id.to_string();
        let payload = Payload::ItemOrganisationChanged(pb::ItemOrganisationChanged {
            item_id: item.id.clone(),
            organisation_id: rename.new_id.to_string(),
            previous_organisation_id: rename.old_id.to_string(),
            reason: reason.clone(),
        });
        Journal::append(tx, &mut item, vec![payload], cause).await?;
        moved.push(id);
    }
    // The journal writes an item's state but never its organisation.
    sqlx::query("UPDATE items SET organisation_id = $2 WHERE id = ANY($1)")
        .bind(&moved)
        .bind(rename.new_id.as_str())
        .execute(&mut *tx)
        .await?;
    Ok(moved)
}

/// The rest of a whole organisation: its inspections, their findings and
/// follow-up statements, its policy and successions; the old id is
/// forgotten once nothing is left under it.
async fn move_organisation(
    tx: &mut PgConnection,
    old: &str,
    new: &str,
) -> Result<(), TrackerError> {
    for table in ["inspections", "inspection_findings", "follow_ups"] {
        sqlx::query(&format!(
            "UPDATE {table} SET organisation_id = $2 WHERE organisation_id = $1"
        ))
        .bind(old)
        .bind(new)
        .execute(&mut *tx)
        .await?;
    }
    // The new id's own policy, if it has one, wins.
    sqlx::query(
        "UPDATE reconciliation_policy SET organisation_id = $2 WHERE organisation_id = $1 \
         AND NOT EXISTS (SELECT 1 FROM reconciliation_policy p WHERE p.organisation_id = $2)",
    )
    .bind(old)
    .bind(new)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM reconciliation_policy WHERE organisation_id = $1")
        .bind(old)
        .execute(&mut *tx)
        .await?;
    // Successions: a link the new id already has, or one that would link
    // the new id to itself, is dropped rather than doubled.
    for (this, other) in [
        ("predecessor_id", "successor_id"),
        ("successor_id", "predecessor_id"),
    ] {
        sqlx::query(&format!(
            "UPDATE successions s SET {this} = $2 WHERE s.{this} = $1 AND s.{other} <> $2 \
             AND NOT EXISTS (SELECT 1 FROM successions t WHERE t.{this} = $2 AND t.{other} = s.{other})"
        ))
        .bind(old)
        .bind(new)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("DELETE FROM successions WHERE predecessor_id = $1 OR successor_id = $1")
        .bind(old)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "DELETE FROM organisations o WHERE o.id = $1 \
         AND NOT EXISTS (SELECT 1 FROM items i WHERE i.organisation_id = $1)",
    )
    .bind(old)
    .execute(&mut *tx)
    .await?;
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

    fn field_of(result: Result<OrganisationRename, TrackerError>) -> String {
        match result {
            Err(TrackerError::Invalid(violations)) => violations[0].field.clone(),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn bad_renames_name_the_field() {
        assert!(check(&renamed("kent", "kent-fire", "")).is_ok());
        assert_eq!(field_of(check(&renamed("", "kent-fire", ""))), "old_id");
        assert_eq!(field_of(check(&renamed("kent", "Kent Fire", ""))), "new_id");
        assert_eq!(field_of(check(&renamed("kent", "kent", ""))), "new_id");
        assert_eq!(
            field_of(check(&renamed("kent", "kent-fire", &"x".repeat(65)))),
            "inspection_id"
        );
        assert_eq!(
            field_of(check(&renamed("kent", "kent-fire", " x"))),
            "inspection_id"
        );
    }
}
