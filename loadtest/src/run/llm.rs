//! `--llm`: the goose scenario in which each user sends completion requests one after the
//! other until the run's deadline, each read as a token stream
//! ([`crate::client::completion`]) and measured by an [`LlmRecorder`]. Every request also
//! goes to goose's request table (`POST <path>`, end-to-end time, failures named; never a
//! header).

use std::sync::Arc;
use std::time::Duration;

use goose::goose::{GooseUser, Scenario, Transaction, TransactionError, TransactionFunction};
use goose::prelude::TransactionResult;

use crate::client::completion::{complete, CompletionOptions, Outcome};
use crate::measure::llm::LlmRecorder;
use crate::run::scenario::RunContext;

/// What every user of an `--llm` run shares.
#[derive(Debug)]
pub struct LlmContext {
    /// The run's pool, metrics, deadline, URL and request.
    pub run: Arc<RunContext>,
    /// How each request is bounded.
    pub completion: CompletionOptions,
    /// The pause between a user's requests.
    pub think: Duration,
}

impl LlmContext {
    /// The pause after a request that ended with `outcome`: the think time, and after a
    /// request that `failed` at least the shortest retry delay (or the `Retry-After` a 429
    /// or 503 asked for, within the retry bounds), so a server that fails at once is not met
    /// with a loop of instant requests.
    #[must_use]
    pub fn pause_after(&self, outcome: &Outcome, failed: bool) -> Duration {
        let bounds = self.run.client.retry_bounds;
        let asked = match outcome {
            Outcome::Failed(_, asked) => *asked,
            _ => None,
        };
        if !failed {
            return self.think;
        }
        let (delay, _) = bounds.clamp(asked.unwrap_or(bounds.min));
        self.think.max(delay)
    }
}

/// The scenario every user runs under `--llm`.
#[must_use]
pub fn scenario(context: Arc<LlmContext>) -> Scenario {
    let run: TransactionFunction = Arc::new(move |user| {
        let context = Arc::clone(&context);
        Box::pin(async move { requests(user, &context).await })
    });
    Scenario::new("LlmCompletions")
        .register_transaction(Transaction::new(run).set_name("completions"))
}

/// One user's completion requests, from the start of the run to its end.
async fn requests(user: &mut GooseUser, context: &LlmContext) -> TransactionResult {
    let run = &context.run;
    if run.stop.is_over() {
        // The run is over but goose has not told this user yet: idle rather than spin.
        tokio::time::sleep(Duration::from_millis(100)).await;
        return Ok(());
    }
    let url = user
        .base_url
        .join(&run.path_and_query)
        .map_err(|e| Box::new(TransactionError::from(e)))?;
    let connector = run.pool.pick(user.weighted_users_index).clone();
    let method = run.client.request.method.as_str();
    let mut recorder = LlmRecorder::new(Arc::clone(&run.metrics));
    while !run.stop.is_over() {
        let outcome = complete(
            &connector,
            &url,
            &context.completion,
            &mut recorder,
            &run.stop,
        )
        .await;
        let Some(end) = recorder.finish(&outcome) else {
            break;
        };
        user.record_custom_request_duration(
            method,
            &run.request_name,
            end.elapsed,
            end.error.is_none(),
            end.status,
            end.error.as_deref(),
        )
        .await?;
        let pause = context.pause_after(&outcome, end.error.is_some());
        if !pause.is_zero() && !run.stop.sleep(pause).await {
            break;
        }
    }
    run.stop.wait().await;
    Ok(())
}
