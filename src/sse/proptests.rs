//! Property tests of the wire format: the parser never panics on any bytes in any chunking,
//! encoding then parsing gives the event back, and where the chunks split does not matter.

use bytes::BytesMut;
use proptest::prelude::*;

use super::encode::{self, Event};
use super::parse::{OwnedMessageEvent, Parser};

/// Feeds `bytes` split at `cuts` (positions, any order, clamped) and returns the events.
fn parse_split(bytes: &[u8], cuts: &[usize]) -> (Vec<OwnedMessageEvent>, String, Option<u64>) {
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(bytes.len())).collect();
    cuts.sort_unstable();
    let mut parser = Parser::new();
    let mut events = Vec::new();
    let mut start = 0;
    for cut in cuts.into_iter().chain([bytes.len()]) {
        events.extend(parser.feed_collect(&bytes[start..cut]));
        start = cut;
    }
    (events, parser.last_event_id().to_owned(), parser.retry_ms())
}

/// Bytes that look like an event stream often enough to reach every rule.
fn stream_like_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"data".to_vec()),
        Just(b"id".to_vec()),
        Just(b"event".to_vec()),
        Just(b"retry".to_vec()),
        Just(b":".to_vec()),
        Just(b": ".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\xEF\xBB\xBF".to_vec()),
        Just(b"\0".to_vec()),
        Just("€".as_bytes().to_vec()),
        proptest::collection::vec(any::<u8>(), 0..4),
        "[0-9]{1,3}".prop_map(String::into_bytes),
    ];
    proptest::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
}

/// Text without NUL for ids and names would be refused; data may hold anything.
fn field_text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 :€]{0,12}"
}

fn data_text() -> impl Strategy<Value = String> {
    "([a-z0-9 :€]{0,6}(\r\n|\r|\n)?){0,5}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_bytes_in_any_chunking_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        parse_split(&bytes, &cuts);
    }

    #[test]
    fn every_split_point_gives_the_same_events(bytes in stream_like_bytes()) {
        let whole = parse_split(&bytes, &[]);
        for cut in 0..=bytes.len() {
            prop_assert_eq!(&parse_split(&bytes, &[cut]), &whole, "split at {}", cut);
        }
        let every_byte: Vec<usize> = (1..bytes.len()).collect();
        prop_assert_eq!(&parse_split(&bytes, &every_byte), &whole);
    }

    #[test]
    fn encode_then_parse_gives_the_event_back(
        id in proptest::option::of(field_text()),
        name in proptest::option::of(field_text()),
        data in data_text(),
        retry in proptest::option::of(0u64..1_000_000),
    ) {
        let mut event = Event::default().with_data(data.clone());
        if let Some(id) = &id {
            event = event.with_id(id.clone()).unwrap();
        }
        if let Some(name) = &name {
            event = event.with_event(name.clone()).unwrap();
        }
        if let Some(retry) = retry {
            event = event.with_retry_ms(retry);
        }
        let mut parser = Parser::new();
        let events = parser.feed_collect(&event.to_bytes());
        // Line breaks of any kind come back as LF, as the standard reads them.
        let expected_data = data.replace("\r\n", "\n").replace('\r', "\n");
        let expected_type = match name.as_deref() {
            None | Some("") => "message",
            Some(name) => name,
        };
        prop_assert_eq!(events.len(), 1);
        prop_assert_eq!(&events[0].data, &expected_data);
        prop_assert_eq!(&events[0].event_type, expected_type);
        prop_assert_eq!(&events[0].last_event_id, id.as_deref().unwrap_or(""));
        prop_assert_eq!(parser.retry_ms(), retry);
    }

    #[test]
    fn comments_never_dispatch(text in "[^\0]{0,40}") {
        let mut buf = BytesMut::new();
        encode::write_comment(&mut buf, &text);
        prop_assert!(Parser::new().feed_collect(&buf).is_empty());
    }
}
