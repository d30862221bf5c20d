//! [`IdentityStore`] on PostgreSQL: tenants and their keys, users, sessions and API tokens.

use super::{Postgres, begin, changed, first_int, map_err, tx_exec};
use crate::StoreError;
use crate::meta::IdentityStore;
use crate::meta::rows::*;
use crate::model::*;
use callvault_core::{TenantId, UserId, Username};
use deadpool_postgres::Transaction;

#[async_trait::async_trait]
impl IdentityStore for Postgres {
    async fn create_tenant(&self, t: &Tenant, k: &TenantKey) -> Result<(), StoreError> {
        let mut c = self.conn().await?;
        let tx = begin(&mut c).await?;
        tx_exec(
            &tx,
            &format!("INSERT INTO tenants ({TENANT_COLS}) VALUES ($1, $2, $3, $4)"),
            &[
                &t.id.as_str(),
                &t.name,
                &t.caller_hash_key_sealed,
                &t.created_at,
            ],
        )
        .await?;
        insert_key(&tx, k).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn get_tenant(&self, id: &TenantId) -> Result<Tenant, StoreError> {
        self.one(
            &format!("SELECT {TENANT_COLS} FROM tenants WHERE id = $1"),
            &[&id.as_str()],
            tenant_row,
        )
        .await
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        self.all(
            &format!("SELECT {TENANT_COLS} FROM tenants ORDER BY id"),
            &[],
            tenant_row,
        )
        .await
    }

    async fn active_key(&self, tenant: &TenantId) -> Result<TenantKey, StoreError> {
        self.one(
            &format!("SELECT {KEY_COLS} FROM tenant_keys WHERE tenant = $1 AND active"),
            &[&tenant.as_str()],
            key_row,
        )
        .await
    }

    async fn get_key(&self, tenant: &TenantId, key_id: i64) -> Result<TenantKey, StoreError> {
        self.one(
            &format!("SELECT {KEY_COLS} FROM tenant_keys WHERE tenant = $1 AND key_id = $2"),
            &[&tenant.as_str(), &key_id],
            key_row,
        )
        .await
    }

    async fn rotate_key(&self, k: &TenantKey) -> Result<(), StoreError> {
        let mut c = self.conn().await?;
        let tx = begin(&mut c).await?;
        // Rotations of one tenant queue on its row, so the second sees the first's new key
        // and deactivates it instead of failing on the one-active-key index.
        tx_exec(
            &tx,
            "SELECT 1 FROM tenants WHERE id = $1 FOR UPDATE",
            &[&k.tenant.as_str()],
        )
        .await?;
        tx_exec(
            &tx,
            "UPDATE tenant_keys SET active = FALSE WHERE tenant = $1 AND active",
            &[&k.tenant.as_str()],
        )
        .await?;
        insert_key(&tx, k).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn next_key_id(&self, tenant: &TenantId) -> Result<i64, StoreError> {
        self.one(
            "SELECT COALESCE(MAX(key_id), 0) + 1 FROM tenant_keys WHERE tenant = $1",
            &[&tenant.as_str()],
            first_int,
        )
        .await
    }

    async fn create_user(&self, u: &User) -> Result<(), StoreError> {
        self.exec(
            &format!(
                "INSERT INTO users ({USER_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
            ),
            &[
                &u.id.to_string(),
                &u.username.as_str(),
                &u.tenant.as_ref().map(TenantId::as_str),
                &u.role.as_str(),
                &u.password_hash,
                &u.must_change_password,
                &u.totp_sealed,
                &u.totp_last_step.map(u64_to_i64),
                &i64::from(u.failed_logins),
                &u.locked_until,
                &u.disabled,
                &u.created_at,
            ],
        )
        .await
        .map(drop)
    }

    async fn get_user(&self, id: &UserId) -> Result<User, StoreError> {
        self.one(
            &format!("SELECT {USER_COLS} FROM users WHERE id = $1"),
            &[&id.to_string()],
            user_row,
        )
        .await
    }

    async fn get_user_by_name(&self, name: &Username) -> Result<User, StoreError> {
        self.one(
            &format!("SELECT {USER_COLS} FROM users WHERE username = $1"),
            &[&name.as_str()],
            user_row,
        )
        .await
    }

    async fn list_users(&self, tenant: Option<&TenantId>) -> Result<Vec<User>, StoreError> {
        self.all(
            &format!(
                "SELECT {USER_COLS} FROM users WHERE $1::TEXT IS NULL OR tenant = $1 ORDER BY username"
            ),
            &[&tenant.map(TenantId::as_str)],
            user_row,
        )
        .await
    }

    async fn update_user(&self, u: &User) -> Result<(), StoreError> {
        changed(
            self.exec(
                "UPDATE users SET tenant = $2, role = $3, password_hash = $4, must_change_password = $5, totp_sealed = $6, totp_last_step = $7, failed_logins = $8, locked_until = $9, disabled = $10 WHERE id = $1",
                &[
                    &u.id.to_string(),
                    &u.tenant.as_ref().map(TenantId::as_str),
                    &u.role.as_str(),
                    &u.password_hash,
                    &u.must_change_password,
                    &u.totp_sealed,
                    &u.totp_last_step.map(u64_to_i64),
                    &i64::from(u.failed_logins),
                    &u.locked_until,
                    &u.disabled,
                ],
            )
            .await?,
        )
    }

    async fn create_session(&self, s: &Session) -> Result<(), StoreError> {
        self.exec(
            &format!("INSERT INTO sessions ({SESSION_COLS}) VALUES ($1, $2, $3, $4, $5, $6)"),
            &[
                &s.hash.as_slice(),
                &s.user_id.to_string(),
                &s.stage.as_str(),
                &s.pending_totp_sealed,
                &s.created_at,
                &s.last_seen,
            ],
        )
        .await
        .map(drop)
    }

    async fn get_session(&self, hash: &[u8; 32]) -> Result<Session, StoreError> {
        self.one(
            &format!("SELECT {SESSION_COLS} FROM sessions WHERE hash = $1"),
            &[&hash.as_slice()],
            session_row,
        )
        .await
    }

    async fn update_session(&self, s: &Session) -> Result<(), StoreError> {
        changed(
            self.exec(
                "UPDATE sessions SET stage = $2, pending_totp_sealed = $3, last_seen = $4 WHERE hash = $1",
                &[
                    &s.hash.as_slice(),
                    &s.stage.as_str(),
                    &s.pending_totp_sealed,
                    &s.last_seen,
                ],
            )
            .await?,
        )
    }

    async fn delete_session(&self, hash: &[u8; 32]) -> Result<(), StoreError> {
        self.exec("DELETE FROM sessions WHERE hash = $1", &[&hash.as_slice()])
            .await
            .map(drop)
    }

    async fn delete_user_sessions(&self, user: &UserId) -> Result<(), StoreError> {
        self.exec(
            "DELETE FROM sessions WHERE user_id = $1",
            &[&user.to_string()],
        )
        .await
        .map(drop)
    }

    async fn create_token(&self, t: &ApiToken) -> Result<(), StoreError> {
        self.exec(
            &format!(
                "INSERT INTO api_tokens ({TOKEN_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            ),
            &[
                &t.id,
                &t.hash.as_slice(),
                &t.name,
                &t.tenant.as_ref().map(TenantId::as_str),
                &t.role.as_str(),
                &t.created_by,
                &t.created_at,
                &t.expires_at,
                &t.revoked_at,
            ],
        )
        .await
        .map(drop)
    }

    async fn get_token_by_hash(&self, hash: &[u8; 32]) -> Result<ApiToken, StoreError> {
        self.one(
            &format!("SELECT {TOKEN_COLS} FROM api_tokens WHERE hash = $1"),
            &[&hash.as_slice()],
            token_row,
        )
        .await
    }

    async fn list_tokens(&self, tenant: Option<&TenantId>) -> Result<Vec<ApiToken>, StoreError> {
        self.all(
            &format!(
                "SELECT {TOKEN_COLS} FROM api_tokens WHERE $1::TEXT IS NULL OR tenant = $1 ORDER BY created_at, id"
            ),
            &[&tenant.map(TenantId::as_str)],
            token_row,
        )
        .await
    }

    async fn revoke_token(&self, id: &str, at: i64) -> Result<(), StoreError> {
        changed(
            self.exec(
                "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1",
                &[&id, &at],
            )
            .await?,
        )
    }

    async fn user_language(&self, user: &UserId) -> Result<Option<String>, StoreError> {
        self.one(
            "SELECT language FROM users WHERE id = $1",
            &[&user.to_string()],
            |r| r.opt_text(0),
        )
        .await
    }

    async fn set_user_language(&self, user: &UserId, language: &str) -> Result<(), StoreError> {
        changed(
            self.exec(
                "UPDATE users SET language = $2 WHERE id = $1",
                &[&user.to_string(), &language],
            )
            .await?,
        )
    }
}

/// Inserts `k` as its tenant's active key (both callers promise that, whatever `k.active` says);
/// the caller has already deactivated any other.
async fn insert_key(tx: &Transaction<'_>, k: &TenantKey) -> Result<(), StoreError> {
    tx_exec(
        tx,
        &format!("INSERT INTO tenant_keys ({KEY_COLS}) VALUES ($1, $2, $3, $4, TRUE, $5)"),
        &[
            &k.tenant.as_str(),
            &k.key_id,
            &k.recipient,
            &k.identity_sealed,
            &k.created_at,
        ],
    )
    .await
    .map(drop)
}
