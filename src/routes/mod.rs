//! HTTP handlers, each thin: parse the request, ask the pure logic, respond.

pub mod digits;
pub mod health;
pub mod metrics;

use std::sync::Arc;

use crate::digits::StreamDefaults;
use crate::limits::StreamLimit;
use crate::shutdown::Shutdown;
use crate::telemetry::Metrics;

/// What every handler may need, shared by all workers.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Server-wide stream settings and the bounds for query overrides.
    pub defaults: StreamDefaults,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Admission: at most this many streams open at once.
    pub limit: Arc<StreamLimit>,
    /// The signal streams watch.
    pub shutdown: Shutdown,
}
