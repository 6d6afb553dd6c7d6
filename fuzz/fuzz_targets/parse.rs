//! Fuzzes the SSE parser: the first byte picks a chunk size, the rest is the stream. The
//! parser must never panic, and chunking must not change what it reads.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sse_digits::sse::Parser;

fuzz_target!(|input: &[u8]| {
    let Some((&chunk_byte, stream)) = input.split_first() else {
        return;
    };
    let chunk_size = usize::from(chunk_byte).max(1);
    let mut whole = Parser::new();
    let expected = whole.feed_collect(stream);
    let mut chunked = Parser::new();
    let mut events = Vec::new();
    for chunk in stream.chunks(chunk_size) {
        events.extend(chunked.feed_collect(chunk));
    }
    assert_eq!(events, expected);
    assert_eq!(chunked.last_event_id(), whole.last_event_id());
    assert_eq!(chunked.retry_ms(), whole.retry_ms());
});
