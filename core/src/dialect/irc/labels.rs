//! IRCv3 `labeled-response`: the answer to a command that carried a `label` tag carries the
//! label back, so a client can tell which answer is whose.
//!
//! The command is handled as any other; afterwards the lines it queued for the sender alone
//! are labeled in place: none gets an `ACK`, one gets the `label` tag, several go in a
//! `labeled-response` batch. A line naming several targets is handled a target per step, so
//! its batch is opened by the first step and closed by the last, the connection remembering
//! in between that it is open. An answer from the store (`CHATHISTORY`) comes in later steps:
//! the request carries the label, and the answer's parts are labeled the same way.

use core::fmt::Write;

use super::Step;
use crate::history::MAX_LABEL_BYTES;
use crate::output::Audience;
use crate::state::roster::ConnectionId;
use crate::wire::irc::Message;

/// The reference of the batch a labeled answer comes in: one at a time per connection, since
/// its lines are answered in order.
const LABELED_REF: &str = "labeled";

impl<S: crate::Storage> Step<'_, S> {
    /// The label of `message`, if `conn` asked for labels and it has a usable one (at most
    /// [`MAX_LABEL_BYTES`], of the characters a batch reference may hold).
    pub(crate) fn label_of<'m>(
        &self,
        conn: ConnectionId,
        message: &Message<'m>,
    ) -> Option<&'m str> {
        if !self.caps(conn).labels() {
            return None;
        }
        let (_, value) = message.tags().filter(|(key, _)| *key == "label").last()?;
        Some(value.0).filter(|label| {
            !label.is_empty()
                && label.len() <= MAX_LABEL_BYTES
                && label
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && !matches!(b, b';' | b'\\'))
        })
    }

    /// Labels what `conn` was sent since record `first`, one part of the answer to a labeled
    /// command: the `opening` part carries `label`, the `closing` one ends the answer.
    pub(crate) fn label_answer(
        &mut self,
        conn: ConnectionId,
        first: usize,
        label: Option<&str>,
        opening: bool,
        closing: bool,
    ) {
        let answers = self.out.answers_to(conn, first);
        let lines: usize = answers
            .iter()
            .map(|&at| bytecount(self.out.sent_bytes(at)))
            .sum();
        if let Some(registration) = self.registration_mut(conn) {
            registration.labeled = !closing;
        }
        let server = self.server_name;
        if opening && closing {
            let Some(label) = label else {
                return;
            };
            match (lines, answers.first()) {
                (0, _) => {
                    if let Some(request) = self.out.asked_by(conn, first) {
                        // The answer is the store's, later.
                        request.set_label(label);
                    } else {
                        irc!(self, Audience::one(conn), "@label={label} :{server} ACK");
                    }
                }
                (1, Some(&at)) => self.retag(at, "label", label, false, None, false),
                _ => {}
            }
            if lines < 2 {
                return;
            }
        }
        let label = label.filter(|_| opening);
        if answers.is_empty() {
            // Nothing else to carry the batch's start or end.
            let start = self.out.mark();
            if let Some(label) = label {
                let _ = write!(
                    self.out,
                    "@label={label} :{server} BATCH +{LABELED_REF} labeled-response\r\n"
                );
            }
            if closing {
                let _ = write!(self.out, ":{server} BATCH -{LABELED_REF}\r\n");
            }
            self.out.send(start, Audience::one(conn));
            return;
        }
        let last = answers.len() - 1;
        for (n, &at) in answers.iter().enumerate() {
            let open = if n == 0 { label } else { None };
            self.retag(at, "batch", LABELED_REF, true, open, closing && n == last);
        }
    }

    /// Rewrites send record `at` with `key=value` added to each of its lines (except, if
    /// `skip_batched`, lines in a batch already: the lines of a batch nested in this one),
    /// after the start of the labeled batch if `open` has its label, and before its end if
    /// `close`. Left as it was if the step's output has no room for the copy.
    fn retag(
        &mut self,
        at: u8,
        key: &str,
        value: &str,
        skip_batched: bool,
        open: Option<&str>,
        close: bool,
    ) {
        let Some((from, to)) = self.out.sent_range(at) else {
            return;
        };
        let server = self.server_name;
        let lines = bytecount(&self.out.bytes[from..to]);
        let extra = lines * (key.len() + value.len() + 3) + 2 * (server.len() + 80);
        if self.out.room().1 < to - from + extra {
            return;
        }
        let start = self.out.mark();
        if let Some(label) = open {
            let _ = write!(
                self.out,
                "@label={label} :{server} BATCH +{LABELED_REF} labeled-response\r\n"
            );
        }
        let mut line = from;
        while line < to {
            let end = self.out.bytes[line..to]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(to, |newline| line + newline + 1);
            let text = &self.out.bytes[line..end];
            let tagged = text.first() == Some(&b'@');
            let batched = tagged
                && text[1..]
                    .split(|&b| b == b' ')
                    .next()
                    .unwrap_or_default()
                    .split(|&b| b == b';')
                    .any(|tag| tag.starts_with(b"batch="));
            if skip_batched && batched {
                self.out.copy_within(line, end);
            } else if tagged {
                let _ = write!(self.out, "@{key}={value};");
                self.out.copy_within(line + 1, end);
            } else {
                let _ = write!(self.out, "@{key}={value} ");
                self.out.copy_within(line, end);
            }
            line = end;
        }
        if close {
            let _ = write!(self.out, ":{server} BATCH -{LABELED_REF}\r\n");
        }
        self.out.resend(at, start);
    }
}

/// How many lines `bytes` holds.
fn bytecount(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}
