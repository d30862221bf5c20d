//! Shared server state: the [`Ingest`] handle (the `Services` every domain operation works
//! with, and the live calls), plus what only this server holds (the posture findings). It
//! derefs to [`Ingest`] and on to `Services`, so `st.cfg`, `st.live`, `st.keys()` read as before.

use callvault_ingest::Ingest;
use std::ops::Deref;
use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    /// The services and the calls in progress.
    pub ingest: Ingest,
    /// The findings of the last periodic posture check.
    pub posture: Mutex<Vec<crate::posture::Finding>>,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Deref for Inner {
    type Target = Ingest;
    fn deref(&self) -> &Ingest {
        &self.ingest
    }
}

impl AppState {
    pub fn new(inner: Inner) -> Self {
        Self(Arc::new(inner))
    }
}
