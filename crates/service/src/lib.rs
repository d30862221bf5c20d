//! The base every domain crate builds on: configuration, the clock, the opened keys, the audit
//! writer, storing a sealed recording, provisioning, TLS material, the metric counters, the posture finding, and [`Services`], the handle
//! that holds them. It knows no HTTP and no SIP: the edges translate its error enums.
#![forbid(unsafe_code)]

pub mod audit_log;
pub mod clock;
pub mod config;
pub mod keys;
pub mod metrics;
pub mod posture;
pub mod provisioning;
mod services;
pub mod storing;
pub mod tls;

pub use services::{Services, Shared};
