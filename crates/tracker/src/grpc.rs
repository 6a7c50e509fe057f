//! The TrackerService gRPC surface: each call checks the caller and the
//! fields it can check without the item, then hands over to `store`
//! (queries), `commands` (lifecycle) or `watch` (the change stream).

use crate::commands::{self, Request as CommandRequest};
use crate::connections::Connections;
use crate::error::TrackerError;
use crate::journal::Cause;
use crate::store::{self, ItemFilter, parse_item_id};
use crate::watch::{WatchFilter, Watchers};
use crate::writer::Writer;
use crate::{lineage, proposals};
use closeout_domain::authorisation::{self, Action, OutOfScope, Scope};
use closeout_domain::{Command, CommandKind};
use closeout_proto::{self as pb, tracker_service_server::TrackerService};
use closeout_service::auth::{actor_of, allow, authorise, identity_in};
use closeout_service::error::Violations;
use closeout_service::paging::Page;
use sqlx::PgPool;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

/// Longest free text (notes, reasons, owners) a command accepts.
const MAX_TEXT: usize = 10_000;

/// The gRPC service; cheap to clone.
#[derive(Clone)]
pub struct TrackerApi {
    pool: PgPool,
    /// GetItem's and ListItems' own connections (see `connections`).
    connections: Connections,
    /// Commits the commands' writes in groups (see `writer`).
    writer: Writer,
    watchers: Watchers,
    max_due_date_extension_days: u32,
    /// Open WatchItems streams per caller, bounded.
    streams: closeout_service::limits::StreamSlots,
}

/// A request's metadata and extensions (where the verified caller is).
type Who<'a> = (&'a tonic::metadata::MetadataMap, &'a tonic::Extensions);

impl TrackerApi {
    /// The service over `pool`, streaming changes through `watchers`.
    pub fn new(pool: PgPool, watchers: Watchers) -> Self {
        let connections = Connections::beside(&pool);
        TrackerApi {
            writer: Writer::spawn(pool.clone(), connections.clone()),
            connections,
            pool,
            watchers,
            max_due_date_extension_days: crate::DEFAULT_MAX_DUE_DATE_EXTENSION_DAYS,
            streams: closeout_service::limits::StreamSlots::from_env(),
        }
    }

    /// How far past the current due date an inspected body may move it.
    pub fn with_max_due_date_extension(mut self, days: u32) -> Self {
        self.max_due_date_extension_days = days;
        self
    }

    /// Runs a lifecycle command of `kind` for the verified caller.
    async fn run(
        &self,
        who: Who<'_>,
        kind: CommandKind,
        item_id: &str,
        expected_version: u64,
        command: Result<Command, TrackerError>,
    ) -> Result<pb::TrackedItem, Status> {
        self.run_dated(who, kind, item_id, expected_version, command, None)
            .await
    }

    /// [`Self::run`] with a verification's effective date. The rules table
    /// is asked first (PERMISSION_DENIED before anything is looked up); an
    /// inspected body's command on another organisation's item is
    /// NOT_FOUND (the commands module).
    async fn run_dated(
        &self,
        (metadata, extensions): Who<'_>,
        kind: CommandKind,
        item_id: &str,
        expected_version: u64,
        command: Result<Command, TrackerError>,
        effective_date: Option<pb::CalendarDate>,
    ) -> Result<pb::TrackedItem, Status> {
        let identity = identity_in(extensions)?;
        allow(identity, Action::Command(kind))?;
        let actor = actor_of(identity);
        let item_id = parse_item_id("item_id", item_id);
        let (item_id, command) = match (item_id, command) {
            (Ok(id), Ok(command)) => (id, command),
            (Err(a), Err(b)) => return Err(merge(a, b).into()),
            (Err(e), _) | (_, Err(e)) => return Err(e.into()),
        };
        if let Command::SetDueDate { due_date, reason } = &command {
            self.check_due_date(
                identity,
                item_id,
                expected_version,
                *due_date,
                reason.as_deref(),
            )
            .await?;
        }
        let cause = Cause::new(actor, request_id(metadata));
        let item = commands::execute(
            &self.pool,
            &self.connections,
            &self.writer,
            CommandRequest {
                item_id,
                expected_version,
                command,
                effective_date,
            },
            &cause,
        )
        .await?;
        tracing::info!(
            item = %item.id,
            version = item.version,
            subject = %cause.actor.subject,
            "command applied"
        );
        Ok(item)
    }
}

