//! `[metadata]` and `[blobs]`: which stores the deployment uses, and the one translation of
//! those sections into the store crate's `MetadataConfig` and `BlobConfig`. Every backend is
//! named explicitly; an incomplete section is refused, never replaced by the embedded default.

use super::{Config, ConfigError, refuse};
use callvault_store::{BlobConfig, MetadataConfig};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::path::PathBuf;

choice!(
    /// Which database holds the metadata.
    MetadataBackend at "metadata.backend" {
        Sqlite = "sqlite",
        Postgres = "postgres",
    }
);

choice!(
    /// Where the encrypted payloads live.
    BlobBackend at "blobs.backend" {
        Local = "local",
        S3 = "s3",
    }
);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetadataSection {
    /// `sqlite` (embedded default) or `postgres`.
    pub backend: MetadataBackend,
    /// SQLite file. Default: `<data_dir>/metadata.sqlite`.
    pub path: Option<PathBuf>,
    /// PostgreSQL URL (`postgres://user:pass@host/db?sslmode=verify-full&sslrootcert=ca.pem`).
    /// Holds a password: prefer `CALLVAULT_METADATA__URL` over the file; never logged.
    pub url: Option<SecretString>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BlobsSection {
    /// `local` (embedded default) or `s3`.
    pub backend: BlobBackend,
    /// Local directory. Default: `<data_dir>/blobs`.
    pub path: Option<PathBuf>,
    /// S3: scheme, host and port, e.g. `https://s3.eu-north-1.amazonaws.com`.
    pub endpoint: Option<String>,
    /// S3 region (Garage: `garage`).
    pub region: String,
    pub bucket: Option<String>,
    pub access_key_id: Option<String>,
    /// Prefer `CALLVAULT_BLOBS__SECRET_ACCESS_KEY` over the file; never logged.
    pub secret_access_key: Option<SecretString>,
    /// `https://bucket.host/key` instead of `https://host/bucket/key`.
    pub virtual_hosted: bool,
    /// Keys go under `<prefix>/`, so one bucket can hold several deployments.
    pub prefix: Option<String>,
}

impl Default for MetadataSection {
    fn default() -> Self {
        Self {
            backend: MetadataBackend::Sqlite,
            path: None,
            url: None,
        }
    }
}

impl Default for BlobsSection {
    fn default() -> Self {
        Self {
            backend: BlobBackend::Local,
            path: None,
            endpoint: None,
            region: "us-east-1".into(),
            bucket: None,
            access_key_id: None,
            secret_access_key: None,
            virtual_hosted: false,
            prefix: None,
        }
    }
}

impl Config {
    /// The metadata store this config names; `validate` refuses a config for which this fails.
    pub fn metadata_store(&self) -> Result<MetadataConfig, ConfigError> {
        match (self.metadata.backend, &self.metadata.url) {
            (MetadataBackend::Sqlite, _) => Ok(MetadataConfig::Sqlite {
                path: self
                    .metadata
                    .path
                    .clone()
                    .unwrap_or_else(|| self.data_dir.join("metadata.sqlite")),
            }),
            (MetadataBackend::Postgres, Some(url)) => Ok(MetadataConfig::Postgres {
                url: url.expose_secret().to_owned(),
            }),
            (MetadataBackend::Postgres, None) => Err(refuse(
                "config_invalid",
                "`metadata.backend = postgres` needs `metadata.url`: set CALLVAULT_METADATA__URL=postgres://user:pass@host/db".into(),
            )),
        }
    }

    /// The blob store this config names; `validate` refuses a config for which this fails.
    pub fn blob_store(&self) -> Result<BlobConfig, ConfigError> {
        let b = &self.blobs;
        match (
            b.backend,
            &b.endpoint,
            &b.bucket,
            &b.access_key_id,
            &b.secret_access_key,
        ) {
            (BlobBackend::Local, ..) => Ok(BlobConfig::Local {
                path: b
                    .path
                    .clone()
                    .unwrap_or_else(|| self.data_dir.join("blobs")),
            }),
            (BlobBackend::S3, Some(endpoint), Some(bucket), Some(key_id), Some(secret)) => {
                Ok(BlobConfig::S3 {
                    endpoint: endpoint.clone(),
                    region: b.region.clone(),
                    bucket: bucket.clone(),
                    access_key_id: key_id.clone(),
                    secret_access_key: secret.clone(),
                    virtual_hosted: b.virtual_hosted,
                    prefix: b.prefix.clone(),
                })
            }
            (BlobBackend::S3, ..) => Err(refuse(
                "config_invalid",
                "`blobs.backend = s3` needs `blobs.endpoint`, `blobs.bucket`, `blobs.access_key_id` and `blobs.secret_access_key` \
                 (e.g. CALLVAULT_BLOBS__SECRET_ACCESS_KEY)"
                    .into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_env;

    #[test]
    fn unknown_backends_are_refused_with_the_valid_values() {
        let e = Config::load(None, test_env(&[("CALLVAULT_METADATA__BACKEND", "mysql")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`metadata.backend = mysql`") && e.contains("sqlite or postgres"),
            "{e}"
        );
        let e = Config::load(None, test_env(&[("CALLVAULT_BLOBS__BACKEND", "gcs")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`blobs.backend = gcs`") && e.contains("local or s3"),
            "{e}"
        );
    }

    #[test]
    fn an_incomplete_backend_section_is_refused_not_replaced_by_the_default() {
        let e = Config::load(
            None,
            test_env(&[("CALLVAULT_METADATA__BACKEND", "postgres")]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("needs `metadata.url`"), "{e}");
        let e = Config::load(
            None,
            test_env(&[
                ("CALLVAULT_BLOBS__BACKEND", "s3"),
                ("CALLVAULT_BLOBS__ENDPOINT", "https://s3.example"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("needs `blobs.endpoint`, `blobs.bucket`"), "{e}");
    }
}
