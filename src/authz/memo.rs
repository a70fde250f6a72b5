//! Decisions remembered for the life of one policy snapshot.
//!
//! A Cedar decision is a pure function of the policies, the entities and the request. Within one
//! snapshot the policies and the role entities never change, and every other input is named by a
//! decision's [`Inputs`]: the caller, their role in the tenant, the tenant, how they authenticated,
//! the action, the resource and its tenant, and the flow's attributes. The caller's role and the
//! flow's attributes are the ones read for this request (the role through the role cache, the flow
//! from the database), so a remembered answer is never older than the facts it is looked up by: a
//! role change, a new share or a relabelled flow makes a different key, and a policy reload makes
//! a new snapshot with an empty memo.
//!
//! Entries are keyed by a hash of the inputs and hold the inputs themselves; a lookup compares them
//! in full, so a hash collision is a miss, never someone else's answer. The memo is bounded by an
//! estimate of its entries' size ([`MEMO_BYTES`]).
//!
//! The memo also keeps the policies' residuals compiled per subject and action (see
//! [`super::residual`]). A flow they decide is not remembered (evaluating them costs about what a
//! lookup does, and real traffic seldom asks the same pair twice); they are bounded the same way
//! ([`RESIDUAL_BYTES`]) and live as long as the snapshot.

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use uuid::Uuid;

use super::pred::Pred;
use super::types::{Action, AuthContext, Decision, Question, Resource, Subject};
use crate::store::flows::Attributes;
use crate::store::{TenantId, UserId};

/// Upper bound of the memo's estimated size, per snapshot.
pub const MEMO_BYTES: u64 = 64 * 1024 * 1024;

/// Everything a decision depends on besides the snapshot.
#[derive(Debug, PartialEq, Eq)]
struct Inputs {
    user: UserId,
    role: Option<Box<str>>,
    tenant: TenantId,
    auth: AuthContext,
    action: Action,
    resource: Resource,
    resource_tenant: TenantId,
    flow: Option<Attributes>,
}

impl Inputs {
    fn of(subject: &Subject<'_>, question: &Question<'_>) -> Inputs {
        Inputs {
            user: subject.user,
            role: subject.role.map(Box::from),
            tenant: subject.tenant,
            auth: subject.auth,
            action: question.action,
            resource: question.resource,
            resource_tenant: question.resource_tenant,
            flow: question.flow.cloned(),
        }
    }

    fn matches(&self, subject: &Subject<'_>, question: &Question<'_>) -> bool {
        self.user == subject.user
            && self.role.as_deref() == subject.role
            && self.tenant == subject.tenant
            && self.auth == subject.auth
            && self.action == question.action
            && self.resource == question.resource
            && self.resource_tenant == question.resource_tenant
            && self.flow.as_ref() == question.flow
    }
}

#[derive(Debug)]
struct Remembered {
    inputs: Inputs,
    decision: Decision,
}

impl Remembered {
    /// A rough size in bytes: the entry, its strings and lists, and the cache's own bookkeeping.
    fn weight(&self) -> u32 {
        let flow = self.inputs.flow.as_ref().map_or(0, |f| {
            f.labels.iter().map(|l| l.len() + 24).sum::<usize>()
                + 16 * (f.editors.len() + f.readers.len())
        });
        let decision: usize = self
            .decision
            .reasons
            .iter()
            .chain(&self.decision.errors)
            .map(|s| s.len() + 24)
            .sum();
        let role = self.inputs.role.as_ref().map_or(0, |r| r.len());
        let size = std::mem::size_of::<Remembered>() + 64 + flow + decision + role;
        u32::try_from(size).unwrap_or(u32::MAX)
    }
}

/// Upper bound of the compiled residuals' estimated size, per snapshot.
pub const RESIDUAL_BYTES: u64 = 16 * 1024 * 1024;

/// What the residuals of a policy set depend on besides the snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct ResidualKey {
    pub user: UserId,
    pub role: Option<Box<str>>,
    pub tenant: TenantId,
    pub auth: AuthContext,
    pub action: Action,
}

