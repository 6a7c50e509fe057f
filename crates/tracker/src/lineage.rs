//! Links across inspections (carried from, superseded by, closed by),
//! recorded when a reconciliation proposal is accepted, hand-overs to a
//! successor organisation (recorded on OrganisationSucceeded; the link's
//! target is the successor's id), and the lineage of an item: the chain
//! through it, walked by `closeout_reconcile::lineage`.

use crate::error::TrackerError;
use crate::store;
use chrono::{DateTime, Utc};
use closeout_proto as pb;
use closeout_reconcile::lineage::{self, Link, LinkKind};
use closeout_service::paging::Page;
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

/// One link to record.
#[derive(Debug, Clone)]
pub struct NewLink<'a> {
    pub from_item_id: &'a str,
    /// An item id, or an inspection id for CLOSED_BY.
    pub to_id: &'a str,
    pub relation: pb::LinkRelation,
    pub organisation_id: &'a str,
    pub inspection_id: &'a str,
    pub proposal_id: Option<Uuid>,
}

/// Records a link (once: recording it again changes nothing).
pub async fn record(tx: &mut PgConnection, link: NewLink<'_>) -> Result<(), TrackerError> {
    if link.from_item_id.is_empty() || link.to_id.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO item_links (from_item_id, to_id, relation, organisation_id, inspection_id, \
         proposal_id) VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT DO NOTHING",
    )
    .bind(link.from_item_id)
    .bind(link.to_id)
    .bind(link.relation as i16)
    .bind(link.organisation_id)
    .bind(link.inspection_id)
    .bind(link.proposal_id)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

#[derive(FromRow)]
struct LinkRow {
    from_item_id: String,
    to_id: String,
    relation: i16,
    inspection_id: String,
    linked_at: DateTime<Utc>,
}

fn kind_of(relation: i16) -> Option<LinkKind> {
    match pb::LinkRelation::try_from(i32::from(relation)).ok()? {
        pb::LinkRelation::CarriedFrom => Some(LinkKind::CarriedFrom),
        pb::LinkRelation::SupersededBy => Some(LinkKind::SupersededBy),
        pb::LinkRelation::ClosedBy => Some(LinkKind::ClosedBy),
        pb::LinkRelation::HandedOverTo => Some(LinkKind::HandedOverTo),
        pb::LinkRelation::Unspecified => None,
    }
}

/// The lineage of an item: every item of the chain through it, oldest
/// first, and the links between the chain's nodes, one `page` of items at a
/// time (each page carries the links starting at its items). An unknown
/// item is NOT_FOUND; an item with no links is its own lineage.
pub async fn of_item(
    pool: &PgPool,
    id: Uuid,
    page: Page,
) -> Result<pb::GetLineageResponse, TrackerError> {
    let item = store::get_item(pool, id).await?;
    let rows: Vec<LinkRow> = sqlx::query_as(
        "SELECT from_item_id, to_id, relation, inspection_id, linked_at FROM item_links \
         WHERE organisation_id = $1 ORDER BY linked_at, from_item_id, to_id",
    )
    .bind(&item.organisation_id)
    .fetch_all(pool)
    .await?;
    let links: Vec<Link> = rows
        .iter()
        .filter_map(|r| {
            Some(Link {
                from: r.from_item_id.clone(),
                to: r.to_id.clone(),
                kind: kind_of(r.relation)?,
            })
        })
        .collect();
    let chain = lineage::chain(&links, &item.id);
    let mut items = Vec::with_capacity(chain.len());
    for node in &chain {
        if *node == item.id {
            items.push(item.clone());
            continue;
        }
        // Nodes that are not items (a closing inspection) are only linked.
        let Ok(node_id) = Uuid::parse_str(node) else {
            continue;
        };
        match store::get_item(pool, node_id).await {
            Ok(found) => items.push(found),
            Err(TrackerError::NotFound { .. }) => {}
            Err(other) => return Err(other),
        }
    }
    let mut items: Vec<pb::TrackedItem> = items
        .into_iter()
        .skip(usize::try_from(page.offset).unwrap_or(usize::MAX))
        .take(usize::try_from(page.fetch()).unwrap_or(usize::MAX))
        .collect();
    let next_page_token = page.finish(&mut items);
    let links = rows
        .into_iter()
        .filter(|r| {
            chain.contains(&r.from_item_id)
                && chain.contains(&r.to_id)
                && items.iter().any(|i| i.id == r.from_item_id)
        })
        .map(|r| pb::LineageLink {
            from_item_id: r.from_item_id,
            to_item_id: r.to_id,
            relation: i32::from(r.relation),
            inspection_id: r.inspection_id,
            linked_at: Some(store::timestamp(r.linked_at)),
        })
        .collect();
    Ok(pb::GetLineageResponse {
        items,
        links,
        next_page_token,
    })
}
