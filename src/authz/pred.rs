//! A condition on a flow: what is left of a policy once the principal, the action and the
//! context are known (see [`super::pushdown`]), as a SQL condition on the flow rows or evaluated on
//! one flow in memory (see [`super::residual`]).

use sea_orm::Condition;
use uuid::Uuid;

use crate::store::flows::{Access, Attributes, Filter};

/// A condition on a flow, before it is SQL (or evaluated on a flow in memory, see
/// [`super::residual`]).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Pred {
    Const(bool),
    Id(Uuid),
    Owner(Uuid),
    Label(String),
    /// The flow has some label.
    AnyLabel,
    Shared(Option<Uuid>, Access),
    And(Vec<Pred>),
    Or(Vec<Pred>),
    Not(Box<Pred>),
}

pub(super) fn and(parts: impl IntoIterator<Item = Pred>) -> Pred {
    let mut kept = Vec::new();
    for part in parts {
        match part {
            Pred::Const(true) => {}
            Pred::Const(false) => return Pred::Const(false),
            Pred::And(inner) => kept.extend(inner),
            other => kept.push(other),
        }
    }
    match kept.len() {
        0 => Pred::Const(true),
        1 => kept.pop().unwrap_or(Pred::Const(true)),
        _ => Pred::And(kept),
    }
}

pub(super) fn or(parts: impl IntoIterator<Item = Pred>) -> Pred {
    let mut kept = Vec::new();
    for part in parts {
        match part {
            Pred::Const(false) => {}
            Pred::Const(true) => return Pred::Const(true),
            Pred::Or(inner) => kept.extend(inner),
            other => kept.push(other),
        }
    }
    match kept.len() {
        0 => Pred::Const(false),
        1 => kept.pop().unwrap_or(Pred::Const(false)),
        _ => Pred::Or(kept),
    }
}

pub(super) fn not(pred: Pred) -> Pred {
    match pred {
        Pred::Const(b) => Pred::Const(!b),
        Pred::Not(inner) => *inner,
        other => Pred::Not(Box::new(other)),
    }
}

impl Pred {
    /// Whether the flow `id` with `attrs` satisfies the condition: what the SQL condition asks of
    /// its rows, asked of one flow in memory. A flow without an owner is owned by the nil user,
    /// as its Cedar entity is (see `Names::flow_entity`).
    pub(super) fn holds(&self, id: Uuid, attrs: &Attributes) -> bool {
        match self {
            Pred::Const(b) => *b,
            Pred::Id(want) => id == *want,
            Pred::Owner(user) => attrs.owner.map_or(Uuid::nil(), |o| o.0) == *user,
            Pred::Label(label) => attrs.labels.iter().any(|l| l == label),
            Pred::AnyLabel => !attrs.labels.is_empty(),
            Pred::Shared(user, access) => {
                let users = match access {
                    Access::Edit => &attrs.editors,
                    Access::Read => &attrs.readers,
                };
                match user {
                    Some(user) => users.iter().any(|u| u.0 == *user),
                    None => !users.is_empty(),
                }
            }
            Pred::And(parts) => parts.iter().all(|p| p.holds(id, attrs)),
            Pred::Or(parts) => parts.iter().any(|p| p.holds(id, attrs)),
            Pred::Not(inner) => !inner.holds(id, attrs),
        }
    }

    /// The SQL condition; constants are gone by construction except at the top.
    pub(super) fn condition(&self) -> Condition {
        match self {
            Pred::Const(true) => Condition::all(),
            // Never reached: a false plan reads nothing. Kept total with an impossible id.
            Pred::Const(false) => Filter::id(Uuid::nil()).add(Filter::id(Uuid::max())),
            Pred::Id(id) => Filter::id(*id),
            Pred::Owner(user) => Filter::owner(*user),
            Pred::Label(label) => Filter::label(label),
            Pred::AnyLabel => Filter::any_label(),
            Pred::Shared(user, access) => Filter::shared(*user, *access),
            Pred::And(parts) => parts
                .iter()
                .fold(Condition::all(), |c, p| c.add(p.condition())),
            Pred::Or(parts) => parts
                .iter()
                .fold(Condition::any(), |c, p| c.add(p.condition())),
            Pred::Not(inner) => Condition::all().add(inner.condition()).not(),
        }
    }
}
