//! Shares follow membership: from this release on, a flow is never shared with its owner, and a
//! member leaving a tenant loses its shares there and the ownership of its flows there (the
//! service does both in the removal's transaction). This brings existing rows to the same state:
//! shares held by users who are no longer members of the flow's tenant, and shares held by the
//! flow's owner, are deleted; flows owned by users who are no longer members of their tenant are
//! left without an owner (the policies see the nil user, whom no caller is: Admins keep them).
//!
//! Data only, and not reversible: `down` changes nothing.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for statement in [
            "DELETE FROM flow_shares WHERE NOT EXISTS (SELECT 1 FROM flows f \
             JOIN memberships m ON m.tenant_id = f.tenant_id AND m.user_id = flow_shares.user_id \
             WHERE f.id = flow_shares.flow_id)",
            "DELETE FROM flow_shares WHERE EXISTS (SELECT 1 FROM flows f \
             WHERE f.id = flow_shares.flow_id AND f.owner_id = flow_shares.user_id)",
            "UPDATE flows SET owner_id = NULL WHERE owner_id IS NOT NULL AND NOT EXISTS \
             (SELECT 1 FROM memberships m WHERE m.tenant_id = flows.tenant_id \
             AND m.user_id = flows.owner_id)",
        ] {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }
}
