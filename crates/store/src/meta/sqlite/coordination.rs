//! [`CoordinationStore`] on SQLite: named settings and leases.

use super::{Sqlite, one};
use crate::StoreError;
use crate::meta::CoordinationStore;
use rusqlite::{OptionalExtension, params};

#[async_trait::async_trait]
impl CoordinationStore for Sqlite {
    async fn get_setting(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let key = key.to_owned();
        self.read(move |c| {
            one(c
                .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                    r.get(0)
                })
                .optional())
        })
        .await
    }

    async fn put_setting_if_absent(&self, key: &str, value: &[u8]) -> Result<Vec<u8>, StoreError> {
        let (key, value) = (key.to_owned(), value.to_vec());
        self.write(move |tx| {
            one(tx.execute(
                "INSERT OR IGNORE INTO settings (key, value) VALUES (?1, ?2)",
                params![key, value],
            ))?;
            one(
                tx.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                    r.get(0)
                }),
            )
        })
        .await
    }

    async fn put_setting(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let (key, value) = (key.to_owned(), value.to_vec());
        self.write(move |tx| {
            one(tx.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            ))
            .map(drop)
        })
        .await
    }

    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        ttl_secs: i64,
    ) -> Result<bool, StoreError> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        // Takes the lease if it is free, expired or already ours: one row changes exactly then.
        const LEASE_SQL: &str = "INSERT INTO leases (name, holder, expires_at) VALUES (?1, ?2, ?4)
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
             WHERE leases.expires_at <= ?3 OR leases.holder = excluded.holder";
        self.write(move |tx| {
            let n = one(tx.execute(LEASE_SQL, params![name, holder, now, now + ttl_secs]))?;
            Ok(n > 0)
        })
        .await
    }
}