/// The policies that can still apply to a flow, each with its condition, sorted by id (so the
/// determining policies come out sorted, as decisions give them).
#[derive(Debug)]
pub(super) struct Compiled {
    permits: Vec<(String, Pred)>,
    forbids: Vec<(String, Pred)>,
}

impl Compiled {
    pub(super) fn new(permits: Vec<(String, Pred)>, forbids: Vec<(String, Pred)>) -> Compiled {
        Compiled { permits, forbids }
    }

    /// Cedar's authorizer on the flow `id` with `attrs`: satisfied forbids deny, else satisfied
    /// permits allow, else Deny with no determining policy.
    pub(super) fn decide(&self, id: Uuid, attrs: &Attributes) -> Decision {
        let holding = |policies: &[(String, Pred)]| -> Vec<String> {
            policies
                .iter()
                .filter(|(_, pred)| pred.holds(id, attrs))
                .map(|(policy, _)| policy.clone())
                .collect()
        };
        let forbids = holding(&self.forbids);
        if !forbids.is_empty() {
            return Decision {
                allowed: false,
                reasons: forbids,
                errors: vec![],
            };
        }
        let permits = holding(&self.permits);
        Decision {
            allowed: !permits.is_empty(),
            reasons: permits,
            errors: vec![],
        }
    }

    /// A rough size in bytes.
    fn weight(&self) -> u32 {
        let size: usize = self
            .permits
            .iter()
            .chain(&self.forbids)
            .map(|(id, pred)| id.len() + 24 + pred_size(pred))
            .sum::<usize>()
            + 128;
        u32::try_from(size).unwrap_or(u32::MAX)
    }
}

fn pred_size(pred: &Pred) -> usize {
    let own = std::mem::size_of::<Pred>();
    own + match pred {
        Pred::Label(label) => label.len(),
        Pred::And(parts) | Pred::Or(parts) => parts.iter().map(pred_size).sum(),
        Pred::Not(inner) => pred_size(inner),
        _ => 0,
    }
}

/// The compiled residuals of one snapshot; `None` for a key Cedar decides in full.
pub struct Residuals {
    entries: moka::sync::Cache<ResidualKey, Option<Arc<Compiled>>>,
}

impl std::fmt::Debug for Residuals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Residuals")
            .field("entries", &self.entries.entry_count())
            .finish()
    }
}

impl Residuals {
    pub fn new(bytes: u64) -> Residuals {
        Residuals {
            entries: moka::sync::Cache::builder()
                .max_capacity(bytes)
                .weigher(|key: &ResidualKey, entry: &Option<Arc<Compiled>>| {
                    let key = 64 + key.role.as_ref().map_or(0, |r| r.len()) as u32;
                    key + entry.as_ref().map_or(0, |c| c.weight())
                })
                .build(),
        }
    }
}

/// The decisions of one snapshot, and the policies' residuals they are evaluated from (see
/// [`super::residual`]).
pub struct Memo {
    entries: moka::sync::Cache<u64, Arc<Remembered>>,
    hasher: RandomState,
    residuals: Residuals,
    /// Decisions given, by [`Source`].
    sources: [AtomicU64; 3],
}

/// Where a decision came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Remembered from an earlier request on the same inputs.
    Memo,
    /// Evaluated from the compiled residuals.
    Residual,
    /// Evaluated by Cedar.
    Cedar,
}

impl Source {
    pub const ALL: [Source; 3] = [Source::Memo, Source::Residual, Source::Cedar];

    pub fn name(self) -> &'static str {
        match self {
            Source::Memo => "memo",
            Source::Residual => "residual",
            Source::Cedar => "cedar",
        }
    }
}

impl std::fmt::Debug for Memo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memo")
            .field("entries", &self.entries.entry_count())
            .finish_non_exhaustive()
    }
}

impl Memo {
    pub fn new(bytes: u64) -> Memo {
        Memo {
            entries: moka::sync::Cache::builder()
                .max_capacity(bytes)
                .weigher(|_, entry: &Arc<Remembered>| entry.weight())
                .build(),
            hasher: RandomState::new(),
            residuals: Residuals::new(RESIDUAL_BYTES),
            sources: Default::default(),
        }
    }

