//! Token revocation: every minted token is recorded with its family, and revoked families are
//! listed, so a revocation survives restarts and is seen by every instance.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum IssuedTokens {
    Table,
    Jti,
    UserId,
    Family,
    IssuedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum RevokedFamilies {
    Table,
    Family,
    UserId,
    RevokedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(IssuedTokens::Table)
                    .if_not_exists()
                    // The token's `jti`: a user revokes one of their tokens by it.
                    .col(string_len(IssuedTokens::Jti, 64).primary_key())
                    .col(uuid(IssuedTokens::UserId))
                    // The `jti` of the token minted from a session that this one descends from.
                    .col(string_len(IssuedTokens::Family, 64))
                    .col(timestamp_with_time_zone(IssuedTokens::IssuedAt))
                    // Rows past this are dead weight and may be purged.
                    .col(timestamp_with_time_zone(IssuedTokens::ExpiresAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(IssuedTokens::Table, IssuedTokens::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // "Log out everywhere" revokes every family of the user.
        manager
            .create_index(
                Index::create()
                    .name("idx_issued_tokens_user")
                    .table(IssuedTokens::Table)
                    .col(IssuedTokens::UserId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(RevokedFamilies::Table)
                    .if_not_exists()
                    // A separate table, not a flag on issued tokens: a token minted from a token
                    // while its family is being revoked is covered as well.
                    .col(string_len(RevokedFamilies::Family, 64).primary_key())
                    .col(uuid(RevokedFamilies::UserId))
                    .col(timestamp_with_time_zone(RevokedFamilies::RevokedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(RevokedFamilies::Table, RevokedFamilies::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            RevokedFamilies::Table.into_iden(),
            IssuedTokens::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
