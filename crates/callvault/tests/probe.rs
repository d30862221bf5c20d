//! `callvault probe` looks from outside: a sound deployment shows nothing; the 1177 box (plain
//! HTTP, directory listings, recordings for anyone) shows everything.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

#[test]
fn a_callvault_server_exposes_nothing() {
    let s = Server::start();
    let (code, report) = probe(&s.base, None);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["exposed"], false);
    assert!(
        report["routes_checked"].as_u64().unwrap() >= 20,
        "every published route was tried: {report}"
    );
}

/// An open web server like the 1177 NAS: plain HTTP, a listing for every path.
fn exposed_nas() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in l.incoming().take(200) {
            let Ok(mut c) = conn else { continue };
            let mut r = BufReader::new(c.try_clone().unwrap());
            let mut line = String::new();
            while r.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let body = "<html><title>Index of /</title><a href=\"2019/\">2019/</a><a href=\"call-0001.wav\">call-0001.wav</a></html>";
            let _ = write!(
                c,
                "HTTP/1.1 200 OK\r\nServer: lighttpd/1.4.35\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}")
}

#[test]
fn an_open_store_like_the_1177_box_is_reported() {
    let (code, report) = probe(&exposed_nas(), None);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["exposed"], true);
    let findings: Vec<String> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| format!("{} {}", f["severity"], f["finding"]))
        .collect();
    let has = |needle: &str| findings.iter().any(|f| f.contains(needle));
    assert!(has("plain HTTP"), "{findings:#?}");
    assert!(has("directory listing"), "{findings:#?}");
    assert!(has("default credentials"), "{findings:#?}");
    assert!(has("reveals a version"), "{findings:#?}");
}
