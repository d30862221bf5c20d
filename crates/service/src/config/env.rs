//! Loading: a TOML file (`--config`, else `$CALLVAULT_CONFIG`, else none), then every
//! `CALLVAULT_SECTION__KEY` variable laid over it, then serde into [`Config`].

use super::{Config, ConfigError, ENV_CONFIG_FILE, ENV_LOG, ENV_PASSPHRASE};
use std::path::{Path, PathBuf};

impl Config {
    /// Loads `file` (if given, else `$CALLVAULT_CONFIG`, else defaults), overlays `CALLVAULT_…`
    /// variables from `env`, and validates.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let cfg = Self::parse(file, env)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Like [`Config::load`] without validation: for `doctor`, which reports an unsafe
    /// configuration as a finding instead of refusing to look at it.
    pub fn parse(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = env.into_iter().collect();
        let from_env = env
            .iter()
            .find(|(k, _)| k == ENV_CONFIG_FILE)
            .map(|(_, v)| PathBuf::from(v));
        let mut table = match file.map(Path::to_path_buf).or(from_env) {
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                text.parse::<toml::Table>()
                    .map_err(|e| ConfigError::Parse(format!("{}: {e}", path.display())))?
            }
            None => toml::Table::new(),
        };
        for (k, v) in &env {
            let Some(rest) = k.strip_prefix("CALLVAULT_") else {
                continue;
            };
            if [ENV_CONFIG_FILE, ENV_PASSPHRASE, ENV_LOG].contains(&k.as_str()) {
                continue;
            }
            let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
            set_path(&mut table, &path, env_value(v))
                .map_err(|e| ConfigError::Parse(format!("{k}: {e}")))?;
        }
        let cfg: Config = table
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Parse(e.to_string()))?;
        Ok(cfg)
    }
}

fn env_value(v: &str) -> toml::Value {
    if let Ok(i) = v.parse::<i64>() {
        toml::Value::Integer(i)
    } else if let Ok(b) = v.parse::<bool>() {
        toml::Value::Boolean(b)
    } else {
        toml::Value::String(v.to_owned())
    }
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    match path {
        [] => Err("empty key".into()),
        [last] => {
            table.insert(last.clone(), value);
            Ok(())
        }
        [first, rest @ ..] => {
            let entry = table
                .entry(first.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match entry {
                toml::Value::Table(t) => set_path(t, rest, value),
                _ => Err(format!("`{first}` is not a section")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_env as env;

    #[test]
    fn env_overrides_and_types() {
        let c = Config::load(
            None,
            env(&[
                ("CALLVAULT_SERVER__LISTEN", "127.0.0.1:0"),
                ("CALLVAULT_GRANTS__TTL_SECS", "60"),
            ]),
        )
        .unwrap();
        assert_eq!(c.server.listen.port(), 0);
        assert_eq!(c.grants.ttl_secs, 60);
    }

    #[test]
    fn unknown_keys_are_errors() {
        let e = Config::load(None, env(&[("CALLVAULT_SERVER__LISTN", "x")])).unwrap_err();
        assert!(e.to_string().contains("listn"), "{e}");
    }
}
