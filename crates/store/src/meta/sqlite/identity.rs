//! [`IdentityStore`] on SQLite: tenants and their keys, users, sessions and API tokens.

use super::{Sqlite, all, changed, map_err, one, read};
use crate::StoreError;
use crate::meta::IdentityStore;
use crate::meta::rows::*;
use crate::model::*;
use callvault_core::{TenantId, UserId, Username};
use rusqlite::params;

#[async_trait::async_trait]
impl IdentityStore for Sqlite {
    async fn create_tenant(&self, t: &Tenant, k: &TenantKey) -> Result<(), StoreError> {
        let (t, k) = (t.clone(), k.clone());
        self.write(move |tx| {
            one(tx.execute(
                &format!("INSERT INTO tenants ({TENANT_COLS}) VALUES (?1, ?2, ?3, ?4)"),
                params![
                    t.id.as_str(),
                    t.name,
                    t.caller_hash_key_sealed,
                    t.created_at
                ],
            ))?;
            insert_key(tx, &k)
        })
        .await
    }

    async fn get_tenant(&self, id: &TenantId) -> Result<Tenant, StoreError> {
        let id = id.clone();
        self.read(move |c| {
            one(c.query_row(
                &format!("SELECT {TENANT_COLS} FROM tenants WHERE id = ?1"),
                [id.as_str()],
                read(tenant_row),
            ))
        })
        .await
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        self.read(|c| {
            let mut st = c
                .prepare(&format!("SELECT {TENANT_COLS} FROM tenants ORDER BY id"))
                .map_err(map_err)?;
            all(st.query_map([], read(tenant_row)).map_err(map_err)?)
        })
        .await
    }

    async fn active_key(&self, tenant: &TenantId) -> Result<TenantKey, StoreError> {
        let tenant = tenant.clone();
        self.read(move |c| {
            one(c.query_row(
                &format!("SELECT {KEY_COLS} FROM tenant_keys WHERE tenant = ?1 AND active = 1"),
                [tenant.as_str()],
                read(key_row),
            ))
        })
        .await
    }

    async fn get_key(&self, tenant: &TenantId, key_id: i64) -> Result<TenantKey, StoreError> {
        let tenant = tenant.clone();
        self.read(move |c| {
            one(c.query_row(
                &format!("SELECT {KEY_COLS} FROM tenant_keys WHERE tenant = ?1 AND key_id = ?2"),
                params![tenant.as_str(), key_id],
                read(key_row),
            ))
        })
        .await
    }

    async fn rotate_key(&self, k: &TenantKey) -> Result<(), StoreError> {
        let k = k.clone();
        self.write(move |tx| {
            one(tx.execute(
                "UPDATE tenant_keys SET active = 0 WHERE tenant = ?1",
                [k.tenant.as_str()],
            ))?;
            insert_key(tx, &k)
        })
        .await
    }

    async fn next_key_id(&self, tenant: &TenantId) -> Result<i64, StoreError> {
        let tenant = tenant.clone();
        self.read(move |c| {
            one(c.query_row(
                "SELECT COALESCE(MAX(key_id), 0) + 1 FROM tenant_keys WHERE tenant = ?1",
                [tenant.as_str()],
                |r| r.get(0),
            ))
        })
        .await
    }

    async fn create_user(&self, u: &User) -> Result<(), StoreError> {
        let u = u.clone();
        self.write(move |tx| {
            one(tx.execute(
                &format!("INSERT INTO users ({USER_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"),
                params![
                    u.id.to_string(),
                    u.username.as_str(),
                    u.tenant.as_ref().map(|t| t.as_str().to_owned()),
                    u.role.as_str(),
                    u.password_hash,
                    u.must_change_password,
                    u.totp_sealed,
                    u.totp_last_step.map(u64_to_i64),
                    u.failed_logins,
                    u.locked_until,
                    u.disabled,
                    u.created_at
                ],
            ))
            .map(drop)
        })
        .await
    }

    async fn get_user(&self, id: &UserId) -> Result<User, StoreError> {
        let id = id.to_string();
        self.read(move |c| {
            one(c.query_row(
                &format!("SELECT {USER_COLS} FROM users WHERE id = ?1"),
                [id],
                read(user_row),
            ))
        })
        .await
    }

    async fn get_user_by_name(&self, name: &Username) -> Result<User, StoreError> {
        let name = name.as_str().to_owned();
        self.read(move |c| {
            one(c.query_row(
                &format!("SELECT {USER_COLS} FROM users WHERE username = ?1"),
                [name],
                read(user_row),
            ))
        })
        .await
    }

    async fn list_users(&self, tenant: Option<&TenantId>) -> Result<Vec<User>, StoreError> {
        self.rows_of(
            format!(
                "SELECT {USER_COLS} FROM users WHERE ?1 IS NULL OR tenant = ?1 ORDER BY username"
            ),
            tenant.map(|t| t.as_str().to_owned()),
            user_row,
        )
        .await
    }

