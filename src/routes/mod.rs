//! HTTP handlers, each thin: parse the request, ask the pure logic, respond.

pub mod digits;
pub mod health;
pub mod metrics;

use std::sync::Arc;

use crate::digits::StreamDefaults;
use crate::shutdown::Shutdown;
use crate::telemetry::Metrics;

/// What every handler may need, shared by all workers.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Server-wide stream settings and the bounds for query overrides.
    pub defaults: StreamDefaults,
    /// Counters and the open-streams limit.
    pub metrics: Arc<Metrics>,
    /// The signal streams watch.
    pub shutdown: Shutdown,
}