    fn key(&self, subject: &Subject<'_>, question: &Question<'_>) -> u64 {
        self.hasher.hash_one((
            subject.user,
            subject.role,
            subject.tenant,
            subject.auth,
            question.action,
            question.resource,
            question.resource_tenant,
            question.flow,
        ))
    }

    /// Counts one decision given from `source`.
    pub(super) fn count(&self, source: Source, decisions: usize) {
        self.sources[source as usize].fetch_add(decisions as u64, Ordering::Relaxed);
    }

    /// The decisions given from each source (in [`Source::ALL`]'s order) since the snapshot loaded.
    pub fn sources(&self) -> [u64; 3] {
        Source::ALL.map(|source| self.sources[source as usize].load(Ordering::Relaxed))
    }

    /// The compiled residuals of `key`, compiled by `compile` when not remembered.
    pub(super) fn residuals(
        &self,
        key: ResidualKey,
        compile: impl FnOnce() -> Option<Arc<Compiled>>,
    ) -> Option<Arc<Compiled>> {
        self.residuals.entries.get_with(key, compile)
    }

    /// The decision made earlier on exactly these inputs, if it is still remembered.
    pub fn get(&self, subject: &Subject<'_>, question: &Question<'_>) -> Option<Decision> {
        let entry = self.entries.get(&self.key(subject, question))?;
        entry
            .inputs
            .matches(subject, question)
            .then(|| entry.decision.clone())
    }

    /// Remembers a decision made on these inputs.
    pub fn put(&self, subject: &Subject<'_>, question: &Question<'_>, decision: &Decision) {
        self.entries.insert(
            self.key(subject, question),
            Arc::new(Remembered {
                inputs: Inputs::of(subject, question),
                decision: decision.clone(),
            }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::types::AuthMethod;
    use uuid::Uuid;

    fn decision(allowed: bool) -> Decision {
        Decision {
            allowed,
            reasons: vec!["some-policy".into()],
            errors: vec![],
        }
    }

    #[test]
    fn a_decision_is_remembered_only_for_exactly_its_inputs() {
        let memo = Memo::new(MEMO_BYTES);
        let user = UserId(Uuid::from_u128(1));
        let tenant = TenantId(Uuid::from_u128(2));
        let flow = Uuid::from_u128(3);
        let attrs = Attributes {
            owner: Some(user),
            labels: vec!["confidential".into()],
            ..Attributes::default()
        };
        let subject = Subject {
            user,
            role: Some("Editor"),
            tenant,
            auth: AuthContext::SESSION,
        };
        let question = Question {
            action: Action::ReadFlow,
            resource: Resource::Flow(flow),
            resource_tenant: tenant,
            flow: Some(&attrs),
        };
        assert_eq!(memo.get(&subject, &question), None);
        memo.put(&subject, &question, &decision(true));
        assert_eq!(memo.get(&subject, &question), Some(decision(true)));

        // Any input that differs is another question.
        let relabelled = Attributes {
            labels: vec![],
            ..attrs.clone()
        };
        let shared = Attributes {
            readers: vec![UserId(Uuid::from_u128(9))],
            ..attrs.clone()
        };
        for other in [&relabelled, &shared] {
            let asked = Question {
                flow: Some(other),
                ..question
            };
            assert_eq!(memo.get(&subject, &asked), None);
        }
        let token = AuthContext {
            method: AuthMethod::Token,
            read_only: true,
        };
        for other in [
            Subject {
                role: Some("Viewer"),
                ..subject
            },
            Subject {
                role: None,
                ..subject
            },
            Subject {
                user: UserId(Uuid::from_u128(4)),
                ..subject
            },
            Subject {
                tenant: TenantId(Uuid::from_u128(5)),
                ..subject
            },
            Subject {
                auth: token,
                ..subject
            },
        ] {
            assert_eq!(memo.get(&other, &question), None, "{other:?}");
        }
        for other in [
            Question {
                action: Action::UpdateFlow,
                ..question
            },
            Question {
                resource: Resource::Flow(Uuid::from_u128(6)),
                ..question
            },
            Question {
                resource_tenant: TenantId(Uuid::from_u128(7)),
                ..question
            },
            Question {
                flow: None,
                ..question
            },
        ] {
            assert_eq!(memo.get(&subject, &other), None, "{other:?}");
        }
    }
}
