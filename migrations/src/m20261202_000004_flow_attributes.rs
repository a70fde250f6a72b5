//! Flow attributes the policies see: an owner, labels, and per-flow shares.
//!
//! Labels and shares are rows of their own, not a JSON column: the flow list is filtered in SQL
//! by conditions translated from the policies (`resource.labels.contains("x")`,
//! `resource.editors.contains(principal)`), and an `EXISTS` over an indexed table reads the same
//! on SQLite and PostgreSQL.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Flows {
    Table,
    Id,
    TenantId,
    OwnerId,
}

#[derive(DeriveIden)]
enum FlowLabels {
    Table,
    FlowId,
    Label,
}

#[derive(DeriveIden)]
enum FlowShares {
    Table,
    FlowId,
    UserId,
    Access,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The creator. Nullable so that the column can be added to a table that has rows; those
        // rows are given the tenant's first Admin below (every tenant has one), so NULL is left
        // only where a tenant had no Admin at migration time.
        manager
            .alter_table(
                Table::alter()
                    .table(Flows::Table)
                    .add_column(uuid_null(Flows::OwnerId))
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE flows SET owner_id = (SELECT m.user_id FROM memberships m \
                 WHERE m.tenant_id = flows.tenant_id AND m.role = 'Admin' \
                 ORDER BY m.created_at, m.user_id LIMIT 1) WHERE owner_id IS NULL",
            )
            .await?;
        // "Flows I own" is a filter a policy may ask for.
        manager
            .create_index(
                Index::create()
                    .name("idx_flows_tenant_owner")
                    .table(Flows::Table)
                    .col(Flows::TenantId)
                    .col(Flows::OwnerId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(FlowLabels::Table)
                    .if_not_exists()
                    .col(uuid(FlowLabels::FlowId))
                    // `^[a-z0-9][a-z0-9-]{0,63}$`, checked by the API.
                    .col(string_len(FlowLabels::Label, 64))
                    .primary_key(
                        Index::create()
                            .col(FlowLabels::FlowId)
                            .col(FlowLabels::Label),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(FlowLabels::Table, FlowLabels::FlowId)
                            .to(Flows::Table, Flows::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(FlowShares::Table)
                    .if_not_exists()
                    .col(uuid(FlowShares::FlowId))
                    .col(uuid(FlowShares::UserId))
                    // `read` or `edit`: the user is among the flow's readers or its editors.
                    .col(string_len(FlowShares::Access, 8))
                    .primary_key(
                        Index::create()
                            .col(FlowShares::FlowId)
                            .col(FlowShares::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(FlowShares::Table, FlowShares::FlowId)
                            .to(Flows::Table, Flows::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(FlowShares::Table, FlowShares::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // "Flows shared with me": the list filter looks shares up by user.
        manager
            .create_index(
                Index::create()
                    .name("idx_flow_shares_user")
                    .table(FlowShares::Table)
                    .col(FlowShares::UserId)
                    .col(FlowShares::FlowId)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [FlowShares::Table.into_iden(), FlowLabels::Table.into_iden()] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        manager
            .drop_index(Index::drop().name("idx_flows_tenant_owner").to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Flows::Table)
                    .drop_column(Flows::OwnerId)
                    .to_owned(),
            )
            .await
    }
}
