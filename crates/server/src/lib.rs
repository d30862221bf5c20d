//! The callvault server: configuration, first-start bootstrap, TLS, the HTTP API, and the audit
//! writer. Storage and crypto live in their own crates; this crate wires them to HTTP and is the
//! only place where errors become status codes.
#![forbid(unsafe_code)]

pub mod api;
pub mod audit_log;
pub mod body_limit;
pub mod bootstrap;
pub mod clock;
pub mod config;
pub mod console;
pub mod error;
pub mod keys;
pub mod lifecycle;
pub mod live;
pub mod metrics;
pub mod posture;
pub mod principal;
pub mod provisioning;
pub mod routes;
pub mod sip;
pub mod state;
pub mod storing;
mod svg;
pub mod tls;

mod serve;

pub use bootstrap::{BootError, Bootstrapped, init, open, start_background};
pub use serve::serve;
