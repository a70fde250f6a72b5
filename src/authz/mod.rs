//! What a caller may do: the Cedar policy set, typed actions and resources, the role cache, and the
//! one `require` call every guarded operation makes before any side effect.

pub mod account;
pub mod analysis;
mod decide;
pub mod fixtures;
mod index;
pub mod log;
mod memo;
mod names;
pub mod policies;
mod pred;
pub mod pushdown;
pub mod releases;
pub mod reload;
mod residual;
mod types;

use std::sync::Arc;
use std::time::{Duration, Instant};

use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::cache::ConsistentCache;
use crate::error::{ApiError, ApiResult};
use crate::metrics::Metrics;
use crate::store::flows::{Attributes, ByteBudget, Filling, Flow};
use crate::store::page::{Keyset, Rows};
use crate::store::{self, TenantId, UserId};

pub use account::AccountAction;
pub use log::{DecisionLog, Entry, LogTarget};
pub use policies::{Diagnostic, LoadError, PolicyBundle, PolicyFiles};
pub use reload::{PolicyStatus, PolicyStore};
pub use types::{
    Action, AuthContext, AuthMethod, Decision, Principal, Query, Question, Resource, ResourceKind,
    Subject,
};

/// Which policy set decided: its content hash, and its published number when it came from the
/// database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    pub version: String,
    pub release: Option<i64>,
}

/// Rows read at a time when a list's rows are decided one by one (see [`Authz::flows`]).
const DECIDED_BATCH: u64 = 200;

/// What the service answers for a decision: go ahead, or the error the client sees. A Deny is a
/// 403, or a 404 when a non-member addresses a specific resource (so existence never leaks); a
/// session that addresses a tenant other than its current one gets `tenant_not_selected`.
pub fn outcome(
    decision: &Decision,
    role: Option<&str>,
    action: Action,
    resource: Resource,
    session_elsewhere: bool,
) -> ApiResult<()> {
    if !decision.allowed && role.is_none() {
        return Err(match resource.hidden_as() {
            Some(kind) => ApiError::NotFound(kind),
            None => ApiError::Forbidden,
        });
    }
    if action.needs_selected_tenant() && session_elsewhere {
        return Err(ApiError::TenantNotSelected);
    }
    if !decision.allowed {
        return Err(ApiError::Forbidden);
    }
    Ok(())
}

/// The first steps of every operation on one flow, taken before the flow is read (so a
/// non-member's request reads nothing and costs the same whether or not the flow exists): a
/// non-member gets the 404 of a missing flow, whatever the policies say; a session that
/// addresses a tenant other than its current one gets `tenant_not_selected`.
pub fn flow_gate(role: Option<&str>, session_elsewhere: bool) -> ApiResult<()> {
    if role.is_none() {
        return Err(ApiError::NotFound("flow"));
    }
    if session_elsewhere {
        return Err(ApiError::TenantNotSelected);
    }
    Ok(())
}

/// One question on one flow for [`judge_flows`]: `flow` is the flow's attributes as read in the
/// request's tenant, `None` when there is no such flow there.
#[derive(Debug, Clone, Copy)]
pub struct FlowAsk<'a> {
    pub action: Action,
    pub id: Uuid,
    pub flow: Option<&'a Attributes>,
}

/// What [`judge_flows`] makes of a question on a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowJudgement {
    /// The asker may not know whether the flow exists: not a member, no such flow in the tenant,
    /// or a flow the asker may not read. Answered exactly as a missing flow.
    Hidden,
    /// The subject's decision on the flow.
    Decided(Decision),
}

