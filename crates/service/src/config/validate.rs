//! The rules that make a configuration unsafe or unusable, checked completely before anything
//! binds or is created. Each refusal says what is wrong and how to fix it.

use super::{Config, ConfigError, Mode, refuse};
use std::path::Path;

impl Config {
    /// Every rule that makes a deployment unsafe, checked before anything binds or is created.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let listen = self.server.listen;
        if self.server.insecure_plaintext && !listen.ip().is_loopback() {
            return Err(refuse(
                "plaintext_beyond_loopback",
                format!(
                    "`server.listen = {listen}` needs TLS: remove `server.insecure_plaintext` and set `tls.cert` and `tls.key` \
                 (or leave them unset and `callvault init` generates a certificate), or listen on 127.0.0.1 only"
                ),
            ));
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err(refuse(
                "config_invalid",
                "set both `tls.cert` and `tls.key`, or neither".into(),
            ));
        }
        self.metadata_store()?;
        self.blob_store()?;
        if self.mode == Mode::Full && is_within(&self.keys.master_key_file, &self.data_dir) {
            return Err(refuse(
                "master_key_in_data_dir",
                format!(
                    "`keys.master_key_file = {}` is inside the data directory {}: a copy of the data dir would carry its own key. \
                 Put the key file elsewhere, e.g. /etc/callvault/master.key",
                    self.keys.master_key_file.display(),
                    self.data_dir.display()
                ),
            ));
        }
        if self.audit.checkpoint_every == 0 || self.audit.checkpoint_interval_secs == 0 {
            return Err(refuse(
                "config_invalid",
                "`audit.checkpoint_every` and `audit.checkpoint_interval_secs` must be at least 1"
                    .into(),
            ));
        }
        if self.session.idle_timeout_secs <= 0
            || self.session.absolute_timeout_secs < self.session.idle_timeout_secs
        {
            return Err(refuse(
                "config_invalid",
                "session timeouts must be positive and the absolute one at least the idle one"
                    .into(),
            ));
        }
        if self.audit.verify_interval_secs == 0 || self.posture.max_software_age_days == 0 {
            return Err(refuse(
                "config_invalid",
                "`audit.verify_interval_secs` and `posture.max_software_age_days` must be at least 1"
                    .into(),
            ));
        }
        if self.posture.interval_secs == 0 {
            return Err(refuse(
                "config_invalid",
                "`posture.interval_secs` must be at least 1".into(),
            ));
        }
        if !(1..=86_400).contains(&self.live.idle_timeout_secs)
            || !(1..=100_000).contains(&self.live.window_chunks)
            || !(60..=86_400).contains(&self.live.max_call_secs)
        {
            return Err(refuse(
                "config_invalid",
                "`live.idle_timeout_secs` must be 1 to 86400, `live.window_chunks` 1 to 100000 and `live.max_call_secs` 60 to 86400".into(),
            ));
        }
        self.validate_sip()?;
        if !(30..=3600).contains(&self.grants.ttl_secs) {
            return Err(refuse(
                "config_invalid",
                "`grants.ttl_secs` must be between 30 and 3600".into(),
            ));
        }
        Ok(())
    }
}

fn is_within(path: &Path, dir: &Path) -> bool {
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    abs(path).starts_with(abs(dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_env as env;

    #[test]
    fn plaintext_beyond_loopback_is_refused_with_the_fix() {
        let e = Config::load(
            None,
            env(&[
                ("CALLVAULT_SERVER__LISTEN", "0.0.0.0:8443"),
                ("CALLVAULT_SERVER__INSECURE_PLAINTEXT", "true"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("needs TLS") && e.contains("tls.cert"), "{e}");
        assert!(
            Config::load(
                None,
                env(&[("CALLVAULT_SERVER__INSECURE_PLAINTEXT", "true")])
            )
            .is_ok()
        );
    }

    #[test]
    fn master_key_inside_data_dir_is_refused() {
        let e = Config::load(
            None,
            env(&[(
                "CALLVAULT_KEYS__MASTER_KEY_FILE",
                "callvault-data/master.key",
            )]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("inside the data directory"), "{e}");
    }
}
