//! Lists decided by the same policies as single reads, in SQL.
//!
//! `GET …/flows` must answer exactly the flows whose `GET …/flows/{id}` is allowed. Deciding every
//! row would read the whole tenant to fill one page when a policy hides most of it, so the
//! policies are evaluated once per list with the principal, the action and the context known and
//! the resource unknown (cedar-policy's type-aware partial evaluation, `PolicySet::tpe`). What is
//! left of each policy is a condition on the flow: its residual. The residuals that only ask what
//! a flow row and its label and share rows hold are translated into a SQL condition,
//! `(permit₁ OR permit₂ …) AND NOT (forbid₁ OR …)`, and the database returns the page.
//!
//! Pushed down (see also the README): `true`/`false`, `!`, `&&`, `||`, `if … then … else`;
//! `resource == Flow::"…"`, `resource in Flow::"…"` / `Tenant::"…"` (or a set of them),
//! `resource is Flow [in …]`; `resource.owner == User::"…"` (and `!=`, `principal` being known);
//! `resource.labels.contains("…")`, `.containsAny([...])`, `.containsAll([...])`, `.isEmpty()`;
//! the same on `resource.editors` and `resource.readers` with users, and
//! `User::"…" in resource.editors`; `resource has owner` (and the other declared attributes).
//! Anything else (arithmetic, `like`, extension functions, a residual that may error, a policy
//! set TPE cannot evaluate) has no SQL form: the plan then keeps a looser condition that cannot
//! drop an allowed flow (the unknown part taken as true where it could only add flows, as false
//! where it could only remove them) and marks itself inexact, and every row the database returns
//! is decided in full before it is listed.

use std::collections::HashSet;

use cedar_policy::pst::{self, BinaryOp, Expr, Literal, UnaryOp, Var};
use cedar_policy::{
    Decision as CedarDecision, Entities, Entity, PartialEntities, PartialEntityUid, PartialRequest,
    Policy, TpeResponse,
};
use sea_orm::Condition;
use uuid::Uuid;

use super::policies::PolicyBundle;
use super::pred::{Pred, and, not, or};
use super::types::{Action, Subject};
use crate::store::TenantId;
use crate::store::flows::Access;

/// What a list of flows reads: the rows that satisfy `filter`; when not `exact`, each row is then
/// decided in full.
#[derive(Debug, Clone)]
pub struct Plan {
    /// A condition every allowed flow satisfies (exactly the allowed ones when `exact`).
    pub filter: Condition,
    pub exact: bool,
    /// No flow can be allowed: nothing to read.
    pub none: bool,
}

impl Plan {
    fn none() -> Plan {
        Plan {
            filter: Condition::all(),
            exact: true,
            none: true,
        }
    }

    /// Read every row and decide each.
    fn decide_each() -> Plan {
        Plan {
            filter: Condition::all(),
            exact: false,
            none: false,
        }
    }
}

const FLOW: &str = "Zygo::Flow";
const TENANT: &str = "Zygo::Tenant";
const USER: &str = "Zygo::User";

/// The translation of residuals for one list (the tenant the rows all live in).
struct Translate {
    tenant: TenantId,
    /// Whether every part had an exact SQL form so far.
    exact: bool,
}

/// An entity literal: its type, and its id when it is one the service writes (a lower-case
/// hyphenated UUID; no flow or user of ours has any other id).
fn entity(expr: &Expr) -> Option<(String, Option<Uuid>)> {
    match expr {
        Expr::Literal(Literal::EntityUID(uid)) => Some((
            uid.ty.to_string(),
            Uuid::try_parse(&uid.eid)
                .ok()
                .filter(|id| id.to_string() == uid.eid.as_str()),
        )),
        _ => None,
    }
}

/// The id of an entity literal of `ty`: `None` when `expr` is no entity literal, `Some(None)`
/// when it is one no entity of ours of that type can equal (another type, or another id form).
fn entity_id(expr: &Expr, ty: &str) -> Option<Option<Uuid>> {
    let (found, id) = entity(expr)?;
    Some(if found == ty { id } else { None })
}