/// The one rule for questions on a flow, used by the flow operations and `zygo policy explain`
/// (through [`judge_flow`]) and by the decision API: a flow that does not exist and a flow the asker may not read are the
/// same answer, so neither existence nor attributes show. In order:
///
/// 1. the asker is not a member of the tenant → hidden (no policy is evaluated);
/// 2. no such flow in the tenant → hidden;
/// 3. `ReadFlow` on the flow is denied to the asker → hidden;
/// 4. otherwise the subject's decision on the action.
///
/// `asker` is who sees the answer and `subject` whose rights are decided: one and the same for an
/// operation; in the decision API an Admin asking on behalf of a member is the asker (who must be
/// able to read the flow) and the member the subject (whose decision is given).
pub fn judge_flows(
    bundle: &PolicyBundle,
    asker: &Subject<'_>,
    subject: &Subject<'_>,
    asks: &[FlowAsk<'_>],
) -> Vec<FlowJudgement> {
    let mut judgements = vec![FlowJudgement::Hidden; asks.len()];
    if asker.role.is_none() {
        return judgements;
    }
    fn question<'a>(
        action: Action,
        id: Uuid,
        tenant: TenantId,
        flow: &'a Attributes,
    ) -> Question<'a> {
        Question {
            action,
            resource: Resource::Flow(id),
            resource_tenant: tenant,
            flow: Some(flow),
        }
    }
    let present: Vec<(usize, &FlowAsk<'_>, &Attributes)> = asks
        .iter()
        .enumerate()
        .filter_map(|(index, ask)| ask.flow.map(|flow| (index, ask, flow)))
        .collect();
    let reads: Vec<Question> = present
        .iter()
        .map(|(_, ask, flow)| question(Action::ReadFlow, ask.id, asker.tenant, flow))
        .collect();
    // Counted only when the flow is shown to be there: a hidden flow leaves the decision
    // counters as a missing one does.
    let readable = bundle.decide_many_uncounted(asker, &reads);
    // A flow that is not there is decided too, on a flow with no owner, label or share, and
    // the answer dropped: a missing flow then costs the time of a hidden one.
    let stand_in = Attributes::default();
    let absent: Vec<Question> = asks
        .iter()
        .filter(|ask| ask.flow.is_none())
        .map(|ask| question(Action::ReadFlow, ask.id, asker.tenant, &stand_in))
        .collect();
    if !absent.is_empty() {
        std::hint::black_box(bundle.decide_many_unremembered(asker, &absent));
    }
    let same = asker.user == subject.user
        && asker.role == subject.role
        && asker.tenant == subject.tenant
        && asker.auth == subject.auth;
    let mut pending: Vec<(usize, Question)> = Vec::new();
    for ((index, ask, flow), (read, source)) in present.into_iter().zip(readable) {
        if !read.allowed {
            continue;
        }
        bundle.count_sources([source]);
        if same && ask.action == Action::ReadFlow {
            judgements[index] = FlowJudgement::Decided(read);
        } else {
            pending.push((index, question(ask.action, ask.id, asker.tenant, flow)));
        }
    }
    let questions: Vec<Question> = pending.iter().map(|(_, q)| *q).collect();
    for ((index, _), decision) in pending.iter().zip(bundle.decide_many(subject, &questions)) {
        judgements[*index] = FlowJudgement::Decided(decision);
    }
    judgements
}

/// The service's answer to a judged flow question (after [`flow_gate`]): a hidden flow is the
/// 404 of a missing one, a Deny a 403.
pub fn flow_outcome(judgement: &FlowJudgement) -> ApiResult<()> {
    match judgement {
        FlowJudgement::Hidden => Err(ApiError::NotFound("flow")),
        FlowJudgement::Decided(decision) if decision.allowed => Ok(()),
        FlowJudgement::Decided(_) => Err(ApiError::Forbidden),
    }
}

/// The whole rule for one operation on one flow, as the flow operations ([`Authz::require_flow`])
/// and `zygo policy explain` apply it: [`flow_gate`] (a non-member gets the 404 of a missing flow,
/// a session addressing another tenant `tenant_not_selected`), then [`judge_flows`] (a missing
/// flow and one the subject may not read are hidden), then [`flow_outcome`]. Gives the judgement
/// (`None` when the gate answered before any policy was evaluated) and the answer.
pub fn judge_flow(
    bundle: &PolicyBundle,
    subject: &Subject<'_>,
    session_elsewhere: bool,
    ask: FlowAsk<'_>,
) -> (Option<FlowJudgement>, ApiResult<()>) {
    if let Err(err) = flow_gate(subject.role, session_elsewhere) {
        return (None, Err(err));
    }
    let judgement = judge_flows(bundle, subject, subject, &[ask])
        .pop()
        .unwrap_or(FlowJudgement::Hidden);
    let answer = flow_outcome(&judgement);
    (Some(judgement), answer)
}

/// The policy engine and the role lookups it needs.
pub struct Authz {
    policies: Arc<PolicyStore>,
    roles: ConsistentCache<(UserId, TenantId), Option<Arc<str>>>,
    /// Read connections (role lookups never wait behind writes).
    db: DatabaseConnection,
    log: DecisionLog,
    metrics: Arc<Metrics>,
}

impl Authz {
    pub fn new(
        policies: Arc<PolicyStore>,
        db: DatabaseConnection,
        cache_ttl: Duration,
        log: DecisionLog,
        metrics: Arc<Metrics>,
    ) -> Self {
        Authz {
            policies,
            roles: ConsistentCache::new(100_000, cache_ttl),
            db,
            log,
            metrics,
        }
    }

