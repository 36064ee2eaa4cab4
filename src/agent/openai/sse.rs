//! A decoder for `text/event-stream` bodies that arrive in pieces.

use super::{MAX_EVENT_BYTES, OpenAiError};

/// Splits a `text/event-stream` body, fed in arbitrary pieces, into the
/// data of its events. Lines end in LF, CRLF or CR; lines starting with `:`
/// are comments; fields other than `data` are ignored.
#[derive(Debug, Default)]
pub(super) struct SseDecoder {
    /// The line read so far, not yet ended.
    pub(super) line: Vec<u8>,
    /// The `data` lines of the event being read, joined by LF.
    pub(super) data: Option<String>,
    /// The last piece ended in CR: an LF starting the next one belongs to it.
    pub(super) after_cr: bool,
}

impl SseDecoder {
    /// The data of each event that `bytes` completes.
    pub(super) fn feed(&mut self, bytes: &[u8]) -> Result<Vec<String>, OpenAiError> {
        let mut events = Vec::new();
        let mut rest = bytes;
        if let Some(&first) = rest.first()
            && std::mem::take(&mut self.after_cr)
            && first == b'\n'
        {
            rest = &rest[1..];
        }
        while let Some(end) = rest.iter().position(|b| matches!(b, b'\n' | b'\r')) {
            self.line.extend_from_slice(&rest[..end]);
            let line = std::mem::take(&mut self.line);
            events.extend(self.line_ended(&line));
            let mut next = end + 1;
            if rest[end] == b'\r' {
                match rest.get(next) {
                    Some(b'\n') => next += 1,
                    None => self.after_cr = true,
                    Some(_) => {}
                }
            }
            rest = &rest[next..];
        }
        self.line.extend_from_slice(rest);
        if self.line.len() + self.data.as_ref().map_or(0, String::len) > MAX_EVENT_BYTES {
            return Err(OpenAiError::Stream(format!(
                "an event longer than {MAX_EVENT_BYTES} bytes"
            )));
        }
        Ok(events)
    }

    /// The events the end of the body completes: the last one counts even
    /// without its blank line (some servers stop right after
    /// `data: [DONE]`).
    pub(super) fn finish(&mut self) -> Result<Vec<String>, OpenAiError> {
        self.feed(b"\n\n")
    }

    pub(super) fn line_ended(&mut self, line: &[u8]) -> Option<String> {
        if line.is_empty() {
            return self.data.take().filter(|data| !data.is_empty());
        }
        // A line is whole here, so no character is split; JSON must be
        // UTF-8 anyway, and a bad byte fails its parse or is spoken as U+FFFD.
        let line = String::from_utf8_lossy(line);
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (&*line, ""),
        };
        if field == "data" {
            match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode(pieces: &[&[u8]]) -> Vec<String> {
        let mut decoder = SseDecoder::default();
        let mut events = Vec::new();
        for piece in pieces {
            events.extend(decoder.feed(piece).unwrap());
        }
        events.extend(decoder.finish().unwrap());
        events
    }

    #[test]
    fn sse_events_are_split_on_blank_lines_whatever_the_line_ends() {
        let body = b"data: {\"a\":1}\n\ndata: two\r\n\r\ndata: three\r\rdata: [DONE]\n\n";
        assert_eq!(decode(&[body]), ["{\"a\":1}", "two", "three", "[DONE]"]);
    }

    #[test]
    fn comments_other_fields_and_empty_events_are_skipped() {
        let body = b": keep-alive\n\nevent: message\nid: 7\nretry: 10\ndata: x\n\ndata:\n\n";
        assert_eq!(decode(&[body]), ["x"]);
    }

    #[test]
    fn data_lines_of_one_event_are_joined_and_the_space_after_the_colon_is_optional() {
        assert_eq!(decode(&[b"data:a\ndata:  b\n\n"]), ["a\n b"]);
    }

    #[test]
    fn lines_split_across_pieces_are_joined_including_a_split_crlf() {
        assert_eq!(
            decode(&[
                b"da",
                b"ta: {\"x\":",
                b"\"y\"}\r",
                b"\n\r",
                b"\ndata: z\r",
                b"\r"
            ]),
            ["{\"x\":\"y\"}", "z"]
        );
    }

    #[test]
    fn the_last_event_counts_without_its_blank_line() {
        assert_eq!(decode(&[b"data: a\n\ndata: [DONE]"]), ["a", "[DONE]"]);
        assert_eq!(decode(&[b"data: [DONE]\n"]), ["[DONE]"]);
    }

    #[test]
    fn an_endless_line_is_an_error_not_an_ever_growing_buffer() {
        let mut decoder = SseDecoder::default();
        let piece = vec![b'x'; 64 * 1024];
        let failed = (0..32).any(|_| decoder.feed(&piece).is_err());
        assert!(failed);
    }

    proptest! {
        #[test]
        fn any_split_of_a_body_gives_the_same_events(
            events in prop::collection::vec("[a-z{}\":, \n]{1,20}", 1..8),
            ending in prop_oneof![Just("\n"), Just("\r\n"), Just("\r")],
            // Repeated cuts make empty pieces, which must change nothing.
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let body: String = events
                .iter()
                .map(|data| {
                    let lines: String =
                        data.split('\n').map(|line| format!("data: {line}{ending}")).collect();
                    format!("{lines}{ending}")
                })
                .collect();
            let bytes = body.as_bytes();
            let mut at: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
            at.sort_unstable();
            let mut pieces = Vec::new();
            let mut start = 0;
            for end in at {
                pieces.push(&bytes[start..end]);
                start = end;
            }
            pieces.push(&bytes[start..]);
            prop_assert_eq!(decode(&pieces), events);
        }
    }
}