/// `resource.<attr>`.
fn resource_attr(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::GetAttr { expr, attr } if matches!(**expr, Expr::Var(Var::Resource)) => {
            Some(attr.as_str())
        }
        _ => None,
    }
}

fn share_access(attr: &str) -> Option<Access> {
    match attr {
        "editors" => Some(Access::Edit),
        "readers" => Some(Access::Read),
        _ => None,
    }
}

impl Translate {
    /// The condition of `expr`, approximated where it has no SQL form: from above (`upper`: the
    /// unknown part taken as true) or from below.
    fn pred(&mut self, expr: &Expr, upper: bool) -> Pred {
        match expr {
            Expr::Literal(Literal::Bool(b)) => Pred::Const(*b),
            Expr::UnaryOp {
                op: UnaryOp::Not,
                expr,
            } => not(self.pred(expr, !upper)),
            Expr::BinaryOp {
                op: BinaryOp::And,
                left,
                right,
            } => and([self.pred(left, upper), self.pred(right, upper)]),
            Expr::BinaryOp {
                op: BinaryOp::Or,
                left,
                right,
            } => or([self.pred(left, upper), self.pred(right, upper)]),
            Expr::IfThenElse {
                cond,
                then_expr,
                else_expr,
            } => or([
                and([self.pred(cond, upper), self.pred(then_expr, upper)]),
                and([not(self.pred(cond, !upper)), self.pred(else_expr, upper)]),
            ]),
            other => match self.atom(other) {
                Some(pred) => pred,
                None => {
                    self.exact = false;
                    Pred::Const(upper)
                }
            },
        }
    }

    /// `resource in <entity>`: a flow is in itself and in its tenant, nothing else.
    fn resource_in(&self, target: &Expr) -> Option<Pred> {
        if let Some((ty, id)) = entity(target) {
            return Some(match ty.as_str() {
                FLOW => id.map_or(Pred::Const(false), Pred::Id),
                TENANT => Pred::Const(id == Some(self.tenant.0)),
                _ => Pred::Const(false),
            });
        }
        match target {
            Expr::Set(items) => {
                let parts: Option<Vec<Pred>> =
                    items.iter().map(|item| self.resource_in(item)).collect();
                Some(or(parts?))
            }
            _ => None,
        }
    }

    /// `resource.<attr>.contains(<item>)`.
    fn contains(attr: &str, item: &Expr) -> Option<Pred> {
        if attr == "labels" {
            return match item {
                Expr::Literal(Literal::String(label)) => Some(Pred::Label(label.to_string())),
                _ => None,
            };
        }
        let access = share_access(attr)?;
        let user = entity_id(item, USER)?;
        Some(user.map_or(Pred::Const(false), |user| Pred::Shared(Some(user), access)))
    }