impl TrackerApi {
    /// The item `id` if the caller's `scope` admits its organisation; an
    /// item outside it is NOT_FOUND, exactly like one that does not exist.
    async fn item_in_scope(
        &self,
        scope: &Scope,
        id: uuid::Uuid,
    ) -> Result<pb::TrackedItem, Status> {
        let mut lease = self
            .connections
            .acquire()
            .await
            .map_err(TrackerError::from)?;
        let item = store::get_item(lease.connection(), id).await;
        lease.settle(&item);
        let item = item?;
        if !scope.admits(&item.organisation_id) {
            return Err(TrackerError::item_not_found(id.to_string()).into());
        }
        Ok(item)
    }

    /// The bounds of a due-date revision (the domain's
    /// `check_due_date_revision`). A missing reason is INVALID_ARGUMENT
    /// whatever the version (arguments before concurrency); the extension
    /// bound is judged against the item as the caller last saw it, and a
    /// changed item is left to the command's version check.
    async fn check_due_date(
        &self,
        identity: &authorisation::Identity,
        item_id: uuid::Uuid,
        expected_version: u64,
        due_date: chrono::NaiveDate,
        reason: Option<&str>,
    ) -> Result<(), Status> {
        let scope = allow(identity, Action::ReadItems)?;
        let item = self.item_in_scope(&scope, item_id).await?;
        let current = item.due_date.as_ref().and_then(store::naive_date);
        let today = chrono::Utc::now().date_naive();
        let checked = authorisation::check_due_date_revision(
            identity.role,
            current,
            due_date,
            reason,
            self.max_due_date_extension_days,
            today,
        );
        if item.version != expected_version
            && !matches!(checked, Err(authorisation::DueDateRefusal::NoReason))
        {
            return Ok(());
        }
        checked.map_err(|refusal| match refusal {
            authorisation::DueDateRefusal::NoReason => {
                TrackerError::invalid("reason", refusal.to_string()).into()
            }
            authorisation::DueDateRefusal::BeyondExtension { .. } => {
                Status::from(TrackerError::PermissionDenied(refusal.to_string()))
            }
        })
    }
}

/// The one organisation a listing or stream runs for, given the one the
/// caller asked for ("" for any) and its scope: "" for all; an
/// organisation outside the scope is PERMISSION_DENIED (organisations are
/// public; their items are not).
fn narrowed(scope: &Scope, asked: String) -> Result<String, Status> {
    match scope.narrow(&asked) {
        Ok(None) => Ok(String::new()),
        Ok(Some(mut list)) if list.len() == 1 => Ok(list.pop().unwrap_or_default()),
        Ok(Some(_)) => Err(TrackerError::invalid(
            "organisation_id",
            "name one of the organisations your credential is scoped to",
        )
        .into()),
        Err(OutOfScope) => Err(TrackerError::PermissionDenied(format!(
            "your credential does not cover organisation {asked}'s items"
        ))
        .into()),
    }
}

