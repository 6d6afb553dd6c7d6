//! The demo page as a test sees it: its Start and Stop buttons, and snapshots of its status
//! and log, read through the hooks the page keeps for this (`data-kind`, `data-id`).

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use serde::Deserialize;

use crate::{artifacts_dir, bounded, WAIT};

/// How often a wait looks at the page again.
const POLL: Duration = Duration::from_millis(50);

/// Reads the status and every log item in one go, so a snapshot is consistent.
const SNAPSHOT_SCRIPT: &str = r##"
const text = (id) => document.getElementById(id).textContent;
return {
  state: text("state"),
  reconnects: Number(text("reconnects")),
  log: Array.from(document.querySelectorAll("#log li"), (li) => ({
    kind: li.dataset.kind,
    id: li.dataset.id === undefined ? null : Number(li.dataset.id),
  })),
};
"##;

/// One line of the page's log.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct Entry {
    /// `open`, `message`, `bye`, `error` or `closed`.
    pub kind: String,
    /// The event id, for `message` and `bye`.
    pub id: Option<u64>,
}

impl Entry {
    /// An entry of `kind` without an id.
    #[must_use]
    pub fn plain(kind: &str) -> Self {
        Self {
            kind: kind.to_owned(),
            id: None,
        }
    }

    /// An entry of `kind` for the event `id`.
    #[must_use]
    pub fn event(kind: &str, id: u64) -> Self {
        Self {
            kind: kind.to_owned(),
            id: Some(id),
        }
    }
}

/// `open`, `message 3`: one line per entry when a failed test shows the log.
impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.id {
            Some(id) => write!(f, "{} {id}", self.kind),
            None => f.write_str(&self.kind),
        }
    }
}

/// What the page shows at one moment.
#[derive(Debug, Clone, Deserialize)]
pub struct Snapshot {
    /// The EventSource's state as the page shows it: `connecting`, `open` or `closed`.
    pub state: String,
    /// Reconnections the page has counted since Start.
    pub reconnects: u64,
    /// The log, oldest first.
    pub log: Vec<Entry>,
}

impl Snapshot {
    /// The ids of the `message` entries, in log order.
    #[must_use]
    pub fn message_ids(&self) -> Vec<u64> {
        self.log
            .iter()
            .filter(|e| e.kind == "message")
            .filter_map(|e| e.id)
            .collect()
    }

    /// How many entries are of `kind`.
    #[must_use]
    pub fn count(&self, kind: &str) -> usize {
        self.log.iter().filter(|e| e.kind == kind).count()
    }

    /// The kind of the newest entry.
    #[must_use]
    pub fn last_kind(&self) -> Option<&str> {
        self.log.last().map(|e| e.kind.as_str())
    }
}

/// The demo page open in the browser.
pub struct DemoPage<'a> {
    client: &'a Client,
}

impl<'a> DemoPage<'a> {
    /// Loads `url` and waits for the page's Start button.
    ///
    /// # Panics
    /// If the page does not load within [`WAIT`].
    pub async fn open(client: &'a Client, url: &str) -> Self {
        bounded("the page loads", WAIT, async {
            client.goto(url).await.expect("the page loads");
            client
                .wait()
                .at_most(WAIT)
                .for_element(Locator::Id("start"))
                .await
                .expect("the page has a Start button");
        })
        .await;
        Self { client }
    }

    /// Clicks the button with this id (`start` or `stop`).
    ///
    /// # Panics
    /// If there is no such button or the click fails.
    pub async fn click(&self, id: &str) {
        bounded(&format!("clicking #{id}"), WAIT, async {
            let button = self
                .client
                .find(Locator::Id(id))
                .await
                .unwrap_or_else(|e| panic!("no #{id}: {e}"));
            button
                .click()
                .await
                .unwrap_or_else(|e| panic!("cannot click #{id}: {e}"));
        })
        .await;
    }

    /// What the page shows now.
    ///
    /// # Panics
    /// If the page cannot be read.
    pub async fn snapshot(&self) -> Snapshot {
        let value = bounded("reading the page", WAIT, async {
            self.client
                .execute(SNAPSHOT_SCRIPT, Vec::new())
                .await
                .expect("the snapshot script runs")
        })
        .await;
        serde_json::from_value(value).expect("the snapshot has the expected shape")
    }

    /// Polls the page until `check` holds for a snapshot, and returns that snapshot.
    ///
    /// # Panics
    /// After [`WAIT`], naming `what` and showing the last snapshot.
    pub async fn wait_until(&self, what: &str, check: impl Fn(&Snapshot) -> bool) -> Snapshot {
        let deadline = Instant::now() + WAIT;
        loop {
            let snapshot = self.snapshot().await;
            if check(&snapshot) {
                return snapshot;
            }
            assert!(
                Instant::now() < deadline,
                "waited {WAIT:?} for {what}; the page shows {snapshot:#?}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Saves a PNG of the page as `target/browser-artifacts/<name>` and returns its path.
    ///
    /// # Panics
    /// If the screenshot cannot be taken or written.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = bounded("taking a screenshot", WAIT, self.client.screenshot())
            .await
            .expect("a screenshot");
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n"),
            "the screenshot is a PNG"
        );
        let path = artifacts_dir().join(name);
        std::fs::write(&path, png)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        path
    }
}
