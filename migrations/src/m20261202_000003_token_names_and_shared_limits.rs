//! Tokens people can tell apart (a name, read-only), listed newest first; and login throttling
//! counters in the database, so several instances sharing it give an attacker one budget.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum IssuedTokens {
    Table,
    UserId,
    IssuedAt,
    Jti,
    Name,
    ReadOnly,
}

#[derive(DeriveIden)]
enum LoginFailures {
    Table,
    Key,
    WindowStartedAt,
    Failures,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters a table one column at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(IssuedTokens::Table)
                    // What the user called the token ("deploy script"); not unique.
                    .add_column(string_len_null(IssuedTokens::Name, 64))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(IssuedTokens::Table)
                    // Also a claim of the token; recorded here to be listed.
                    .add_column(boolean(IssuedTokens::ReadOnly).default(false))
                    .to_owned(),
            )
            .await?;
        // `GET /api/tokens`: a user's tokens, newest first.
        manager
            .create_index(
                Index::create()
                    .name("idx_issued_tokens_user_issued")
                    .table(IssuedTokens::Table)
                    .col(IssuedTokens::UserId)
                    .col(IssuedTokens::IssuedAt)
                    .col(IssuedTokens::Jti)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(LoginFailures::Table)
                    .if_not_exists()
                    // `pair|acct|addr` and the e-mail and/or address it counts.
                    .col(string_len(LoginFailures::Key, 400).primary_key())
                    // A row whose window has passed counts as zero and may be purged.
                    .col(timestamp_with_time_zone(LoginFailures::WindowStartedAt))
                    .col(integer(LoginFailures::Failures))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(LoginFailures::Table).to_owned())
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_issued_tokens_user_issued")
                    .table(IssuedTokens::Table)
                    .to_owned(),
            )
            .await?;
        for column in [IssuedTokens::ReadOnly, IssuedTokens::Name] {
            manager
                .alter_table(
                    Table::alter()
                        .table(IssuedTokens::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
