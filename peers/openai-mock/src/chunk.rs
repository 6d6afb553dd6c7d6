//! The wire format: OpenAI's `chat.completion.chunk` objects, each framed as one SSE
//! `data:` event. Pure, no I/O. serde_json's compact output escapes every newline, so a
//! chunk always fits on the one `data:` line.

use serde::Serialize;

/// The event that ends every stream, after the last chunk.
pub const DONE: &str = "data: [DONE]\n\n";

/// The words a completion is made of: token `k` is `"tok{k+1} "`, so a client can check
/// from the text alone which tokens arrived, in which order.
pub fn token_text(first_token: u32, len: u32) -> String {
    let first = u64::from(first_token);
    (first..first + u64::from(len))
        .map(|k| format!("tok{} ", k + 1))
        .collect()
}

/// Why the completion ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FinishReason {
    /// The mock's whole `output_tokens` were sent.
    Stop,
    /// The request's `max_tokens` cut the completion short.
    Length,
}

/// Token counts of the completion, sent when the request asked for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// A rough count of the words in the request's messages.
    pub prompt_tokens: u64,
    /// Content tokens sent.
    pub completion_tokens: u64,
    /// The sum of the two, as OpenAI reports it.
    pub total_tokens: u64,
}

impl Usage {
    /// Usage with the total filled in.
    pub fn new(prompt_tokens: u64, completion_tokens: u64) -> Self {
        Self {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens.saturating_add(completion_tokens),
        }
    }
}

/// The fields every chunk of one completion repeats.
#[derive(Debug, Clone)]
pub struct ChunkHeader {
    /// The completion's id, `chatcmpl-…`.
    pub id: String,
    /// Unix seconds at the request's start.
    pub created: u64,
    /// The request's model, echoed.
    pub model: String,
}

#[derive(Serialize)]
struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: &'a [Choice<'a>],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
}

#[derive(Serialize)]
struct Choice<'a> {
    index: u32,
    delta: Delta<'a>,
    finish_reason: Option<FinishReason>,
}

#[derive(Default, Serialize)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
}

impl ChunkHeader {
    /// The first chunk: the role only, with empty content, as OpenAI sends it.
    pub fn role(&self) -> String {
        self.choice(
            Delta {
                role: Some("assistant"),
                content: Some(""),
            },
            None,
        )
    }

    /// A content chunk carrying `text`.
    pub fn content(&self, text: &str) -> String {
        self.choice(
            Delta {
                role: None,
                content: Some(text),
            },
            None,
        )
    }

    /// The chunk that ends the choice: an empty delta and the reason.
    pub fn finish(&self, reason: FinishReason) -> String {
        self.choice(Delta::default(), Some(reason))
    }

    /// The usage chunk: no choices, the counts.
    pub fn usage(&self, usage: Usage) -> String {
        self.event(&[], Some(usage))
    }

    fn choice(&self, delta: Delta<'_>, finish_reason: Option<FinishReason>) -> String {
        let choice = Choice {
            index: 0,
            delta,
            finish_reason,
        };
        self.event(&[choice], None)
    }

    fn event(&self, choices: &[Choice<'_>], usage: Option<Usage>) -> String {
        let chunk = Chunk {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            choices,
            usage,
        };
        // Plain structs of strings and integers: serialization cannot fail.
        let json = serde_json::to_string(&chunk).unwrap_or_default();
        format!("data: {json}\n\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> ChunkHeader {
        ChunkHeader {
            id: "chatcmpl-mock-1".into(),
            created: 1_700_000_000,
            model: "m".into(),
        }
    }

    const PREFIX: &str = r#"data: {"id":"chatcmpl-mock-1","object":"chat.completion.chunk","created":1700000000,"model":"m","#;

    #[test]
    fn role_chunk_is_byte_exact() {
        assert_eq!(
            header().role(),
            format!(
                "{PREFIX}{}",
                r#""choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#
            ) + "\n\n"
        );
    }

    #[test]
    fn content_chunk_is_byte_exact() {
        assert_eq!(
            header().content("tok1 "),
            format!(
                "{PREFIX}{}",
                r#""choices":[{"index":0,"delta":{"content":"tok1 "},"finish_reason":null}]}"#
            ) + "\n\n"
        );
    }

    #[test]
    fn finish_chunks_are_byte_exact() {
        let choices = |reason: &str| {
            format!(r#""choices":[{{"index":0,"delta":{{}},"finish_reason":"{reason}"}}]}}"#)
        };
        assert_eq!(
            header().finish(FinishReason::Stop),
            format!("{PREFIX}{}\n\n", choices("stop"))
        );
        assert_eq!(
            header().finish(FinishReason::Length),
            format!("{PREFIX}{}\n\n", choices("length"))
        );
    }

    #[test]
    fn usage_chunk_is_byte_exact() {
        assert_eq!(
            header().usage(Usage::new(7, 10)),
            format!(
                "{PREFIX}{}",
                r#""choices":[],"usage":{"prompt_tokens":7,"completion_tokens":10,"total_tokens":17}}"#
            ) + "\n\n"
        );
    }

    #[test]
    fn a_model_name_with_a_newline_stays_on_one_data_line() {
        let header = ChunkHeader {
            model: "evil\n\ndata: [DONE]".into(),
            ..header()
        };
        let event = header.content("x");
        assert_eq!(event.matches('\n').count(), 2, "{event:?}");
        assert!(event.ends_with("\n\n"));
    }

    #[test]
    fn token_text_numbers_tokens_from_one() {
        assert_eq!(token_text(0, 1), "tok1 ");
        assert_eq!(token_text(4, 3), "tok5 tok6 tok7 ");
        assert_eq!(token_text(u32::MAX, 1), "tok4294967296 ");
    }
}
