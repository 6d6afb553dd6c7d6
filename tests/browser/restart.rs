//! The server stopped mid-stream and started again on the same port: the browser reconnects
//! by itself, sends Last-Event-ID, and the page goes on from the next number.

use sse_digits::config::Config;

use crate::driver::Browser;
use crate::page::DemoPage;
use sse_digits::telemetry::names::{STREAMS_OPEN, STREAMS_STARTED};

use crate::server::{self, TestServer};
use crate::{bounded, CASE_LIMIT};

/// Milliseconds between two numbers.
const INTERVAL_MS: u64 = 100;
/// Far more numbers than the case waits for: the stream is always mid-way.
const COUNT: u64 = 100_000;
/// Numbers seen before the stop, and again after the restart.
const NUMBERS_EACH_SIDE: u64 = 5;

#[tokio::test]
async fn the_page_resumes_after_a_restart_on_the_same_port_and_stop_closes_it() {
    let name = "restart";
    let Some(browser) = Browser::launch_or_skip(name).await else {
        return;
    };
    bounded(name, CASE_LIMIT, async {
        let config = server::config(INTERVAL_MS, COUNT);
        let first = TestServer::start(config.clone()).await;
        let addr = first.addr;
        let page = DemoPage::open(&browser.client, &first.url("/")).await;
        page.click("start").await;
        page.wait_until("the first numbers", |s| {
            s.message_ids().len() >= usize::try_from(NUMBERS_EACH_SIDE).unwrap()
        })
        .await;

        // Graceful stop: the stream gets a `retry:` hint and closes; new connections are
        // refused, and the browser keeps retrying.
        first.stop().await;
        let down = page
            .wait_until("the page noticing the server is gone", |s| {
                s.state == "connecting" && s.last_kind() == Some("error")
            })
            .await;
        let last_before = *down.message_ids().last().expect("numbers before the stop");

        let second = TestServer::start(Config {
            bind: addr,
            ..config
        })
        .await;
        assert_eq!(second.addr, addr);
        let resumed = page
            .wait_until("the page reconnected and past more numbers", |s| {
                s.count("open") >= 2
                    && s.message_ids()
                        .last()
                        .is_some_and(|&id| id >= last_before + NUMBERS_EACH_SIDE)
            })
            .await;
        // Every number once, in order: nothing skipped, and no new start from 1.
        let ids = resumed.message_ids();
        let expected: Vec<u64> = (1..=ids.len() as u64).collect();
        assert_eq!(ids, expected, "numbers across the restart");
        let reopened = resumed
            .log
            .iter()
            .rposition(|e| e.kind == "open")
            .expect("an open entry");
        let first_after = resumed.log[reopened..]
            .iter()
            .find_map(|e| e.id)
            .expect("a number after the reconnect");
        assert_eq!(first_after, last_before + 1, "{resumed:#?}");
        assert!(resumed.reconnects >= 1, "{resumed:#?}");
        assert!(second.metric(STREAMS_STARTED).await >= 1.0);
        eprintln!(
            "restart: stopped after {last_before}, resumed at {first_after}, \
             {} reconnect(s), {} error entr(ies) while down",
            resumed.reconnects,
            resumed.count("error"),
        );

        page.click("stop").await;
        let stopped = page
            .wait_until("Stop closing the stream", |s| {
                s.state == "closed" && s.last_kind() == Some("closed")
            })
            .await;
        second
            .wait_for_metric(STREAMS_OPEN, |open| open == 0.0)
            .await;
        let after = page.snapshot().await;
        assert_eq!(after.log, stopped.log, "the page went on after Stop");
        second.stop().await;
    })
    .await;
    browser.close().await;
}
