//! Announces organisation renames. Migration 0018 renamed what findings
//! had stored under a fire and rescue service's old id and recorded each
//! move in `organisation_renames`; the tracker and metrics keep their own
//! copies, so each recorded rename is published once as
//! `OrganisationRenamed` (published under the new id), followed by the
//! registration of each organisation it names as it now stands (a new
//! service's name and kind; an old id that stays a police force's kind), so
//! that the consumers learn them after the move.
//!
//! Run at every start, after the migrations and before the service
//! answers: rows not yet announced are locked `FOR UPDATE SKIP LOCKED`,
//! their events appended to the outbox and the rows marked in one
//! transaction, so a restart announces nothing twice and of two replicas
//! starting together one announces and the other finds nothing to do.

use closeout_proto::{self as pb, event_envelope::Payload};
use sqlx::PgPool;

use crate::error::FindingsError;
use crate::events::{EventBatch, SOURCE_SERVICE};

/// A recorded rename: `inspection_id` None when the whole organisation
/// moved.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Rename {
    pub id: i64,
    pub old_id: String,
    pub new_id: String,
    pub inspection_id: Option<uuid::Uuid>,
}

/// The event announcing `rename`.
pub fn renamed(rename: &Rename) -> pb::OrganisationRenamed {
    pb::OrganisationRenamed {
        old_id: rename.old_id.clone(),
        new_id: rename.new_id.clone(),
        inspection_id: rename
            .inspection_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
    }
}

/// The organisations whose registration follows `renames`, each once, in
/// the order first named: every new id, and every old id that stays (a
/// single inspection moved away from it).
pub fn named(renames: &[Rename]) -> Vec<&str> {
    let mut ids: Vec<&str> = Vec::new();
    for rename in renames {
        let stays = rename
            .inspection_id
            .is_some()
            .then_some(rename.old_id.as_str());
        for id in std::iter::once(rename.new_id.as_str()).chain(stays) {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    ids
}

/// Announces every rename not announced yet. Returns how many it
/// announced (0 when another replica holds them or there are none).
pub(crate) async fn announce(pool: &PgPool) -> Result<usize, FindingsError> {
    let mut tx = pool.begin().await?;
    let renames: Vec<Rename> = sqlx::query_as(
        "SELECT id, old_id, new_id, inspection_id FROM organisation_renames \
         WHERE announced_at IS NULL ORDER BY id FOR UPDATE SKIP LOCKED",
    )
    .fetch_all(&mut *tx)
    .await?;
    if renames.is_empty() {
        return Ok(0);
    }
    let mut batch = EventBatch::new(
        closeout_service::auth::system_actor(SOURCE_SERVICE),
        uuid::Uuid::now_v7().to_string(),
    );
    for rename in &renames {
        batch.push(
            &rename.new_id,
            "organisation",
            rename.new_id.clone(),
            1,
            Payload::OrganisationRenamed(renamed(rename)),
        );
    }
    for id in named(&renames) {
        let row: Option<(String, i16, Vec<String>)> = sqlx::query_as(
            "SELECT name, kind, most_similar_group FROM organisations WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        // A whole organisation's old id is gone; nothing to register.
        let Some((name, kind, most_similar_group)) = row else {
            continue;
        };
        batch.push(
            id,
            "organisation",
            id.to_string(),
            1,
            Payload::OrganisationRegistered(pb::OrganisationRegistered {
                organisation: Some(pb::Organisation {
                    id: id.to_string(),
                    name,
                    kind: i32::from(kind),
                    most_similar_group,
                }),
            }),
        );
    }
    batch.append(&mut tx).await?;
    let ids: Vec<i64> = renames.iter().map(|r| r.id).collect();
    sqlx::query("UPDATE organisation_renames SET announced_at = now() WHERE id = ANY($1)")
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    for rename in &renames {
        tracing::info!(
            old = %rename.old_id,
            new = %rename.new_id,
            inspection = ?rename.inspection_id,
            "organisation rename announced"
        );
    }
    Ok(renames.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rename(id: i64, old: &str, new: &str, inspection: Option<u128>) -> Rename {
        Rename {
            id,
            old_id: old.into(),
            new_id: new.into(),
            inspection_id: inspection.map(uuid::Uuid::from_u128),
        }
    }

    #[test]
    fn the_event_says_whole_or_one_inspection() {
        let whole = renamed(&rename(1, "kent", "kent-fire", None));
        assert_eq!(whole.old_id, "kent");
        assert_eq!(whole.new_id, "kent-fire");
        assert_eq!(whole.inspection_id, "");
        let one = renamed(&rename(2, "essex", "essex-fire", Some(7)));
        assert_eq!(one.inspection_id, "00000000-0000-0000-0000-000000000007");
    }

    #[test]
    fn registrations_follow_new_ids_and_old_ids_that_stay() {
        let renames = [
            rename(1, "kent", "kent-fire", None),
            rename(2, "essex", "essex-fire", Some(7)),
            rename(3, "essex", "essex-fire", Some(8)),
        ];
        assert_eq!(named(&renames), ["kent-fire", "essex-fire", "essex"]);
        assert!(named(&[]).is_empty());
    }
}
