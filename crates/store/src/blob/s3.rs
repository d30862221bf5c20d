//! S3 adapter (AWS S3, Garage, MinIO, Ceph RGW) over the `object_store` crate.
//!
//! Owns: the key layout in the bucket, the refuse-to-overwrite protocol, ranged reads for the
//! sync reader, and the startup safety checks. Must not: make anything public, log the secret
//! key, or accept plain HTTP to anything but loopback.
//!
//! Layout: `<prefix>/<blob name>` for blobs, flat (S3 has no directories to shard); everything
//! callvault keeps for itself lives under `<prefix>/_callvault/` (put claims, startup probes) and
//! is never listed as a blob.
//!
//! Refusing to overwrite: where the store honours `If-None-Match: *` on PutObject (AWS S3 since
//! 2024, MinIO, R2) a single-part put also carries it; Garage 2.x ignores that header (checked
//! against its source: `api/s3/put.rs` reads no precondition), so it cannot be relied on. Every
//! put therefore runs a claim protocol that needs only read-after-write consistency for PUT,
//! LIST and DELETE (which AWS S3 and Garage's default `consistency_mode = "consistent"` give):
//!
//! 1. HEAD the blob: present → `Conflict`.
//! 2. PUT an empty claim `_callvault/claims/<name>/<random nonce>`.
//! 3. LIST `_callvault/claims/<name>/`. If ours is the only claim, HEAD the blob once more
//!    (present → drop the claim, `Conflict`), else upload the blob and drop the claim.
//!    If other claims are listed, drop ours, and start again after a random back-off.
//!
//! Of two writers, the one whose LIST ran second sees the other's claim, so at most one writer
//! ever sees only its own. A writer that finished has written the blob before dropping its claim,
//! so a later writer that sees no claim sees the blob. Contention can make both back off, hence
//! the retries. A writer that crashes between 2 and 3 leaves its claim behind, which blocks only
//! that one name; names are random and never reused, so nothing is lost (a later put of that name
//! fails with a "contended" backend error rather than a wrong answer).

use super::{BlobBackend, BlobRead};
use crate::StoreError;
use crate::meta::Sealed;
use bytes::Bytes;
use callvault_core::BlobName;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder, S3ConditionalPut};
use object_store::path::Path;
use object_store::{
    BackoffConfig, ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutMode,
    PutOptions, PutPayload, RetryConfig,
};
use secrecy::{ExposeSecret, SecretString};
use std::io::{self, Read, Seek, SeekFrom};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// Blobs larger than this go up as a multipart upload, in parts of this size.
const MULTIPART_PART: usize = 8 * 1024 * 1024;
/// Parts in flight at once during a multipart upload.
const MULTIPART_CONCURRENCY: usize = 4;
/// What the reader fetches at least per ranged GET.
const READ_AHEAD: usize = 256 * 1024;
/// How long a put waits out contention for one name before giving up.
const CLAIM_DEADLINE: Duration = Duration::from_secs(120);
/// Where callvault keeps its own objects, below the prefix. Not a valid blob name.
const INTERNAL: &str = "_callvault";

/// The validated S3 settings the adapter runs on.
pub(super) struct S3Settings {
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: SecretString,
    pub virtual_hosted: bool,
    pub prefix: Option<String>,
}

pub(super) struct S3 {
    store: Arc<AmazonS3>,
    prefix: Option<Path>,
    /// Whether the store answered a second `If-None-Match: *` put with 412 at startup.
    native_create: bool,
}

impl Sealed for S3 {}

fn backend(e: object_store::Error) -> StoreError {
    match e {
        object_store::Error::NotFound { .. } => StoreError::NotFound,
        object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. } => {
            StoreError::Conflict("blob exists".into())
        }
        other => StoreError::Backend(format!("S3: {other}")),
    }
}

fn config(msg: impl Into<String>) -> StoreError {
    StoreError::Config(msg.into())
}

fn is_loopback(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(a) => IpAddr::V4(*a).is_loopback(),
        url::Host::Ipv6(a) => IpAddr::V6(*a).is_loopback(),
    }
}

/// The URL of the bucket itself: `https://host/bucket` (path style) or `https://bucket.host`
/// (virtual-hosted). object_store wants the latter as its endpoint when virtual-hosted.
pub(super) fn bucket_url(endpoint: &Url, bucket: &str, virtual_hosted: bool) -> Url {
    let mut u = endpoint.clone();
    if virtual_hosted {
        if let Some(host) = endpoint.host_str() {
            // Cannot fail: a bucket name validated by `check_bucket` is a DNS label sequence.
            let _ = u.set_host(Some(&format!("{bucket}.{host}")));
        }
        u.set_path("/");
    } else {
        u.set_path(&format!("/{bucket}"));
    }
    u
}

