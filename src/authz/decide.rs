//! Cedar decisions: typed entities built in code (no JSON on the request path), request and
//! context validated against the schema, and any evaluation error counted as a Deny. A batch of
//! questions about one principal in one tenant shares a single entity build.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context, Decision as CedarDecision, Entities, Entity, EntityId, EntityTypeName,
    EntityUid, Request, RestrictedExpression,
};
use uuid::Uuid;

use super::index::{Asked, Side};
use super::memo::Source;
use super::names::Names;
use super::policies::{PolicyBundle, ROLE_TYPE};
use super::types::{
    Action, AuthContext, Decision, Query, Question, Resource, ResourceKind, Subject,
};
use crate::store::flows::Attributes;
use crate::store::{TenantId, UserId};

/// What a flow that is not looked up has: no owner, labels or shares.
pub(super) static NO_ATTRIBUTES: Attributes = Attributes {
    owner: None,
    labels: Vec::new(),
    editors: Vec::new(),
    readers: Vec::new(),
};

/// How a decision is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slice {
    /// From the compiled residuals where they have a native form (see [`super::residual`]),
    /// else by Cedar on the policies whose scope can match the request (see [`super::index`]).
    Indexed,
    /// By Cedar on the policies whose scope can match the request, never from the residuals.
    Cedar,
    /// By Cedar on all of them.
    WholeSet,
}

/// The part of a decision that one subject shares across its questions.
struct Built<'a> {
    principal: EntityUid,
    role: Option<&'a str>,
    /// The principal's roles, for the policy index.
    ancestors: Vec<EntityUid>,
    context: Context,
    entities: Entities,
}

impl PolicyBundle {
    /// Evaluates one query, or answers it from the snapshot's memo (see [`super::memo`]).
    pub fn decide(&self, query: &Query<'_>) -> Decision {
        self.decide_one(query, Slice::Indexed, true)
    }

    /// Evaluates several questions for one subject against one entity set; questions answered
    /// before on the same inputs come from the memo.
    pub fn decide_many(&self, subject: &Subject<'_>, questions: &[Question]) -> Vec<Decision> {
        self.decide_counted(subject, questions, Slice::Indexed, true)
    }

    /// [`PolicyBundle::decide_many`] without counting the decisions: each comes with its source,
    /// for the caller to count those it shows ([`PolicyBundle::count_sources`]). A flow the
    /// caller may not see must leave the counters as a flow that does not exist does, or the
    /// public metrics would tell which ids exist.
    pub fn decide_many_uncounted(
        &self,
        subject: &Subject<'_>,
        questions: &[Question],
    ) -> Vec<(Decision, Source)> {
        self.decide_all(subject, questions, Slice::Indexed, true)
    }

    /// [`PolicyBundle::decide_many_uncounted`] without the memo, neither read nor written: for
    /// questions asked only for the time they take (a flow that is not there, see
    /// [`super::judge_flows`]), which must not fill the memo.
    pub fn decide_many_unremembered(
        &self,
        subject: &Subject<'_>,
        questions: &[Question],
    ) -> Vec<(Decision, Source)> {
        self.decide_all(subject, questions, Slice::Indexed, false)
    }

    /// [`PolicyBundle::decide_many`] evaluated in full, never from the memo.
    pub fn decide_many_afresh(
        &self,
        subject: &Subject<'_>,
        questions: &[Question],
    ) -> Vec<Decision> {
        self.decide_counted(subject, questions, Slice::Indexed, false)
    }

    /// Evaluates one query with the index, never from the memo: what a first request costs.
    pub fn decide_afresh(&self, query: &Query<'_>) -> Decision {
        self.decide_one(query, Slice::Indexed, false)
    }

