//! An index over one policy snapshot, so a decision costs the same with ten policies or ten
//! thousand.
//!
//! Cedar's authorizer evaluates every policy of the set it is given. A policy whose scope
//! (`principal`, `action`, `resource`) cannot match the request never changes the answer: its scope
//! is false, so it is not satisfied and its `when`/`unless` conditions are never evaluated (no error
//! either). Leaving such policies out therefore keeps the decision, the determining policies and the
//! errors exactly as they are with the whole set. The index is built once per snapshot and may only
//! ever over-approximate: it keys each policy by what its scope names, and a request gathers every
//! key its principal, action and resource could match.
//!
//! The slice a request needs is the union of a few buckets; the `PolicySet` of each distinct union is
//! built once and kept (bounded) for the snapshot's life. `tests/api/policy_index.rs` checks the
//! answers against the whole set over random requests and random policy sets.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, RwLock};

use super::types::{Action, ResourceKind};
use cedar_policy::{
    ActionConstraint, Entities, EntityTypeName, EntityUid, Policy, PolicySet, PrincipalConstraint,
    ResourceConstraint,
};

/// What one side of a policy's scope names: nothing, an entity (`==` or `in`), or a type (`is`).
/// `is T in E` is keyed by `E`, which is at least as selective.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Any,
    Uid(EntityUid),
    Type(EntityTypeName),
}

impl Key {
    fn of_principal(constraint: PrincipalConstraint) -> Key {
        match constraint {
            PrincipalConstraint::Any => Key::Any,
            PrincipalConstraint::In(uid)
            | PrincipalConstraint::Eq(uid)
            | PrincipalConstraint::IsIn(_, uid) => Key::Uid(uid),
            PrincipalConstraint::Is(type_name) => Key::Type(type_name),
        }
    }

    fn of_resource(constraint: ResourceConstraint) -> Key {
        match constraint {
            ResourceConstraint::Any => Key::Any,
            ResourceConstraint::In(uid)
            | ResourceConstraint::Eq(uid)
            | ResourceConstraint::IsIn(_, uid) => Key::Uid(uid),
            ResourceConstraint::Is(type_name) => Key::Type(type_name),
        }
    }
}

/// An entity of a request as the index sees it: itself, its type and every ancestor.
pub struct Side<'a> {
    pub uid: &'a EntityUid,
    pub ancestors: &'a [EntityUid],
}

impl Side<'_> {
    /// Every key a policy scope matching this entity can have.
    fn keys(&self) -> impl Iterator<Item = Key> + '_ {
        [Key::Any, Key::Type(self.uid.type_name().clone())]
            .into_iter()
            .chain(std::iter::once(Key::Uid(self.uid.clone())))
            .chain(self.ancestors.iter().map(|uid| Key::Uid(uid.clone())))
    }
}

/// A request as the index sees it.
pub struct Asked<'a> {
    pub action: Action,
    pub action_uid: &'a EntityUid,
    /// The principal's role (its ancestors are that role's closure).
    pub role: Option<&'a str>,
    pub principal: Side<'a>,
    pub resource_kind: ResourceKind,
    pub resource: Side<'a>,
}

/// What fixes a request's slice, cheap to hash: the action, the role, the resource kind, and the
/// few entities of the request that some policy's scope names (usually none, or the tenant). Two
/// requests with the same key match exactly the same buckets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SliceKey {
    action: Action,
    role: Option<u16>,
    kind: ResourceKind,
    named: Vec<EntityUid>,
}

/// Largest number of distinct slices kept per snapshot (each a handful of policies).
const SLICES: usize = 10_000;

pub struct PolicyIndex {
    /// Per action: (principal key, resource key) → bucket number.
    by_action: HashMap<EntityUid, HashMap<(Key, Key), u32>>,
    /// The policies of each bucket.
    buckets: Vec<Vec<Policy>>,
    /// Every entity a policy scope names (`==`, `in`).
    named: HashSet<EntityUid>,
    /// The roles of the snapshot, numbered for [`SliceKey`].
    roles: HashMap<String, u16>,
    /// The slice of each request key seen so far.
    by_request: RwLock<HashMap<SliceKey, Arc<PolicySet>>>,
    /// The policy set of each union of buckets built so far (shared by request keys).
    slices: RwLock<HashMap<Vec<u32>, Arc<PolicySet>>>,
    empty: Arc<PolicySet>,
}

impl std::fmt::Debug for PolicyIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyIndex")
            .field("actions", &self.by_action.len())
            .field("buckets", &self.buckets.len())
            .finish_non_exhaustive()
    }
}