    fn atom(&self, expr: &Expr) -> Option<Pred> {
        match expr {
            Expr::Is {
                expr,
                entity_type,
                in_expr,
            } if matches!(**expr, Expr::Var(Var::Resource)) => {
                if entity_type.to_string() != FLOW {
                    return Some(Pred::Const(false));
                }
                match in_expr {
                    None => Some(Pred::Const(true)),
                    Some(target) => self.resource_in(target),
                }
            }
            Expr::BinaryOp { op, left, right } => match op {
                BinaryOp::In => {
                    if matches!(**left, Expr::Var(Var::Resource)) {
                        return self.resource_in(right);
                    }
                    // `User::"…" in resource.editors`: users have no user ancestors, so `in` is
                    // membership (or equality, for `owner`).
                    let user = entity_id(left, USER)?;
                    let attr = resource_attr(right)?;
                    if attr == "owner" {
                        return Some(user.map_or(Pred::Const(false), Pred::Owner));
                    }
                    let access = share_access(attr)?;
                    Some(user.map_or(Pred::Const(false), |u| Pred::Shared(Some(u), access)))
                }
                BinaryOp::Eq | BinaryOp::NotEq => {
                    let (attr, other) = match (&**left, &**right) {
                        (Expr::Var(Var::Resource), other) | (other, Expr::Var(Var::Resource)) => {
                            let id = entity_id(other, FLOW)?;
                            let pred = id.map_or(Pred::Const(false), Pred::Id);
                            return Some(if *op == BinaryOp::Eq { pred } else { not(pred) });
                        }
                        (l, r) => match (resource_attr(l), resource_attr(r)) {
                            (Some(attr), None) => (attr, r),
                            (None, Some(attr)) => (attr, l),
                            _ => return None,
                        },
                    };
                    if attr != "owner" {
                        return None;
                    }
                    let user = entity_id(other, USER)?;
                    let pred = user.map_or(Pred::Const(false), Pred::Owner);
                    Some(if *op == BinaryOp::Eq { pred } else { not(pred) })
                }
                BinaryOp::Contains => Self::contains(resource_attr(left)?, right),
                BinaryOp::ContainsAny | BinaryOp::ContainsAll => {
                    let attr = resource_attr(left)?;
                    let Expr::Set(items) = &**right else {
                        return None;
                    };
                    let parts: Option<Vec<Pred>> = items
                        .iter()
                        .map(|item| Self::contains(attr, item))
                        .collect();
                    Some(if *op == BinaryOp::ContainsAny {
                        or(parts?)
                    } else {
                        and(parts?)
                    })
                }
                _ => None,
            },
            Expr::UnaryOp {
                op: UnaryOp::IsEmpty,
                expr,
            } => {
                let attr = resource_attr(expr)?;
                if attr == "labels" {
                    return Some(not(Pred::AnyLabel));
                }
                Some(not(Pred::Shared(None, share_access(attr)?)))
            }
            Expr::HasAttr { expr, attrs }
                if matches!(**expr, Expr::Var(Var::Resource)) && attrs.len() == 1 =>
            {
                Some(Pred::Const(matches!(
                    attrs.head.as_str(),
                    "owner" | "labels" | "editors" | "readers"
                )))
            }
            _ => None,
        }
    }

    /// The condition of one residual policy (its scope is unconstrained, its body a `when`).
    fn policy(&mut self, policy: &Policy, upper: bool) -> Pred {
        let Ok(pst) = policy.to_pst() else {
            self.exact = false;
            return Pred::Const(upper);
        };
        let body = pst.body();
        let scoped = !matches!(body.principal, pst::PrincipalConstraint::Any)
            || !matches!(body.action, pst::ActionConstraint::Any)
            || !matches!(body.resource, pst::ResourceConstraint::Any);
        if scoped {
            self.exact = false;
            return Pred::Const(upper);
        }
        let parts: Vec<Pred> = body
            .clauses()
            .iter()
            .map(|clause| match clause {
                pst::Clause::When(expr) => self.pred(expr, upper),
                pst::Clause::Unless(expr) => not(self.pred(expr, !upper)),
            })
            .collect();
        and(parts)
    }
}

/// The exact condition of one residual policy on a flow of `tenant`, or `None` when some part of
/// it has no exact form (it might error, or asks what [`Pred`] cannot say).
pub(super) fn exact_pred(policy: &Policy, tenant: TenantId) -> Option<Pred> {
    let mut translate = Translate {
        tenant,
        exact: true,
    };
    let pred = translate.policy(policy, true);
    translate.exact.then_some(pred)
}