    /// How many decisions of this snapshot were remembered, evaluated from the compiled
    /// residuals, and evaluated by Cedar (in that order), since it loaded.
    pub fn decision_sources(&self) -> [(&'static str, u64); 3] {
        let counts = self.memo.sources();
        [0, 1, 2].map(|n| (Source::ALL[n].name(), counts[n]))
    }

    /// Evaluates one query in Cedar with the index, never from the residuals or the memo: what a
    /// first request cost before residuals were compiled, and the benchmark's reference.
    pub fn decide_in_cedar(&self, query: &Query<'_>) -> Decision {
        self.decide_one(query, Slice::Cedar, false)
    }

    /// Evaluates one query against every policy of the set, bypassing the index and the memo:
    /// the reference the index is tested against, and the benchmark's baseline.
    pub fn decide_with_whole_set(&self, query: &Query<'_>) -> Decision {
        self.decide_one(query, Slice::WholeSet, false)
    }

    fn decide_one(&self, query: &Query<'_>, slice: Slice, memo: bool) -> Decision {
        let subject = Subject {
            user: query.user,
            role: query.role,
            tenant: query.tenant,
            auth: query.auth,
        };
        let question = Question {
            action: query.action,
            resource: query.resource,
            resource_tenant: query.resource_tenant,
            flow: query.flow,
        };
        self.decide_counted(&subject, &[question], slice, memo)
            .pop()
            .unwrap_or_else(|| Decision::deny("no decision".into()))
    }

    /// Decides every question, each with where its decision came from, counting nothing.
    fn decide_all(
        &self,
        subject: &Subject<'_>,
        questions: &[Question],
        slice: Slice,
        memo: bool,
    ) -> Vec<(Decision, Source)> {
        let mut decisions: Vec<Option<(Decision, Source)>> = questions
            .iter()
            .map(|question| {
                // A flow decided from the compiled residuals costs about what a memo lookup
                // does, so those answers are not remembered: under real traffic (many callers,
                // many flows) they would fill the memo with pairs seldom asked again.
                if slice == Slice::Indexed
                    && let Some(native) = self.decide_natively(subject, question)
                {
                    return Some((native, Source::Residual));
                }
                let known = memo.then(|| self.memo.get(subject, question)).flatten()?;
                Some((known, Source::Memo))
            })
            .collect();
        let missing: Vec<Question> = questions
            .iter()
            .zip(&decisions)
            .filter(|(_, known)| known.is_none())
            .map(|(question, _)| *question)
            .collect();
        if missing.is_empty() {
            return decisions.into_iter().flatten().collect();
        }
        let built = self.build(subject, &missing);
        // A batch builds one entity per resource, with the attributes of its first question; a
        // later question naming the same flow with other attributes is decided on those, so only
        // answers given on a question's own attributes are remembered.
        let mut first: HashMap<Resource, (TenantId, Option<&Attributes>)> = HashMap::new();
        let mut answers = missing.iter().map(|question| {
            let decision = match &built {
                Ok(built) => self
                    .evaluate(built, question, slice)
                    .unwrap_or_else(Decision::deny),
                Err(error) => Decision::deny(error.clone()),
            };
            let asked = (question.resource_tenant, question.flow);
            let own = *first.entry(question.resource).or_insert(asked) == asked;
            if memo && built.is_ok() && own {
                self.memo.put(subject, question, &decision);
            }
            (decision, Source::Cedar)
        });
        for slot in decisions.iter_mut().filter(|d| d.is_none()) {
            *slot = answers.next();
        }
        decisions
            .into_iter()
            .map(|d| d.unwrap_or_else(|| (Decision::deny("no decision".into()), Source::Cedar)))
            .collect()
    }

    /// [`PolicyBundle::decide_all`], each decision counted by its source.
    fn decide_counted(
        &self,
        subject: &Subject<'_>,
        questions: &[Question],
        slice: Slice,
        memo: bool,
    ) -> Vec<Decision> {
        let decided = self.decide_all(subject, questions, slice, memo);
        self.count_sources(decided.iter().map(|(_, source)| *source));
        decided.into_iter().map(|(decision, _)| decision).collect()
    }

    /// Counts decisions by source (`zygo_decision_sources`).
    pub fn count_sources(&self, sources: impl IntoIterator<Item = Source>) {
        let mut counts = [0usize; 3];
        for source in sources {
            counts[source as usize] += 1;
        }
        for source in Source::ALL {
            if counts[source as usize] > 0 {
                self.memo.count(source, counts[source as usize]);
            }
        }
    }

    /// The request context of a subject (the same shape for every action): the URL's tenant and
    /// how the caller authenticated.
    pub(super) fn context(&self, subject: &Subject<'_>) -> Result<Context, String> {
        let auth = RestrictedExpression::new_record([
            (
                "method".to_owned(),
                RestrictedExpression::new_string(subject.auth.method.name().to_owned()),
            ),
            (
                "read_only".to_owned(),
                RestrictedExpression::new_bool(subject.auth.read_only),
            ),
        ])
        .map_err(|e| e.to_string())?;
        Context::from_pairs([
            (
                "tenant".to_owned(),
                RestrictedExpression::new_entity_uid(self.names.tenant(subject.tenant)),
            ),
            ("auth".to_owned(), auth),
        ])
        .map_err(|e| e.to_string())
    }

    fn build<'a>(
        &self,
        subject: &Subject<'a>,
        questions: &[Question],
    ) -> Result<Built<'a>, String> {
        let names = &self.names;
        let tenant = names.tenant(subject.tenant);
        let principal = Names::uid(&names.user, &subject.user.to_string());
        let (parents, ancestors) = match subject.role {
            Some(role) => match self.role_closure.get(role) {
                Some(closure) => (closure.clone(), self.role_list[role].clone()),
                None => {
                    let uid = EntityUid::from_type_name_and_id(
                        EntityTypeName::from_str(ROLE_TYPE).map_err(|e| e.to_string())?,
                        EntityId::new(role),
                    );
                    (HashSet::from([uid.clone()]), vec![uid])
                }
            },
            None => (HashSet::new(), vec![]),
        };
        let mut entities = vec![Entity::new_no_attrs(principal.clone(), parents)];
        let mut seen: HashSet<EntityUid> = HashSet::from([principal.clone()]);
        let mut add = |entity: Entity, entities: &mut Vec<Entity>| {
            if seen.insert(entity.uid()) {
                entities.push(entity);
            }
        };
        add(Entity::new_no_attrs(tenant, HashSet::new()), &mut entities);
        for question in questions {
            let owner = names.tenant(question.resource_tenant);
            add(
                Entity::new_no_attrs(owner.clone(), HashSet::new()),
                &mut entities,
            );
            match question.resource {
                Resource::Tenant => {}
                Resource::Flow(_) => add(
                    names.flow_entity(
                        names.resource(question),
                        owner,
                        question.flow.unwrap_or(&NO_ATTRIBUTES),
                    )?,
                    &mut entities,
                ),
                Resource::Member(_) => add(
                    Entity::new_no_attrs(names.resource(question), HashSet::from([owner])),
                    &mut entities,
                ),
            }
        }
        // The entities are built here from typed values, so they are not validated against the
        // schema again (that costs more than the decision). The roles and the schema's actions
        // are built once per snapshot; only the request's own entities are added.
        let entities = self
            .base_entities
            .clone()
            .add_entities(entities, None)
            .map_err(|e| e.to_string())?;
        Ok(Built {
            principal,
            role: subject.role,
            ancestors,
            context: self.context(subject)?,
            entities,
        })
    }

    fn evaluate(
        &self,
        built: &Built<'_>,
        question: &Question,
        slice: Slice,
    ) -> Result<Decision, String> {
        let names = &self.names;
        let action = names.action(question.action);
        let resource = names.resource(question);
        // Each (action, resource kind) pair was checked against the schema when the snapshot
        // loaded (the shapes of principal, resource and context never vary per request); a pair
        // the schema refuses is validated here again so its error is reported.
        let schema = (!self
            .checked_shapes
            .contains(&(question.action, question.resource.kind())))
        .then_some(&self.schema);
        let request = Request::new(
            built.principal.clone(),
            action.clone(),
            resource.clone(),
            built.context.clone(),
            schema,
        )
        .map_err(|e| e.to_string())?;
        let owner = [names.tenant(question.resource_tenant)];
        let resource_ancestors: &[EntityUid] = match question.resource {
            Resource::Tenant => &[],
            Resource::Flow(_) | Resource::Member(_) => &owner,
        };
        let sliced;
        let policies = match slice {
            Slice::WholeSet => &self.policies,
            Slice::Indexed | Slice::Cedar => {
                sliced = self.index.slice(&Asked {
                    action: question.action,
                    action_uid: action,
                    role: built.role,
                    principal: Side {
                        uid: &built.principal,
                        ancestors: &built.ancestors,
                    },
                    resource_kind: question.resource.kind(),
                    resource: Side {
                        uid: &resource,
                        ancestors: resource_ancestors,
                    },
                });
                &*sliced
            }
        };
        let response = Authorizer::new().is_authorized(&request, policies, &built.entities);
        let errors: Vec<String> = response
            .diagnostics()
            .errors()
            .map(|e| e.to_string())
            .collect();
        // Cedar gives the determining policies in no particular order; sorted, the same
        // decision always reads the same (in answers and in the decision log).
        let mut reasons: Vec<String> = response
            .diagnostics()
            .reason()
            .map(|id| id.to_string())
            .collect();
        reasons.sort_unstable();
        Ok(Decision {
            allowed: response.decision() == CedarDecision::Allow && errors.is_empty(),
            reasons,
            errors,
        })
    }

    /// Every (action, resource kind) pair whose request the schema accepts, found by validating one
    /// sample request of each (with the context every request carries).
    pub(super) fn check_shapes(&self) -> HashSet<(Action, ResourceKind)> {
        let user = UserId(Uuid::nil());
        let tenant = TenantId(Uuid::nil());
        let subject = Subject {
            user,
            role: None,
            tenant,
            auth: AuthContext::SESSION,
        };
        let Ok(context) = self.context(&subject) else {
            return HashSet::new();
        };
        let principal = Names::uid(&self.names.user, &user.to_string());
        let mut accepted = HashSet::new();
        for action in Action::ALL {
            for resource in [
                Resource::Tenant,
                Resource::Flow(Uuid::nil()),
                Resource::Member(user),
            ] {
                let question = Question {
                    action,
                    resource,
                    resource_tenant: tenant,
                    flow: None,
                };
                if Request::new(
                    principal.clone(),
                    self.names.action(action).clone(),
                    self.names.resource(&question),
                    context.clone(),
                    Some(&self.schema),
                )
                .is_ok()
                {
                    accepted.insert((action, resource.kind()));
                }
            }
        }
        accepted
    }

    /// Whether a member with `role` may select `tenant` as a session's current tenant.
    pub fn may_select(&self, user: UserId, tenant: TenantId, role: &str) -> bool {
        self.decide(&Query {
            user,
            role: Some(role),
            action: Action::SelectTenant,
            tenant,
            resource: Resource::Tenant,
            resource_tenant: tenant,
            auth: AuthContext::SESSION,
            flow: None,
        })
        .allowed
    }

    /// Whether a tenant whose members hold `roles` still has someone allowed to manage members.
    /// The rule asks the policies, so it holds for any role a security team defines.
    pub fn keeps_manager(&self, tenant: TenantId, roles: &[&str]) -> bool {
        roles.iter().any(|role| {
            self.decide(&Query {
                user: UserId(Uuid::nil()),
                role: Some(role),
                action: Action::SetMemberRole,
                tenant,
                resource: Resource::Member(UserId(Uuid::nil())),
                resource_tenant: tenant,
                auth: AuthContext::SESSION,
                flow: None,
            })
            .allowed
        })
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::super::policies::PolicyBundle;
    use super::super::types::{Action, AuthContext, Question, Resource, Subject};
    use crate::store::flows::Attributes;
    use crate::store::{TenantId, UserId};

    #[test]
    fn a_batch_remembers_only_answers_given_on_the_questions_own_attributes() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
        let bundle = PolicyBundle::load(&dir).expect("shipped policies");
        let viewer = UserId(Uuid::from_u128(1));
        let owner = UserId(Uuid::from_u128(2));
        let tenant = TenantId(Uuid::from_u128(3));
        let open = Attributes {
            owner: Some(owner),
            ..Attributes::default()
        };
        let confidential = Attributes {
            labels: vec!["confidential".into()],
            ..open.clone()
        };
        let subject = Subject {
            user: viewer,
            role: Some("Viewer"),
            tenant,
            auth: AuthContext::SESSION,
        };
        let ask = |attrs| Question {
            action: Action::ReadFlow,
            resource: Resource::Flow(Uuid::from_u128(4)),
            resource_tenant: tenant,
            flow: Some(attrs),
        };
        let (first, second) = (ask(&open), ask(&confidential));
        let alone = |question: &Question| bundle.decide_many_afresh(&subject, &[*question]);
        // The shipped policies answer the two differently, so a mix-up would show.
        assert_ne!(alone(&first), alone(&second));
        // One batch builds the flow once, from the first question's attributes.
        bundle.decide_many(&subject, &[first, second]);
        assert_eq!(bundle.decide_many(&subject, &[second]), alone(&second));
        assert_eq!(bundle.decide_many(&subject, &[first]), alone(&first));
    }
}
