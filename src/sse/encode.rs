//! Encoding of SSE events into bytes.
//!
//! Two layers: [`Event`], a validated owned event for general use, and small `write_*`
//! functions over a [`BytesMut`] that the digits stream calls on its hot path (no allocation
//! once the buffer has grown).

use bytes::{BufMut, BytesMut};

/// Why a value cannot be sent as an SSE field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// CR, LF or NUL in an `id`: a line break would end the field early, and the standard
    /// tells clients to ignore an id containing NUL.
    #[error("an SSE id must not contain CR, LF or NUL")]
    InvalidId,
    /// CR, LF or NUL in an event name: a line break would end the field early.
    #[error("an SSE event name must not contain CR, LF or NUL")]
    InvalidEventName,
}

/// One SSE event: optional id, event name, data and retry hint.
///
/// Built with [`Event::default`] and the `with_*` methods, which refuse values that would
/// break the wire format.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    id: Option<String>,
    event: Option<String>,
    data: Option<String>,
    retry_ms: Option<u64>,
}

impl Event {
    /// Sets the `id` field.
    ///
    /// # Errors
    /// [`EncodeError::InvalidId`] if `id` contains CR, LF or NUL.
    pub fn with_id(mut self, id: impl Into<String>) -> Result<Self, EncodeError> {
        let id = id.into();
        if has_forbidden_byte(&id) {
            return Err(EncodeError::InvalidId);
        }
        self.id = Some(id);
        Ok(self)
    }

    /// Sets the event name (the `event` field; clients default it to `message`).
    ///
    /// # Errors
    /// [`EncodeError::InvalidEventName`] if `name` contains CR, LF or NUL.
    pub fn with_event(mut self, name: impl Into<String>) -> Result<Self, EncodeError> {
        let name = name.into();
        if has_forbidden_byte(&name) {
            return Err(EncodeError::InvalidEventName);
        }
        self.event = Some(name);
        Ok(self)
    }

    /// Sets the data. Any text is allowed: line breaks (LF, CR or CRLF) become several
    /// `data:` lines, which clients join with LF.
    #[must_use]
    pub fn with_data(mut self, data: impl Into<String>) -> Self {
        self.data = Some(data.into());
        self
    }

    /// Sets the `retry` hint, the reconnection delay in milliseconds.
    #[must_use]
    pub fn with_retry_ms(mut self, retry_ms: u64) -> Self {
        self.retry_ms = Some(retry_ms);
        self
    }

    /// Appends the encoded event, blank line included, to `buf`.
    pub fn encode_into(&self, buf: &mut BytesMut) {
        if let Some(retry_ms) = self.retry_ms {
            write_retry_line(buf, retry_ms);
        }
        if let Some(id) = &self.id {
            write_field(buf, b"id", id.as_bytes());
        }
        if let Some(event) = &self.event {
            write_field(buf, b"event", event.as_bytes());
        }
        if let Some(data) = &self.data {
            write_multiline(buf, b"data", data);
        }
        buf.put_u8(b'\n');
    }

    /// The encoded event as bytes.
    #[must_use]
    pub fn to_bytes(&self) -> bytes::Bytes {
        let mut buf = BytesMut::new();
        self.encode_into(&mut buf);
        buf.freeze()
    }
}

fn has_forbidden_byte(value: &str) -> bool {
    value.bytes().any(|b| matches!(b, b'\r' | b'\n' | b'\0'))
}

/// Writes `name: value\n`, or `name\n` for an empty value (the standard reads both the same).
fn write_field(buf: &mut BytesMut, name: &[u8], value: &[u8]) {
    buf.reserve(name.len() + value.len() + 3);
    buf.put_slice(name);
    if !value.is_empty() {
        // Always one space after the colon, so a value that itself starts with a space
        // survives the parser's stripping of exactly one space.
        buf.put_slice(b": ");
        buf.put_slice(value);
    }
    buf.put_u8(b'\n');
}

/// Calls `each` with every line of `text`, splitting on CRLF, CR and LF as the parser does.
fn for_each_line(text: &str, mut each: impl FnMut(&[u8])) {
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if matches!(bytes[i], b'\n' | b'\r') {
            each(&bytes[start..i]);
            if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
                i += 1;
            }
            start = i + 1;
        }
        i += 1;
    }
    each(&bytes[start..]);
}

/// Writes one `name:` line per line of `text`.
fn write_multiline(buf: &mut BytesMut, name: &[u8], text: &str) {
    for_each_line(text, |line| write_field(buf, name, line));
}

/// Appends a digits event, `id: N\ndata: N\n\n`, without allocating.
pub fn write_number_event(buf: &mut BytesMut, n: u64) {
    let mut digits = itoa::Buffer::new();
    let n = digits.format(n).as_bytes();
    write_field(buf, b"id", n);
    write_field(buf, b"data", n);
    buf.put_u8(b'\n');
}

