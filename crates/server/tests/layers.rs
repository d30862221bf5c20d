//! The server's layering, read from its source: what the compiler cannot enforce inside one
//! crate, and what Cargo does not check across crates. `ApiError` (an HTTP status and message)
//! belongs to the HTTP edge; the domain crates under it say what went wrong in their own error
//! enums, and each edge (HTTP, SIP, CLI) translates them. The clock and the privilege
//! extractors are leaves and joints that nothing may loop back through.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The server and the domain crates under it, read as one module graph: `crate::x` and
/// `callvault_<crate>::x` both name module `x` (the edge reaches the layers under it by their
/// names too), so a name several crates use (`posture`) is one node with all their imports.
const CRATES: [&str; 4] = ["server", "service", "lifecycle", "ingest"];

/// The HTTP edge of `crates/server/src`: routes, handlers, extractors, the accept loop.
const HTTP_EDGE: [&str; 7] = [
    "api",
    "error.rs",
    "principal.rs",
    "routes.rs",
    "serve.rs",
    "console.rs",
    "body_limit.rs",
];

/// `crates/`, the workspace's crate directories.
fn crates_dir() -> PathBuf {
    // At run time, not compile time: a shared target directory may have built this test from
    // another checkout.
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `(crate, path relative to its src, text)` of every source file of [`CRATES`].
fn sources() -> Vec<(&'static str, String, String)> {
    let mut out = Vec::new();
    for krate in CRATES {
        let src = crates_dir().join(krate).join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        files.sort();
        assert!(
            files.len() > 5,
            "found only {} source files in {krate}",
            files.len()
        );
        out.extend(files.into_iter().map(|p| {
            let rel = p.strip_prefix(&src).unwrap().to_string_lossy().into_owned();
            (krate, rel, std::fs::read_to_string(&p).unwrap())
        }));
    }
    out
}

/// The top-level module a source file belongs to (`api/live.rs` → `api`, `clock.rs` → `clock`).
fn module_of(rel: &str) -> String {
    let first = rel.split('/').next().unwrap();
    first.trim_end_matches(".rs").to_owned()
}

#[test]
fn api_error_stays_at_the_http_edge() {
    let mut outside = Vec::new();
    for (krate, rel, text) in sources() {
        let edge = krate == "server"
            && HTTP_EDGE
                .iter()
                .any(|e| rel == *e || rel.starts_with(&format!("{e}/")));
        if !edge && (text.contains("ApiError") || text.contains("ApiResult")) {
            outside.push(format!("{krate}/src/{rel}"));
        }
    }
    // The other crates that build on the server (the CLI, the benchmarks) never see it either.
    for krate in ["callvault", "bench"] {
        let mut files = Vec::new();
        rust_files(&crates_dir().join(krate).join("src"), &mut files);
        assert!(!files.is_empty(), "no sources found for {krate}");
        for p in files {
            if std::fs::read_to_string(&p).unwrap().contains("ApiError") {
                outside.push(p.display().to_string());
            }
        }
    }
    assert!(
        outside.is_empty(),
        "ApiError is the HTTP edge's; these use it outside {HTTP_EDGE:?}: {outside:?} — return the domain's error enum and translate it in error.rs"
    );
}

/// Where each path into a module of [`CRATES`] starts: `crate::` and `callvault_<crate>::`.
fn path_starts(text: &str) -> Vec<usize> {
    let mut starts: Vec<usize> = text
        .match_indices("crate::")
        .filter(|(i, _)| !text[..*i].ends_with('_'))
        .map(|(i, m)| i + m.len())
        .collect();
    for krate in CRATES {
        let prefix = format!("callvault_{krate}::");
        starts.extend(text.match_indices(&prefix).map(|(i, m)| i + m.len()));
    }
    starts
}

/// Edges `module → module` from every path into a module of [`CRATES`] in their sources.
fn import_graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (_, rel, text) in sources() {
        let from = module_of(&rel);
        let deps = graph.entry(from.clone()).or_default();
        for i in path_starts(&text) {
            let rest = &text[i..];
            let names: Vec<&str> = if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                group[..end]
                    .split(',')
                    .map(|n| n.trim().split("::").next().unwrap_or(""))
                    .collect()
            } else {
                vec![
                    rest.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .next()
                        .unwrap(),
                ]
            };
            for n in names.into_iter().filter(|n| !n.is_empty()) {
                if n != from && n.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                    deps.insert(n.to_owned());
                }
            }
        }
    }
    graph
}

/// Whether `target` can be reached from `start`'s imports.
fn loops_back(graph: &BTreeMap<String, BTreeSet<String>>, target: &str) -> Option<Vec<String>> {
    let mut stack: Vec<Vec<String>> = graph
        .get(target)
        .into_iter()
        .flatten()
        .map(|n| vec![target.to_owned(), n.clone()])
        .collect();
    let mut seen = BTreeSet::new();
    while let Some(path) = stack.pop() {
        let last = path.last().unwrap().clone();
        if last == target {
            return Some(path);
        }
        if !seen.insert(last.clone()) {
            continue;
        }
        for n in graph.get(&last).into_iter().flatten() {
            let mut p = path.clone();
            p.push(n.clone());
            stack.push(p);
        }
    }
    None
}

#[test]
fn no_import_cycle_runs_through_the_clock_or_the_privilege_extractors() {
    let graph = import_graph();
    assert!(
        graph.get("api").is_some_and(|d| d.contains("principal")),
        "the graph reader finds nothing: {graph:?}"
    );
    assert_eq!(
        graph.get("clock").map(BTreeSet::len),
        Some(0),
        "clock.rs is a leaf: {:?}",
        graph.get("clock")
    );
    for joint in ["clock", "principal"] {
        assert_eq!(loops_back(&graph, joint), None, "a cycle through `{joint}`");
    }
    // Privilege is the HTTP edge's: the domain never asks who is calling.
    let users: Vec<_> = graph
        .iter()
        .filter(|(_, deps)| deps.contains("principal"))
        .map(|(m, _)| m.as_str())
        .filter(|m| !HTTP_EDGE.iter().any(|e| e.trim_end_matches(".rs") == *m))
        .collect();
    assert!(
        users.is_empty(),
        "outside the HTTP edge, {users:?} import `principal`"
    );
}

/// The domain crates under the edge build on no HTTP stack: what they return is their own.
#[test]
fn domain_crates_know_no_http() {
    for krate in CRATES.iter().filter(|k| **k != "server") {
        let manifest =
            std::fs::read_to_string(crates_dir().join(krate).join("Cargo.toml")).unwrap();
        let deps = manifest
            .split("[dependencies]")
            .nth(1)
            .expect("a [dependencies] section");
        for http in ["axum", "hyper", "tower", "callvault-server"] {
            assert!(
                !deps.lines().any(|l| l.trim_start().starts_with(http)),
                "{krate} depends on {http}: the HTTP edge builds on it, not the other way"
            );
        }
    }
}
