//! The event-sourced write path. Every change of an item is a list of
//! payloads; [`Journal::append`] turns each into an envelope at the next
//! version, folds it into the item's state, stores it in `item_events`,
//! writes the new state to `items` and appends the envelopes to the outbox
//! (whose NOTIFY at commit also wakes WatchItems streams) — all on the
//! caller's transaction, so either everything is committed or nothing is.
//! No lock is shared between items: WatchItems derives its order from
//! transaction ids (`watch_xid`, see `watch`).
//!
//! The state an event leads to is the domain's fold ([`project`] converts the
//! event to a `closeout_domain::Change` and calls `closeout_domain::evolve`,
//! i.e. `apply`), so the stored item is exactly what the state machine's own
//! fold of the same history gives; the tracker only adds what surrounds the
//! lifecycle (version, times, what the item is, links to other items).

use crate::error::TrackerError;
use crate::store;
use closeout_domain::{self as domain, wire};
use closeout_proto::{self as pb, event_envelope::Payload};
use prost::Message;
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::{PgConnection, Postgres, Row};
use uuid::Uuid;

/// The name this service signs its events with.
pub const SOURCE_SERVICE: &str = "tracker";
/// The aggregate type of tracked items.
pub const AGGREGATE: &str = "item";

/// Who caused a change and why, shared by the events of one change.
#[derive(Clone, Debug)]
pub struct Cause {
    /// Who acted (a caller, or the tracker itself).
    pub actor: pb::Actor,
    /// The request or import the change belongs to.
    pub correlation_id: String,
    /// The event or command that caused it.
    pub causation_id: String,
}

impl Cause {
    /// A cause whose correlation and causation are the same id.
    pub fn new(actor: pb::Actor, id: impl Into<String>) -> Self {
        let id = id.into();
        Cause {
            actor,
            correlation_id: id.clone(),
            causation_id: id,
        }
    }
}

/// Appends events of items on one transaction.
pub struct Journal;

impl Journal {
    /// Appends `payloads` to `item` (whose `version` is its current one; 0
    /// for a new item), updating `item` to the state after the last one.
    /// Returns the envelopes, in order.
    pub async fn append(
        tx: &mut PgConnection,
        item: &mut pb::TrackedItem,
        payloads: Vec<Payload>,
        cause: &Cause,
    ) -> Result<Vec<pb::EventEnvelope>, TrackerError> {
        if payloads.is_empty() {
            return Ok(Vec::new());
        }
        let item_id = item_uuid(item)?;
        let mut envelopes = Vec::with_capacity(payloads.len());
        let mut rows = Vec::with_capacity(payloads.len());
        for payload in payloads {
            let (envelope, row) = next_event(item, payload, cause)?;
            rows.push(row);
            envelopes.push(envelope);
        }
        // Items first (the events reference them), then the log in order.
        store::save_item(tx, item).await?;
        let item_ids = vec![item_id; envelopes.len()];
        insert_events(tx, &item_ids, &envelopes, rows).await?;
        // The outbox's signal (raised again after commit) also wakes WatchItems.
        closeout_bus::outbox::append(&mut *tx, &envelopes)
            .await
            .map_err(|e| TrackerError::Outbox(e.to_string()))?;
        Ok(envelopes)
    }
}

/// Opens many new items at once, each with its one opening event, in the
/// order given: three multi-row statements (items, their events, the
/// outbox) whatever the number, where [`Journal::append`] per item would
/// take three each. `openings` are the new items (with `id` and
/// `organisation_id` set, version 0), their ItemOpened payloads and
/// causes. Returns the items as opened.
pub async fn open_many(
    tx: &mut PgConnection,
    openings: Vec<(pb::TrackedItem, Payload, &Cause)>,
) -> Result<Vec<pb::TrackedItem>, TrackerError> {
    if openings.is_empty() {
        return Ok(Vec::new());
    }
    let n = openings.len();
    let mut items = Vec::with_capacity(n);
    let mut item_ids = Vec::with_capacity(n);
    let mut envelopes = Vec::with_capacity(n);
    let mut rows = Vec::with_capacity(n);
    for (mut item, payload, cause) in openings {
        if item.version != 0 {
            return Err(TrackerError::Corrupt(format!(
                "item {} is not new (version {})",
                item.id, item.version
            )));
        }
        let item_id = item_uuid(&item)?;
        let (envelope, row) = next_event(&mut item, payload, cause)?;
        rows.push(row);
        item_ids.push(item_id);
        envelopes.push(envelope);
        items.push(item);
    }
    store::insert_new_items(tx, &item_ids, &items).await?;
    insert_events(tx, &item_ids, &envelopes, rows).await?;
    closeout_bus::outbox::append(&mut *tx, &envelopes)
        .await
        .map_err(|e| TrackerError::Outbox(e.to_string()))?;
    Ok(items)
}

/// What the journal stores of one event besides its envelope: the item's
/// status before and after it, and the item after it (encoded).
type JournalRow = (i32, i32, Vec<u8>);

