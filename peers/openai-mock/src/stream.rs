//! A [`Completion`] turned into a response body: each frame is written when it is due, on a
//! schedule anchored at the request's start (`sleep_until(start + due)`), so the time spent
//! writing one chunk never delays the next. Every stream also watches the server's shutdown
//! signal and ends at once when it fires, so a graceful stop never waits out a completion.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Bytes;
use futures_util::stream::{self, Stream};
use tokio::sync::watch;
use tokio::time::{sleep_until, Instant};

use crate::completion::Completion;

/// The server's stop signal as one stream sees it.
#[derive(Debug, Clone)]
pub struct Shutdown(Option<watch::Receiver<bool>>);

impl Shutdown {
    /// A signal that never fires, for a router served without graceful shutdown.
    pub fn never() -> Self {
        Self(None)
    }

    /// A signal that fires when `true` is sent, or when the sender is gone (the server that
    /// owned it has stopped).
    pub fn from_receiver(receiver: watch::Receiver<bool>) -> Self {
        Self(Some(receiver))
    }

    /// Resolves when the server is stopping.
    pub async fn wait(&mut self) {
        match &mut self.0 {
            None => std::future::pending().await,
            // An error means the sender is gone: stop as well.
            Some(receiver) => drop(receiver.wait_for(|stop| *stop).await),
        }
    }
}

/// The body of one streamed completion: its frames, each at `start + due`. Ends after
/// `[DONE]`, or early (without `[DONE]`) when `shutdown` fires.
pub fn timed_frames(
    completion: Completion,
    start: Instant,
    shutdown: Shutdown,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send {
    stream::unfold(
        (completion, 0_u64, shutdown),
        move |(completion, i, mut shutdown)| async move {
            let frame = completion.frame(i)?;
            tokio::select! {
                biased;
                () = shutdown.wait() => return None,
                () = sleep_until_due(start, frame.due) => {}
            }
            Some((Ok(Bytes::from(frame.data)), (completion, i + 1, shutdown)))
        },
    )
}

/// Sleeps until `start + due`; returns at once when that moment has passed, so frames that
/// are due together go out together.
async fn sleep_until_due(start: Instant, due: Duration) {
    match start.checked_add(due) {
        Some(deadline) if deadline > Instant::now() => sleep_until(deadline).await,
        Some(_) => {}
        // Beyond what the clock can represent: never due.
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt as _;

    use super::*;
    use crate::chunk::{ChunkHeader, DONE};
    use crate::request::StreamRequest;
    use crate::MockConfig;

    fn completion(config: &MockConfig) -> Completion {
        let request = StreamRequest {
            model: "m".into(),
            max_tokens: None,
            include_usage: true,
            prompt_tokens: 0,
        };
        let header = ChunkHeader {
            id: "chatcmpl-t".into(),
            created: 0,
            model: "m".into(),
        };
        Completion::new(config, &request, header)
    }

    fn config(tokens_per_event: u32) -> MockConfig {
        MockConfig {
            ttft: Duration::from_millis(100),
            tokens_per_sec: 20.0,
            tokens_per_event,
            output_tokens: 10,
            api_key: None,
        }
    }

    /// Each frame's bytes and the time it came out, measured from `start`.
    async fn collect_timed(
        stream: impl Stream<Item = Result<Bytes, Infallible>>,
        start: Instant,
    ) -> Vec<(Duration, String)> {
        let mut stream = std::pin::pin!(stream);
        let mut out = Vec::new();
        while let Some(Ok(bytes)) = stream.next().await {
            let text = String::from_utf8(bytes.to_vec()).expect("frames are UTF-8");
            out.push((start.elapsed(), text));
        }
        out
    }

    #[tokio::test(start_paused = true)]
    async fn every_frame_goes_out_exactly_when_due() {
        let completion = completion(&config(1));
        let expected: Vec<_> = completion.frames().map(|f| (f.due, f.data)).collect();
        let start = Instant::now();
        let got = collect_timed(timed_frames(completion, start, Shutdown::never()), start).await;
        assert_eq!(got, expected);
        assert_eq!(got[1].0, Duration::from_millis(100), "first token at ttft");
        assert_eq!(
            got[10].0,
            Duration::from_millis(550),
            "token 9 at ttft + 9/rate"
        );
        assert_eq!(got.last().map(|(_, data)| data.as_str()), Some(DONE));
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_start_catches_up_without_drifting() {
        // The body is polled 300 ms after the request started: the frames already due go
        // out at once, the rest keep their schedule.
        let start = Instant::now();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let got = collect_timed(
            timed_frames(completion(&config(1)), start, Shutdown::never()),
            start,
        )
        .await;
        let times: Vec<_> = got.iter().map(|(at, _)| at.as_millis()).collect();
        assert_eq!(
            times,
            [300, 300, 300, 300, 300, 300, 350, 400, 450, 500, 550, 550, 550, 550]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_ends_the_stream_before_the_next_frame() {
        let (stop, receiver) = watch::channel(false);
        let start = Instant::now();
        let stream = timed_frames(
            completion(&config(1)),
            start,
            Shutdown::from_receiver(receiver),
        );
        let mut stream = std::pin::pin!(stream);
        assert!(stream.next().await.is_some(), "role chunk");
        assert!(stream.next().await.is_some(), "first token");
        stop.send(true).expect("the stream holds a receiver");
        assert!(stream.next().await.is_none());
        assert_eq!(start.elapsed(), Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_sender_counts_as_shutdown() {
        let (stop, receiver) = watch::channel(false);
        drop(stop);
        let start = Instant::now();
        let stream = timed_frames(
            completion(&config(1)),
            start,
            Shutdown::from_receiver(receiver),
        );
        let mut stream = std::pin::pin!(stream);
        assert!(stream.next().await.is_none());
    }
}
