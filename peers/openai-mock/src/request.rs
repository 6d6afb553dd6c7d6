//! Reading a chat completions request: only the fields that change what the mock sends.
//! Pure, no I/O; anything unexpected is an [`ApiError`], never a panic.

use serde::Deserialize;
use serde_json::Value;

use crate::error::ApiError;

/// The model echoed when the request names none.
pub const DEFAULT_MODEL: &str = "mock";

/// What one request asks of the mock, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRequest {
    /// Echoed in every chunk.
    pub model: String,
    /// The request's cap on completion tokens, if any.
    pub max_tokens: Option<u32>,
    /// Whether a usage chunk goes before `[DONE]`.
    pub include_usage: bool,
    /// A rough count of the words in the messages, reported as `prompt_tokens`.
    pub prompt_tokens: u64,
}

#[derive(Deserialize)]
struct Body {
    model: Option<String>,
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
    max_tokens: Option<u32>,
    max_completion_tokens: Option<u32>,
    messages: Option<Value>,
}

#[derive(Deserialize)]
struct StreamOptions {
    include_usage: Option<bool>,
}

/// Reads a request body.
///
/// `max_completion_tokens` wins over `max_tokens` when both are given, as it replaces it in
/// OpenAI's API.
///
/// # Errors
/// [`ApiError::MalformedBody`] when the body is not a JSON object or a known field has the
/// wrong type; [`ApiError::InvalidRequest`] when `stream` is not `true` (the mock only
/// streams) or the token cap is 0.
pub fn parse(body: &[u8]) -> Result<StreamRequest, ApiError> {
    let body: Body =
        serde_json::from_slice(body).map_err(|e| ApiError::MalformedBody(e.to_string()))?;
    if body.stream != Some(true) {
        return Err(ApiError::InvalidRequest(
            "This mock only streams: set \"stream\": true.".into(),
        ));
    }
    let max_tokens = body.max_completion_tokens.or(body.max_tokens);
    if max_tokens == Some(0) {
        return Err(ApiError::InvalidRequest(
            "max_tokens must be at least 1.".into(),
        ));
    }
    Ok(StreamRequest {
        model: body.model.unwrap_or_else(|| DEFAULT_MODEL.into()),
        max_tokens,
        include_usage: body
            .stream_options
            .and_then(|options| options.include_usage)
            .unwrap_or(false),
        prompt_tokens: body.messages.as_ref().map_or(0, count_words),
    })
}

/// Words in the messages' text: `content` as a string, or the `text` of each content part.
/// Anything else (roles, images, odd shapes) counts as nothing.
fn count_words(messages: &Value) -> u64 {
    let words = |text: &str| text.split_whitespace().count() as u64;
    let Some(messages) = messages.as_array() else {
        return 0;
    };
    messages
        .iter()
        .map(|message| match message.get("content") {
            Some(Value::String(text)) => words(text),
            Some(Value::Array(parts)) => parts
                .iter()
                .filter_map(|part| part.get("text")?.as_str())
                .map(words)
                .sum(),
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(body: &str) -> Result<StreamRequest, ApiError> {
        parse(body.as_bytes())
    }

    #[test]
    fn a_minimal_streamed_request_gets_the_defaults() {
        assert_eq!(
            parse_str(r#"{"stream":true}"#),
            Ok(StreamRequest {
                model: "mock".into(),
                max_tokens: None,
                include_usage: false,
                prompt_tokens: 0,
            })
        );
    }

    #[test]
    fn a_full_request_is_read() {
        let request = parse_str(
            r#"{"model":"gpt-x","stream":true,"stream_options":{"include_usage":true},
                "max_tokens":5,"temperature":0.2,
                "messages":[{"role":"system","content":"be brief"},
                            {"role":"user","content":[{"type":"text","text":"say three words"},
                                                      {"type":"image_url","image_url":{"url":"x"}}]}]}"#,
        )
        .unwrap();
        assert_eq!(
            request,
            StreamRequest {
                model: "gpt-x".into(),
                max_tokens: Some(5),
                include_usage: true,
                prompt_tokens: 5,
            }
        );
    }

    #[test]
    fn max_completion_tokens_wins_over_max_tokens() {
        let request =
            parse_str(r#"{"stream":true,"max_tokens":5,"max_completion_tokens":3}"#).unwrap();
        assert_eq!(request.max_tokens, Some(3));
    }

    #[test]
    fn requests_that_do_not_stream_are_refused() {
        for body in [r#"{}"#, r#"{"stream":false}"#, r#"{"stream":null}"#] {
            assert!(
                matches!(parse_str(body), Err(ApiError::InvalidRequest(_))),
                "{body}"
            );
        }
    }

    #[test]
    fn malformed_bodies_are_refused() {
        for body in [
            "",
            "{",
            "[]",
            "not json",
            r#"{"stream":"yes"}"#,
            r#"{"stream":true,"max_tokens":-1}"#,
            r#"{"stream":true,"model":7}"#,
        ] {
            assert!(
                matches!(parse_str(body), Err(ApiError::MalformedBody(_))),
                "{body}"
            );
        }
    }

    #[test]
    fn a_zero_token_cap_is_refused() {
        assert!(matches!(
            parse_str(r#"{"stream":true,"max_tokens":0}"#),
            Err(ApiError::InvalidRequest(_))
        ));
    }

    #[test]
    fn odd_message_shapes_count_as_no_words() {
        let request = parse_str(
            r#"{"stream":true,"messages":[1,{"content":null},{"content":[{"text":3}]},{"content":"a b"}]}"#,
        )
        .unwrap();
        assert_eq!(request.prompt_tokens, 2);
        let request = parse_str(r#"{"stream":true,"messages":"hello there"}"#).unwrap();
        assert_eq!(request.prompt_tokens, 0);
    }
}
