//! Test infrastructure shared by the store's conformance tests and the black-box tests: real
//! servers started hermetically on loopback for the life of a test process. Never a dependency
//! of shipped code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod garage;
pub mod pg;
