//! The server's layering, read from its source: what the compiler cannot enforce inside one
//! crate. `ApiError` (an HTTP status and message) belongs to the HTTP edge; the domain says what
//! went wrong in its own error enums, and each edge (HTTP, SIP, CLI) translates them. The clock
//! and the privilege extractors are leaves and joints that nothing may loop back through.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

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

fn crate_dir() -> PathBuf {
    // At run time, not compile time: a shared target directory may have built this test from
    // another checkout.
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
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

/// `(path relative to src, text)` of every source file of the server.
fn sources() -> Vec<(String, String)> {
    let src = crate_dir().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let out: Vec<_> = files
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(&src).unwrap().to_string_lossy().into_owned();
            (rel, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    assert!(out.len() > 20, "found only {} source files", out.len());
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
    for (rel, text) in sources() {
        let edge = HTTP_EDGE
            .iter()
            .any(|e| rel == *e || rel.starts_with(&format!("{e}/")));
        if !edge && (text.contains("ApiError") || text.contains("ApiResult")) {
            outside.push(rel);
        }
    }
    // The other crates that build on the server (the CLI, the benchmarks) never see it either.
    let workspace = crate_dir().join("..");
    for krate in ["callvault", "bench"] {
        let mut files = Vec::new();
        rust_files(&workspace.join(krate).join("src"), &mut files);
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

/// Edges `module → module` from every `crate::…` path in the sources.
fn import_graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (rel, text) in sources() {
        let from = module_of(&rel);
        let deps = graph.entry(from.clone()).or_default();
        for (i, _) in text.match_indices("crate::") {
            let rest = &text[i + "crate::".len()..];
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