impl PolicyIndex {
    /// Indexes `policies` for the schema's `actions` (their entities, for action groups).
    pub fn new<'a>(
        policies: &PolicySet,
        actions: &Entities,
        roles: impl IntoIterator<Item = &'a String>,
    ) -> PolicyIndex {
        let all: Vec<EntityUid> = actions.iter().map(|a| a.uid()).collect();
        // The actions an `action in [G]` scope admits: G itself and every action below it.
        let members = |group: &EntityUid| -> Vec<EntityUid> {
            all.iter()
                .filter(|action| {
                    *action == group
                        || actions
                            .ancestors(action)
                            .is_some_and(|mut ancestors| ancestors.any(|a| a == group))
                })
                .cloned()
                .collect()
        };
        let mut by_action: HashMap<EntityUid, HashMap<(Key, Key), u32>> = HashMap::new();
        let mut buckets: Vec<Vec<Policy>> = Vec::new();
        for policy in policies.policies() {
            let admitted: BTreeSet<EntityUid> = match policy.action_constraint() {
                ActionConstraint::Any => all.iter().cloned().collect(),
                ActionConstraint::Eq(action) => BTreeSet::from([action]),
                ActionConstraint::In(groups) => groups.iter().flat_map(&members).collect(),
            };
            let key = (
                Key::of_principal(policy.principal_constraint()),
                Key::of_resource(policy.resource_constraint()),
            );
            for action in admitted {
                let bucket = *by_action
                    .entry(action)
                    .or_default()
                    .entry(key.clone())
                    .or_insert_with(|| {
                        buckets.push(Vec::new());
                        (buckets.len() - 1) as u32
                    });
                buckets[bucket as usize].push(policy.clone());
            }
        }
        let named = by_action
            .values()
            .flat_map(|keys| keys.keys())
            .flat_map(|(p, r)| [p, r])
            .filter_map(|key| match key {
                Key::Uid(uid) => Some(uid.clone()),
                Key::Any | Key::Type(_) => None,
            })
            .collect();
        PolicyIndex {
            by_action,
            buckets,
            named,
            roles: roles
                .into_iter()
                .enumerate()
                .map(|(n, role)| (role.clone(), n as u16))
                .collect(),
            by_request: RwLock::new(HashMap::new()),
            slices: RwLock::new(HashMap::new()),
            empty: Arc::new(PolicySet::new()),
        }
    }

    /// The policies that can apply to a request: those whose scope may match its principal,
    /// action and resource. Evaluating them gives the same answer as evaluating the whole set.
    pub fn slice(&self, asked: &Asked<'_>) -> Arc<PolicySet> {
        let role = match asked.role {
            None => None,
            Some(role) => match self.roles.get(role) {
                Some(n) => Some(*n),
                // A role the folder does not define: rare, answered without the request cache.
                None => {
                    return self.buckets_slice(&asked.principal, asked.action_uid, &asked.resource);
                }
            },
        };
        let mut named = Vec::new();
        if !self.named.is_empty() {
            let request = [asked.principal.uid, asked.resource.uid];
            for uid in request.into_iter().chain(asked.resource.ancestors) {
                if self.named.contains(uid) {
                    named.push(uid.clone());
                }
            }
        }
        let key = SliceKey {
            action: asked.action,
            role,
            kind: asked.resource_kind,
            named,
        };
        if let Some(set) = self
            .by_request
            .read()
            .ok()
            .and_then(|s| s.get(&key).cloned())
        {
            return set;
        }
        let set = self.buckets_slice(&asked.principal, asked.action_uid, &asked.resource);
        if let Ok(mut by_request) = self.by_request.write()
            && by_request.len() < SLICES
        {
            by_request.insert(key, set.clone());
        }
        set
    }

    /// The union of the buckets whose keys the request's entities can match.
    fn buckets_slice(
        &self,
        principal: &Side<'_>,
        action: &EntityUid,
        resource: &Side<'_>,
    ) -> Arc<PolicySet> {
        let Some(keys) = self.by_action.get(action) else {
            return self.empty.clone();
        };
        let mut found: Vec<u32> = Vec::new();
        for p in principal.keys() {
            for r in resource.keys() {
                // Lookups by a borrowed pair would need a custom key type; these clones are of
                // Arc-backed names and cost less than one evaluated policy.
                if let Some(bucket) = keys.get(&(p.clone(), r)) {
                    found.push(*bucket);
                }
            }
        }
        if found.is_empty() {
            return self.empty.clone();
        }
        found.sort_unstable();
        found.dedup();
        if let Some(set) = self.slices.read().ok().and_then(|s| s.get(&found).cloned()) {
            return set;
        }
        let mut set = PolicySet::new();
        let mut added: HashSet<String> = HashSet::new();
        for bucket in &found {
            for policy in &self.buckets[*bucket as usize] {
                // A policy sits in one bucket per action, so it is added at most once here; the
                // check keeps `add` from failing should two keys ever share it.
                if added.insert(policy.id().to_string()) {
                    let _ = set.add(policy.clone());
                }
            }
        }
        let set = Arc::new(set);
        // Past the bound, further slices are built per request (still correct, a little slower).
        if let Ok(mut slices) = self.slices.write()
            && slices.len() < SLICES
        {
            slices.insert(found, set.clone());
        }
        set
    }
}