/// Appends a named event with an id and single-line data: `id: N\nevent: NAME\ndata: DATA\n\n`.
///
/// The caller passes constants: `event` and `data` must hold no CR, LF or NUL (checked in
/// debug builds).
pub fn write_named_event(buf: &mut BytesMut, id: u64, event: &str, data: &str) {
    debug_assert!(!has_forbidden_byte(event) && !has_forbidden_byte(data));
    let mut digits = itoa::Buffer::new();
    write_field(buf, b"id", digits.format(id).as_bytes());
    write_field(buf, b"event", event.as_bytes());
    write_field(buf, b"data", data.as_bytes());
    buf.put_u8(b'\n');
}

fn write_retry_line(buf: &mut BytesMut, retry_ms: u64) {
    let mut digits = itoa::Buffer::new();
    write_field(buf, b"retry", digits.format(retry_ms).as_bytes());
}

/// Appends a retry hint as a block of its own: `retry: MS\n\n`.
pub fn write_retry(buf: &mut BytesMut, retry_ms: u64) {
    write_retry_line(buf, retry_ms);
    buf.put_u8(b'\n');
}

/// Appends a comment block (`: text\n\n`); clients ignore it, proxies see traffic.
/// Line breaks in `text` start new comment lines.
pub fn write_comment(buf: &mut BytesMut, text: &str) {
    for_each_line(text, |line| {
        // A bare `:` even for an empty line: an empty line would dispatch the event.
        buf.reserve(line.len() + 3);
        buf.put_u8(b':');
        if !line.is_empty() {
            buf.put_u8(b' ');
            buf.put_slice(line);
        }
        buf.put_u8(b'\n');
    });
    buf.put_u8(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(event: &Event) -> String {
        String::from_utf8(event.to_bytes().to_vec()).unwrap()
    }

    #[test]
    fn id_event_and_data_in_field_order() {
        let event = Event::default()
            .with_data("foo")
            .with_event("bar")
            .unwrap()
            .with_id("42")
            .unwrap();
        assert_eq!(encoded(&event), "id: 42\nevent: bar\ndata: foo\n\n");
    }

    #[test]
    fn data_is_split_on_lf_cr_and_crlf() {
        let event = Event::default().with_data("a\nb\rc\r\nd");
        assert_eq!(encoded(&event), "data: a\ndata: b\ndata: c\ndata: d\n\n");
    }

    #[test]
    fn trailing_and_doubled_line_breaks_keep_empty_lines() {
        let event = Event::default().with_data("a\n\nb\n");
        assert_eq!(encoded(&event), "data: a\ndata\ndata: b\ndata\n\n");
    }

    #[test]
    fn empty_data_is_one_bare_data_line() {
        assert_eq!(encoded(&Event::default().with_data("")), "data\n\n");
    }

    #[test]
    fn leading_space_in_value_is_kept_after_the_separator_space() {
        let event = Event::default().with_data(" x").with_id(" 7").unwrap();
        assert_eq!(encoded(&event), "id:  7\ndata:  x\n\n");
    }

    #[test]
    fn retry_comes_first() {
        let event = Event::default().with_retry_ms(1500).with_data("x");
        assert_eq!(encoded(&event), "retry: 1500\ndata: x\n\n");
    }

    #[test]
    fn id_with_line_break_or_nul_is_refused() {
        for bad in ["1\n2", "1\r2", "1\0", "\r\n"] {
            assert_eq!(
                Event::default().with_id(bad),
                Err(EncodeError::InvalidId),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn event_name_with_line_break_or_nul_is_refused() {
        for bad in ["a\nb", "a\rb", "a\0b"] {
            assert_eq!(
                Event::default().with_event(bad),
                Err(EncodeError::InvalidEventName),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn number_event_is_byte_exact() {
        let mut buf = BytesMut::new();
        write_number_event(&mut buf, 1);
        write_number_event(&mut buf, 3999);
        assert_eq!(&buf[..], b"id: 1\ndata: 1\n\nid: 3999\ndata: 3999\n\n");
    }

    #[test]
    fn named_event_is_byte_exact() {
        let mut buf = BytesMut::new();
        write_named_event(&mut buf, 4000, "bye", "bye-bye");
        assert_eq!(&buf[..], b"id: 4000\nevent: bye\ndata: bye-bye\n\n");
    }

    #[test]
    fn retry_block_and_comment_are_byte_exact() {
        let mut buf = BytesMut::new();
        write_retry(&mut buf, 3000);
        write_comment(&mut buf, "keep-alive");
        write_comment(&mut buf, "two\nlines");
        assert_eq!(
            &buf[..],
            b"retry: 3000\n\n: keep-alive\n\n: two\n: lines\n\n"
        );
    }

    #[test]
    fn empty_comment_lines_stay_comments() {
        let mut buf = BytesMut::new();
        write_comment(&mut buf, "");
        write_comment(&mut buf, "a\r\nb");
        assert_eq!(&buf[..], b":\n\n: a\n: b\n\n");
    }

    #[test]
    fn number_events_reuse_one_allocation_once_sent_bytes_are_dropped() {
        let mut buf = BytesMut::with_capacity(64);
        let start = buf.as_ptr() as usize;
        for n in 1..1000 {
            write_number_event(&mut buf, n);
            let at = buf.as_ptr() as usize;
            assert!(
                (start..start + 64).contains(&at),
                "reallocated at event {n}"
            );
            drop(buf.split().freeze());
        }
    }
}
