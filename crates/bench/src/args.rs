//! `--name value` options; nothing fancier is needed for a benchmark driver.

use anyhow::{Context, Result, bail};
use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;

pub struct Args(HashMap<String, String>);

impl Args {
    pub fn parse(v: Vec<String>) -> Result<Self> {
        let mut map = HashMap::new();
        let mut it = v.into_iter();
        while let Some(k) = it.next() {
            let Some(name) = k.strip_prefix("--") else {
                bail!("unexpected argument {k:?}; options are --name value");
            };
            let value = it
                .next()
                .with_context(|| format!("--{name} needs a value"))?;
            map.insert(name.to_owned(), value);
        }
        Ok(Self(map))
    }

    pub fn get<T: FromStr>(&self, name: &str, default: T) -> Result<T>
    where
        T::Err: std::fmt::Display,
    {
        match self.0.get(name) {
            None => Ok(default),
            Some(s) => s
                .parse()
                .map_err(|e| anyhow::anyhow!("--{name} {s:?}: {e}")),
        }
    }

    pub fn dir(&self) -> Option<PathBuf> {
        self.path("dir")
    }

    pub fn path(&self, name: &str) -> Option<PathBuf> {
        self.0.get(name).map(PathBuf::from)
    }
}
