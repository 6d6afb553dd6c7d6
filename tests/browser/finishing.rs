//! A stream run to its end: every number in order, then `bye`, then quiet.

use std::time::Duration;

use crate::driver::Browser;
use crate::page::{DemoPage, Entry};
use sse_digits::telemetry::names::{RESUMED_PAST_END, STREAMS_OPEN, STREAMS_STARTED};

use crate::server::{self, TestServer};
use crate::{bounded, CASE_LIMIT};

/// Milliseconds between two numbers.
const INTERVAL_MS: u64 = 100;
/// The id of `bye`: numbers 1 ..= 19 come first, about 2 s of stream, time enough to look
/// at the page mid-way.
const COUNT: u64 = 20;
/// How long the page is watched after `bye`: ten of the server's 300 ms retry periods, so a
/// reconnect loop would show several times over.
const QUIET: Duration = Duration::from_secs(3);

#[tokio::test]
async fn the_page_shows_every_number_in_order_then_bye_and_stays_closed() {
    let name = "finishing";
    let Some(browser) = Browser::launch_or_skip(name).await else {
        return;
    };
    bounded(name, CASE_LIMIT, async {
        let server = TestServer::start(server::config(INTERVAL_MS, COUNT)).await;
        let page = DemoPage::open(&browser.client, &server.url("/")).await;
        let fresh = page.snapshot().await;
        assert_eq!(fresh.state, "closed");
        assert!(fresh.log.is_empty(), "{fresh:?}");

        page.click("start").await;
        let running = page
            .wait_until("three numbers", |s| s.message_ids().len() >= 3)
            .await;
        if running.count("bye") == 0 {
            assert_eq!(running.state, "open", "{running:#?}");
        }
        let shot = page.screenshot("finishing-mid-stream.png").await;
        eprintln!("finishing: screenshot at {}", shot.display());

        let finished = page
            .wait_until("bye, and the page closing the stream", |s| {
                s.last_kind() == Some("closed")
            })
            .await;
        let mut expected = vec![Entry::plain("open")];
        expected.extend((1..COUNT).map(|id| Entry::event("message", id)));
        expected.push(Entry::event("bye", COUNT));
        expected.push(Entry::plain("closed"));
        assert_eq!(finished.log, expected);
        assert_eq!(finished.state, "closed");
        assert_eq!(finished.reconnects, 0);
        assert_eq!(server.metric(STREAMS_STARTED).await, 1.0);

        // No reconnect loop: neither the page nor the server sees another attempt.
        tokio::time::sleep(QUIET).await;
        let later = page.snapshot().await;
        assert_eq!(later.log, finished.log, "the page did something after bye");
        assert_eq!(later.state, "closed");
        assert_eq!(server.metric(STREAMS_STARTED).await, 1.0);
        assert_eq!(server.metric(RESUMED_PAST_END).await, 0.0);
        server
            .wait_for_metric(STREAMS_OPEN, |open| open == 0.0)
            .await;
        server.stop().await;
    })
    .await;
    browser.close().await;
}