/// The item's id as the UUID the tables key it by.
fn item_uuid(item: &pb::TrackedItem) -> Result<Uuid, TrackerError> {
    Uuid::parse_str(&item.id)
        .map_err(|_| TrackerError::Corrupt(format!("item id {:?} is not a UUID", item.id)))
}

/// The envelope of `payload` at the item's next version, folded into
/// `item`; with the row the journal stores (status before, status after,
/// the item after).
fn next_event(
    item: &mut pb::TrackedItem,
    payload: Payload,
    cause: &Cause,
) -> Result<(pb::EventEnvelope, JournalRow), TrackerError> {
    let status_before = item.status;
    let envelope = closeout_bus::new_event(
        closeout_bus::EventMeta {
            source_service: SOURCE_SERVICE,
            organisation_id: &item.organisation_id,
            aggregate_type: AGGREGATE,
            aggregate_id: &item.id,
            aggregate_version: item.version + 1,
            actor: &cause.actor,
            correlation_id: &cause.correlation_id,
            causation_id: &cause.causation_id,
        },
        payload,
    );
    project(item, &envelope)?;
    Ok((envelope, (status_before, item.status, item.encode_to_vec())))
}

/// The columns of `item_events` rows, one vector per column, for
/// statements that insert events with `UNNEST`.
struct EventColumns {
    versions: Vec<i64>,
    event_ids: Vec<Uuid>,
    types: Vec<String>,
    organisations: Vec<String>,
    subjects: Vec<String>,
    roles: Vec<i16>,
    times: Vec<chrono::DateTime<chrono::Utc>>,
    before: Vec<i16>,
    after: Vec<i16>,
    encoded: Vec<Vec<u8>>,
    items_after: Vec<Vec<u8>>,
}

impl EventColumns {
    /// Binds the eleven columns, in this order, as the next parameters of
    /// `query` (each statement declares them as `UNNEST`'s arrays).
    fn bind<'q>(
        &'q self,
        query: Query<'q, Postgres, PgArguments>,
    ) -> Query<'q, Postgres, PgArguments> {
        query
            .bind(&self.versions)
            .bind(&self.event_ids)
            .bind(&self.types)
            .bind(&self.organisations)
            .bind(&self.subjects)
            .bind(&self.roles)
            .bind(&self.times)
            .bind(&self.before)
            .bind(&self.after)
            .bind(&self.encoded)
            .bind(&self.items_after)
    }

    fn of(envelopes: &[pb::EventEnvelope], rows: Vec<JournalRow>) -> Result<Self, TrackerError> {
        let mut c = EventColumns::with_capacity(envelopes.len());
        for (envelope, (status_before, status_after, item_after)) in envelopes.iter().zip(rows) {
            let actor = envelope.actor.clone().unwrap_or_default();
            c.versions
                .push(i64::try_from(envelope.aggregate_version).unwrap_or(i64::MAX));
            c.event_ids.push(
                Uuid::parse_str(&envelope.event_id)
                    .map_err(|_| TrackerError::Corrupt("event id is not a UUID".into()))?,
            );
            c.types.push(envelope.event_type.clone());
            c.organisations.push(envelope.organisation_id.clone());
            c.subjects.push(actor.subject);
            c.roles.push(actor.role as i16);
            c.times
                .push(store::from_timestamp(envelope.occurred_at.as_ref()));
            c.before.push(status_before as i16);
            c.after.push(status_after as i16);
            c.encoded.push(envelope.encode_to_vec());
            c.items_after.push(item_after);
        }
        Ok(c)
    }

    /// Appends `other`'s rows after these.
    fn extend(&mut self, other: &EventColumns) {
        self.versions.extend_from_slice(&other.versions);
        self.event_ids.extend_from_slice(&other.event_ids);
        self.types.extend_from_slice(&other.types);
        self.organisations.extend_from_slice(&other.organisations);
        self.subjects.extend_from_slice(&other.subjects);
        self.roles.extend_from_slice(&other.roles);
        self.times.extend_from_slice(&other.times);
        self.before.extend_from_slice(&other.before);
        self.after.extend_from_slice(&other.after);
        self.encoded.extend_from_slice(&other.encoded);
        self.items_after.extend_from_slice(&other.items_after);
    }

    fn with_capacity(n: usize) -> Self {
        EventColumns {
            versions: Vec::with_capacity(n),
            event_ids: Vec::with_capacity(n),
            types: Vec::with_capacity(n),
            organisations: Vec::with_capacity(n),
            subjects: Vec::with_capacity(n),
            roles: Vec::with_capacity(n),
            times: Vec::with_capacity(n),
            before: Vec::with_capacity(n),
            after: Vec::with_capacity(n),
            encoded: Vec::with_capacity(n),
            items_after: Vec::with_capacity(n),
        }
    }
}