    /// The policy set in force; a request uses one snapshot from start to end.
    pub fn bundle(&self) -> Arc<PolicyBundle> {
        self.policies.current()
    }

    /// The loaded policy set's version, load time and last rejected reload.
    pub fn policy_status(&self) -> PolicyStatus {
        self.policies.status()
    }

    /// The store, to reload or watch.
    pub fn policy_store(&self) -> Arc<PolicyStore> {
        self.policies.clone()
    }

    /// The caller's role in the tenant (`None`: not a member), through the cache.
    pub async fn role_of(&self, user: UserId, tenant: TenantId) -> ApiResult<Option<Arc<str>>> {
        let (role, hit) = self
            .roles
            .lookup((user, tenant), async {
                store::members::role_of(&self.db, tenant, user)
                    .await
                    .map(|role| role.map(Arc::from))
            })
            .await
            .map_err(ApiError::from)?;
        self.metrics.role_lookup(hit);
        Ok(role)
    }

    /// Forgets a cached role at once; call after every membership change this process makes.
    pub async fn forget_role(&self, user: UserId, tenant: TenantId) {
        self.roles.invalidate(&(user, tenant)).await;
    }

    /// Forgets every cached role (the invalidation listener lost signals while reconnecting).
    pub async fn forget_all_roles(&self) {
        self.roles.invalidate_all().await;
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        source: &'static str,
        bundle: &PolicyBundle,
        subject: &Subject<'_>,
        question: &Question,
        decision: &Decision,
        started: Instant,
    ) {
        self.metrics
            .decision(question.action.index(), decision.allowed);
        log::note_version(bundle.version());
        if !self.log.enabled() {
            return;
        }
        self.log.record(&Entry {
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            decision_id: log::decision_id(),
            request_id: log::request_id(),
            policy_version: bundle.version(),
            policy_release: bundle.release(),
            source,
            principal: subject.user.to_string(),
            role: subject.role,
            tenant: subject.tenant.to_string(),
            action: question.action.name(),
            resource: question.resource.describe(question.resource_tenant),
            decision: if decision.allowed { "Allow" } else { "Deny" },
            policies: &decision.reasons,
            errors: &decision.errors,
            duration_us: started.elapsed().as_micros(),
        });
    }

    /// The one authorization call of a guarded operation. `Ok` means go ahead; see [`outcome`].
    pub async fn require(
        &self,
        caller: &impl Principal,
        tenant: TenantId,
        action: Action,
        resource: Resource,
    ) -> ApiResult<()> {
        let role = self.role_of(caller.user(), tenant).await?;
        self.require_on(caller, tenant, role.as_deref(), action, resource, None)
    }

    /// The authorization call of an operation on the caller's own account (see [`account`]):
    /// `Ok` to go ahead, 403 when the policies refuse.
    pub fn require_account(&self, caller: &impl Principal, action: AccountAction) -> ApiResult<()> {
        let started = Instant::now();
        let bundle = self.bundle();
        let decision = bundle.decide_account(caller.user(), caller.auth(), action);
        log::note_version(bundle.version());
        if self.log.enabled() {
            self.log.record(&Entry {
                time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                decision_id: log::decision_id(),
                request_id: log::request_id(),
                policy_version: bundle.version(),
                policy_release: bundle.release(),
                source: "require",
                principal: caller.user().to_string(),
                role: None,
                tenant: String::new(),
                action: action.name(),
                resource: format!("User:{}", caller.user()),
                decision: if decision.allowed { "Allow" } else { "Deny" },
                policies: &decision.reasons,
                errors: &decision.errors,
                duration_us: started.elapsed().as_micros(),
            });
        }
        if decision.allowed {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
        }
    }

    /// [`Authz::require`] for an action on a flow, for a caller whose `role` in the tenant was
    /// just looked up (see [`Authz::role_of`]), decided on `flow`, the flow's attributes as read
    /// (`None`: no such flow in the tenant). Call [`flow_gate`] before reading the flow, so that
    /// a non-member's request is refused without reading it; this applies the whole rule of
    /// [`judge_flow`] again.
    pub fn require_flow(
        &self,
        caller: &impl Principal,
        tenant: TenantId,
        role: Option<&str>,
        action: Action,
        id: Uuid,
        flow: Option<&Attributes>,
    ) -> ApiResult<()> {
        let started = Instant::now();
        let subject = Subject {
            user: caller.user(),
            role,
            tenant,
            auth: caller.auth(),
        };
        let bundle = self.bundle();
        let (judgement, answer) = judge_flow(
            &bundle,
            &subject,
            !caller.may_address(tenant),
            FlowAsk { action, id, flow },
        );
        if let Some(FlowJudgement::Decided(decision)) = &judgement {
            let question = Question {
                action,
                resource: Resource::Flow(id),
                resource_tenant: tenant,
                flow,
            };
            self.record("require", &bundle, &subject, &question, decision, started);
        }
        answer
    }