fn check_bucket(bucket: &str) -> Result<(), StoreError> {
    let ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && !bucket.starts_with(['-', '.'])
        && !bucket.ends_with(['-', '.']);
    if ok {
        Ok(())
    } else {
        Err(config(format!(
            "S3 bucket name {bucket:?} is invalid: use 3 to 63 lowercase letters, digits, `-` and `.`"
        )))
    }
}

fn check_prefix(prefix: &str) -> Result<Option<Path>, StoreError> {
    let trimmed = prefix.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(None);
    }
    let bad = trimmed
        .split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == ".." || seg == INTERNAL);
    let path = Path::parse(trimmed).ok().filter(|_| !bad);
    path.map(Some).ok_or_else(|| {
        config(format!(
            "S3 key prefix {prefix:?} is invalid: use `/`-separated non-empty segments, without `.`, `..` or `{INTERNAL}`"
        ))
    })
}

impl S3 {
    /// Connects, then refuses to start on a public bucket, and learns whether the store honours
    /// conditional puts. Writes and deletes one probe object under `_callvault/probe/`.
    pub(super) async fn open(s: S3Settings) -> Result<Self, StoreError> {
        // reqwest 0.13 is built without a bundled provider (the bundled one is aws-lc); ring is
        // the provider everywhere in callvault. Err means one is already installed: fine.
        let _ = rustls::crypto::ring::default_provider().install_default();

        let endpoint = Url::parse(&s.endpoint)
            .map_err(|e| config(format!("S3 endpoint {:?} is not a URL: {e}", s.endpoint)))?;
        let host = endpoint
            .host()
            .ok_or_else(|| config(format!("S3 endpoint {:?} has no host", s.endpoint)))?;
        let plain_http = match endpoint.scheme() {
            "https" => false,
            "http" if is_loopback(&host) => true,
            "http" => {
                return Err(config(format!(
                    "S3 endpoint {} uses plain http to a non-loopback host: use https \
                     (plain http is accepted only for 127.0.0.1, ::1 and localhost)",
                    s.endpoint
                )));
            }
            other => {
                return Err(config(format!(
                    "S3 endpoint {}: scheme {other} is not supported; use https",
                    s.endpoint
                )));
            }
        };
        if !matches!(endpoint.path(), "" | "/") || endpoint.query().is_some() {
            return Err(config(format!(
                "S3 endpoint {} must be just scheme, host and port (the bucket goes in `bucket`)",
                s.endpoint
            )));
        }
        if s.region.is_empty() {
            return Err(config(
                "S3 region is empty: set it (Garage's default is `garage`)",
            ));
        }
        check_bucket(&s.bucket)?;
        let prefix = s.prefix.as_deref().map(check_prefix).transpose()?.flatten();
        let bucket = bucket_url(&endpoint, &s.bucket, s.virtual_hosted);

        refuse_anonymous_list(&bucket, plain_http).await?;

        let store_endpoint = if s.virtual_hosted {
            bucket.as_str().trim_end_matches('/').to_owned()
        } else {
            endpoint.as_str().trim_end_matches('/').to_owned()
        };
        let store = AmazonS3Builder::new()
            .with_endpoint(store_endpoint)
            .with_region(&s.region)
            .with_bucket_name(&s.bucket)
            .with_access_key_id(&s.access_key_id)
            .with_secret_access_key(s.secret_access_key.expose_secret())
            .with_virtual_hosted_style_request(s.virtual_hosted)
            .with_allow_http(plain_http)
            .with_conditional_put(S3ConditionalPut::ETagMatch)
            .with_client_options(
                ClientOptions::new()
                    .with_allow_http(plain_http)
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_timeout(Duration::from_secs(120)),
            )
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(100),
                    max_backoff: Duration::from_secs(5),
                    base: 2.0,
                },
                max_retries: 6,
                retry_timeout: Duration::from_secs(60),
            })
            .build()
            .map_err(|e| config(format!("S3 settings rejected: {e}")))?;
        let mut this = Self {
            store: Arc::new(store),
            prefix,
            native_create: false,
        };
        this.native_create = this.probe(&bucket, plain_http).await?;
        Ok(this)
    }

    /// Puts a probe object (proving the credentials can write), checks that an unsigned GET of it
    /// is refused, and puts it again with `If-None-Match: *` to learn whether the store honours
    /// that. Returns whether it does.
    async fn probe(&self, bucket: &Url, plain_http: bool) -> Result<bool, StoreError> {
        let nonce = BlobName::random().to_string();
        let key = self.internal(&["probe", &nonce]);
        self.store
            .put(&key, PutPayload::from_static(b"probe"))
            .await
            .map_err(|e| {
                StoreError::Backend(format!(
                    "S3: cannot write to bucket at {bucket}: {e}; check the endpoint, region, \
                     bucket name and that the key may read and write the bucket"
                ))
            })?;
        let mut object_url = bucket.clone();
        {
            let mut segs = object_url
                .path_segments_mut()
                .map_err(|()| config("S3 endpoint cannot carry a path"))?;
            segs.pop_if_empty();
            for seg in key.parts() {
                segs.push(seg.as_ref());
            }
        }
        let anonymous = anonymous_get(&object_url, plain_http).await;
        let create = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        let second = self
            .store
            .put_opts(&key, PutPayload::from_static(b"probe"), create)
            .await;
        let _ = self.store.delete(&key).await;
        if anonymous? {
            return Err(public_bucket(bucket));
        }
        // Only a refusal proves support. Success (Garage 2.x: the header is ignored) or any
        // other error (501 from stores that reject the header) means "no"; that is always safe,
        // since the claim protocol runs either way.
        Ok(matches!(
            second,
            Err(object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. })
        ))
    }

    fn with_prefix<'a>(&self, parts: impl IntoIterator<Item = &'a str>) -> Path {
        let base = self.prefix.clone().unwrap_or_default();
        parts.into_iter().fold(base, |p, s| p.clone().join(s))
    }

    fn key(&self, name: &BlobName) -> Path {
        self.with_prefix([name.to_string().as_str()])
    }

    fn internal(&self, parts: &[&str]) -> Path {
        self.with_prefix(std::iter::once(INTERNAL).chain(parts.iter().copied()))
    }

    async fn exists(&self, key: &Path) -> Result<bool, StoreError> {
        match self.store.head(key).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(backend(e)),
        }
    }

    /// Uploads the bytes; only called while holding the sole claim on the name.
    async fn upload(&self, key: &Path, data: Bytes) -> Result<(), StoreError> {
        if data.len() <= MULTIPART_PART {
            let mode = if self.native_create {
                PutMode::Create
            } else {
                PutMode::Overwrite
            };
            let opts = PutOptions {
                mode,
                ..PutOptions::default()
            };
            self.store
                .put_opts(key, PutPayload::from_bytes(data), opts)
                .await
                .map_err(backend)?;
            return Ok(());
        }
        let mut upload = self.store.put_multipart(key).await.map_err(backend)?;
        let mut parts = Vec::with_capacity(data.len().div_ceil(MULTIPART_PART));
        let mut off = 0;
        while off < data.len() {
            let end = (off + MULTIPART_PART).min(data.len());
            // Part numbers are assigned here, in order; the futures may then finish in any order.
            parts.push(upload.put_part(PutPayload::from_bytes(data.slice(off..end))));
            off = end;
        }
        let sent = futures_util::stream::iter(parts)
            .buffer_unordered(MULTIPART_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await;
        let done = match sent {
            Ok(_) => upload.complete().await.map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = done {
            // Best effort: an abandoned upload is invisible but costs storage until a bucket
            // lifecycle rule (AbortIncompleteMultipartUpload) removes it.
            let _ = upload.abort().await;
            return Err(backend(e));
        }
        Ok(())
    }

    async fn claims(&self, dir: &Path) -> Result<Vec<Path>, StoreError> {
        self.store
            .list(Some(dir))
            .map_ok(|m| m.location)
            .try_collect()
            .await
            .map_err(backend)
    }
}

fn http_probe_client(plain_http: bool) -> Result<reqwest013::Client, StoreError> {
    reqwest013::Client::builder()
        .https_only(!plain_http)
        .redirect(reqwest013::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
        .build()
        .map_err(|e| StoreError::Backend(format!("S3: cannot build HTTP client: {e}")))
}

fn public_bucket(bucket: &Url) -> StoreError {
    StoreError::PublicBucket(format!(
        "S3 bucket at {bucket} answers anonymous (unsigned) requests: callvault refuses to \
         store recordings in it. Remove public access (bucket policy, ACLs, website access; on \
         Garage `garage bucket website --deny` and no anonymous key), then start again"
    ))
}

/// An unsigned ListObjectsV2 of the bucket: any 2xx means anyone may list it.
async fn refuse_anonymous_list(bucket: &Url, plain_http: bool) -> Result<(), StoreError> {
    let mut url = bucket.clone();
    url.set_query(Some("list-type=2&max-keys=1"));
    let client = http_probe_client(plain_http)?;
    let resp = client.get(url.clone()).send().await.map_err(|e| {
        StoreError::Backend(format!(
            "S3: cannot reach {bucket} to check it is private: {e}"
        ))
    })?;
    if resp.status().is_success() {
        return Err(public_bucket(bucket));
    }
    Ok(())
}

/// An unsigned GET of one object: Ok(true) if it was served.
async fn anonymous_get(url: &Url, plain_http: bool) -> Result<bool, StoreError> {
    let client = http_probe_client(plain_http)?;
    let resp = client.get(url.clone()).send().await.map_err(|e| {
        StoreError::Backend(format!("S3: cannot check that objects are private: {e}"))
    })?;
    Ok(resp.status().is_success())
}

#[async_trait::async_trait]
impl BlobBackend for S3 {
    fn backend_name(&self) -> &'static str {
        "s3"
    }

    async fn put(&self, name: &BlobName, data: Vec<u8>) -> Result<(), StoreError> {
        let key = self.key(name);
        let data = Bytes::from(data);
        let name_s = name.to_string();
        let dir = self.internal(&["claims", &name_s]);
        let started = tokio::time::Instant::now();
        let mut attempt = 0u32;
        loop {
            if self.exists(&key).await? {
                return Err(StoreError::Conflict("blob exists".into()));
            }
            let nonce = BlobName::random().to_string();
            let claim = dir.clone().join(nonce.as_str());
            self.store
                .put(&claim, PutPayload::new())
                .await
                .map_err(backend)?;
            let listed = self.claims(&dir).await;
            let sole = matches!(&listed, Ok(l) if l.len() == 1 && l[0] == claim);
            let result = match listed {
                Err(e) => Some(Err(e)),
                Ok(_) if sole => Some(match self.exists(&key).await {
                    Ok(true) => Err(StoreError::Conflict("blob exists".into())),
                    Ok(false) => self.upload(&key, data.clone()).await,
                    Err(e) => Err(e),
                }),
                Ok(_) => None,
            };
            // The blob (if any) is in place before the claim goes: see the module docs.
            let dropped = self.store.delete(&claim).await;
            if let Some(r) = result {
                return r;
            }
            dropped.map_err(backend)?;
            if started.elapsed() > CLAIM_DEADLINE {
                return Err(StoreError::Backend(format!(
                    "S3: blob name {name} stayed contended for {}s (a crashed writer's claim \
                     under {dir} blocks it); retry with a new name",
                    CLAIM_DEADLINE.as_secs()
                )));
            }
            attempt += 1;
            let cap = 20u64 << attempt.min(5);
            let wait = rand::random::<u64>() % cap + 5;
            tokio::time::sleep(Duration::from_millis(wait)).await;
        }
    }

    async fn open(&self, name: &BlobName) -> Result<Box<dyn BlobRead>, StoreError> {
        let key = self.key(name);
        let meta = self.store.head(&key).await.map_err(backend)?;
        Ok(Box::new(S3Reader {
            store: self.store.clone(),
            key,
            e_tag: meta.e_tag,
            len: meta.size,
            pos: 0,
            buf: Bytes::new(),
            buf_start: 0,
            rt: tokio::runtime::Handle::current(),
        }))
    }

    async fn delete(&self, name: &BlobName) -> Result<(), StoreError> {
        match self.store.delete(&self.key(name)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(backend(e)),
        }
    }

    async fn list(&self) -> Result<Vec<BlobName>, StoreError> {
        let prefix = self.prefix.clone();
        let depth = prefix.as_ref().map_or(0, |p| p.parts().count());
        let metas: Vec<_> = self
            .store
            .list(prefix.as_ref())
            .try_collect()
            .await
            .map_err(backend)?;
        let mut out = Vec::with_capacity(metas.len());
        for m in metas {
            let rel: Vec<_> = m.location.parts().skip(depth).collect();
            match rel.as_slice() {
                [first, ..] if first.as_ref() == INTERNAL => {}
                [only] => match BlobName::parse(only.as_ref()) {
                    Ok(n) => out.push(n),
                    Err(_) => foreign(&m.location),
                },
                _ => foreign(&m.location),
            }
        }
        Ok(out)
    }
}

/// A key under our prefix that callvault did not write. Not a blob, so not listed; reported
/// because someone else is writing into callvault's part of the bucket.
fn foreign(key: &Path) {
    tracing::warn!(%key, "S3 object under callvault's prefix is not a blob; ignored");
}

/// Sync reader over ranged GETs, for the blocking thread that decrypts. Each miss fetches at
/// least [`READ_AHEAD`] bytes. The GETs run on the runtime captured at `open`, driven from the
/// calling thread: fine from `spawn_blocking`, from plain threads and (via `block_in_place`) from
/// a multi-threaded runtime's worker. Reading on a current-thread runtime's own thread panics
/// (tokio cannot block there); read from `spawn_blocking` instead.
struct S3Reader {
    store: Arc<AmazonS3>,
    key: Path,
    /// Every GET is conditional on the ETag seen at open, so a reader never mixes two versions.
    e_tag: Option<String>,
    len: u64,
    pos: u64,
    buf: Bytes,
    buf_start: u64,
    rt: tokio::runtime::Handle,
}

impl S3Reader {
    fn fetch(&self, start: u64, want: usize) -> io::Result<Bytes> {
        let end = start
            .saturating_add(want.max(READ_AHEAD) as u64)
            .min(self.len);
        let opts = GetOptions {
            range: Some(GetRange::Bounded(start..end)),
            if_match: self.e_tag.clone(),
            ..GetOptions::default()
        };
        // `block_in_place` lets a multi-threaded runtime's worker block without stalling the
        // tasks queued behind it (a task spawned from a worker would sit in that worker's
        // unstealable LIFO slot); on `spawn_blocking` and plain threads it just runs the closure.
        let got = tokio::task::block_in_place(|| {
            self.rt
                .block_on(async { self.store.get_opts(&self.key, opts).await?.bytes().await })
        })
        .map_err(|e| io::Error::other(format!("S3 ranged read failed: {e}")))?;
        if got.len() as u64 != end - start {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("S3 returned {} bytes for range {start}..{end}", got.len()),
            ));
        }
        Ok(got)
    }
}