    async fn update_user(&self, u: &User) -> Result<(), StoreError> {
        let u = u.clone();
        self.write(move |tx| {
            changed(one(tx.execute(
                "UPDATE users SET tenant = ?2, role = ?3, password_hash = ?4, must_change_password = ?5, totp_sealed = ?6, totp_last_step = ?7, failed_logins = ?8, locked_until = ?9, disabled = ?10 WHERE id = ?1",
                params![
                    u.id.to_string(),
                    u.tenant.as_ref().map(|t| t.as_str().to_owned()),
                    u.role.as_str(),
                    u.password_hash,
                    u.must_change_password,
                    u.totp_sealed,
                    u.totp_last_step.map(u64_to_i64),
                    u.failed_logins,
                    u.locked_until,
                    u.disabled
                ],
            ))?)
        })
        .await
    }

    async fn create_session(&self, s: &Session) -> Result<(), StoreError> {
        let s = s.clone();
        self.write(move |tx| {
            one(tx.execute(
                &format!("INSERT INTO sessions ({SESSION_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
                params![
                    s.hash.to_vec(),
                    s.user_id.to_string(),
                    s.stage.as_str(),
                    s.pending_totp_sealed,
                    s.created_at,
                    s.last_seen
                ],
            ))
            .map(drop)
        })
        .await
    }

    async fn get_session(&self, hash: &[u8; 32]) -> Result<Session, StoreError> {
        let hash = hash.to_vec();
        self.read(move |c| {
            one(c.query_row(
                &format!("SELECT {SESSION_COLS} FROM sessions WHERE hash = ?1"),
                [hash],
                read(session_row),
            ))
        })
        .await
    }

    async fn update_session(&self, s: &Session) -> Result<(), StoreError> {
        let s = s.clone();
        self.write(move |tx| {
            changed(one(tx.execute(
                "UPDATE sessions SET stage = ?2, pending_totp_sealed = ?3, last_seen = ?4 WHERE hash = ?1",
                params![s.hash.to_vec(), s.stage.as_str(), s.pending_totp_sealed, s.last_seen],
            ))?)
        })
        .await
    }

    async fn delete_session(&self, hash: &[u8; 32]) -> Result<(), StoreError> {
        let hash = hash.to_vec();
        self.write(move |tx| {
            one(tx.execute("DELETE FROM sessions WHERE hash = ?1", [hash])).map(drop)
        })
        .await
    }

    async fn delete_user_sessions(&self, user: &UserId) -> Result<(), StoreError> {
        let user = user.to_string();
        self.write(move |tx| {
            one(tx.execute("DELETE FROM sessions WHERE user_id = ?1", [user])).map(drop)
        })
        .await
    }

    async fn create_token(&self, t: &ApiToken) -> Result<(), StoreError> {
        let t = t.clone();
        self.write(move |tx| {
            one(tx.execute(
                &format!("INSERT INTO api_tokens ({TOKEN_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
                params![
                    t.id,
                    t.hash.to_vec(),
                    t.name,
                    t.tenant.as_ref().map(|x| x.as_str().to_owned()),
                    t.role.as_str(),
                    t.created_by,
                    t.created_at,
                    t.expires_at,
                    t.revoked_at
                ],
            ))
            .map(drop)
        })
        .await
    }

    async fn get_token_by_hash(&self, hash: &[u8; 32]) -> Result<ApiToken, StoreError> {
        let hash = hash.to_vec();
        self.read(move |c| {
            one(c.query_row(
                &format!("SELECT {TOKEN_COLS} FROM api_tokens WHERE hash = ?1"),
                [hash],
                read(token_row),
            ))
        })
        .await
    }

    async fn list_tokens(&self, tenant: Option<&TenantId>) -> Result<Vec<ApiToken>, StoreError> {
        self.rows_of(format!("SELECT {TOKEN_COLS} FROM api_tokens WHERE ?1 IS NULL OR tenant = ?1 ORDER BY created_at, id"), tenant.map(|t| t.as_str().to_owned()), token_row)
            .await
    }

    async fn revoke_token(&self, id: &str, at: i64) -> Result<(), StoreError> {
        let id = id.to_owned();
        self.write(move |tx| {
            changed(one(tx.execute(
                "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1",
                params![id, at],
            ))?)
        })
        .await
    }

    async fn user_language(&self, user: &UserId) -> Result<Option<String>, StoreError> {
        let id = user.to_string();
        self.read(move |c| {
            one(
                c.query_row("SELECT language FROM users WHERE id = ?1", [id], |r| {
                    r.get(0)
                }),
            )
        })
        .await
    }

    async fn set_user_language(&self, user: &UserId, language: &str) -> Result<(), StoreError> {
        let (id, lang) = (user.to_string(), language.to_owned());
        self.write(move |tx| {
            changed(one(tx.execute(
                "UPDATE users SET language = ?2 WHERE id = ?1",
                params![id, lang],
            ))?)
        })
        .await
    }
}

/// Inserts `k` as its tenant's active key (both callers promise that, whatever `k.active` says);
/// the caller has already deactivated any other.
fn insert_key(tx: &rusqlite::Transaction<'_>, k: &TenantKey) -> Result<(), StoreError> {
    one(tx.execute(
        &format!("INSERT INTO tenant_keys ({KEY_COLS}) VALUES (?1, ?2, ?3, ?4, 1, ?5)"),
        params![
            k.tenant.as_str(),
            k.key_id,
            k.recipient,
            k.identity_sealed,
            k.created_at
        ],
    ))
    .map(drop)
}
