use sea_orm::entity::prelude::*;

/// A published policy version (immutable once written).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "policy_versions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub number: i64,
    pub content_hash: String,
    pub schema: String,
    pub roles: String,
    /// JSON object: `.cedar` file name → text.
    pub policies: String,
    /// JSON object: fixture file name → text.
    pub fixtures: String,
    pub published_by: String,
    pub published_at: DateTimeUtc,
    pub message: String,
    pub diff_summary: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