impl Read for S3Reader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() || self.pos >= self.len {
            return Ok(0);
        }
        let buf_end = self.buf_start + self.buf.len() as u64;
        if self.pos < self.buf_start || self.pos >= buf_end {
            self.buf = self.fetch(self.pos, out.len())?;
            self.buf_start = self.pos;
        }
        // Both fit in usize: pos lies inside the buffer.
        let at = (self.pos - self.buf_start) as usize;
        let n = out.len().min(self.buf.len() - at);
        out[..n].copy_from_slice(&self.buf[at..at + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for S3Reader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = target.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the blob",
            )
        })?;
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_urls() {
        let e = Url::parse("https://s3.example.net:8443").unwrap();
        assert_eq!(
            bucket_url(&e, "calls", false).as_str(),
            "https://s3.example.net:8443/calls"
        );
        assert_eq!(
            bucket_url(&e, "calls", true).as_str(),
            "https://calls.s3.example.net:8443/"
        );
    }

    #[test]
    fn prefixes() {
        assert!(check_prefix("").unwrap().is_none());
        assert!(check_prefix("/").unwrap().is_none());
        assert_eq!(check_prefix("/a/b/").unwrap().unwrap().as_ref(), "a/b");
        for bad in ["a//b", "a/../b", "_callvault", "x/_callvault"] {
            assert!(check_prefix(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn buckets() {
        assert!(check_bucket("callvault-test").is_ok());
        for bad in ["", "ab", "Upper", "-x-", "a_b", &"x".repeat(64)] {
            assert!(check_bucket(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn loopback() {
        for (u, want) in [
            ("http://127.0.0.1:3900", true),
            ("http://127.9.9.9", true),
            ("http://[::1]:1", true),
            ("http://localhost", true),
            ("http://10.0.0.1", false),
            ("http://s3.example.net", false),
        ] {
            let u = Url::parse(u).unwrap();
            assert_eq!(is_loopback(&u.host().unwrap()), want, "{u}");
        }
    }
}