impl PolicyBundle {
    /// Evaluates the whole policy set for `subject` doing `action` on a flow of the subject's
    /// tenant not yet known (type-aware partial evaluation), and hands the response to `read`.
    pub(super) fn partially_evaluate<R>(
        &self,
        subject: &Subject<'_>,
        action: Action,
        read: impl FnOnce(&TpeResponse<'_>) -> R,
    ) -> Result<R, String> {
        let names = &self.names;
        let principal = names.user(subject.user);
        let parents: HashSet<_> = match subject.role {
            Some(role) => self
                .role_closure
                .get(role)
                .cloned()
                .ok_or("a role the folder does not define")?,
            None => HashSet::new(),
        };
        let entities = self
            .base_entities
            .clone()
            .add_entities(
                [
                    Entity::new_no_attrs(principal.clone(), parents),
                    Entity::new_no_attrs(names.tenant(subject.tenant), HashSet::new()),
                ],
                None,
            )
            .map_err(|e| e.to_string())?;
        let entities = partial(entities, self)?;
        let request = PartialRequest::new(
            PartialEntityUid::from_concrete(principal),
            names.action(action).clone(),
            PartialEntityUid::new(names.flow_type().clone(), None),
            Some(self.context(subject)?),
            &self.schema,
        )
        .map_err(|e| e.to_string())?;
        let response = self
            .policies
            .tpe(&request, &entities, &self.schema)
            .map_err(|e| e.to_string())?;
        Ok(read(&response))
    }

    /// How to list the flows of `subject.tenant` on which `subject` may do `action`.
    pub fn plan(&self, subject: &Subject<'_>, action: Action) -> Plan {
        self.try_plan(subject, action)
            .unwrap_or_else(|_| Plan::decide_each())
    }

    fn try_plan(&self, subject: &Subject<'_>, action: Action) -> Result<Plan, String> {
        self.partially_evaluate(subject, action, |response| plan_of(subject, response))
    }
}

fn plan_of(subject: &Subject<'_>, response: &TpeResponse<'_>) -> Plan {
    {
        // A policy that errors whatever the flow makes every decision a Deny (any error is).
        if response.error_permits().next().is_some() || response.error_forbids().next().is_some() {
            return Plan::none();
        }
        // A concrete Allow still goes through the residuals below: a residual permit might
        // error for some flows.
        if response.decision() == Some(CedarDecision::Deny) {
            return Plan::none();
        }
        let mut translate = Translate {
            tenant: subject.tenant,
            exact: true,
        };
        // Every residual is translated, even when a permit already holds: a part without SQL
        // form might error for some flows, and an error denies whatever the other policies say.
        let ids: Vec<_> = response.residual_permits().cloned().collect();
        let residual = or(ids
            .iter()
            .filter_map(|id| response.get_policy(id))
            .map(|p| translate.policy(&p, true)));
        let permits = if response.true_permits().next().is_some() {
            Pred::Const(true)
        } else {
            residual
        };
        let forbid_ids: Vec<_> = response.residual_forbids().cloned().collect();
        let forbids = or(forbid_ids
            .iter()
            .filter_map(|id| response.get_policy(id))
            .map(|p| translate.policy(&p, false)));
        let pred = and([permits, not(forbids)]);
        match pred {
            // Even when approximated, the condition holds for every allowed flow.
            Pred::Const(false) => Plan::none(),
            pred => Plan {
                filter: pred.condition(),
                exact: translate.exact,
                none: false,
            },
        }
    }
}

fn partial(entities: Entities, bundle: &PolicyBundle) -> Result<PartialEntities, String> {
    PartialEntities::from_concrete(entities, &bundle.schema).map_err(|e| e.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::authz::types::AuthContext;
    use crate::store::UserId;

    #[test]
    fn the_shipped_policies_push_down_exactly() {
        let bundle = PolicyBundle::load(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("policies")
                .as_path(),
        )
        .unwrap();
        for role in ["Viewer", "Editor", "Admin"] {
            let subject = Subject {
                user: UserId(Uuid::from_u128(7)),
                role: Some(role),
                tenant: TenantId(Uuid::from_u128(1)),
                auth: AuthContext::SESSION,
            };
            let plan = bundle.try_plan(&subject, Action::ReadFlow);
            let plan = plan.unwrap();
            assert!(plan.exact && !plan.none, "{role}: {plan:?}");
        }
    }
}
