//! Kill switches in one statement: log out everywhere, a password change and disabling a user set
//! the user's `credentials_valid_after`, and every session created and every token issued before
//! that instant is refused from then on, however many there are. Re-enabling a user leaves it as
//! it is, so nothing ended by it comes back.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    CredentialsValidAfter,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    // Null: nothing was ever ended; every credential is judged on its own.
                    .add_column(timestamp_with_time_zone_null(Users::CredentialsValidAfter))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(Users::CredentialsValidAfter)
                    .to_owned(),
            )
            .await
    }
}
