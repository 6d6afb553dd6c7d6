//! `--host a,b,…`: several servers (the replicas behind a balancer, say) loaded by one run,
//! user `i` on target `i mod n`. The server's figures read from `/metrics` (its own
//! lateness, its state after the run) come from the first target.

use anyhow::{anyhow, bail};
use reqwest::Url;

/// The targets `--host` names, comma-separated; none without `--host`.
///
/// # Errors
/// When an entry is empty or not an absolute http(s) URL; the message names it.
pub fn split_hosts(host: Option<&str>) -> anyhow::Result<Vec<Url>> {
    let Some(host) = host else {
        return Ok(Vec::new());
    };
    if !host.contains(',') {
        // One target: goose checks it as it always has.
        return Ok(Vec::new());
    }
    host.split(',')
        .map(str::trim)
        .map(|entry| {
            if entry.is_empty() {
                bail!("--host {host:?}: an empty target between commas");
            }
            let url = Url::parse(entry).map_err(|e| anyhow!("--host target {entry:?}: {e}"))?;
            if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                bail!("--host target {entry:?}: give http://HOST:PORT or https://HOST:PORT");
            }
            Ok(url)
        })
        .collect()
}

/// The run's target as the summary names it: every host with the path and query.
#[must_use]
pub fn describe(hosts: &[Url], path_and_query: &str) -> String {
    hosts
        .iter()
        .map(|h| format!("{}{path_and_query}", h.as_str().trim_end_matches('/')))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_hosts_are_split_and_checked() {
        assert!(split_hosts(None).unwrap().is_empty());
        assert!(split_hosts(Some("http://a:1")).unwrap().is_empty());
        let hosts = split_hosts(Some("http://a:1, http://b:2/")).unwrap();
        assert_eq!(hosts.len(), 2);
        assert_eq!(
            describe(&hosts, "/digits?interval_ms=100"),
            "http://a:1/digits?interval_ms=100, http://b:2/digits?interval_ms=100"
        );
        assert!(split_hosts(Some("http://a:1,,http://b:2")).is_err());
        assert!(split_hosts(Some("http://a:1,b:2")).is_err());
    }
}