/// The head of every statement that appends to the journal.
macro_rules! insert_item_events {
    () => {
        "INSERT INTO item_events (item_id, version, event_id, event_type, organisation_id, \
         actor_subject, actor_role, occurred_at, status_before, status_after, envelope, \
         item_after, watch_xid) "
    };
}

/// A new event's `watch_xid`: this transaction's id, raised to at least
/// that of the item's previous event, so an item's events keep version
/// order in WatchItems (see `watch`).
macro_rules! watch_xid_of {
    ($item:literal) => {
        concat!(
            "greatest(pg_current_xact_id(), \
             (SELECT p.watch_xid FROM item_events p WHERE p.item_id = ",
            $item,
            " ORDER BY p.version DESC LIMIT 1))"
        )
    };
}

/// Inserts events, in order, with one statement (`item_ids[i]` is the item
/// of `envelopes[i]`). No lock is taken: each row's `watch_xid` is this
/// transaction's id, raised to its item's previous event's (one written
/// before this statement), which is what WatchItems orders and releases
/// by (see `watch`); `sequence` only breaks ties.
async fn insert_events(
    tx: &mut PgConnection,
    item_ids: &[Uuid],
    envelopes: &[pb::EventEnvelope],
    rows: Vec<JournalRow>,
) -> Result<(), TrackerError> {
    let c = EventColumns::of(envelopes, rows)?;
    let query = sqlx::query(concat!(
        insert_item_events!(),
        "SELECT item, v, id, typ, org, subj, role, at, sb, sa, env, after, ",
        watch_xid_of!("e.item"),
        " FROM UNNEST($1::uuid[], $2::bigint[], $3::uuid[], $4::text[], $5::text[], $6::text[], \
                     $7::smallint[], $8::timestamptz[], $9::smallint[], $10::smallint[], \
                     $11::bytea[], $12::bytea[]) \
              WITH ORDINALITY AS e(item, v, id, typ, org, subj, role, at, sb, sa, env, after, ord) \
         ORDER BY ord",
    ))
    .bind(item_ids);
    c.bind(query).execute(&mut *tx).await?;
    Ok(())
}

/// [`append_if_unchanged`]'s statement ($1 the item, $2–$10 its new
/// state, $11 the version read, $12–$22 the events' columns, $23 and $24
/// their outbox subjects and traceparents); public for the bench's
/// ceiling, which runs it directly.
pub const APPEND_IF_UNCHANGED: &str = concat!(
    "WITH item AS ( \
             UPDATE items SET status = $2, owner = $3, due_date = $4, overdue = $5, \
                 version = $6, updated_at = $7, closure_reference = $8, evidence = $9, \
                 superseded_by_item_id = $10 \
             WHERE id = $1 AND version = $11 \
             RETURNING id), \
         events AS ( ",
    insert_item_events!(),
    "SELECT item.id, v, eid, typ, org, subj, role, at, sb, sa, env, after, ",
    watch_xid_of!("item.id"),
    " FROM item, UNNEST($12::bigint[], $13::uuid[], $14::text[], $15::text[], \
                               $16::text[], $17::smallint[], $18::timestamptz[], \
                               $19::smallint[], $20::smallint[], $21::bytea[], $22::bytea[]) \
                  WITH ORDINALITY AS e(v, eid, typ, org, subj, role, at, sb, sa, env, after, ord) \
             ORDER BY ord), \
         outbox AS ( \
             INSERT INTO closeout_outbox \
                 (event_id, organisation_id, subject, event_type, traceparent, payload) \
             SELECT eid, org, subject, typ, tp, env \
             FROM item, UNNEST($13::uuid[], $15::text[], $23::text[], $14::text[], $24::text[], \
                               $21::bytea[]) \
                  WITH ORDINALITY AS o(eid, org, subject, typ, tp, env, ord) \
             ORDER BY ord) \
         SELECT count(*) FROM item"
);

