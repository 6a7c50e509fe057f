//! Organisations change: fire and rescue services merge (Isle of Wight and
//! Hampshire became Hampshire and Isle of Wight on 1 April 2021) and forces
//! are renamed. A succession links a predecessor to its successor from an
//! effective date, so that the successor's later report is reconciled
//! against the predecessor's open items (the tracker does that, from the
//! `OrganisationSucceeded` event announced here).
//!
//! Successions come from two places: an inspectorate user records one
//! (RecordSuccession), and the known ones are listed in
//! `data/successions.toml`, applied at every start-up. Both are idempotent:
//! the same link again changes nothing and announces nothing.
//!
//! Rules (pure, in [`check`] and [`known`]): ids are organisation ids;
//! an organisation does not succeed itself; the date is a calendar date;
//! predecessor and successor are of one kind (a police force is not
//! succeeded by a fire and rescue service); no chain of successions leads
//! back to where it started.

use chrono::NaiveDate;
use closeout_proto::{self as pb, event_envelope::Payload};
use closeout_service::error::{ApiError, Violations};
use serde::Deserialize;
use sqlx::{PgConnection, PgPool};

use crate::error::FindingsError;
use crate::events::EventBatch;

/// The known successions, shipped with the service.
pub const KNOWN: &str = include_str!("../data/successions.toml");

const MAX_NOTE: usize = 2_000;

/// A checked succession.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Succession {
    pub predecessor_id: String,
    pub successor_id: String,
    pub effective_date: NaiveDate,
    pub note: String,
}

/// Checks the fields of a succession; each problem names its field.
pub fn check(
    predecessor_id: &str,
    successor_id: &str,
    effective_date: &str,
    note: &str,
) -> Result<Succession, ApiError> {
    let mut v = Violations::default();
    for (field, id) in [
        ("predecessor_id", predecessor_id),
        ("successor_id", successor_id),
    ] {
        if id.trim().is_empty() {
            v.add(field, "is required");
        } else if closeout_domain::OrganisationId::parse(id).is_err() {
            v.add(
                field,
                format!(
                    "{id:?} is not an organisation id (1-64 lowercase letters, digits and hyphens)"
                ),
            );
        }
    }
    if !predecessor_id.is_empty() && predecessor_id == successor_id {
        v.add("successor_id", "an organisation does not succeed itself");
    }
    let date = parse_date(effective_date);
    if date.is_none() {
        v.add(
            "effective_date",
            format!("{effective_date:?} is not a date written YYYY-MM-DD"),
        );
    }
    if let Err(problem) = closeout_domain::text::check_text(note, MAX_NOTE) {
        v.add("note", problem.to_string());
    }
    v.into_result()?;
    let Some(effective_date) = date else {
        return Err(ApiError::invalid("effective_date", "is not a date"));
    };
    Ok(Succession {
        predecessor_id: predecessor_id.to_string(),
        successor_id: successor_id.to_string(),
        effective_date,
        note: note.trim().to_string(),
    })
}

