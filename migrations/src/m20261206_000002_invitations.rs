//! Invitations: an Admin's offer of a role in a tenant, which the invited user accepts (and only
//! then becomes a member) or declines.
//!
//! A row exists only for a user who exists: the API answers the same whether or not the id it was
//! given names a user, and simply writes nothing for an id that names no one.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Invitations {
    Table,
    TenantId,
    UserId,
    Role,
    InvitedBy,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Invitations::Table)
                    .if_not_exists()
                    .col(uuid(Invitations::TenantId))
                    .col(uuid(Invitations::UserId))
                    // The role the member will have once they accept (a role of the policy folder).
                    .col(string_len(Invitations::Role, 64))
                    // Who invited; NULL once that user is gone (the invitation itself stays valid).
                    .col(uuid_null(Invitations::InvitedBy))
                    .col(timestamp_with_time_zone(Invitations::CreatedAt))
                    // One pending invitation per (tenant, user): inviting again replaces its role.
                    .primary_key(
                        Index::create()
                            .col(Invitations::TenantId)
                            .col(Invitations::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Invitations::Table, Invitations::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Invitations::Table, Invitations::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Invitations::Table, Invitations::InvitedBy)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        // `GET /api/invitations` lists a user's invitations oldest first, a page at a time.
        manager
            .create_index(
                Index::create()
                    .name("idx_invitations_user")
                    .table(Invitations::Table)
                    .col(Invitations::UserId)
                    .col(Invitations::CreatedAt)
                    .col(Invitations::TenantId)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Invitations::Table).to_owned())
            .await
    }
}