/// [`write_many`]'s statement: [`APPEND_IF_UNCHANGED`] for many items at
/// once ($1–$11 one element per command: the item, its new state with the
/// evidence as an array literal, and the version read; $12 the item of
/// each event, $13–$23 the events' columns, $24 and $25 their outbox
/// subjects and traceparents). Returns the items written.
pub const APPEND_MANY_IF_UNCHANGED: &str = concat!(
    "WITH input AS ( \
             SELECT * FROM UNNEST($1::uuid[], $2::smallint[], $3::text[], $4::date[], \
                                  $5::bool[], $6::bigint[], $7::timestamptz[], $8::text[], \
                                  $9::text[], $10::text[], $11::bigint[]) \
                  AS u(id, status, owner, due, overdue, version, updated, reference, evidence, \
                       superseded, read_version)), \
         item AS ( \
             UPDATE items i SET status = u.status, owner = u.owner, due_date = u.due, \
                 overdue = u.overdue, version = u.version, updated_at = u.updated, \
                 closure_reference = u.reference, evidence = u.evidence::bytea[], \
                 superseded_by_item_id = u.superseded \
             FROM input u \
             WHERE i.id = u.id AND i.version = u.read_version \
             RETURNING i.id), \
         events AS ( ",
    insert_item_events!(),
    "SELECT e.item, v, eid, typ, org, subj, role, at, sb, sa, env, after, ",
    watch_xid_of!("e.item"),
    " FROM UNNEST($12::uuid[], $13::bigint[], $14::uuid[], $15::text[], $16::text[], \
                         $17::text[], $18::smallint[], $19::timestamptz[], $20::smallint[], \
                         $21::smallint[], $22::bytea[], $23::bytea[]) \
                  WITH ORDINALITY \
                  AS e(item, v, eid, typ, org, subj, role, at, sb, sa, env, after, ord) \
             WHERE e.item IN (SELECT id FROM item) \
             ORDER BY ord), \
         outbox AS ( \
             INSERT INTO closeout_outbox \
                 (event_id, organisation_id, subject, event_type, traceparent, payload) \
             SELECT eid, org, subject, typ, tp, env \
             FROM UNNEST($12::uuid[], $14::uuid[], $16::text[], $24::text[], $15::text[], \
                         $25::text[], $22::bytea[]) \
                  WITH ORDINALITY AS o(item, eid, org, subject, typ, tp, env, ord) \
             WHERE o.item IN (SELECT id FROM item) \
             ORDER BY ord) \
         SELECT id FROM item"
);

/// A command's write, decided and encoded, waiting to be run by
/// [`PreparedWrite::write`] or, with others, by [`write_many`].
pub struct PreparedWrite {
    item_id: Uuid,
    status: i16,
    owner: String,
    due_date: Option<chrono::NaiveDate>,
    overdue: bool,
    version: i64,
    updated_at: chrono::DateTime<chrono::Utc>,
    closure_reference: String,
    evidence: Vec<Vec<u8>>,
    superseded_by_item_id: String,
    read_version: i64,
    events: EventColumns,
    outbox_subjects: Vec<String>,
    traceparents: Vec<String>,
}

/// Folds `payloads` into `item` (read at `read_version`, the version the
/// command was decided on) and prepares the write of its new state, its
/// events and their outbox rows. Returns None when there is nothing to
/// write; the envelopes otherwise.
pub fn prepare_write(
    item: &mut pb::TrackedItem,
    read_version: u64,
    payloads: Vec<Payload>,
    cause: &Cause,
) -> Result<Option<(PreparedWrite, Vec<pb::EventEnvelope>)>, TrackerError> {
    if payloads.is_empty() {
        return Ok(None);
    }
    let item_id = item_uuid(item)?;
    let mut envelopes = Vec::with_capacity(payloads.len());
    let mut rows = Vec::with_capacity(payloads.len());
    for payload in payloads {
        let (envelope, row) = next_event(item, payload, cause)?;
        rows.push(row);
        envelopes.push(envelope);
    }
    let mut outbox_subjects = Vec::with_capacity(envelopes.len());
    let mut traceparents = Vec::with_capacity(envelopes.len());
    for envelope in &envelopes {
        let payload = envelope.payload.as_ref().ok_or_else(|| {
            TrackerError::Outbox(format!("event {} has no payload", envelope.event_id))
        })?;
        outbox_subjects.push(closeout_bus::subject::relative_subject(
            payload,
            &envelope.organisation_id,
        ));
        traceparents.push(closeout_bus::trace::traceparent_for(envelope));
    }
    let write = PreparedWrite {
        item_id,
        status: item.status as i16,
        owner: item.owner.clone(),
        due_date: item.due_date.as_ref().and_then(store::naive_date),
        overdue: item.overdue,
        version: item.version as i64,
        updated_at: store::from_timestamp(item.updated_at.as_ref()),
        closure_reference: item.closure_reference.clone(),
        evidence: item.evidence.iter().map(Message::encode_to_vec).collect(),
        superseded_by_item_id: item.superseded_by_item_id.clone(),
        read_version: read_version as i64,
        events: EventColumns::of(&envelopes, rows)?,
        outbox_subjects,
        traceparents,
    };
    Ok(Some((write, envelopes)))
}

impl PreparedWrite {
    /// The item written.
    pub fn item_id(&self) -> Uuid {
        self.item_id
    }

    /// Runs the write as one statement committed on its own
    /// ([`APPEND_IF_UNCHANGED`]): the item's new state only if its version
    /// is still the one read, and then, from that same statement, its
    /// events and their outbox rows. One round trip and one commit where a
    /// transaction takes six (BEGIN, lock, three writes, COMMIT); the
    /// version condition stands in for the row lock: a change committed
    /// since the read makes the UPDATE match nothing (PostgreSQL re-checks
    /// the condition on the newest row version after waiting for its
    /// writer), and then nothing is written and false is returned for the
    /// caller to read again. `watch_xid` is set as in [`insert_events`]:
    /// the statement's snapshot sees the item's previous event, committed
    /// before the read.
    pub async fn write(&self, conn: &mut PgConnection) -> Result<bool, TrackerError> {
        let query = sqlx::query(APPEND_IF_UNCHANGED)
            .bind(self.item_id)
            .bind(self.status)
            .bind(&self.owner)
            .bind(self.due_date)
            .bind(self.overdue)
            .bind(self.version)
            .bind(self.updated_at)
            .bind(&self.closure_reference)
            .bind(&self.evidence)
            .bind(&self.superseded_by_item_id)
            .bind(self.read_version);
        let written: i64 = self
            .events
            .bind(query)
            .bind(&self.outbox_subjects)
            .bind(&self.traceparents)
            .fetch_one(&mut *conn)
            .await?
            .try_get(0)?;
        Ok(written == 1)
    }
}

