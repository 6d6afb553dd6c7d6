//! Readings from outside the load test's own counts: the processes in `/proc`, and the
//! server's `/metrics`. Depends on nothing else in this crate.
//!
//! - [`procstat`]: RSS and CPU from `/proc`, the open-files limit and its budget.
//! - [`aftermath`]: the server after the run (its open streams and memory), and the scrape
//!   of its `/metrics` page.
//! - [`server_lateness`]: the server's own lateness histogram over the window with every
//!   stream open.

pub mod aftermath;
pub mod procstat;
pub mod server_lateness;