    fn require_on(
        &self,
        caller: &impl Principal,
        tenant: TenantId,
        role: Option<&str>,
        action: Action,
        resource: Resource,
        flow: Option<&Attributes>,
    ) -> ApiResult<()> {
        let started = Instant::now();
        let subject = Subject {
            user: caller.user(),
            role,
            tenant,
            auth: caller.auth(),
        };
        let question = Question {
            action,
            resource,
            resource_tenant: tenant,
            flow,
        };
        let bundle = self.bundle();
        let decision = bundle
            .decide_many(&subject, std::slice::from_ref(&question))
            .pop()
            .unwrap_or_else(|| Decision {
                allowed: false,
                reasons: vec![],
                errors: vec!["no decision".into()],
            });
        self.record("require", &bundle, &subject, &question, &decision, started);
        outcome(
            &decision,
            role,
            action,
            resource,
            !caller.may_address(tenant),
        )
    }

    /// A page of the tenant's flows on which the caller may do `action` (`ReadFlow` for the
    /// list): exactly those a single request would be allowed, found by the policies' SQL form
    /// (see [`pushdown`]). When part of a policy has no SQL form, the rows of a looser condition
    /// are read a batch at a time and each is decided in full until the page is full. Either way
    /// the page holds at most `budget` bytes of definitions (and always one flow): rows are read
    /// under that budget, and a flow that would pass it ends the page.
    pub async fn flows(
        &self,
        caller: &impl Principal,
        tenant: TenantId,
        action: Action,
        page: Keyset,
        budget: ByteBudget,
    ) -> ApiResult<Rows<Flow>> {
        let role = self.role_of(caller.user(), tenant).await?;
        let subject = Subject {
            user: caller.user(),
            role: role.as_deref(),
            tenant,
            auth: caller.auth(),
        };
        let bundle = self.bundle();
        let plan = bundle.plan(&subject, action);
        if plan.none {
            return Ok(Rows {
                items: vec![],
                next: None,
            });
        }
        if plan.exact {
            return Ok(store::flows::list(&self.db, tenant, page, plan.filter, budget).await?);
        }
        let mut filling = Filling::new(page.limit, budget);
        let mut after = page.after;
        loop {
            let batch = store::flows::list(
                &self.db,
                tenant,
                Keyset {
                    after,
                    limit: DECIDED_BATCH,
                },
                plan.filter.clone(),
                budget,
            )
            .await?;
            let questions: Vec<Question> = batch
                .items
                .iter()
                .map(|flow| Question {
                    action,
                    resource: Resource::Flow(flow.id),
                    resource_tenant: tenant,
                    flow: Some(&flow.attrs),
                })
                .collect();
            // Only the flows shown are counted: the hidden ones a page skipped must not show
            // in the decision counters.
            let decisions = bundle.decide_many_uncounted(&subject, &questions);
            drop(questions);
            for (flow, (decision, source)) in batch.items.into_iter().zip(decisions) {
                if !decision.allowed {
                    continue;
                }
                // A flow that does not fit ends the page; the denied rows after the last flow
                // taken are read again by the next page, which starts after that flow.
                if !filling.offer(flow) {
                    break;
                }
                bundle.count_sources([source]);
            }
            if filling.full || batch.next.is_none() {
                break;
            }
            after = batch.next;
        }
        Ok(filling.rows())
    }

