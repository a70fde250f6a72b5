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

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

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

/// The decisions of one snapshot.
pub struct Memo {
    entries: moka::sync::Cache<u64, Arc<Remembered>>,
    hasher: RandomState,
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
