//! Published policy versions and their activations (`zygo policy publish`, `rollback`).
//!
//! A version is immutable once written: its number, the files it is made of (schema, roles, the
//! `.cedar` files and the decision fixtures, as JSON objects of file name to text), the content
//! hash the service computes for a policy set, who published it, when (the database's clock), the
//! message and the summary of its difference to the version active before. An activation says
//! which version became active when and by whom (a publish or a rollback); the latest activation
//! names the version every instance serves.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum PolicyVersions {
    Table,
    Number,
    ContentHash,
    Schema,
    Roles,
    Policies,
    Fixtures,
    PublishedBy,
    PublishedAt,
    Message,
    DiffSummary,
}

#[derive(DeriveIden)]
enum PolicyActivations {
    Table,
    Id,
    Version,
    Kind,
    ActivatedBy,
    ActivatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PolicyVersions::Table)
                    .if_not_exists()
                    // 1, 2, 3…: chosen by the publishing transaction (max + 1); two publishes
                    // racing for one number leave one of them failed, never two versions N.
                    .col(big_integer(PolicyVersions::Number).primary_key())
                    .col(string_len(PolicyVersions::ContentHash, 64))
                    .col(text(PolicyVersions::Schema))
                    .col(text(PolicyVersions::Roles))
                    .col(text(PolicyVersions::Policies))
                    .col(text(PolicyVersions::Fixtures))
                    .col(string_len(PolicyVersions::PublishedBy, 200))
                    .col(timestamp_with_time_zone(PolicyVersions::PublishedAt))
                    .col(text(PolicyVersions::Message))
                    .col(text(PolicyVersions::DiffSummary))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PolicyActivations::Table)
                    .if_not_exists()
                    .col(big_integer(PolicyActivations::Id).primary_key())
                    .col(big_integer(PolicyActivations::Version))
                    // `publish` or `rollback`.
                    .col(string_len(PolicyActivations::Kind, 16))
                    .col(string_len(PolicyActivations::ActivatedBy, 200))
                    .col(timestamp_with_time_zone(PolicyActivations::ActivatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(PolicyActivations::Table, PolicyActivations::Version)
                            .to(PolicyVersions::Table, PolicyVersions::Number)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(PolicyActivations::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(PolicyVersions::Table).to_owned())
            .await
    }
}
