//! The goose scenario: each user runs one [`EventSource`] for the whole run, recording into
//! the run's [`Metrics`]; its connection attempts also go to goose's request table (as
//! `GET <path>` or `POST <path>`, time to open; never a header), so goose's report shows opens, failures and status codes.

use std::sync::Arc;
use std::time::Duration;

use goose::goose::{GooseUser, Scenario, Transaction, TransactionError, TransactionFunction};
use goose::prelude::TransactionResult;

use crate::client::{ClientOptions, ClientPool, End, EventSource, Stop};
use crate::measure::metrics::Metrics;
use crate::measure::recorder::UserRecorder;
use crate::profile::StreamProfile;

/// The first id of a fresh digits stream.
pub const FIRST_ID: u64 = 1;

/// What every user of a run shares.
#[derive(Debug)]
pub struct RunContext {
    /// The HTTP clients users connect through.
    pub pool: ClientPool,
    /// Where measurements go.
    pub metrics: Arc<Metrics>,
    /// When every event source ends.
    pub stop: Arc<Stop>,
    /// How each event source behaves.
    pub client: ClientOptions,
    /// The stream's path and query, joined to goose's host (or a whole URL, kept as is).
    pub path_and_query: String,
    /// `--host a,b,…`: the targets users are spread over, round-robin by user; empty for
    /// one target (goose's host).
    pub hosts: Vec<reqwest::Url>,
    /// The request name in goose's tables (the path without the query).
    pub request_name: String,
    /// What each event is checked for (identity, lateness).
    pub profile: StreamProfile,
    /// Gaps longer than this are stalls.
    pub stall_threshold: Duration,
}

/// The scenario every user runs.
#[must_use]
pub fn scenario(context: Arc<RunContext>) -> Scenario {
    let run: TransactionFunction = Arc::new(move |user| {
        let context = Arc::clone(&context);
        Box::pin(async move { event_source(user, &context).await })
    });
    Scenario::new("SseDigits").register_transaction(Transaction::new(run).set_name("event source"))
}

/// One user's EventSource, from the start of the run to its end.
async fn event_source(user: &mut GooseUser, context: &RunContext) -> TransactionResult {
    if context.stop.is_over() {
        // The run is over but goose has not told this user yet: idle rather than spin.
        tokio::time::sleep(Duration::from_millis(100)).await;
        return Ok(());
    }
    let base = match context.hosts.len() {
        0 => &user.base_url,
        n => &context.hosts[user.weighted_users_index % n],
    };
    let url = base
        .join(&context.path_and_query)
        .map_err(|e| Box::new(TransactionError::from(e)))?;
    let client = context.pool.pick(user.weighted_users_index).clone();
    let mut recorder = UserRecorder::with_profile(
        Arc::clone(&context.metrics),
        context.profile.clone(),
        context.stall_threshold,
    );
    let mut source = EventSource::new(client, url, context.client.clone());
    let end = source.run(&mut recorder, &context.stop).await;
    let opens = recorder.take_opens();
    recorder.finish();
    for open in opens {
        user.record_custom_request_duration(
            context.client.request.method.as_str(),
            &context.request_name,
            open.elapsed,
            open.error.is_none(),
            open.status,
            open.error.as_deref(),
        )
        .await?;
    }
    // One user is one EventSource: once it has closed for good (bye, 204, a refusal) the
    // user holds no connection until the run ends, as a browser tab would.
    context.stop.wait().await;
    match end {
        End::Status(code) => Err(format!("gave up: status {code}").into()),
        End::ContentType(found) => Err(format!("gave up: content type {found:?}").into()),
        End::Encoding(coding) => Err(format!("gave up: unrequested {coding}").into()),
        End::TooManyRedirects => Err("gave up: too many redirects".into()),
        End::Bye | End::NoContent | End::Stopped => Ok(()),
    }
}
