//! An incremental SSE parser that follows the WHATWG "event stream interpretation" rules.
//!
//! Feed it the body as it arrives, in chunks of any size; it calls back once per dispatched
//! event with borrowed strings, so a steady stream costs no allocation per event. It keeps
//! the state a browser's `EventSource` keeps across reconnections: the last event ID and the
//! reconnection time.

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One dispatched event, as a browser's `MessageEvent` would show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageEvent<'a> {
    /// The event type: the `event` field, or `message` when there was none.
    pub event_type: &'a str,
    /// The data lines joined with LF.
    pub data: &'a str,
    /// The last event ID in force when the event was dispatched.
    pub last_event_id: &'a str,
}

/// Incremental parser state for one event source (it outlives reconnections).
#[derive(Debug, Default)]
pub struct Parser {
    /// Bytes of a line that has not ended yet, kept across chunks.
    partial_line: Vec<u8>,
    /// The previous chunk ended in CR: an LF at the start of the next one ends nothing.
    after_cr: bool,
    /// The first line of the current stream has been seen (so a BOM is no longer stripped).
    past_first_line: bool,
    /// The standard's "data buffer".
    data: String,
    /// The standard's "event type buffer".
    event_type: String,
    /// The standard's "last event ID buffer": set by `id` fields, applied at dispatch.
    id_buffer: String,
    /// The event source's last event ID string, sent back as `Last-Event-ID`.
    last_event_id: String,
    /// The reconnection time in milliseconds from the last valid `retry` field.
    retry_ms: Option<u64>,
    /// Comment lines seen, such as keep-alives.
    comments: u64,
    /// Valid `retry` fields seen, so a caller can tell whether a connection sent one.
    retry_fields: u64,
    /// Field values that were not valid UTF-8 (decoded with U+FFFD in their place).
    invalid_utf8: u64,
}

impl Parser {
    /// A parser for a new event source: no last event ID, no retry hint.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The last event ID string (empty when none), to send as `Last-Event-ID` on reconnect.
    #[must_use]
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// Sets the last event ID as if an event carrying `id` had been dispatched: for a
    /// client resuming a stream it saw earlier (the `Last-Event-ID` it will send). An id
    /// holding NUL is ignored, as the `id` field would be.
    pub fn set_last_event_id(&mut self, id: &str) {
        if !id.contains('\0') {
            self.last_event_id.clear();
            self.last_event_id.push_str(id);
            self.id_buffer.clone_from(&self.last_event_id);
        }
    }

    /// The reconnection time set by the last valid `retry` field, if any.
    #[must_use]
    pub fn retry_ms(&self) -> Option<u64> {
        self.retry_ms
    }

    /// How many valid `retry` fields have been seen (compare before and after a connection
    /// to know whether it sent a hint).
    #[must_use]
    pub fn retry_fields_seen(&self) -> u64 {
        self.retry_fields
    }

    /// How many `event`, `data` and `id` values held bytes that are not UTF-8: each is
    /// decoded with U+FFFD in their place, as the standard says; a client counts them to
    /// name a server that sends such bytes.
    #[must_use]
    pub fn invalid_utf8_seen(&self) -> u64 {
        self.invalid_utf8
    }

    /// How many comment lines (such as `: keep-alive`) have been seen.
    #[must_use]
    pub fn comments_seen(&self) -> u64 {
        self.comments
    }

    /// Bytes held for what has not been dispatched yet: the line that has not ended, and the
    /// event being built (its data, its event type, and an `id` not yet applied). A client
    /// that must bound its memory checks this after each chunk: a stream that never ends a
    /// line, or never ends an event, makes it grow without bound. Constant time, apart
    /// from comparing a pending `id` with the last one.
    #[must_use]
    pub fn pending_bytes(&self) -> usize {
        let id = if self.id_buffer == self.last_event_id {
            0
        } else {
            self.id_buffer.len()
        };
        self.partial_line.len() + self.data.len() + self.event_type.len() + id
    }