/// Runs `writes` (of distinct items) as one statement committed on its own
/// ([`APPEND_MANY_IF_UNCHANGED`]): each is [`PreparedWrite::write`], with
/// one round trip and one WAL flush for all. Returns, for each, whether it
/// was written (false: its item changed since it was read).
pub async fn write_many(
    conn: &mut PgConnection,
    writes: &[&PreparedWrite],
) -> Result<Vec<bool>, TrackerError> {
    let n = writes.len();
    let mut ids = Vec::with_capacity(n);
    let mut statuses = Vec::with_capacity(n);
    let mut owners = Vec::with_capacity(n);
    let mut due_dates = Vec::with_capacity(n);
    let mut overdue = Vec::with_capacity(n);
    let mut versions = Vec::with_capacity(n);
    let mut updated = Vec::with_capacity(n);
    let mut references = Vec::with_capacity(n);
    let mut evidence = Vec::with_capacity(n);
    let mut superseded = Vec::with_capacity(n);
    let mut read_versions = Vec::with_capacity(n);
    let mut event_items = Vec::new();
    let mut events = EventColumns::with_capacity(n);
    let mut subjects = Vec::with_capacity(n);
    let mut traceparents = Vec::with_capacity(n);
    for w in writes {
        ids.push(w.item_id);
        statuses.push(w.status);
        owners.push(w.owner.as_str());
        due_dates.push(w.due_date);
        overdue.push(w.overdue);
        versions.push(w.version);
        updated.push(w.updated_at);
        references.push(w.closure_reference.as_str());
        evidence.push(bytea_array_literal(&w.evidence));
        superseded.push(w.superseded_by_item_id.as_str());
        read_versions.push(w.read_version);
        event_items.extend(std::iter::repeat_n(w.item_id, w.events.versions.len()));
        events.extend(&w.events);
        subjects.extend(w.outbox_subjects.iter().map(String::as_str));
        traceparents.extend(w.traceparents.iter().map(String::as_str));
    }
    let query = sqlx::query(APPEND_MANY_IF_UNCHANGED)
        .bind(&ids)
        .bind(&statuses)
        .bind(&owners)
        .bind(&due_dates)
        .bind(&overdue)
        .bind(&versions)
        .bind(&updated)
        .bind(&references)
        .bind(&evidence)
        .bind(&superseded)
        .bind(&read_versions)
        .bind(&event_items);
    let written: Vec<Uuid> = events
        .bind(query)
        .bind(&subjects)
        .bind(&traceparents)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()?;
    Ok(ids.iter().map(|id| written.contains(id)).collect())
}

