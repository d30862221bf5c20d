//! Shared server state: the [`Services`] every domain operation works with, plus what only this
//! server holds (the live calls, the posture findings). It derefs to [`Services`],
//! so `st.cfg`, `st.meta`, `st.keys()` read as before.

use callvault_service::Services;
use std::ops::Deref;
use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub services: Services,
    /// Calls being recorded live; the API every live protocol uses.
    pub live: crate::live::LiveCalls,
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
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.services
    }
}

impl AppState {
    pub fn new(inner: Inner) -> Self {
        Self(Arc::new(inner))
    }
}