    /// Starts a new response body on the same event source (a reconnection): anything
    /// pending from the old one is discarded, as at end of file, and a BOM may lead again.
    /// The last event ID and the reconnection time are kept.
    pub fn start_new_stream(&mut self) {
        self.partial_line.clear();
        self.after_cr = false;
        self.past_first_line = false;
        self.data.clear();
        self.event_type.clear();
        self.id_buffer.clone_from(&self.last_event_id);
    }

    /// Parses `chunk`, the next bytes of the body, calling `on_event` for each dispatched
    /// event. Bytes after the last line break wait for the next chunk.
    pub fn feed(&mut self, chunk: &[u8], mut on_event: impl FnMut(MessageEvent<'_>)) {
        let mut rest = chunk;
        if self.after_cr {
            self.after_cr = false;
            if let Some(tail) = rest.strip_prefix(b"\n") {
                rest = tail;
            }
        }
        while let Some(end) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            let terminator = rest[end];
            if self.partial_line.is_empty() {
                self.process_line_bytes(&rest[..end], &mut on_event);
            } else {
                let mut line = std::mem::take(&mut self.partial_line);
                line.extend_from_slice(&rest[..end]);
                self.process_line_bytes(&line, &mut on_event);
                line.clear();
                self.partial_line = line;
            }
            rest = &rest[end + 1..];
            if terminator == b'\r' {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
        }
        self.partial_line.extend_from_slice(rest);
    }

    /// Parses a whole body, or the next chunk of one, and returns the events it dispatched.
    pub fn feed_collect(&mut self, chunk: &[u8]) -> Vec<OwnedMessageEvent> {
        let mut events = Vec::new();
        self.feed(chunk, |event| events.push(OwnedMessageEvent::from(event)));
        events
    }

    fn process_line_bytes(&mut self, line: &[u8], on_event: &mut impl FnMut(MessageEvent<'_>)) {
        let line = if self.past_first_line {
            line
        } else {
            self.past_first_line = true;
            line.strip_prefix(BOM).unwrap_or(line)
        };
        if line.is_empty() {
            self.dispatch(on_event);
            return;
        }
        if line[0] == b':' {
            self.comments += 1;
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        self.process_field(field, value);
    }

    fn process_field(&mut self, field: &[u8], value: &[u8]) {
        let target = match field {
            b"event" => {
                self.event_type.clear();
                &mut self.event_type
            }
            b"data" => &mut self.data,
            // An id containing NUL is ignored.
            b"id" if !value.contains(&0) => {
                self.id_buffer.clear();
                &mut self.id_buffer
            }
            // Only ASCII digits count; too many for u64 are still digits, so saturate.
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                self.retry_ms = Some(parse_digits_saturating(value));
                self.retry_fields += 1;
                return;
            }
            _ => return,
        };
        let text = String::from_utf8_lossy(value);
        if matches!(text, std::borrow::Cow::Owned(_)) {
            self.invalid_utf8 += 1;
        }
        target.push_str(&text);
        if field == b"data" {
            target.push('\n');
        }
    }

    fn dispatch(&mut self, on_event: &mut impl FnMut(MessageEvent<'_>)) {
        if self.last_event_id != self.id_buffer {
            self.last_event_id.clone_from(&self.id_buffer);
        }
        if self.data.is_empty() {
            self.event_type.clear();
            return;
        }
        self.data.pop(); // the LF after the last data line
        let event_type = if self.event_type.is_empty() {
            "message"
        } else {
            &self.event_type
        };
        on_event(MessageEvent {
            event_type,
            data: &self.data,
            last_event_id: &self.last_event_id,
        });
        self.data.clear();
        self.event_type.clear();
    }
}

fn parse_digits_saturating(digits: &[u8]) -> u64 {
    digits.iter().fold(0u64, |acc, &d| {
        acc.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    })
}

/// An owned copy of a [`MessageEvent`], for tests and tools that keep events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedMessageEvent {
    /// See [`MessageEvent::event_type`].
    pub event_type: String,
    /// See [`MessageEvent::data`].
    pub data: String,
    /// See [`MessageEvent::last_event_id`].
    pub last_event_id: String,
}

impl From<MessageEvent<'_>> for OwnedMessageEvent {
    fn from(event: MessageEvent<'_>) -> Self {
        Self {
            event_type: event.event_type.to_owned(),
            data: event.data.to_owned(),
            last_event_id: event.last_event_id.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_chunks(chunks: &[&[u8]]) -> (Vec<OwnedMessageEvent>, Parser) {
        let mut parser = Parser::new();
        let mut events = Vec::new();
        for chunk in chunks {
            events.extend(parser.feed_collect(chunk));
        }
        (events, parser)
    }

    fn event(event_type: &str, data: &str, id: &str) -> OwnedMessageEvent {
        OwnedMessageEvent {
            event_type: event_type.into(),
            data: data.into(),
            last_event_id: id.into(),
        }
    }

    /// Every case of the shared WHATWG vectors (a copy kept in `testdata/`).
    #[test]
    fn passes_every_shared_vector() {
        let vectors: serde_json::Value =
            serde_json::from_str(include_str!("testdata/sse-vectors.json")).unwrap();
        let cases = vectors["cases"].as_array().unwrap();
        assert!(cases.len() >= 30, "the vector file lost cases");
        for case in cases {
            let name = case["name"].as_str().unwrap();
            let chunks: Vec<Vec<u8>> = case["chunks_hex"]
                .as_array()
                .unwrap()
                .iter()
                .map(|hex| decode_hex(hex.as_str().unwrap()))
                .collect();
            let chunk_refs: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
            let (events, parser) = parse_chunks(&chunk_refs);
            let expected: Vec<OwnedMessageEvent> = case["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    event(
                        e["type"].as_str().unwrap(),
                        e["data"].as_str().unwrap(),
                        e["last_event_id"].as_str().unwrap(),
                    )
                })
                .collect();
            assert_eq!(events, expected, "case {name}: events");
            assert_eq!(
                parser.last_event_id(),
                case["last_event_id"].as_str().unwrap(),
                "case {name}: last event id"
            );
            assert_eq!(
                parser.retry_ms(),
                case["retry"].as_u64(),
                "case {name}: retry"
            );
        }
    }

    fn decode_hex(hex: &str) -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn cr_at_the_end_of_a_chunk_then_lf_is_one_line_end() {
        let (events, _) = parse_chunks(&[b"data: a\r", b"\n\r", b"\n"]);
        assert_eq!(events, vec![event("message", "a", "")]);
    }

    #[test]
    fn cr_at_the_end_of_a_chunk_then_text_is_a_line_end() {
        let (events, _) = parse_chunks(&[b"data: a\r", b"data: b\r", b"\r"]);
        assert_eq!(events, vec![event("message", "a\nb", "")]);
    }

    #[test]
    fn bom_split_across_chunks_is_stripped() {
        let (events, _) = parse_chunks(&[b"\xEF", b"\xBB", b"\xBFdata: x\n\n"]);
        assert_eq!(events, vec![event("message", "x", "")]);
    }

    #[test]
    fn a_field_split_across_chunks_is_read_whole() {
        let (events, _) = parse_chunks(&[b"da", b"ta: he", b"llo\n", b"\n"]);
        assert_eq!(events, vec![event("message", "hello", "")]);
    }

    #[test]
    fn comments_are_counted_and_dispatch_nothing() {
        let (events, parser) = parse_chunks(&[b": keep-alive\n\n:\n\n"]);
        assert!(events.is_empty());
        assert_eq!(parser.comments_seen(), 2);
    }

    #[test]
    fn valid_retry_fields_are_counted_and_invalid_ones_are_not() {
        let (_, parser) = parse_chunks(&[b"retry: 10\nretry: x\nretry: 20\n\n"]);
        assert_eq!(parser.retry_fields_seen(), 2);
        assert_eq!(parser.retry_ms(), Some(20));
    }

    #[test]
    fn a_set_last_event_id_persists_like_a_received_one() {
        let mut parser = Parser::new();
        parser.set_last_event_id("41");
        assert_eq!(parser.last_event_id(), "41");
        let events = parser.feed_collect(b"data: x\n\n");
        assert_eq!(events, vec![event("message", "x", "41")]);
        parser.set_last_event_id("4\0");
        assert_eq!(parser.last_event_id(), "41", "an id with NUL is ignored");
    }

    #[test]
    fn huge_retry_saturates_instead_of_being_lost() {
        let (_, parser) = parse_chunks(&[b"retry: 99999999999999999999999\n\n"]);
        assert_eq!(parser.retry_ms(), Some(u64::MAX));
    }

    #[test]
    fn a_new_stream_discards_pending_state_but_keeps_id_and_retry() {
        let mut parser = Parser::new();
        let events = parser.feed_collect(b"retry: 50\nid: 4\ndata: 4\n\nid: 5\ndata: cut");
        assert_eq!(events, vec![event("message", "4", "4")]);
        parser.start_new_stream();
        let events = parser.feed_collect(b"\xEF\xBB\xBFdata: 5\n\n");
        assert_eq!(events, vec![event("message", "5", "4")]);
        assert_eq!(parser.retry_ms(), Some(50));
    }

    #[test]
    fn pending_bytes_count_the_open_line_and_the_event_until_dispatch() {
        let mut parser = Parser::new();
        assert_eq!(parser.pending_bytes(), 0);
        parser.feed_collect(b"data: ab");
        assert_eq!(parser.pending_bytes(), "data: ab".len(), "the open line");
        parser.feed_collect(b"c\nevent: big\nid: 7\n");
        assert_eq!(
            parser.pending_bytes(),
            "abc\n".len() + "big".len() + "7".len()
        );
        parser.feed_collect(b"data: d\n");
        assert_eq!(parser.pending_bytes(), "abc\nd\n".len() + "big".len() + 1);
        let events = parser.feed_collect(b"\n");
        assert_eq!(events, vec![event("big", "abc\nd", "7")]);
        assert_eq!(parser.pending_bytes(), 0, "nothing after dispatch");
        parser.feed_collect(b"data: e\n");
        parser.start_new_stream();
        assert_eq!(parser.pending_bytes(), 0, "nothing after a new stream");
    }

    #[test]
    fn pending_bytes_grow_with_an_endless_line_and_an_endless_event() {
        let mut line = Parser::new();
        line.feed_collect(b"data: ");
        let mut event = Parser::new();
        for _ in 0..1000 {
            line.feed_collect(&[b'x'; 100]);
            event.feed_collect(b"data: x\n");
        }
        assert_eq!(line.pending_bytes(), 6 + 100_000);
        assert_eq!(event.pending_bytes(), 2000);
    }

    #[test]
    fn the_events_of_a_digits_stream_come_out_in_order() {
        let mut body = Vec::new();
        for n in 1..100u32 {
            body.extend_from_slice(format!("id: {n}\ndata: {n}\n\n").as_bytes());
        }
        let mut parser = Parser::new();
        let mut seen = Vec::new();
        for chunk in body.chunks(7) {
            parser.feed(chunk, |e| {
                assert_eq!(e.data, e.last_event_id);
                seen.push(e.data.parse::<u32>().unwrap());
            });
        }
        assert_eq!(seen, (1..100).collect::<Vec<_>>());
    }

    #[test]
    fn invalid_utf8_is_replaced_and_counted_and_nul_and_a_late_bom_are_kept() {
        let mut parser = Parser::new();
        let events = parser.feed_collect(
            b"data: a\xFFb\nid: \xC3\n\ndata: n\x00l\n\n\xEF\xBB\xBFdata: hidden\ndata: bom\xEF\xBB\xBF\n\n",
        );
        let data: Vec<&str> = events.iter().map(|e| e.data.as_str()).collect();
        // The BOM leads only the stream's first line; later, it makes the field unknown.
        assert_eq!(data, ["a\u{FFFD}b", "n\0l", "bom\u{FEFF}"]);
        assert_eq!(events[0].last_event_id, "\u{FFFD}");
        assert_eq!(parser.invalid_utf8_seen(), 2);
        parser.feed_collect(b"data: fine \xE2\x82\xAC\n\n");
        assert_eq!(parser.invalid_utf8_seen(), 2);
    }
}
