//! The product: a numbered event stream.
//!
//! - [`plan`]: pure decisions about a request (resume point, 204, 400, schedule).
//! - [`stream`]: the body that waits for each due time and encodes.

pub mod plan;
pub mod stream;

pub use plan::{decide, Decision, Rejection, StreamDefaults, StreamPlan};
pub use stream::DigitsStream;