    /// Answers a batch of questions that `user` asks about itself in `tenant`, authenticated as
    /// `auth` (see [`Authz::answer_asked_by`]).
    pub async fn answer(
        &self,
        user: UserId,
        tenant: TenantId,
        auth: AuthContext,
        questions: &[Question<'_>],
    ) -> ApiResult<(Option<Arc<str>>, Provenance, Vec<Decision>)> {
        self.answer_asked_by((user, auth), user, tenant, auth, questions)
            .await
    }

    /// Answers a batch of questions for `user` in `tenant` (the decision API), asked by `asker`
    /// (the asking user and how it authenticated): one role lookup per person, one policy
    /// snapshot. A question on a flow follows [`judge_flows`]: a flow the asker may not read, or
    /// that is not in the tenant, is a Deny without reasons or errors. Returns the role used and
    /// one decision per question.
    pub async fn answer_asked_by(
        &self,
        asker: (UserId, AuthContext),
        user: UserId,
        tenant: TenantId,
        auth: AuthContext,
        questions: &[Question<'_>],
    ) -> ApiResult<(Option<Arc<str>>, Provenance, Vec<Decision>)> {
        let started = Instant::now();
        let role = self.role_of(user, tenant).await?;
        let (asker, asker_auth) = asker;
        let asker_role = if asker == user {
            role.clone()
        } else {
            self.role_of(asker, tenant).await?
        };
        let subject = Subject {
            user,
            role: role.as_deref(),
            tenant,
            auth,
        };
        let asking = Subject {
            user: asker,
            role: asker_role.as_deref(),
            tenant,
            auth: asker_auth,
        };
        let bundle = self.bundle();
        let (on_flows, others): (Vec<_>, Vec<_>) = questions
            .iter()
            .enumerate()
            .partition(|(_, q)| matches!(q.resource, Resource::Flow(_)));
        let other_questions: Vec<Question> = others.iter().map(|(_, q)| **q).collect();
        let asks: Vec<FlowAsk> = on_flows
            .iter()
            .map(|(_, q)| FlowAsk {
                action: q.action,
                id: match q.resource {
                    Resource::Flow(id) => id,
                    _ => Uuid::nil(),
                },
                flow: q.flow,
            })
            .collect();
        let mut decisions: Vec<Option<Decision>> = vec![None; questions.len()];
        for ((index, _), decision) in others
            .iter()
            .zip(bundle.decide_many(&subject, &other_questions))
        {
            decisions[*index] = Some(decision);
        }
        for ((index, _), judgement) in on_flows
            .iter()
            .zip(judge_flows(&bundle, &asking, &subject, &asks))
        {
            decisions[*index] = Some(match judgement {
                FlowJudgement::Decided(decision) => decision,
                FlowJudgement::Hidden => Decision {
                    allowed: false,
                    reasons: vec![],
                    errors: vec![],
                },
            });
        }
        let decisions: Vec<Decision> = decisions
            .into_iter()
            .map(|decision| {
                decision.unwrap_or_else(|| Decision {
                    allowed: false,
                    reasons: vec![],
                    errors: vec!["no decision".into()],
                })
            })
            .collect();
        for (question, decision) in questions.iter().zip(&decisions) {
            self.record(
                "decision_api",
                &bundle,
                &subject,
                question,
                decision,
                started,
            );
        }
        let provenance = Provenance {
            version: bundle.version().to_owned(),
            release: bundle.release(),
        };
        Ok((role.clone(), provenance, decisions))
    }

    /// Whether an invitation of `invitee` into `tenant` with `invited_role`, left by `inviter`,
    /// still stands now that the inviter's role is `inviter_role`: the policies must let the
    /// inviter, in a browser session, `SetMemberRole` on the invitee's `Member`, and the invited
    /// role must still be one the policy folder defines (the policies do not see which role a
    /// `SetMemberRole` gives, so that is all they can say about it). Logged like every decision.
    pub fn may_invite(
        &self,
        tenant: TenantId,
        inviter: UserId,
        inviter_role: &str,
        invitee: UserId,
        invited_role: &str,
    ) -> bool {
        let started = Instant::now();
        let bundle = self.bundle();
        if !bundle.roles().contains(invited_role) {
            return false;
        }
        let subject = Subject {
            user: inviter,
            role: Some(inviter_role),
            tenant,
            auth: AuthContext::SESSION,
        };
        let question = Question {
            action: Action::SetMemberRole,
            resource: Resource::Member(invitee),
            resource_tenant: tenant,
            flow: None,
        };
        let decision = bundle
            .decide_many(&subject, &[question])
            .pop()
            .unwrap_or_else(|| Decision::deny("no decision".into()));
        self.record(
            "invitation",
            &bundle,
            &subject,
            &question,
            &decision,
            started,
        );
        decision.allowed
    }

    /// Whether a tenant whose members hold `roles` still has someone allowed to manage members.
    pub fn keeps_manager(&self, tenant: TenantId, roles: &[&str]) -> bool {
        self.bundle().keeps_manager(tenant, roles)
    }

    /// Whether the policy folder defines this role.
    pub fn is_role(&self, name: &str) -> bool {
        self.bundle().roles().contains(name)
    }
}
