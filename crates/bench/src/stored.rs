//! Reading back what a benchmarked server stored: an embedded deployment's stores opened
//! directly (the server stopped), every recording of a tenant decrypted with the master key.
//! The load benchmarks check with it that what was acknowledged is what was sent.

use anyhow::{Result, bail};
use callvault_core::{RecordingId, TenantId};
use callvault_crypto::{Header, KeyProvider, TenantIdentity, open_recording};
use callvault_store::{BlobConfig, BlobStore, MetadataConfig, MetadataStore, RecordingFilter};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Bytes before the audio in a stored G.711 recording (WAV with a `fact` chunk, docs/FORMAT.md).
pub const G711_WAV_HEADER: usize = 58;

pub struct Stored {
    meta: MetadataStore,
    blobs: BlobStore,
    tenant: TenantId,
    identity: Arc<TenantIdentity>,
}

impl Stored {
    pub async fn open(data_dir: &Path, master_key: &Path, tenant: &str) -> Result<Self> {
        let meta = MetadataStore::open(&MetadataConfig::Sqlite {
            path: data_dir.join("metadata.sqlite"),
        })
        .await?;
        let blobs = BlobStore::open(&BlobConfig::Local {
            path: data_dir.join("blobs"),
        })
        .await?;
        let kp = KeyProvider::from_file(master_key, None)?;
        let tenant = TenantId::parse(tenant)?;
        let key = meta.active_key(&tenant).await?;
        let identity =
            TenantIdentity::open(&kp, tenant.as_str(), key.key_id, &key.identity_sealed)?;
        Ok(Self {
            meta,
            blobs,
            tenant,
            identity: Arc::new(identity),
        })
    }

    /// The recording's decrypted file.
    pub async fn file(&self, id: &RecordingId) -> Result<Vec<u8>> {
        let rec = self.meta.get_recording(&self.tenant, id).await?;
        let blob = self.blobs.open(&rec.blob).await?;
        let (header, identity) = (Header::from_bytes(rec.header), self.identity.clone());
        tokio::task::spawn_blocking(move || -> Result<Vec<u8>> {
            let mut out = Vec::new();
            open_recording(&header, blob, &identity)?.read_to_end(&mut out)?;
            Ok(out)
        })
        .await?
    }

    /// Every recording of the tenant.
    pub async fn ids(&self) -> Result<Vec<RecordingId>> {
        let mut ids = Vec::new();
        let mut f = RecordingFilter {
            limit: 1000,
            ..RecordingFilter::default()
        };
        loop {
            let page = self.meta.search_recordings(&self.tenant, &f).await?;
            let Some(last) = page.last() else {
                return Ok(ids);
            };
            f.after = Some((last.started_at, last.id));
            ids.extend(page.iter().map(|r| r.id));
        }
    }
}

/// `siprec-verify`: every recording of `--tenant` in `--data-dir` must hold `--left` (the
/// caller, raw µ-law) in its left channel and `--right` in its right, each followed by
/// nothing but silence — what `scripts/siprec-bench` streamed in every call.
#[derive(clap::Args)]
pub struct VerifyOpts {
    /// The stopped server's data directory.
    #[arg(long)]
    data_dir: PathBuf,
    /// Its master key file.
    #[arg(long)]
    master_key: PathBuf,
    /// What the caller sent, raw µ-law.
    #[arg(long, value_name = "A.ul")]
    left: PathBuf,
    /// What the agent sent, raw µ-law.
    #[arg(long, value_name = "B.ul")]
    right: PathBuf,
    #[arg(long, default_value = "bench")]
    tenant: String,
}

pub async fn siprec_verify(o: &VerifyOpts) -> Result<()> {
    let stored = Stored::open(&o.data_dir, &o.master_key, &o.tenant).await?;
    let left = std::fs::read(&o.left)?;
    let right = std::fs::read(&o.right)?;
    let ids = stored.ids().await?;
    let mut exact = 0;
    for id in &ids {
        let file = stored.file(id).await?;
        let audio = file.get(G711_WAV_HEADER..).unwrap_or_default();
        let channel = |c: usize| {
            audio
                .iter()
                .skip(c)
                .step_by(2)
                .copied()
                .collect::<Vec<u8>>()
        };
        let (l, r) = (channel(0), channel(1));
        if starts_then_silence(&l, &left) && starts_then_silence(&r, &right) {
            exact += 1;
        } else {
            println!(
                "recording {id} differs from what was sent: left {}, right {}",
                first_difference(&l, &left),
                first_difference(&r, &right)
            );
        }
    }
    println!(
        "verified {exact} of {} stored recordings sample-exact (caller left, agent right)",
        ids.len()
    );
    if exact != ids.len() {
        bail!("{} recordings differ", ids.len() - exact);
    }
    Ok(())
}

/// Where `got` stops being `sent` then silence, in samples, to tell a cut-off end (a BYE
/// before the last packets) from misplaced audio.
fn first_difference(got: &[u8], sent: &[u8]) -> String {
    let same = got.iter().zip(sent).take_while(|(g, s)| g == s).count();
    if same < sent.len() {
        return format!(
            "first differs at sample {same} of {} ({} stored)",
            sent.len(),
            got.len()
        );
    }
    match got[same..].iter().position(|b| *b != 0xFF) {
        Some(at) => format!("sound after the end, at sample {}", same + at),
        None => "exact".to_owned(),
    }
}

/// `got` is `sent` followed only by µ-law silence (0xFF).
fn starts_then_silence(got: &[u8], sent: &[u8]) -> bool {
    got.len() >= sent.len()
        && got[..sent.len()] == *sent
        && got[sent.len()..].iter().all(|b| *b == 0xFF)
}
