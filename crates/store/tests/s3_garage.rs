//! The blob conformance suite against the S3 adapter on a real 3-node Garage cluster, plus what
//! only S3 promises: refusing public buckets, multipart uploads, and staying up with one of three
//! nodes down. Every Garage test starts its own cluster (`tests/garage`); none skips when
//! Garage is missing: they fail and say how to install it.
#![cfg(feature = "s3")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod conformance;
use callvault_testkit::garage;

use callvault_core::BlobName;
use callvault_store::{BlobConfig, BlobStore, SecretString, StoreError};
use garage::Garage;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{TcpListener, TcpStream};

fn s3_cfg(g: &Garage, node: usize, bucket: &str, prefix: Option<&str>) -> BlobConfig {
    BlobConfig::S3 {
        endpoint: g.endpoints[node].clone(),
        region: g.region.clone(),
        bucket: bucket.to_owned(),
        access_key_id: g.access_key_id.clone(),
        secret_access_key: SecretString::from(g.secret_access_key.clone()),
        virtual_hosted: false,
        prefix: prefix.map(str::to_owned),
    }
}

async fn open(g: &Garage, node: usize, bucket: &str, prefix: Option<&str>) -> BlobStore {
    BlobStore::open(&s3_cfg(g, node, bucket, prefix))
        .await
        .unwrap_or_else(|e| panic!("opening S3 store on node {node}: {e}"))
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u32).wrapping_mul(2_654_435_761) >> 13) as u8 ^ seed)
        .collect()
}