/// A `bytea[]` as PostgreSQL's array literal (`{"\\x0a0b",…}`), so that
/// one text element per command can carry its item's evidence through
/// `UNNEST` (which would flatten an array of arrays).
fn bytea_array_literal(values: &[Vec<u8>]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut literal = String::from("{");
    for (i, bytes) in values.iter().enumerate() {
        if i > 0 {
            literal.push(',');
        }
        // Inside a quoted element a backslash is written twice.
        literal.push_str("\"\\\\x");
        for b in bytes {
            literal.push(char::from(HEX[usize::from(b >> 4)]));
            literal.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
        literal.push('"');
    }
    literal.push('}');
    literal
}

/// Folds one event into an item's state: the current-state projection of
/// the history. The lifecycle (status, organisation, owner, due date,
/// overdue mark, evidence, closure) is the domain's: the event's change is
/// applied to the item's domain state with `closeout_domain::evolve`. Around
/// it the item keeps its version and times, what it is (finding, kind,
/// text, …, from ItemOpened) and the items it is linked to. Events that are
/// not changes of an item move only its version and time. An event the
/// domain cannot read, or one that does not apply (anything before the item
/// is opened), is corrupt: the tracker wrote it itself.
pub fn project(
    item: &mut pb::TrackedItem,
    envelope: &pb::EventEnvelope,
) -> Result<(), TrackerError> {
    // PostgreSQL keeps microseconds; so does the state, to read back equal.
    let at = envelope.occurred_at.map(|t| prost_types::Timestamp {
        seconds: t.seconds,
        nanos: t.nanos - t.nanos % 1000,
    });
    let corrupt = |what: String| {
        TrackerError::Corrupt(format!(
            "item {} version {}: {what}",
            item.id, envelope.aggregate_version
        ))
    };
    let Some(payload) = &envelope.payload else {
        item.version = envelope.aggregate_version;
        item.updated_at = at;
        return Ok(());
    };
    if let Some(change) = wire::change(payload).map_err(|e| corrupt(e.to_string()))? {
        let state = match change {
            domain::Change::Opened { .. } => None,
            _ => Some(wire::item_state(item).map_err(|e| corrupt(e.to_string()))?),
        };
        let next = domain::evolve(state.as_ref(), &change)
            .ok_or_else(|| corrupt(format!("{} before the item was opened", change.name())))?;
        wire::write_state(&next, item);
    }
    item.version = envelope.aggregate_version;
    item.updated_at = at;
    match payload {
        Payload::ItemOpened(opened) => {
            item.finding_id.clone_from(&opened.finding_id);
            item.inspection_id.clone_from(&opened.inspection_id);
            item.kind = opened.kind;
            item.pillar.clone_from(&opened.pillar);
            item.question.clone_from(&opened.question);
            item.text.clone_from(&opened.text);
            item.carried_from_item_id
                .clone_from(&opened.carried_from_item_id);
            item.opened_at = at;
        }
        Payload::ItemSuperseded(superseded) => {
            item.superseded_by_item_id
                .clone_from(&superseded.superseding_item_id);
        }
        // Its organisation was renamed (see `renames`).
        Payload::ItemOrganisationChanged(changed) => {
            item.organisation_id.clone_from(&changed.organisation_id);
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use proptest::prelude::*;

    const ITEM: &str = "0190f4a2-0000-7000-8000-000000000001";

    fn envelope(version: u64, payload: Payload) -> pb::EventEnvelope {
        pb::EventEnvelope {
            aggregate_version: version,
            occurred_at: Some(prost_types::Timestamp {
                seconds: 1_600_000_000,
                nanos: 123_456_789,
            }),
            payload: Some(payload),
            ..Default::default()
        }
    }

    fn kent() -> domain::OrganisationId {
        domain::OrganisationId::parse("kent").expect("valid id")
    }

    fn day(offset: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2020, 1, 1).expect("valid date") + chrono::Days::new(offset.into())
    }

    #[test]
    fn projection_folds_events_into_the_state() {
        let mut item = pb::TrackedItem {
            id: ITEM.into(),
            ..Default::default()
        };
        let opened = pb::ItemOpened {
            organisation_id: "kent".into(),
            finding_id: "f1".into(),
            text: "The force should review its vetting.".into(),
            status: pb::ItemStatus::Open as i32,
            due_date: Some(pb::CalendarDate::new(2020, 1, 1)),
            ..Default::default()
        };
        project(&mut item, &envelope(1, Payload::ItemOpened(opened))).expect("opens");
        assert_eq!((item.version, item.organisation_id.as_str()), (1, "kent"));
        assert_eq!(item.status, pb::ItemStatus::Open as i32);
        assert_eq!(item.finding_id, "f1");
        assert_eq!(item.opened_at.map(|t| t.nanos), Some(123_456_000));
        let overdue = pb::ItemOverdue {
            item_id: ITEM.into(),
            due_date: Some(pb::CalendarDate::new(2020, 1, 1)),
        };
        project(&mut item, &envelope(2, Payload::ItemOverdue(overdue))).expect("marks");
        assert!(item.overdue);
        let revised = pb::DueDateChanged {
            due_date: Some(pb::CalendarDate::new(2021, 1, 1)),
            previous_due_date: Some(pb::CalendarDate::new(2020, 1, 1)),
            reason: "agreed".into(),
            ..Default::default()
        };
        project(&mut item, &envelope(3, Payload::DueDateChanged(revised))).expect("revises");
        assert!(!item.overdue, "a new due date may be missed again");
        let verified = pb::ItemVerified {
            closure_reference: "letter".into(),
            ..Default::default()
        };
        project(&mut item, &envelope(4, Payload::ItemVerified(verified))).expect("verifies");
        let closed = pb::StatusChanged {
            from_status: pb::ItemStatus::Open as i32,
            to_status: pb::ItemStatus::Closed as i32,
            command: "Verify".into(),
            ..Default::default()
        };
        project(&mut item, &envelope(5, Payload::StatusChanged(closed))).expect("closes");
        assert_eq!(item.status, pb::ItemStatus::Closed as i32);
        assert_eq!(item.closure_reference, "letter");
        let reopened = pb::ItemReopened {
            reason: "not done".into(),
            ..Default::default()
        };
        project(&mut item, &envelope(6, Payload::ItemReopened(reopened))).expect("reopens");
        assert!(item.closure_reference.is_empty());
        assert_eq!(item.version, 6);
    }

    #[test]
    fn an_event_the_domain_cannot_read_is_corrupt_and_changes_nothing() {
        let mut item = pb::TrackedItem {
            id: ITEM.into(),
            ..Default::default()
        };
        let note = pb::ProgressNoted {
            note: "early".into(),
            ..Default::default()
        };
        assert!(matches!(
            project(&mut item, &envelope(1, Payload::ProgressNoted(note))),
            Err(TrackerError::Corrupt(_))
        ));
        let bad_status = pb::StatusChanged {
            from_status: pb::ItemStatus::Open as i32,
            to_status: 0,
            command: "Start".into(),
            ..Default::default()
        };
        assert!(matches!(
            project(&mut item, &envelope(1, Payload::StatusChanged(bad_status))),
            Err(TrackerError::Corrupt(_))
        ));
        assert_eq!(item.version, 0);
    }

    /// Several commands' writes in one statement: each is written only if
    /// its item is still at the version read, with its own events, outbox
    /// rows and evidence; a stale one writes nothing and leaves the others.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_in_one_statement_each_keep_their_own_outcome() {
        let db = closeout_testkit::TestDatabase::create().await;
        crate::MIGRATOR.run(db.pool()).await.expect("migrations");
        closeout_bus::outbox::install_schema(db.pool())
            .await
            .expect("outbox");
        let mut items = Vec::new();
        for _ in 0..3 {
            let id = Uuid::now_v7();
            sqlx::query(
                "INSERT INTO items (id, organisation_id, finding_id, kind, text, status, \
                 version, opened_at, updated_at) \
                 VALUES ($1, 'kent', $1::text, 1, 'The force should review its vetting.', \
                 1, 1, now(), now())",
            )
            .bind(id)
            .execute(db.pool())
            .await
            .expect("item");
            let mut conn = db.pool().acquire().await.expect("connection");
            items.push(
                store::read_item(&mut conn, id)
                    .await
                    .expect("read")
                    .expect("the item"),
            );
        }
        let cause = Cause::new(
            pb::Actor {
                subject: "inspector".into(),
                role: pb::Role::Inspectorate as i32,
                organisation_id: String::new(),
            },
            "test",
        );
        let evidence = pb::Evidence {
            description: "Board minutes, \"quoted\", {braced} \\ slashed".into(),
            uri: "https://example.org/minutes.pdf".into(),
            sha256: "ab".repeat(32),
        };
        items[2].evidence = vec![evidence.clone(), evidence.clone()];
        let mut writes = Vec::new();
        for (n, item) in items.iter_mut().enumerate() {
            // The second was read at a version it no longer has.
            let read_version = if n == 1 { 0 } else { item.version };
            let note = pb::ProgressNoted {
                note: format!("note {n}"),
                ..Default::default()
            };
            let (write, _) = prepare_write(
                item,
                read_version,
                vec![Payload::ProgressNoted(note)],
                &cause,
            )
            .expect("prepared")
            .expect("something to write");
            writes.push(write);
        }
        let mut conn = db.pool().acquire().await.expect("connection");
        let written = write_many(&mut conn, &writes.iter().collect::<Vec<_>>())
            .await
            .expect("written");
        assert_eq!(written, vec![true, false, true]);
        for (n, item) in items.iter().enumerate() {
            let id = Uuid::parse_str(&item.id).expect("uuid");
            let stored = store::read_item(&mut conn, id)
                .await
                .expect("read")
                .expect("the item");
            let events: i64 =
                sqlx::query_scalar("SELECT count(*) FROM item_events WHERE item_id = $1")
                    .bind(id)
                    .fetch_one(&mut *conn)
                    .await
                    .expect("events");
            let outbox: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM closeout_outbox WHERE organisation_id = 'kent' \
                 AND event_id IN (SELECT event_id FROM item_events WHERE item_id = $1)",
            )
            .bind(id)
            .fetch_one(&mut *conn)
            .await
            .expect("outbox");
            if n == 1 {
                assert_eq!((stored.version, events, outbox), (1, 0, 0));
            } else {
                assert_eq!((stored.version, events, outbox), (2, 1, 1));
                assert_eq!(stored.evidence, item.evidence);
            }
        }
        drop(conn);
        db.drop_database().await;
    }

    /// One step of an item's life: a command by someone on some day, or the
    /// overdue scheduler running on some day.
    #[derive(Debug, Clone)]
    enum Step {
        Command {
            role: domain::Role,
            own_organisation: bool,
            command: domain::Command,
            today: u32,
        },
        OverdueRun {
            today: u32,
        },
    }

    fn text() -> impl Strategy<Value = String> + Clone {
        prop::sample::select(vec!["", "  ", "plan agreed", " Letter 2021/07 "])
            .prop_map(String::from)
    }

    fn command() -> impl Strategy<Value = domain::Command> {
        use domain::Command as C;
        let note = prop::option::of(text());
        prop_oneof![
            note.clone().prop_map(|note| C::Start { note }),
            text().prop_map(|note| C::NoteProgress { note }),
            text().prop_map(|owner| C::AssignOwner { owner }),
            (0u32..400, prop::option::of(text())).prop_map(|(d, reason)| C::SetDueDate {
                due_date: day(d),
                reason
            }),
            (text(), any::<bool>(), note.clone()).prop_map(|(description, valid, note)| {
                C::ClaimCompletion {
                    evidence: domain::Evidence {
                        description,
                        uri: Some("https://example.org/plan.pdf".into()).filter(|_| valid),
                        sha256: if valid { "AB".repeat(32) } else { "ab".into() },
                    },
                    note,
                }
            }),
            text().prop_map(|reason| C::RejectClaim { reason }),
            (text(), any::<bool>()).prop_map(|(closure_reference, by_inspection)| C::Verify {
                closure_reference,
                closed_by_inspection: by_inspection.then(|| {
                    domain::InspectionId::parse("0190f4a2-0000-7000-8000-0000000000aa")
                        .expect("valid id")
                }),
            }),
            (
                prop::sample::select(vec!["", "f2", "f3"]),
                prop::option::of(text())
            )
                .prop_map(|(finding, reason)| C::Supersede {
                    superseding_finding_id: finding.to_string(),
                    reason
                }),
            text().prop_map(|reason| C::Reopen { reason }),
        ]
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => (prop::sample::select(domain::Role::ALL.to_vec()), any::<bool>(), command(), 0u32..500)
                .prop_map(|(role, own_organisation, command, today)| Step::Command {
                    role,
                    own_organisation,
                    command,
                    today,
                }),
            1 => (0u32..500).prop_map(|today| Step::OverdueRun { today }),
        ]
    }

    /// What the tracker records for a change: its event, with the
    /// superseding item filled in as the tracker looks it up.
    fn recorded(change: domain::Change) -> Payload {
        let mut payload = wire::payload(ITEM, change);
        if let Payload::ItemSuperseded(superseded) = &mut payload
            && !superseded.superseding_finding_id.is_empty()
        {
            superseded.superseding_item_id =
                format!("item-of-{}", superseded.superseding_finding_id);
        }
        payload
    }

    /// Projects an event as the journal stores it: the envelope and the item
    /// both go through their stored (encoded) form.
    fn project_stored(item: &pb::TrackedItem, version: u64, payload: Payload) -> pb::TrackedItem {
        let stored = envelope(version, payload).encode_to_vec();
        let envelope = pb::EventEnvelope::decode(stored.as_slice()).expect("decodes");
        let mut item = item.clone();
        project(&mut item, &envelope).expect("the domain's own changes project");
        pb::TrackedItem::decode(item.encode_to_vec().as_slice()).expect("decodes")
    }

    proptest! {
        /// The stored journal and the state machine agree: random command
        /// sequences go through `decide` → `apply` on the domain's state,
        /// and through their recorded events → `project` on the stored
        /// item; the tracker decides on the stored item, so both must
        /// decide alike and end in the same state after every step.
        #[test]
        fn the_journal_projection_is_the_domain_fold(
            initial_due in prop::option::of(0u32..200),
            steps in prop::collection::vec(step(), 0..40),
        ) {
            let opened = domain::Change::Opened {
                organisation: kent(),
                due_date: initial_due.map(day),
            };
            let mut state = domain::evolve(None, &opened).expect("opens");
            let mut item = pb::TrackedItem { id: ITEM.into(), ..Default::default() };
            item = project_stored(&item, 1, recorded(opened));
            let mut version = 1;
            for step in steps {
                let stored_state = wire::item_state(&item).expect("a projected item converts");
                let changes = match step {
                    Step::Command { role, own_organisation, command, today } => {
                        let organisation = if own_organisation { "kent" } else { "essex" };
                        let actor = domain::Actor {
                            subject: "someone".into(),
                            role,
                            organisation: Some(
                                domain::OrganisationId::parse(organisation).expect("valid id"),
                            ),
                        };
                        let decided = domain::decide(&state, &actor, &command, day(today));
                        prop_assert_eq!(
                            &domain::decide(&stored_state, &actor, &command, day(today)),
                            &decided
                        );
                        decided.unwrap_or_default()
                    }
                    Step::OverdueRun { today } => {
                        let marked = domain::mark_overdue(&state, day(today));
                        prop_assert_eq!(&domain::mark_overdue(&stored_state, day(today)), &marked);
                        marked.into_iter().collect()
                    }
                };
                for change in changes {
                    state = domain::apply(&state, &change);
                    version += 1;
                    item = project_stored(&item, version, recorded(change));
                }
                prop_assert_eq!(item.version, version);
                // What the stored item does not keep: the inspection that
                // closed it, and the superseding finding (it keeps the item).
                let expected = domain::ItemState {
                    closed_by_inspection: None,
                    superseded_by: state
                        .superseded_by
                        .as_ref()
                        .filter(|finding| !finding.is_empty())
                        .map(|finding| format!("item-of-{finding}")),
                    ..state.clone()
                };
                prop_assert_eq!(wire::item_state(&item).expect("converts"), expected);
            }
        }
    }
}
