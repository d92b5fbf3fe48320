//! A Server-Sent Events parser for `topoctl watch`: bytes in, complete
//! events out (`event:` and `data:` fields; comments and other fields are
//! ignored). Lines and an event's data are bounded.

/// Longest line or event data accepted, bytes.
pub const MAX_SSE_BYTES: usize = 1 << 20;

/// One complete event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field (`message` when absent, as the SSE spec says).
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// The stream broke the limits or is not UTF-8.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    #[error("an event stream line exceeds {MAX_SSE_BYTES} bytes")]
    TooLong,
    #[error("the event stream is not UTF-8")]
    NotUtf8,
}

/// Incremental parser.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    event: Option<String>,
    data: Option<String>,
}

impl SseParser {
    /// Feeds bytes; returns the events they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<SseEvent>, SseError> {
        let mut out = Vec::new();
        for &b in bytes {
            if b != b'\n' {
                if self.line.len() >= MAX_SSE_BYTES {
                    return Err(SseError::TooLong);
                }
                self.line.push(b);
                continue;
            }
            let raw = std::mem::take(&mut self.line);
            let line = std::str::from_utf8(&raw).map_err(|_| SseError::NotUtf8)?;
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.is_empty() {
                if let Some(data) = self.data.take() {
                    out.push(SseEvent {
                        event: self.event.take().unwrap_or_else(|| "message".into()),
                        data,
                    });
                }
                self.event = None;
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => self.event = Some(value.to_string()),
                "data" => {
                    let data = self.data.get_or_insert_with(String::new);
                    if !data.is_empty() {
                        data.push('\n');
                    }
                    if data.len() + value.len() > MAX_SSE_BYTES {
                        return Err(SseError::TooLong);
                    }
                    data.push_str(value);
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_and_comments_are_skipped() {
        let mut p = SseParser::default();
        assert!(p.push(b":\n\nevent: announced\nda").unwrap().is_empty());
        let events = p
            .push(b"ta: {\"a\":1}\r\n\r\ndata: x\ndata: y\n\n")
            .unwrap();
        assert_eq!(
            events,
            vec![
                SseEvent {
                    event: "announced".into(),
                    data: "{\"a\":1}".into()
                },
                SseEvent {
                    event: "message".into(),
                    data: "x\ny".into()
                },
            ]
        );
    }

    #[test]
    fn an_endless_line_is_refused() {
        let mut p = SseParser::default();
        let chunk = vec![b'a'; MAX_SSE_BYTES + 1];
        assert_eq!(p.push(&chunk), Err(SseError::TooLong));
    }
}