/// "YYYY-MM-DD", exactly.
fn parse_date(text: &str) -> Option<NaiveDate> {
    let text = text.trim();
    if text.len() != 10 {
        return None;
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// One entry of the known successions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    pub succession: Succession,
    pub kind: pb::OrganisationKind,
    pub predecessor_name: String,
    pub successor_name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KnownFile {
    #[serde(default)]
    succession: Vec<KnownEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KnownEntry {
    predecessor: String,
    #[serde(default)]
    predecessor_name: String,
    successor: String,
    #[serde(default)]
    successor_name: String,
    kind: String,
    effective_date: String,
    #[serde(default)]
    note: String,
}

/// Reads a list of known successions; an error names the entry and field.
pub fn known(text: &str) -> Result<Vec<Known>, String> {
    let file: KnownFile = toml::from_str(text).map_err(|e| e.to_string())?;
    file.succession
        .into_iter()
        .enumerate()
        .map(|(i, entry)| {
            let kind = match entry.kind.as_str() {
                "police-force" => pb::OrganisationKind::PoliceForce,
                "fire-and-rescue-service" => pb::OrganisationKind::FireAndRescueService,
                other => {
                    return Err(format!(
                        "succession {}: kind {other:?} is not police-force or fire-and-rescue-service",
                        i + 1
                    ));
                }
            };
            let succession = check(
                &entry.predecessor,
                &entry.successor,
                &entry.effective_date,
                &entry.note,
            )
            .map_err(|e| format!("succession {}: {e}", i + 1))?;
            Ok(Known {
                succession,
                kind,
                predecessor_name: entry.predecessor_name,
                successor_name: entry.successor_name,
            })
        })
        .collect()
}

pub(crate) fn kind_words(kind: i32) -> &'static str {
    match pb::OrganisationKind::try_from(kind) {
        Ok(pb::OrganisationKind::PoliceForce) => "a police force",
        Ok(pb::OrganisationKind::FireAndRescueService) => "a fire and rescue service",
        _ => "of no stated kind",
    }
}

/// Whether a chain of recorded successions already leads from `from` to
/// `to` (then `to` → `from` would close a cycle).
async fn leads_to(tx: &mut PgConnection, from: &str, to: &str) -> Result<bool, FindingsError> {
    let found: Option<i32> = sqlx::query_scalar(
        "WITH RECURSIVE chain(id, depth) AS ( \
             SELECT $1::text, 0 \
             UNION \
             SELECT s.successor_id, c.depth + 1 FROM successions s \
             JOIN chain c ON s.predecessor_id = c.id WHERE c.depth < 64 \
         ) SELECT 1 FROM chain WHERE id = $2 LIMIT 1",
    )
    .bind(from)
    .bind(to)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(found.is_some())
}

/// The stored succession (pred, succ), if any.
async fn existing(
    tx: &mut PgConnection,
    succession: &Succession,
) -> Result<Option<SuccessionRow>, FindingsError> {
    Ok(sqlx::query_as::<_, SuccessionRow>(
        "SELECT predecessor_id, successor_id, effective_date, note, source, recorded_by, recorded_at \
         FROM successions WHERE predecessor_id = $1 AND successor_id = $2",
    )
    .bind(&succession.predecessor_id)
    .bind(&succession.successor_id)
    .fetch_optional(&mut *tx)
    .await?)
}

/// Inserts a succession and announces it (the caller commits).
async fn insert(
    tx: &mut PgConnection,
    succession: &Succession,
    source: &str,
    recorded_by: &str,
    batch: &mut EventBatch,
) -> Result<SuccessionRow, FindingsError> {
    let row = sqlx::query_as::<_, SuccessionRow>(
        "INSERT INTO successions (predecessor_id, successor_id, effective_date, note, source, recorded_by) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         RETURNING predecessor_id, successor_id, effective_date, note, source, recorded_by, recorded_at",
    )
    .bind(&succession.predecessor_id)
    .bind(&succession.successor_id)
    .bind(succession.effective_date)
    .bind(&succession.note)
    .bind(source)
    .bind(recorded_by)
    .fetch_one(&mut *tx)
    .await?;
    batch.push(
        &succession.successor_id,
        "succession",
        format!("{}:{}", succession.predecessor_id, succession.successor_id),
        1,
        Payload::OrganisationSucceeded(pb::OrganisationSucceeded {
            predecessor_id: succession.predecessor_id.clone(),
            successor_id: succession.successor_id.clone(),
            effective_date: succession.effective_date.format("%Y-%m-%d").to_string(),
            note: succession.note.clone(),
        }),
    );
    batch.append(&mut *tx).await?;
    Ok(row)
}

/// Successions are written one at a time (the cycle check reads them).
async fn lock(tx: &mut PgConnection) -> Result<(), FindingsError> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('successions', 0))")
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// RecordSuccession: both organisations must be known here, of one kind.
pub(crate) async fn record(
    pool: &PgPool,
    request: pb::RecordSuccessionRequest,
    mut batch: EventBatch,
    recorded_by: &str,
) -> Result<pb::RecordSuccessionResponse, FindingsError> {
    let succession = check(
        &request.predecessor_id,
        &request.successor_id,
        &request.effective_date,
        &request.note,
    )?;
    let mut tx = pool.begin().await?;
    lock(&mut tx).await?;
    let mut kinds = Vec::new();
    for id in [&succession.predecessor_id, &succession.successor_id] {
        let kind: Option<i16> = sqlx::query_scalar("SELECT kind FROM organisations WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        match kind {
            Some(kind) => kinds.push(i32::from(kind)),
            None => return Err(FindingsError::not_found("organisation", id.clone())),
        }
    }
    if kinds[0] != kinds[1] {
        return Err(FindingsError::invalid(
            "successor_id",
            format!(
                "{} is {} and {} is {}; an organisation is succeeded by one of its own kind",
                succession.predecessor_id,
                kind_words(kinds[0]),
                succession.successor_id,
                kind_words(kinds[1])
            ),
        ));
    }
    if let Some(row) = existing(&mut tx, &succession).await? {
        if row.effective_date == succession.effective_date {
            tx.rollback().await?;
            return Ok(pb::RecordSuccessionResponse {
                succession: Some(row.into()),
                created: false,
            });
        }
        return Err(FindingsError::AlreadyExists(format!(
            "{} was already recorded as succeeded by {} from {}",
            succession.predecessor_id, succession.successor_id, row.effective_date
        )));
    }
    if leads_to(
        &mut tx,
        &succession.successor_id,
        &succession.predecessor_id,
    )
    .await?
    {
        return Err(FindingsError::invalid(
            "successor_id",
            format!(
                "{} already succeeds {} (directly or through others); the link would make a cycle",
                succession.predecessor_id, succession.successor_id
            ),
        ));
    }
    let row = insert(&mut tx, &succession, "recorded", recorded_by, &mut batch).await?;
    tx.commit().await?;
    Ok(pb::RecordSuccessionResponse {
        succession: Some(row.into()),
        created: true,
    })
}

/// ListSuccessions, oldest effective date first.
pub(crate) async fn list(
    pool: &PgPool,
    organisation_id: &str,
) -> Result<Vec<pb::Succession>, FindingsError> {
    crate::store::check_organisation_filter("organisation_id", organisation_id)?;
    let rows = sqlx::query_as::<_, SuccessionRow>(
        "SELECT predecessor_id, successor_id, effective_date, note, source, recorded_by, recorded_at \
         FROM successions WHERE $1 = '' OR predecessor_id = $1 OR successor_id = $1 \
         ORDER BY effective_date, predecessor_id, successor_id",
    )
    .bind(organisation_id)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Applies the known successions: each one not stored yet is stored and
/// announced, unless one of its organisations is known here as another
/// kind (its id then names a different body) or it would close a cycle —
/// those are skipped with a warning. Returns how many were added.
pub(crate) async fn apply_known(pool: &PgPool, known: &[Known]) -> Result<usize, FindingsError> {
    let mut added = 0;
    for entry in known {
        let succession = &entry.succession;
        let mut tx = pool.begin().await?;
        lock(&mut tx).await?;
        if existing(&mut tx, succession).await?.is_some() {
            continue;
        }
        let mut other_kind = None;
        for id in [&succession.predecessor_id, &succession.successor_id] {
            let kind: Option<i16> =
                sqlx::query_scalar("SELECT kind FROM organisations WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
            if let Some(kind) = kind.map(i32::from)
                && kind != entry.kind as i32
            {
                other_kind = Some((id.clone(), kind));
            }
        }
        if let Some((id, kind)) = other_kind {
            tracing::warn!(
                predecessor = %succession.predecessor_id,
                successor = %succession.successor_id,
                "known succession not applied: {id} is {} here, not {}",
                kind_words(kind),
                kind_words(entry.kind as i32)
            );
            continue;
        }
        if leads_to(
            &mut tx,
            &succession.successor_id,
            &succession.predecessor_id,
        )
        .await?
        {
            tracing::warn!(
                predecessor = %succession.predecessor_id,
                successor = %succession.successor_id,
                "known succession not applied: it would make a cycle"
            );
            continue;
        }
        let mut batch = EventBatch::new(
            closeout_service::auth::system_actor(crate::events::SOURCE_SERVICE),
            uuid::Uuid::now_v7().to_string(),
        );
        insert(
            &mut tx,
            succession,
            "known",
            crate::events::SOURCE_SERVICE,
            &mut batch,
        )
        .await?;
        tx.commit().await?;
        added += 1;
    }
    Ok(added)
}

#[derive(sqlx::FromRow)]
struct SuccessionRow {
    predecessor_id: String,
    successor_id: String,
    effective_date: NaiveDate,
    note: String,
    source: String,
    recorded_by: String,
    recorded_at: chrono::DateTime<chrono::Utc>,
}

impl From<SuccessionRow> for pb::Succession {
    fn from(r: SuccessionRow) -> Self {
        pb::Succession {
            predecessor_id: r.predecessor_id,
            successor_id: r.successor_id,
            effective_date: r.effective_date.format("%Y-%m-%d").to_string(),
            note: r.note,
            source: r.source,
            recorded_by: r.recorded_by,
            recorded_at: Some(crate::store::timestamp(r.recorded_at)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_list_reads() {
        let known = known(KNOWN).expect("data/successions.toml reads");
        assert!(
            known
                .iter()
                .any(|k| k.succession.predecessor_id == "isle-of-wight-fire"
                    && k.succession.successor_id == "hampshire-and-isle-of-wight-fire"
                    && k.succession.effective_date == NaiveDate::from_ymd_opt(2021, 4, 1).unwrap()
                    && k.kind == pb::OrganisationKind::FireAndRescueService)
        );
        for k in &known {
            assert_eq!(
                closeout_domain::slug_from_name(&k.predecessor_name).as_str(),
                k.succession.predecessor_id,
                "the predecessor id is the slug of its name"
            );
            assert_eq!(
                closeout_domain::slug_from_name(&k.successor_name).as_str(),
                k.succession.successor_id
            );
        }
    }

    fn err_of(result: Result<Succession, ApiError>) -> String {
        result
            .map(|_| String::new())
            .unwrap_or_else(|e| e.to_string())
    }

    #[test]
    fn checks_name_the_field() {
        let err = err_of(check("Isle of Wight", "x", "2021-04-01", ""));
        assert!(err.contains("predecessor_id"), "{err}");
        let err = err_of(check("a", "a", "2021-04-01", ""));
        assert!(err.contains("does not succeed itself"), "{err}");
        let err = err_of(check("a", "b", "1/4/2021", ""));
        assert!(err.contains("effective_date"), "{err}");
        let err = err_of(check("a", "b", "2021-02-30", ""));
        assert!(err.contains("effective_date"), "{err}");
        assert!(check("a", "b", "2021-04-01", " merged ").is_ok());
        assert_eq!(
            check("a", "b", "2021-04-01", " merged ").unwrap().note,
            "merged"
        );
    }

    #[test]
    fn bad_lists_are_refused_with_the_entry() {
        let err = known("[[succession]]\npredecessor = \"a\"\nsuccessor = \"b\"\nkind = \"army\"\neffective_date = \"2021-04-01\"\n").unwrap_err();
        assert!(
            err.contains("succession 1") && err.contains("army"),
            "{err}"
        );
        let err = known("[[succession]]\npredecessor = \"a\"\nsuccessor = \"a\"\nkind = \"police-force\"\neffective_date = \"2021-04-01\"\n").unwrap_err();
        assert!(err.contains("succeed itself"), "{err}");
        assert!(known("[[succession]]\nbogus = 1\n").is_err());
        assert_eq!(known("").unwrap(), Vec::new());
    }
}
