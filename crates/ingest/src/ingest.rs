//! [`Ingest`]: what the live pipeline and the SIP server work with — the [`Services`] and the
//! calls in progress. A cheap-to-clone handle that derefs to [`Services`].

use crate::live::LiveCalls;
use callvault_service::Services;
use std::ops::Deref;

#[derive(Clone)]
pub struct Ingest {
    pub services: Services,
    /// Calls being recorded live; the API every live protocol uses.
    pub live: LiveCalls,
}

impl Deref for Ingest {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.services
    }
}
