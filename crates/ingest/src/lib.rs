//! Ingest: calls recorded while they happen. `live/` is the one pipeline every live protocol
//! feeds (journal, group-commit writer, assembly into recordings, following a call, idle
//! sweep); `sip/` is the SIPREC server that feeds it. Built on `callvault_service` and
//! `callvault_lifecycle` (admission); it knows no HTTP: the edge translates its errors.
#![forbid(unsafe_code)]

mod ingest;
pub mod live;
pub mod sip;

pub use ingest::Ingest;

// The layers under this crate by its own paths (`crate::config`, `crate::lifecycle`, …).
use callvault_lifecycle as lifecycle;
use callvault_service::{audit_log, clock, config, keys, metrics, storing, tls};
