//! The callvault server, the edge: first-start bootstrap, the HTTPS accept loop, the HTTP API
//! and the SIP listener. Config, keys, the audit writer and storing live in `callvault_service`;
//! this crate wires them to HTTP and is the only place where errors become status codes.
#![forbid(unsafe_code)]

pub mod api;
pub mod body_limit;
pub mod bootstrap;
pub mod console;
pub mod error;
pub mod posture;
pub mod principal;
pub mod routes;
pub mod state;
mod svg;

mod serve;

// The layers under this crate by its own paths (`crate::config`, `crate::lifecycle`, …).
use callvault_ingest::{live, sip};
use callvault_lifecycle as lifecycle;
use callvault_service::{audit_log, clock, config, keys, metrics, provisioning, storing, tls};

pub use bootstrap::{BootError, Bootstrapped, init, open, start_background};
pub use serve::serve;