/// The request's `x-request-id`, or a new id: the events' correlation id.
fn request_id(metadata: &tonic::metadata::MetadataMap) -> String {
    metadata
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

/// Both sets of field violations, so the client sees every problem.
fn merge(a: TrackerError, b: TrackerError) -> TrackerError {
    a.merge(b)
}

/// Checks free text: at most [`MAX_TEXT`] characters, no control
/// characters but newlines and tabs. Emptiness is the domain's to judge.
fn text(v: &mut Violations, field: &str, value: &str) {
    use closeout_domain::text as limits;
    if field == "organisation_id"
        && !value.is_empty()
        && closeout_domain::OrganisationId::parse(value).is_err()
    {
        v.add(
            field,
            "is not an organisation id (lowercase letters and digits, single hyphens between them)",
        );
        return;
    }
    let checked = match field {
        "evidence.uri" => limits::check_evidence_uri(value),
        "owner" => limits::check_line(value, limits::MAX_SHORT_TEXT),
        f if f.ends_with("_id") => limits::check_line(value, limits::MAX_ID),
        _ => limits::check_text(value, MAX_TEXT),
    };
    if let Err(problem) = checked {
        v.add(field, problem.to_string());
    }
}

/// The page a List call asks for; a wrong size or token is recorded in `v`
/// (naming `page_size` or `page_token`) and the first page returned.
fn paging(v: &mut Violations, page_size: i32, page_token: &str) -> Page {
    match Page::parse(page_size, page_token) {
        Ok(page) => page,
        Err(error) => {
            match error {
                closeout_service::error::ApiError::InvalidArgument(list) => {
                    for f in list {
                        v.add(f.field, f.description);
                    }
                }
                other => v.add("page_token", other.to_string()),
            }
            Page {
                limit: closeout_service::paging::DEFAULT_PAGE_SIZE,
                offset: 0,
            }
        }
    }
}

/// Runs the text checks of `fields`, then builds the command.
fn checked(
    fields: &[(&str, &str)],
    build: impl FnOnce(&mut Violations) -> Option<Command>,
) -> Result<Command, TrackerError> {
    let mut v = Violations::default();
    for (field, value) in fields {
        text(&mut v, field, value);
    }
    let command = build(&mut v);
    v.into_result()?;
    command.ok_or_else(|| TrackerError::invalid("request", "incomplete"))
}

fn optional(text: &str) -> Option<String> {
    Some(text.to_string()).filter(|t| !t.trim().is_empty())
}

/// Validated statuses of a filter; UNSPECIFIED or unknown values are
/// INVALID_ARGUMENT naming `statuses[i]`.
fn statuses(v: &mut Violations, values: &[i32]) -> Vec<i16> {
    let mut out = Vec::with_capacity(values.len());
    for (i, value) in values.iter().enumerate() {
        match pb::ItemStatus::try_from(*value) {
            Ok(pb::ItemStatus::Unspecified) | Err(_) => {
                v.add(
                    format!("statuses[{i}]"),
                    format!("{value} is not an item status"),
                );
            }
            Ok(status) => out.push(status as i16),
        }
    }
    out
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl TrackerService for TrackerApi {
    async fn get_item(&self, request: Request<pb::GetItemRequest>) -> Reply<pb::GetItemResponse> {
        let scope = authorise(&request, Action::ReadItems)?;
        let id = parse_item_id("item_id", &request.into_inner().item_id)?;
        let item = self.item_in_scope(&scope, id).await?;
        Ok(Response::new(pb::GetItemResponse { item: Some(item) }))
    }

    async fn list_items(
        &self,
        request: Request<pb::ListItemsRequest>,
    ) -> Reply<pb::ListItemsResponse> {
        let scope = authorise(&request, Action::ReadItems)?;
        let r = request.into_inner();
        let organisation_id = narrowed(&scope, r.organisation_id.clone())?;
        let page = Page::parse(r.page_size, &r.page_token)?;
        let mut v = Violations::default();
        text(&mut v, "organisation_id", &r.organisation_id);
        text(&mut v, "inspection_id", &r.inspection_id);
        let statuses = statuses(&mut v, &r.statuses);
        let kind = match pb::FindingKind::try_from(r.kind) {
            Ok(pb::FindingKind::Unspecified) => None,
            Ok(kind) => Some(kind as i16),
            Err(_) => {
                v.add("kind", format!("{} is not a finding kind", r.kind));
                None
            }
        };
        v.into_result()?;
        let filter = ItemFilter {
            organisation_id,
            statuses,
            kind,
            inspection_id: r.inspection_id,
            overdue_only: r.overdue_only,
        };
        let mut lease = self
            .connections
            .acquire()
            .await
            .map_err(TrackerError::from)?;
        let listed = store::list_items(lease.connection(), &filter, page).await;
        lease.settle(&listed);
        let (items, next_page_token) = listed?;
        Ok(Response::new(pb::ListItemsResponse {
            items,
            next_page_token,
        }))
    }

    async fn get_item_history(
        &self,
        request: Request<pb::GetItemHistoryRequest>,
    ) -> Reply<pb::GetItemHistoryResponse> {
        let scope = authorise(&request, Action::ReadItems)?;
        let r = request.into_inner();
        let id = parse_item_id("item_id", &r.item_id)?;
        let page = Page::parse(r.page_size, &r.page_token)?;
        self.item_in_scope(&scope, id).await?;
        let (events, next_page_token) = store::history(&self.pool, id, page).await?;
        Ok(Response::new(pb::GetItemHistoryResponse {
            events,
            next_page_token,
        }))
    }

    async fn assign_owner(
        &self,
        request: Request<pb::AssignOwnerRequest>,
    ) -> Reply<pb::AssignOwnerResponse> {
        let (metadata, extensions, r) = request.into_parts();
        let command = checked(&[("owner", &r.owner)], |_| {
            Some(Command::AssignOwner {
                owner: r.owner.clone(),
            })
        });
        let item = self
            .run(
                (&metadata, &extensions),
                CommandKind::AssignOwner,
                &r.item_id,
                r.expected_version,
                command,
            )
            .await?;
        Ok(Response::new(pb::AssignOwnerResponse { item: Some(item) }))
    }

    async fn set_due_date(
        &self,
        request: Request<pb::SetDueDateRequest>,
    ) -> Reply<pb::SetDueDateResponse> {
        let (metadata, extensions, r) = request.into_parts();
        let command = checked(&[("reason", &r.reason)], |v| {
            let Some(date) = &r.due_date else {
                v.add("due_date", "is required");
                return None;
            };
            let Some(due_date) = store::naive_date(date) else {
                v.add(
                    "due_date",
                    format!(
                        "{:04}-{:02}-{:02} is not a calendar date",
                        date.year, date.month, date.day
                    ),
                );
                return None;
            };
            if let Err(problem) = closeout_domain::text::check_due_year(due_date) {
                v.add("due_date", problem.to_string());
                return None;
            }
            Some(Command::SetDueDate {
                due_date,
                reason: optional(&r.reason),
            })
        });
        let item = self
            .run(
                (&metadata, &extensions),
                CommandKind::SetDueDate,
                &r.item_id,
                r.expected_version,
                command,
            )
            .await?;
        Ok(Response::new(pb::SetDueDateResponse { item: Some(item) }))
    }

    async fn start_item(
        &self,
        request: Request<pb::StartItemRequest>,
    ) -> Reply<pb::StartItemResponse> {
        let (metadata, extensions, r) = request.into_parts();
        let command = checked(&[("note", &r.note)], |_| {
            Some(Command::Start {
                note: optional(&r.note),
            })
        });
        let item = self
            .run(
                (&metadata, &extensions),
                CommandKind::Start,
                &r.item_id,
                r.expected_version,
                command,
            )
            .await?;
        Ok(Response::new(pb::StartItemResponse { item: Some(item) }))
    }

    async fn note_progress(
        &self,
        request: Request<pb::NoteProgressRequest>,
    ) -> Reply<pb::NoteProgressResponse> {
        let (metadata, extensions, r) = request.into_parts();
        let command = checked(&[("note", &r.note)], |_| {
            Some(Command::NoteProgress {
                note: r.note.clone(),
            })
        });
        let item = self
            .run(
                (&metadata, &extensions),
                CommandKind::NoteProgress,
                &r.item_id,
                r.expected_version,
                command,
            )
            .await?;
        Ok(Response::new(pb::NoteProgressResponse { item: Some(item) }))
    }

    async fn claim_completion(
        &self,
        request: Request<pb::ClaimCompletionRequest>,
    ) -> Reply<pb::ClaimCompletionResponse> {
        let (metadata, extensions, r) = request.into_parts();
        let evidence = r.evidence.clone().unwrap_or_default();
        let command = checked(
            &[
                ("evidence.description", &evidence.description),
                ("evidence.uri", &evidence.uri),
                ("note", &r.note),
            ],
            |v| {
                if r.evidence.is_none() {
                    v.add("evidence", "is required");
                    return None;
                }
                Some(Command::ClaimCompletion {
                    evidence: closeout_domain::wire::evidence(&evidence),
                    note: optional(&r.note),
                })
            },
        );
        let item = self
            .run(
                (&metadata, &extensions),
                CommandKind::ClaimCompletion,
                &r.item_id,
                r.expected_version,
                command,
            )
            .await?;
        Ok(Response::new(pb::ClaimCompletionResponse {
            item: Some(item),
        }))
    }

    async fn verify_item(
        &self,
        request: Request<pb::VerifyItemRequest>,
    ) -> Reply<pb::VerifyItemResponse> {
        let (metadata, extensions, r) = request.into_parts();
        let command = checked(&[("closure_reference", &r.closure_reference)], |v| {
            if let Some(date) = &r.effective_date {
                match closeout_domain::wire::date(date) {
                    None => v.add("effective_date", "is not a calendar date"),
                    Some(day) if day > chrono::Utc::now().date_naive() => {
                        v.add("effective_date", "must not be after today")
                    }
                    Some(_) => {}
                }
            }
            Some(Command::Verify {
                closure_reference: r.closure_reference.clone(),
                closed_by_inspection: None,
            })
        });
        let item = self
            .run_dated(
                (&metadata, &extensions),
                CommandKind::Verify,
                &r.item_id,
                r.expected_version,
                command,
                r.effective_date,
            )
            .await?;
        Ok(Response::new(pb::VerifyItemResponse { item: Some(item) }))
    }

    async fn reject_claim(
        &self,
        request: Request<pb::RejectClaimRequest>,
    ) -> Reply<pb::RejectClaimResponse> {
        let (metadata, extensions, r) = request.into_parts();
        let command = checked(&[("reason", &r.reason)], |_| {
            Some(Command::RejectClaim {
                reason: r.reason.clone(),
            })
        });
        let item = self
            .run(
                (&metadata, &extensions),
                CommandKind::RejectClaim,
                &r.item_id,
                r.expected_version,
                command,
            )
            .await?;
        Ok(Response::new(pb::RejectClaimResponse { item: Some(item) }))
    }

    async fn supersede_item(
        &self,
        request: Request<pb::SupersedeItemRequest>,
    ) -> Reply<pb::SupersedeItemResponse> {
        let (metadata, extensions, r) = request.into_parts();
        let command = checked(
            &[
                ("superseding_finding_id", &r.superseding_finding_id),
                ("reason", &r.reason),
            ],
            |_| {
                Some(Command::Supersede {
                    superseding_finding_id: r.superseding_finding_id.clone(),
                    reason: optional(&r.reason),
                })
            },
        );
        let item = self
            .run(
                (&metadata, &extensions),
                CommandKind::Supersede,
                &r.item_id,
                r.expected_version,
                command,
            )
            .await?;
        Ok(Response::new(pb::SupersedeItemResponse {
            item: Some(item),
        }))
    }

    async fn reopen_item(
        &self,
        request: Request<pb::ReopenItemRequest>,
    ) -> Reply<pb::ReopenItemResponse> {
        let (metadata, extensions, r) = request.into_parts();
        let command = checked(&[("reason", &r.reason)], |_| {
            Some(Command::Reopen {
                reason: r.reason.clone(),
            })
        });
        let item = self
            .run(
                (&metadata, &extensions),
                CommandKind::Reopen,
                &r.item_id,
                r.expected_version,
                command,
            )
            .await?;
        Ok(Response::new(pb::ReopenItemResponse { item: Some(item) }))
    }

    async fn list_proposals(
        &self,
        request: Request<pb::ListProposalsRequest>,
    ) -> Reply<pb::ListProposalsResponse> {
        let scope = authorise(&request, Action::ReadProposals)?;
        let r = request.into_inner();
        // Every field is judged before the scope, so that nothing a caller
        // sends is echoed back unchecked.
        let mut v = Violations::default();
        text(&mut v, "organisation_id", &r.organisation_id);
        text(&mut v, "inspection_id", &r.inspection_id);
        let page = paging(&mut v, r.page_size, &r.page_token);
        let status = match pb::ProposalStatus::try_from(r.status) {
            Ok(pb::ProposalStatus::Unspecified) => None,
            Ok(status) => Some(status as i16),
            Err(_) => {
                v.add("status", format!("{} is not a proposal status", r.status));
                None
            }
        };
        v.into_result()?;
        let organisation_id = narrowed(&scope, r.organisation_id.clone())?;
        let filter = proposals::ProposalFilter {
            organisation_id,
            inspection_id: r.inspection_id,
            status,
        };
        let (proposals, next_page_token) = proposals::list(&self.pool, &filter, page).await?;
        Ok(Response::new(pb::ListProposalsResponse {
            proposals,
            next_page_token,
        }))
    }

    async fn accept_proposal(
        &self,
        request: Request<pb::AcceptProposalRequest>,
    ) -> Reply<pb::AcceptProposalResponse> {
        let (metadata, extensions, r) = request.into_parts();
        let actor = actor_of(identity_in(&extensions)?);
        allow(identity_in(&extensions)?, Action::DecideProposal)?;
        let mut v = Violations::default();
        text(&mut v, "note", &r.note);
        let id = proposals::parse_id(&r.proposal_id);
        match (id, v.into_result()) {
            (Ok(id), Ok(())) => {
                let cause = Cause::new(actor, request_id(&metadata));
                let (proposal, item) =
                    proposals::accept(&self.pool, id, r.expected_version, r.note.trim(), &cause)
                        .await?;
                tracing::info!(proposal = %proposal.id, item = %item.id, subject = %cause.actor.subject, "proposal accepted");
                Ok(Response::new(pb::AcceptProposalResponse {
                    proposal: Some(proposal),
                    item: Some(item),
                }))
            }
            (Err(a), Err(b)) => Err(merge(a, TrackerError::from(b)).into()),
            (Err(e), _) => Err(e.into()),
            (_, Err(e)) => Err(TrackerError::from(e).into()),
        }
    }

    async fn reject_proposal(
        &self,
        request: Request<pb::RejectProposalRequest>,
    ) -> Reply<pb::RejectProposalResponse> {
        let (metadata, extensions, r) = request.into_parts();
        let actor = actor_of(identity_in(&extensions)?);
        allow(identity_in(&extensions)?, Action::DecideProposal)?;
        let mut v = Violations::default();
        text(&mut v, "reason", &r.reason);
        let id = proposals::parse_id(&r.proposal_id);
        match (id, v.into_result()) {
            (Ok(id), Ok(())) => {
                let cause = Cause::new(actor, request_id(&metadata));
                let proposal =
                    proposals::reject(&self.pool, id, r.expected_version, r.reason.trim(), &cause)
                        .await?;
                tracing::info!(proposal = %proposal.id, subject = %cause.actor.subject, "proposal rejected");
                Ok(Response::new(pb::RejectProposalResponse {
                    proposal: Some(proposal),
                }))
            }
            (Err(a), Err(b)) => Err(merge(a, TrackerError::from(b)).into()),
            (Err(e), _) => Err(e.into()),
            (_, Err(e)) => Err(TrackerError::from(e).into()),
        }
    }

    async fn get_lineage(
        &self,
        request: Request<pb::GetLineageRequest>,
    ) -> Reply<pb::GetLineageResponse> {
        let scope = authorise(&request, Action::ReadItems)?;
        let r = request.into_inner();
        let id = parse_item_id("item_id", &r.item_id);
        let page = Page::parse(r.page_size, &r.page_token).map_err(TrackerError::from);
        let (id, page) = match (id, page) {
            (Ok(id), Ok(page)) => (id, page),
            (Err(a), Err(b)) => return Err(merge(a, b).into()),
            (Err(e), _) | (_, Err(e)) => return Err(e.into()),
        };
        self.item_in_scope(&scope, id).await?;
        Ok(Response::new(lineage::of_item(&self.pool, id, page).await?))
    }

    type WatchItemsStream =
        closeout_service::limits::Guarded<ReceiverStream<Result<pb::WatchItemsResponse, Status>>>;

    async fn watch_items(
        &self,
        request: Request<pb::WatchItemsRequest>,
    ) -> Reply<Self::WatchItemsStream> {
        let scope = authorise(&request, Action::WatchItems)?;
        let subject = closeout_service::auth::identity(&request)
            .map(|who| who.subject.clone())
            .map_err(TrackerError::from)?;
        let r = request.into_inner();
        let organisation_id = narrowed(&scope, r.organisation_id.clone())?;
        let mut v = Violations::default();
        text(&mut v, "organisation_id", &r.organisation_id);
        let statuses = statuses(&mut v, &r.statuses);
        if i64::try_from(r.after_sequence).is_err() {
            v.add(
                "after_sequence",
                "is beyond any sequence this service issues",
            );
        }
        v.into_result()?;
        let filter = WatchFilter {
            organisation_id,
            statuses,
            after_sequence: r.after_sequence,
        };
        filter.admit(&self.pool).await?;
        let slot = self.streams.acquire(&subject)?;
        let stream = self.watchers.stream(filter);
        Ok(Response::new(closeout_service::limits::Guarded::new(
            stream, slot,
        )))
    }
}
