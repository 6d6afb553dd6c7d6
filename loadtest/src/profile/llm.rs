//! What one event of an OpenAI-compatible streamed completion says: the end marker
//! (`data: [DONE]`), an error, or a `chat.completion.chunk` with or without content, a
//! finish reason and token usage. Pure: an event's type and data in, a [`Chunk`] out; bad
//! input is a reading of its own ([`Chunk::Malformed`]), never a panic.

use serde_json::Value;

/// The data of the event that ends an OpenAI-style stream.
pub const DONE: &str = "[DONE]";

/// What one event of a streamed completion says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk {
    /// `data: [DONE]`: the stream is complete.
    Done,
    /// The server reported an error in the stream: an `event: error`, or data whose JSON
    /// carries an `error` object (OpenAI's in-stream error). The message, when it has one.
    Error(Option<String>),
    /// The data is not a JSON object.
    Malformed,
    /// A completion chunk.
    Completion(Completion),
}

/// The parts of a `chat.completion.chunk` the measurements need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Completion {
    /// True when `choices[0].delta.content` is a non-empty string: the chunk carries
    /// tokens. Role-only and empty chunks carry none and are not timed as tokens.
    pub content: bool,
    /// True when some choice has a `finish_reason` that is not null: the completion is
    /// over, even if no `[DONE]` follows.
    pub finished: bool,
    /// `usage.completion_tokens`, when the chunk reports usage.
    pub completion_tokens: Option<u64>,
}

/// Reads one event of a streamed completion: its type (`message` unless named) and data.
#[must_use]
pub fn read(event_type: &str, data: &str) -> Chunk {
    if event_type == "error" {
        return Chunk::Error(error_message(serde_json::from_str(data).ok().as_ref()));
    }
    if data.trim() == DONE {
        return Chunk::Done;
    }
    let Ok(Value::Object(object)) = serde_json::from_str::<Value>(data) else {
        return Chunk::Malformed;
    };
    if let Some(error) = object.get("error").filter(|e| !e.is_null()) {
        return Chunk::Error(error_message(Some(error)));
    }
    let choices = object.get("choices").and_then(Value::as_array);
    let content = choices
        .and_then(|c| c.first())
        .and_then(|choice| choice.pointer("/delta/content"))
        .and_then(Value::as_str)
        .is_some_and(|text| !text.is_empty());
    let finished = choices.is_some_and(|c| {
        c.iter()
            .any(|choice| choice.get("finish_reason").is_some_and(|r| !r.is_null()))
    });
    let completion_tokens = object
        .get("usage")
        .and_then(|usage| usage.get("completion_tokens"))
        .and_then(Value::as_u64);
    Chunk::Completion(Completion {
        content,
        finished,
        completion_tokens,
    })
}

/// The message of an error value: `{"message": …}`, `{"error": {"message": …}}` or a bare
/// string, cut short so a hostile server cannot fill the report.
fn error_message(error: Option<&Value>) -> Option<String> {
    let error = error?;
    let inner = error.get("error").unwrap_or(error);
    let text = inner
        .get("message")
        .and_then(Value::as_str)
        .or_else(|| inner.as_str())?;
    Some(text.chars().take(80).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn completion(data: &str) -> Completion {
        match read("message", data) {
            Chunk::Completion(c) => c,
            other => panic!("{data}: {other:?}"),
        }
    }

    #[test]
    fn done_ends_the_stream() {
        assert_eq!(read("message", "[DONE]"), Chunk::Done);
        assert_eq!(read("message", " [DONE] "), Chunk::Done);
    }

    #[test]
    fn content_counts_only_when_not_empty() {
        let role = r#"{"choices":[{"index":0,"delta":{"role":"assistant"},"finish_reason":null}]}"#;
        assert_eq!(completion(role), Completion::default());
        let empty = r#"{"choices":[{"index":0,"delta":{"content":""},"finish_reason":null}]}"#;
        assert!(!completion(empty).content);
        let token = r#"{"choices":[{"index":0,"delta":{"content":"tok1 "},"finish_reason":null}]}"#;
        assert!(completion(token).content);
        let null = r#"{"choices":[{"index":0,"delta":{"content":null}}]}"#;
        assert!(!completion(null).content);
    }

    #[test]
    fn a_finish_reason_and_usage_are_read() {
        let last = r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#;
        let c = completion(last);
        assert!(c.finished && !c.content);
        let usage = r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":16,"total_tokens":19}}"#;
        assert_eq!(completion(usage).completion_tokens, Some(16));
        assert!(!completion(usage).finished);
    }

    #[test]
    fn errors_in_the_stream_are_named() {
        let openai = r#"{"error":{"message":"The server had an error","type":"server_error"}}"#;
        assert_eq!(
            read("message", openai),
            Chunk::Error(Some("The server had an error".into()))
        );
        assert_eq!(
            read("error", r#"{"message":"overloaded"}"#),
            Chunk::Error(Some("overloaded".into()))
        );
        assert_eq!(read("error", "not json"), Chunk::Error(None));
        // A null error is no error (some servers send the key on every chunk).
        assert!(matches!(
            read("message", r#"{"error":null,"choices":[]}"#),
            Chunk::Completion(_)
        ));
    }

    #[test]
    fn data_that_is_not_a_json_object_is_malformed() {
        for data in ["hello", "{\"choices\":", "42", "[1,2]", ""] {
            assert_eq!(read("message", data), Chunk::Malformed, "{data:?}");
        }
    }

    #[test]
    fn odd_shapes_read_as_no_content_rather_than_failing() {
        let c = completion(r#"{"choices":"none","usage":{"completion_tokens":-1}}"#);
        assert_eq!(c, Completion::default());
        let long = format!(r#"{{"error":{{"message":"{}"}}}}"#, "x".repeat(1000));
        assert!(matches!(read("message", &long), Chunk::Error(Some(m)) if m.len() == 80));
    }
}