/// Reads a whole blob on a blocking thread, the way playback does.
async fn read_blocking(s: &BlobStore, n: &BlobName) -> Vec<u8> {
    let mut r = s.open(n).await.unwrap();
    tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        out
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_blob_conformance_on_garage() {
    let g = Garage::start();
    // With a key prefix, in the cluster's bucket.
    let prefixed = open(&g, 0, &g.bucket, Some("calls/region-a")).await;
    assert_eq!(prefixed.backend_name(), "s3");
    conformance::blob::suite(prefixed.clone()).await;

    // At the root of a fresh bucket that also holds another store's blob under a prefix: that
    // key is not a blob of the root store (foreign keys are skipped, not listed).
    g.create_bucket("callvault-root");
    let other = open(&g, 1, "callvault-root", Some("elsewhere")).await;
    other.put(&BlobName::random(), vec![1, 2, 3]).await.unwrap();
    let root = open(&g, 0, "callvault-root", None).await;
    conformance::blob::suite(root).await;
    assert_eq!(
        other.list().await.unwrap().len(),
        1,
        "prefixes are separate"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_multipart_round_trip_and_blocking_reads() {
    let g = Garage::start();
    let s = open(&g, 0, &g.bucket, None).await;
    let n = BlobName::random();
    let len = 20 * 1024 * 1024 + 12_345; // three 8 MiB parts, the last one short
    let data = pattern(len, 9);
    s.put(&n, data.clone()).await.unwrap();
    let got = read_blocking(&s, &n).await;
    assert_eq!(got.len(), len);
    assert!(got == data, "20 MiB multipart blob differs");
    // Refusing to overwrite holds for multipart-sized puts too.
    assert!(matches!(
        s.put(&n, pattern(len, 1)).await,
        Err(StoreError::Conflict(_))
    ));
    // Ranged reads across part boundaries, on a blocking thread.
    let mut r = s.open(&n).await.unwrap();
    let want = data.clone();
    tokio::task::spawn_blocking(move || {
        for off in [8 * 1024 * 1024 - 5, 16 * 1024 * 1024 - 1, len - 100] {
            r.seek(SeekFrom::Start(off as u64)).unwrap();
            let mut buf = vec![0u8; 100];
            r.read_exact(&mut buf).unwrap();
            assert_eq!(buf, want[off..off + 100], "100 bytes at {off}");
        }
    })
    .await
    .unwrap();
    assert_eq!(s.list().await.unwrap(), vec![n]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_private_bucket_opens_and_refuses_unsigned_requests() {
    let g = Garage::start();
    let s = open(&g, 0, &g.bucket, None).await;
    let n = BlobName::random();
    s.put(&n, b"secret audio".to_vec()).await.unwrap();
    // Neither the listing nor the object is served without a signature.
    let port: u16 = g.endpoints[0].rsplit(':').next().unwrap().parse().unwrap();
    for path in [
        format!("/{}?list-type=2", g.bucket),
        format!("/{}/{n}", g.bucket),
    ] {
        let status = raw_get(port, &path);
        assert!(
            status.starts_with("HTTP/1.1 403"),
            "unsigned GET {path}: {status}"
        );
    }
}

/// An unsigned GET over a raw socket; returns the status line.
fn raw_get(port: u16, path: &str) -> String {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    c.read_to_string(&mut resp).unwrap();
    resp.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_keeps_working_with_one_of_three_nodes_down() {
    let mut g = Garage::start();
    let s1 = open(&g, 0, &g.bucket, None).await;
    let before = BlobName::random();
    s1.put(&before, pattern(300_000, 1)).await.unwrap();

    g.stop_node(2);

    let small = BlobName::random();
    s1.put(&small, pattern(70_000, 2)).await.unwrap();
    let large = BlobName::random();
    s1.put(&large, pattern(9 * 1024 * 1024, 3)).await.unwrap();
    assert_eq!(read_blocking(&s1, &before).await, pattern(300_000, 1));
    assert_eq!(read_blocking(&s1, &small).await, pattern(70_000, 2));
    assert!(read_blocking(&s1, &large).await == pattern(9 * 1024 * 1024, 3));
    // Another surviving node serves the same data, and a new store can still open.
    let s2 = open(&g, 1, &g.bucket, None).await;
    assert_eq!(read_blocking(&s2, &small).await, pattern(70_000, 2));
    let mut listed = s2.list().await.unwrap();
    listed.sort();
    let mut want = vec![before, small, large];
    want.sort();
    assert_eq!(listed, want);
    s2.delete(&before).await.unwrap();
    assert!(matches!(s1.open(&before).await, Err(StoreError::NotFound)));
}

/// A stand-in S3 endpoint that answers every request with 200 and an empty listing, as a
/// public bucket does to an unsigned ListObjectsV2.
fn public_bucket_server() -> (u16, std::thread::JoinHandle<Vec<String>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let (mut c, _) = l.accept().unwrap();
        let mut req = Vec::new();
        let mut buf = [0u8; 4096];
        while !req.windows(4).any(|w| w == b"\r\n\r\n") {
            let k = c.read(&mut buf).unwrap();
            if k == 0 {
                break;
            }
            req.extend_from_slice(&buf[..k]);
        }
        let body = "<?xml version=\"1.0\"?><ListBucketResult><Name>b</Name><KeyCount>0</KeyCount></ListBucketResult>";
        write!(
            c,
            "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        String::from_utf8_lossy(&req)
            .lines()
            .map(str::to_owned)
            .collect()
    });
    (port, h)
}

#[tokio::test]
async fn s3_refuses_a_bucket_that_answers_anonymous_reads() {
    let (port, server) = public_bucket_server();
    let cfg = BlobConfig::S3 {
        endpoint: format!("http://127.0.0.1:{port}"),
        region: "garage".into(),
        bucket: "public-bucket".into(),
        access_key_id: "GK0000".into(),
        secret_access_key: SecretString::from("not-used".to_owned()),
        virtual_hosted: false,
        prefix: None,
    };
    match BlobStore::open(&cfg).await {
        Err(StoreError::PublicBucket(msg)) => {
            assert!(msg.contains("anonymous"), "{msg}");
            assert!(msg.contains("Remove public access"), "{msg}");
        }
        Err(e) => panic!("expected PublicBucket, got {e:?}"),
        Ok(_) => panic!("a public bucket was accepted"),
    }
    let req = server.join().unwrap();
    assert_eq!(req[0], "GET /public-bucket?list-type=2&max-keys=1 HTTP/1.1");
    assert!(
        !req.iter()
            .any(|l| l.to_ascii_lowercase().starts_with("authorization")),
        "the check must be unsigned: {req:?}"
    );
}

#[tokio::test]
async fn s3_config_refusals_happen_before_any_request() {
    let base = |endpoint: &str, bucket: &str, prefix: Option<&str>| BlobConfig::S3 {
        endpoint: endpoint.into(),
        region: "garage".into(),
        bucket: bucket.into(),
        access_key_id: "GKid".into(),
        secret_access_key: SecretString::from("hunter2-very-secret".to_owned()),
        virtual_hosted: false,
        prefix: prefix.map(str::to_owned),
    };
    let debug = format!("{:?}", base("https://s3.example.net", "calls", None));
    assert!(
        !debug.contains("hunter2"),
        "secret in Debug output: {debug}"
    );
    for (cfg, want) in [
        (base("http://s3.example.net", "calls", None), "plain http"),
        (base("http://10.1.2.3:3900", "calls", None), "plain http"),
        (base("ftp://127.0.0.1", "calls", None), "not supported"),
        (
            base("https://s3.example.net/calls", "calls", None),
            "bucket goes in",
        ),
        (
            base("https://s3.example.net", "Calls_1", None),
            "bucket name",
        ),
        (
            base("https://s3.example.net", "calls", Some("a/../b")),
            "prefix",
        ),
        (base("not a url", "calls", None), "not a URL"),
    ] {
        match BlobStore::open(&cfg).await {
            Err(StoreError::Config(msg)) => assert!(msg.contains(want), "{msg} lacks {want:?}"),
            Err(e) => panic!("{cfg:?}: expected Config error, got {e:?}"),
            Ok(_) => panic!("{cfg:?} was accepted"),
        }
    }
}
