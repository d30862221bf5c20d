//! [`CoordinationStore`] on PostgreSQL: named settings and leases.

use super::{Postgres, first_bytes};
use crate::StoreError;
use crate::meta::CoordinationStore;

#[async_trait::async_trait]
impl CoordinationStore for Postgres {
    async fn get_setting(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.opt(
            "SELECT value FROM settings WHERE key = $1",
            &[&key],
            first_bytes,
        )
        .await
    }

    async fn put_setting_if_absent(&self, key: &str, value: &[u8]) -> Result<Vec<u8>, StoreError> {
        // If another node inserts the same key concurrently, the INSERT waits for its
        // transaction and then does nothing; the SELECT, a new statement, sees the winner.
        self.exec(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            &[&key, &value],
        )
        .await?;
        self.one(
            "SELECT value FROM settings WHERE key = $1",
            &[&key],
            first_bytes,
        )
        .await
    }

    async fn put_setting(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO settings (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&key, &value],
        )
        .await
        .map(drop)
    }

    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        ttl_secs: i64,
    ) -> Result<bool, StoreError> {
        let n = self
            .exec(
                "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $4)
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
                 WHERE leases.expires_at <= $3 OR leases.holder = excluded.holder",
                &[&name, &holder, &now, &(now + ttl_secs)],
            )
            .await?;
        Ok(n > 0)
    }
}
