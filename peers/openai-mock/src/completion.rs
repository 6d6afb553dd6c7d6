//! One streamed completion as a list of SSE events, each with the moment it is due: the role
//! chunk at once, the content chunks on the [`Schedule`], then the finish chunk, the usage
//! chunk if asked for, and `[DONE]` as soon as the last token is out. Pure, no I/O: the
//! server only sleeps until each event's moment and writes it.

use std::time::Duration;

use crate::chunk::{self, ChunkHeader, FinishReason, Usage};
use crate::request::StreamRequest;
use crate::schedule::Schedule;
use crate::MockConfig;

/// One SSE event and when it goes out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Offset from the request's start.
    pub due: Duration,
    /// The bytes of the event, `data: …\n\n`.
    pub data: String,
}

/// Everything one request's stream will carry, produced one frame at a time so that a
/// long completion costs no memory up front.
#[derive(Debug, Clone)]
pub struct Completion {
    header: ChunkHeader,
    schedule: Schedule,
    finish: FinishReason,
    usage: Option<Usage>,
}

impl Completion {
    /// The completion `config` says to send for `request`.
    pub fn new(config: &MockConfig, request: &StreamRequest, header: ChunkHeader) -> Self {
        let (tokens, finish) = match request.max_tokens {
            Some(cap) if cap < config.output_tokens => (cap, FinishReason::Length),
            _ => (config.output_tokens, FinishReason::Stop),
        };
        let schedule = Schedule::new(
            config.ttft,
            config.tokens_per_sec,
            config.tokens_per_event,
            tokens,
        );
        let usage = request
            .include_usage
            .then(|| Usage::new(request.prompt_tokens, u64::from(tokens)));
        Self {
            header,
            schedule,
            finish,
            usage,
        }
    }

    /// Frame `i` of the stream, or `None` after `[DONE]`.
    pub fn frame(&self, i: u64) -> Option<Frame> {
        let events = u64::from(self.schedule.event_count());
        if i == 0 {
            return Some(Frame {
                due: Duration::ZERO,
                data: self.header.role(),
            });
        }
        if i <= events {
            // `i - 1 < event_count`, a u32.
            let event = self.schedule.event(u32::try_from(i - 1).ok()?)?;
            return Some(Frame {
                due: event.due,
                data: self
                    .header
                    .content(&chunk::token_text(event.first_token, event.len)),
            });
        }
        let closing = |data| {
            Some(Frame {
                due: self.schedule.end(),
                data,
            })
        };
        let mut rest = i - events - 1;
        if rest == 0 {
            return closing(self.header.finish(self.finish));
        }
        rest -= 1;
        if let Some(usage) = self.usage {
            if rest == 0 {
                return closing(self.header.usage(usage));
            }
            rest -= 1;
        }
        if rest == 0 {
            return closing(chunk::DONE.to_owned());
        }
        None
    }

    /// All frames in order, for tests.
    #[cfg(test)]
    pub fn frames(&self) -> impl Iterator<Item = Frame> + '_ {
        (0..).map_while(|i| self.frame(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn header() -> ChunkHeader {
        ChunkHeader {
            id: "chatcmpl-t".into(),
            created: 1,
            model: "m".into(),
        }
    }

    fn config(output_tokens: u32, tokens_per_event: u32) -> MockConfig {
        MockConfig {
            ttft: ms(100),
            tokens_per_sec: 20.0,
            tokens_per_event,
            output_tokens,
            api_key: None,
        }
    }

    fn request(max_tokens: Option<u32>, include_usage: bool) -> StreamRequest {
        StreamRequest {
            model: "m".into(),
            max_tokens,
            include_usage,
            prompt_tokens: 4,
        }
    }

    #[test]
    fn the_stream_is_role_content_finish_usage_done() {
        let completion = Completion::new(&config(3, 1), &request(None, true), header());
        let h = header();
        let expected = [
            (ms(0), h.role()),
            (ms(100), h.content("tok1 ")),
            (ms(150), h.content("tok2 ")),
            (ms(200), h.content("tok3 ")),
            (ms(200), h.finish(FinishReason::Stop)),
            (ms(200), h.usage(Usage::new(4, 3))),
            (ms(200), chunk::DONE.to_owned()),
        ]
        .map(|(due, data)| Frame { due, data });
        assert_eq!(completion.frames().collect::<Vec<_>>(), expected);
    }

    #[test]
    fn without_include_usage_there_is_no_usage_chunk() {
        let completion = Completion::new(&config(1, 1), &request(None, false), header());
        let frames: Vec<_> = completion.frames().map(|f| f.data).collect();
        assert_eq!(frames.len(), 4);
        assert!(frames.iter().all(|data| !data.contains("usage")));
        assert_eq!(frames[3], chunk::DONE);
    }

    #[test]
    fn max_tokens_below_output_tokens_cuts_with_length() {
        let completion = Completion::new(&config(10, 1), &request(Some(2), true), header());
        let frames: Vec<_> = completion.frames().collect();
        assert_eq!(frames.len(), 1 + 2 + 3);
        assert_eq!(frames[3].data, header().finish(FinishReason::Length));
        assert_eq!(frames[4].data, header().usage(Usage::new(4, 2)));
    }

    #[test]
    fn max_tokens_at_or_above_output_tokens_stops_normally() {
        for cap in [10, 11, u32::MAX] {
            let completion = Completion::new(&config(10, 1), &request(Some(cap), false), header());
            let frames: Vec<_> = completion.frames().collect();
            assert_eq!(frames.len(), 1 + 10 + 2, "cap {cap}");
            assert_eq!(
                frames[11].data,
                header().finish(FinishReason::Stop),
                "cap {cap}"
            );
        }
    }

    #[test]
    fn batched_tokens_share_a_chunk_sent_when_the_last_is_due() {
        let completion = Completion::new(&config(5, 2), &request(None, false), header());
        let frames: Vec<_> = completion.frames().collect();
        let h = header();
        assert_eq!(
            frames[1],
            Frame {
                due: ms(150),
                data: h.content("tok1 tok2 ")
            }
        );
        assert_eq!(
            frames[2],
            Frame {
                due: ms(250),
                data: h.content("tok3 tok4 ")
            }
        );
        assert_eq!(
            frames[3],
            Frame {
                due: ms(300),
                data: h.content("tok5 ")
            }
        );
        assert_eq!(frames[4].due, ms(300));
    }

    #[test]
    fn no_output_tokens_still_closes_the_stream_at_ttft() {
        let completion = Completion::new(&config(0, 1), &request(None, true), header());
        let frames: Vec<_> = completion.frames().collect();
        assert_eq!(frames.len(), 4);
        assert_eq!(
            frames[1],
            Frame {
                due: ms(100),
                data: header().finish(FinishReason::Stop)
            }
        );
        assert_eq!(frames[3].data, chunk::DONE);
    }
}
