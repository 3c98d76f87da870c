//! Framing: cutting a byte stream that arrives in arbitrary pieces into bounded lines.
//!
//! A line ends in `\n`; a `\r` right before it is dropped, so both `\n` and `\r\n` work. Telnet
//! negotiation (IAC sequences) is skipped wherever it appears, even split across reads, so a
//! `telnet` client works without a telnet implementation here. Since `0xFF` (IAC) never occurs in
//! UTF-8 text, skipping it cannot eat a character of a real message.

use crate::storage::sealed::{Storage, Table};

/// The longest line the server accepts, in bytes, not counting the `\r\n` or `\n` that ends it.
///
/// A longer line gets an error reply when it passes this length; the rest of it, up to the next
/// newline, is discarded, and the connection goes on working.
pub const MAX_LINE_BYTES: usize = 512;

/// Room for one line plus a `\r` that may turn out to precede its `\n`.
const BUFFER_BYTES: usize = MAX_LINE_BYTES + 1;

pub(crate) type LineBuffer = heapless::Vec<u8, BUFFER_BYTES>;

/// The line buffers connections borrow while a partial line of theirs waits for its end.
///
/// A connection holds a buffer only from the first byte of a line to the moment the line is
/// taken (or dropped), so an idle connection holds none. The pool has room for one buffer per
/// slot of the roster (`capacity`), and a connection never holds more than one, so it never
/// runs dry: borrowing cannot fail while the roster keeps to its capacity. Buffers are made as
/// they are first needed and reused after (last given back, first lent), so the memory they
/// use follows the most partial lines waiting at once, not the connections.
#[derive(Debug)]
pub(crate) struct LinePool<S: Storage> {
    buffers: S::Table<LineBuffer>,
    /// Indices of the buffers made and not lent now.
    free: S::Table<u32>,
}

impl<S: Storage> LinePool<S> {
    /// An empty pool with room for `capacity` buffers (which the storage gave).
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self {
            buffers: S::table(capacity),
            free: S::table(capacity),
        }
    }

    /// Lends an empty buffer: one given back, or a new one. `None` only when every buffer of
    /// the capacity is lent, which a roster within its capacity never sees.
    fn borrow(&mut self) -> Option<u32> {
        if let Some(at) = self.free.pop() {
            self.buffers[at as usize].clear();
            return Some(at);
        }
        let at = u32::try_from(self.buffers.len()).ok()?;
        self.buffers.push(LineBuffer::new()).ok()?;
        Some(at)
    }

    /// Takes back buffer `at`.
    fn release(&mut self, at: u32) {
        // Cannot fail: `free` has room for every buffer, and `at` was lent.
        let _ = self.free.push(at);
    }

    /// How many buffers are lent now.
    #[cfg(test)]
    pub(crate) fn lent(&self) -> usize {
        self.buffers.len() - self.free.len()
    }

    /// How many buffers have been made (the most lent at once).
    #[cfg(test)]
    pub(crate) fn made(&self) -> usize {
        self.buffers.len()
    }
}

/// The longest IRCv3 tag section a client may send, from its `@` to the space after it
/// (IRCv3 message-tags: 4,094 bytes of tags). It does not count against [`MAX_LINE_BYTES`],
/// which bounds the rest of the line; a longer section gets `417` like an overlong line.
pub const MAX_TAG_BYTES: usize = 4096;

/// How many connections at once can be in the middle of a line whose tags do not fit the
/// line buffer beside the rest of it. Past that, such a line is refused as too long: a
/// connection keeps [`MAX_LINE_BYTES`] of its own, and only borrows the bigger buffer for
/// as long as it takes to receive such a line, so idle connections do not pay for it.
pub const TAG_BUFFERS: usize = 64;

/// A tag section (`@tags `, with the `@` and the space) kept outside a connection's line buffer.
pub(crate) type TagBuffer = heapless::Vec<u8, MAX_TAG_BYTES>;

/// The buffers that long tag sections borrow while their line arrives: up to [`TAG_BUFFERS`],
/// each made the first time all those made before are lent at once, then kept for reuse (for a
/// `Server<Heap>` they are reserved on the heap, and cost memory only once made).
#[derive(Debug)]
pub(crate) struct TagPool<S: Storage> {
    /// Buffer `i` made, lent or not; the lowest free index is lent first, so they are made in
    /// order.
    buffers: S::Fixed<TagBuffer, TAG_BUFFERS>,
    /// Bit `i` set: buffer `i` is free (made or not).
    free: u64,
}

const _: () = assert!(TAG_BUFFERS <= 64, "the free set is one u64");

impl<S: Storage> TagPool<S> {
    pub(crate) fn new() -> Self {
        Self {
            buffers: S::fixed(),
            free: if TAG_BUFFERS == 64 {
                u64::MAX
            } else {
                (1 << TAG_BUFFERS) - 1
            },
        }
    }

    /// Takes a free buffer, empty; `None` when all are lent.
    fn borrow(&mut self) -> Option<u8> {
        if self.free == 0 {
            return None;
        }
        let at = self.free.trailing_zeros();
        if at as usize == self.buffers.len() {
            // The lowest free one is never made past the last made: all below it are lent.
            self.buffers.push(TagBuffer::new()).ok()?;
        }
        self.free &= !(1 << at);
        self.buffers.get_mut(at as usize)?.clear();
        Some(at as u8)
    }

    /// Gives buffer `at` back.
    pub(crate) fn release(&mut self, at: u8) {
        debug_assert!(self.free & (1 << at) == 0, "released twice");
        self.free |= 1 << at;
    }

    /// How many buffers are lent now.
    #[cfg(test)]
    pub(crate) fn lent(&self) -> usize {
        TAG_BUFFERS - self.free.count_ones() as usize
    }

    /// How many buffers have been made (the most lent at once).
    #[cfg(test)]
    pub(crate) fn made(&self) -> usize {
        self.buffers.len()
    }

    /// Takes the content of buffer `at` and gives the buffer back.
    pub(crate) fn take(&mut self, at: u8) -> TagBuffer {
        self.release(at);
        core::mem::take(&mut self.buffers[usize::from(at)])
    }
}

// Telnet command bytes (RFC 854).
const IAC: u8 = 255;
const SB: u8 = 250;
const SE: u8 = 240;
const WILL: u8 = 251;
const DONT: u8 = 254;
/// The lowest telnet command byte; after IAC, anything lower is not telnet.
const SE_OR_ABOVE: u8 = SE;

/// The longest subnegotiation skipped. Real ones (terminal type, window size) are a few bytes;
/// past this the bytes are taken as data again, so a stray `IAC SB` cannot swallow a session.
const MAX_SUBNEGOTIATION_BYTES: u8 = 64;

/// Where we are inside a telnet command, if anywhere.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Telnet {
    #[default]
    Data,
    /// Just saw IAC.
    Command,
    /// Saw IAC WILL/WONT/DO/DONT; the option byte comes next.
    Option,
    /// Inside a subnegotiation (IAC SB ... IAC SE).
    Sub,
    /// Saw IAC inside a subnegotiation.
    SubCommand,
}

/// What a byte of a plain-text stream is, once telnet commands are taken out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TelnetByte {
    /// Part of a telnet command: not data.
    Skip,
    /// Data for the line.
    Data,
    /// Data for the line, after a 0xFF that turned out to start no telnet command.
    StrayIacThenData,
}

/// What one call to [`LineFramer::feed`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Framed {
    /// Nothing complete yet; all the bytes were taken.
    Pending,
    /// A complete line, without its line ending, is ready in [`LineFramer::take_line`].
    Line,
    /// The line (or object) passed [`MAX_LINE_BYTES`]; its remainder will be skipped up to the
    /// newline (or the object's end).
    TooLong,
    /// A complete JSON object is ready in [`LineFramer::take_line`].
    Object,
    /// Bytes outside any JSON object (reported once per run of them); they are skipped.
    Stray,
}

/// Which protocol a connection speaks, decided by its first byte.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// Nothing received yet.
    #[default]
    Undecided,
    /// Lines of text (and telnet).
    Plain,
    /// The original client's JSON objects.
    Json,
    /// IRC lines: plain lines without telnet, chosen by the dialect layer when the first line is an
    /// IRC registration command.
    Irc,
}

/// One connection's framing state: a bounded partial line plus telnet and discard modes.
///
/// The partial line is kept in a buffer of the [`LinePool`], borrowed at the first byte of a
/// line and given back once the line is taken or dropped.
#[derive(Debug, Default)]
pub(crate) struct LineFramer {
    /// The buffer of the [`LinePool`] that holds the current line, while there is one.
    line: Option<u32>,
    telnet: Telnet,
    /// Bytes skipped inside the current subnegotiation; see [`MAX_SUBNEGOTIATION_BYTES`].
    sub_bytes: u8,
    /// Set after an overlong line was reported, until its newline arrives.
    discarding: bool,
    dialect: Dialect,
    object: ObjectScanner,
    /// Set while skipping bytes outside a JSON object, so they are reported once.
    stray: bool,
    /// A line put back by [`Self::put_back`], handed out again before any new byte is taken.
    ready: bool,
    /// IRC: inside the tag section (`@...` up to the first space) of the current line.
    in_tags: bool,
    /// IRC: the buffer of the [`TagPool`] that holds the current line's tag section, once it
    /// did not fit beside the rest of the line.
    pooled: Option<u8>,
}

impl LineFramer {
    /// Consumes bytes up to and including the first event (a complete or an overlong line).
    ///
    /// Returns how many bytes were consumed and what was found. The caller feeds the rest
    /// after dealing with the event.
    ///
    /// The line is kept in a buffer borrowed from `lines` while it is incomplete, and until
    /// [`Self::take_line`] takes it. An IRC line whose tags do not fit the line buffer beside
    /// the rest of it borrows a buffer of `pool` for them until [`Self::take_tags`] (or
    /// [`Self::release`]).
    pub(crate) fn feed<S: Storage>(
        &mut self,
        bytes: &[u8],
        lines: &mut LinePool<S>,
        pool: &mut TagPool<S>,
    ) -> (usize, Framed) {
        if self.ready {
            return (0, Framed::Line);
        }
        if bytes.is_empty() {
            return (0, Framed::Pending);
        }
        if self.dialect == Dialect::Undecided {
            self.dialect = match bytes.first() {
                Some(b'{') => Dialect::Json,
                _ => Dialect::Plain,
            };
        }
        let Some(at) = self.line.or_else(|| lines.borrow()) else {
            // Unreachable within the roster's capacity (see `LinePool`); should it happen,
            // the line is refused as too long (up to its end), and the connection goes on.
            return match bytes.iter().position(|&byte| byte == b'\n') {
                Some(end) => (end + 1, Framed::TooLong),
                None => {
                    self.discarding = true;
                    (bytes.len(), Framed::TooLong)
                }
            };
        };
        let line = &mut lines.buffers[at as usize];
        let found = match self.dialect {
            Dialect::Json => self.feed_json(line, bytes),
            Dialect::Plain | Dialect::Irc | Dialect::Undecided => {
                self.feed_lines(line, bytes, pool)
            }
        };
        // Kept while it holds a partial line, or a complete one to be taken.
        if matches!(found.1, Framed::Line | Framed::Object) || !line.is_empty() {
            self.line = Some(at);
        } else {
            self.line = None;
            lines.release(at);
        }
        found
    }

    /// From now on the connection speaks IRC: lines, with no telnet.
    pub(crate) fn speak_irc(&mut self) {
        self.dialect = Dialect::Irc;
    }

    /// Puts `line` back to be handed out again by the next [`Self::feed`], before any new byte:
    /// how a line naming several targets is handled one target per step. Only valid right after
    /// [`Self::take_line`], while nothing new has been fed.
    pub(crate) fn put_back<S: Storage>(&mut self, line: &[u8], lines: &mut LinePool<S>) {
        debug_assert!(self.line.is_none() && !self.ready);
        let Some(at) = self.line.or_else(|| lines.borrow()) else {
            // Unreachable within the roster's capacity (see `LinePool`).
            return;
        };
        let buffer = &mut lines.buffers[at as usize];
        buffer.clear();
        // Cannot fail: the line put back is never longer than the line it came from.
        let _ = buffer.extend_from_slice(line);
        self.line = Some(at);
        self.ready = true;
    }

    /// The complete line [`Self::feed`] just reported, before [`Self::take_line`] takes it.
    pub(crate) fn peek_line<'a, S: Storage>(&self, lines: &'a LinePool<S>) -> &'a [u8] {
        self.line.map_or(&[], |at| &lines.buffers[at as usize])
    }

    /// Whether a line was put back and waits to be handled.
    pub(crate) fn is_ready(&self) -> bool {
        self.ready
    }

    /// The dialect of the connection, once its first byte has arrived.
    pub(crate) fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// [`Self::feed`] for JSON objects.
    fn feed_json(&mut self, line: &mut LineBuffer, bytes: &[u8]) -> (usize, Framed) {
        for (at, &byte) in bytes.iter().enumerate() {
            let consumed = at + 1;
            match self.object.scan(byte) {
                Scanned::Between => {}
                Scanned::Stray => {
                    if !core::mem::replace(&mut self.stray, true) {
                        return (consumed, Framed::Stray);
                    }
                }
                Scanned::Inside => {
                    self.stray = false;
                    if !self.discarding && line.push(byte).is_err() {
                        line.clear();
                        self.discarding = true;
                        return (consumed, Framed::TooLong);
                    }
                }
                Scanned::End => {
                    if core::mem::take(&mut self.discarding) {
                        continue;
                    }
                    if line.push(byte).is_err() || line.len() > MAX_LINE_BYTES {
                        line.clear();
                        return (consumed, Framed::TooLong);
                    }
                    return (consumed, Framed::Object);
                }
            }
        }
        (bytes.len(), Framed::Pending)
    }

    /// [`Self::feed`] for lines.
    fn feed_lines<S: Storage>(
        &mut self,
        line: &mut LineBuffer,
        bytes: &[u8],
        pool: &mut TagPool<S>,
    ) -> (usize, Framed) {
        for (at, &byte) in bytes.iter().enumerate() {
            let consumed = at + 1;
            if self.dialect != Dialect::Irc {
                match self.telnet_data(byte) {
                    TelnetByte::Skip => continue,
                    TelnetByte::Data => {}
                    // A lone 0xFF is kept: it is never valid UTF-8, so the line gets that error
                    // reply instead of losing a byte silently.
                    TelnetByte::StrayIacThenData => {
                        if !self.discarding && line.push(IAC).is_err() {
                            line.clear();
                            self.discarding = true;
                            return (consumed, Framed::TooLong);
                        }
                    }
                }
            }
            if byte == b'\n' {
                self.in_tags = false;
                if core::mem::take(&mut self.discarding) {
                    continue;
                }
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                if line.len() > MAX_LINE_BYTES {
                    self.drop_line(line, pool);
                    return (consumed, Framed::TooLong);
                }
                return (consumed, Framed::Line);
            }
            if self.discarding {
                continue;
            }
            if self.dialect == Dialect::Irc && !self.irc_byte(line, byte, pool) {
                self.drop_line(line, pool);
                self.discarding = true;
                return (consumed, Framed::TooLong);
            }
            if self.dialect != Dialect::Irc && line.push(byte).is_err() {
                line.clear();
                self.discarding = true;
                return (consumed, Framed::TooLong);
            }
        }
        (bytes.len(), Framed::Pending)
    }

    /// Takes one byte of an IRC line, keeping its tag section apart once it does not fit
    /// beside the rest. False when the line (its tags or the rest) is too long.
    fn irc_byte<S: Storage>(
        &mut self,
        line: &mut LineBuffer,
        byte: u8,
        pool: &mut TagPool<S>,
    ) -> bool {
        if byte == b'@' && line.is_empty() && self.pooled.is_none() {
            self.in_tags = true;
        }
        // This byte belongs to the tag section, the space that ends it included.
        let tag_byte = self.in_tags;
        if byte == b' ' {
            self.in_tags = false;
        }
        if let Some(at) = self.pooled
            && tag_byte
        {
            return pool.buffers[usize::from(at)].push(byte).is_ok();
        }
        if line.push(byte).is_ok() {
            return true;
        }
        // The buffer is full: if the line has a tag section, move it out and go on.
        if self.pooled.is_some() || line.first() != Some(&b'@') {
            return false;
        }
        let Some(at) = pool.borrow() else {
            return false;
        };
        self.pooled = Some(at);
        let tags = &mut pool.buffers[usize::from(at)];
        let split = if tag_byte {
            line.len()
        } else {
            // The section ended inside the buffer, at its first space.
            line.iter()
                .position(|&b| b == b' ')
                .map_or(line.len(), |space| space + 1)
        };
        // Cannot fail: the line buffer is far smaller than a tag buffer.
        let _ = tags.extend_from_slice(&line[..split]);
        line.rotate_left(split);
        line.truncate(line.len() - split);
        if tag_byte {
            tags.push(byte).is_ok()
        } else {
            line.push(byte).is_ok()
        }
    }

    /// Forgets the current line, giving back any tag buffer it borrowed.
    fn drop_line<S: Storage>(&mut self, line: &mut LineBuffer, pool: &mut TagPool<S>) {
        line.clear();
        self.in_tags = false;
        if let Some(at) = self.pooled.take() {
            pool.release(at);
        }
    }

    /// Gives back the line buffer and the tag buffer the current line borrowed, if any: call
    /// it when the connection goes away.
    pub(crate) fn release<S: Storage>(&mut self, lines: &mut LinePool<S>, pool: &mut TagPool<S>) {
        if let Some(at) = self.pooled.take() {
            pool.release(at);
        }
        if let Some(at) = self.line.take() {
            lines.release(at);
        }
        self.ready = false;
    }

    /// The tag section (`@tags `) of the line [`Self::feed`] just reported, when it was kept
    /// apart from the rest of the line; the rest is [`Self::take_line`]'s.
    pub(crate) fn take_tags<S: Storage>(&mut self, pool: &mut TagPool<S>) -> Option<TagBuffer> {
        self.pooled.take().map(|at| pool.take(at))
    }

    /// Takes the line that [`feed`](Self::feed) reported as [`Framed::Line`], leaving the buffer
    /// empty for the next one.
    pub(crate) fn take_line<S: Storage>(&mut self, lines: &mut LinePool<S>) -> LineBuffer {
        self.ready = false;
        let mut taken = LineBuffer::new();
        if let Some(at) = self.line.take() {
            // Cannot fail: both are line buffers.
            let _ = taken.extend_from_slice(&lines.buffers[at as usize]);
            lines.release(at);
        }
        taken
    }

    /// Whether a buffer of the [`LinePool`] is lent to this connection now.
    #[cfg(test)]
    pub(crate) fn holds_line(&self) -> bool {
        self.line.is_some()
    }

    /// Advances the telnet state with `byte`, and says what it is for the line.
    ///
    /// A newline is never taken as part of a command: a client that is not speaking telnet
    /// (a Latin-1 `ÿ` is 0xFF) must not lose its line ending to it.
    fn telnet_data(&mut self, byte: u8) -> TelnetByte {
        let (next, data) = match (self.telnet, byte) {
            (Telnet::Data, IAC) => (Telnet::Command, TelnetByte::Skip),
            (Telnet::Data, _) => (Telnet::Data, TelnetByte::Data),
            // IAC IAC is an escaped 0xFF data byte. It is never valid UTF-8, so keeping it makes
            // the line fail UTF-8 validation with a clear reply instead of vanishing silently.
            (Telnet::Command, IAC) => (Telnet::Data, TelnetByte::Data),
            (Telnet::Command, SB) => {
                self.sub_bytes = 0;
                (Telnet::Sub, TelnetByte::Skip)
            }
            (Telnet::Command, WILL..=DONT) => (Telnet::Option, TelnetByte::Skip),
            (Telnet::Option, b'\n') => (Telnet::Data, TelnetByte::Data),
            (Telnet::Command, SE_OR_ABOVE..) | (Telnet::Option, _) => {
                (Telnet::Data, TelnetByte::Skip)
            }
            // Not a telnet command after all: the 0xFF and this byte are data.
            (Telnet::Command, _) => (Telnet::Data, TelnetByte::StrayIacThenData),
            (Telnet::Sub | Telnet::SubCommand, _) if self.sub_bytes >= MAX_SUBNEGOTIATION_BYTES => {
                (Telnet::Data, TelnetByte::Data)
            }
            (Telnet::Sub, IAC) => (Telnet::SubCommand, TelnetByte::Skip),
            (Telnet::Sub, _) => (Telnet::Sub, TelnetByte::Skip),
            (Telnet::SubCommand, SE) => (Telnet::Data, TelnetByte::Skip),
            (Telnet::SubCommand, _) => (Telnet::Sub, TelnetByte::Skip),
        };
        if matches!(next, Telnet::Sub | Telnet::SubCommand) {
            self.sub_bytes = self.sub_bytes.saturating_add(1);
        }
        self.telnet = next;
        data
    }
}

/// Where a connection is inside the byte stream of objects.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ObjectScanner {
    depth: u16,
    in_string: bool,
    escaped: bool,
}

/// What one byte meant to the scanner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scanned {
    /// Between objects: whitespace, skipped.
    Between,
    /// Between objects: not whitespace nor `{`.
    Stray,
    /// Part of an object.
    Inside,
    /// The `}` that closes an object.
    End,
}

impl ObjectScanner {
    pub(crate) fn scan(&mut self, byte: u8) -> Scanned {
        if self.depth == 0 {
            return match byte {
                b'{' => {
                    self.depth = 1;
                    Scanned::Inside
                }
                b' ' | b'\t' | b'\r' | b'\n' => Scanned::Between,
                _ => Scanned::Stray,
            };
        }
        if self.in_string {
            match (self.escaped, byte) {
                (true, _) => self.escaped = false,
                (false, b'\\') => self.escaped = true,
                (false, b'"') => self.in_string = false,
                _ => {}
            }
            return Scanned::Inside;
        }
        match byte {
            b'"' => self.in_string = true,
            b'{' | b'[' => self.depth = self.depth.saturating_add(1),
            b'}' | b']' => {
                self.depth -= 1;
                if self.depth == 0 {
                    return Scanned::End;
                }
            }
            _ => {}
        }
        Scanned::Inside
    }
}

/// `text` cut to at most `max` bytes, on a character boundary.
pub(crate) fn cut(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    /// A line pool for the tests: room for more framers than any test makes.
    type Lines = LinePool<crate::Inline<128>>;
    type Tags = TagPool<crate::Inline<128>>;

    /// Feeds `input` to a new framer in pieces of `chunk` bytes; every event it reported, with
    /// the line or object it carried, and the framer.
    fn feed_all(input: &[u8], chunk: usize) -> (LineFramer, Vec<(Framed, Vec<u8>)>) {
        let mut framer = LineFramer::default();
        let mut pool = Tags::new();
        let mut lines = Lines::with_capacity(128);
        let mut out = Vec::new();
        for piece in input.chunks(chunk) {
            let mut rest = piece;
            while !rest.is_empty() {
                let (used, framed) = framer.feed(rest, &mut lines, &mut pool);
                rest = &rest[used..];
                match framed {
                    Framed::Pending => assert!(rest.is_empty()),
                    Framed::Line | Framed::Object => {
                        let taken = framer.take_line(&mut lines).to_vec();
                        out.push((framed, taken));
                    }
                    Framed::TooLong | Framed::Stray => out.push((framed, Vec::new())),
                }
            }
        }
        assert_eq!(lines.lent(), usize::from(framer.holds_line()));
        (framer, out)
    }

    /// The lines of a line stream, `Err` for an overlong one.
    fn frame(input: &[u8], chunk: usize) -> Vec<Result<Vec<u8>, ()>> {
        let (framer, events) = feed_all(input, chunk);
        assert_ne!(framer.dialect(), Dialect::Json);
        events
            .into_iter()
            .map(|(framed, line)| match framed {
                Framed::Line => Ok(line),
                Framed::TooLong => Err(()),
                other => panic!("{other:?} in a line stream"),
            })
            .collect()
    }

    fn lines(items: &[&[u8]]) -> Vec<Result<Vec<u8>, ()>> {
        items.iter().map(|s| Ok(s.to_vec())).collect()
    }

    #[test]
    fn cases() {
        #[rustfmt::skip]
        let cases: &[(&[u8], &[&[u8]])] = &[
            (b"hello\n",                          &[b"hello"]),
            (b"hello\r\n",                        &[b"hello"]),
            (b"a\nb\r\nc\n",                      &[b"a", b"b", b"c"]),
            (b"no newline yet",                   &[]),
            (b"\n\n",                             &[b"", b""]),
            (b"in\rside\n",                       &[b"in\rside"]),
            (b"\xff\xfb\x01hi\n",                 &[b"hi"]),            // IAC WILL ECHO
            (b"h\xff\xfd\x03i\n",                 &[b"hi"]),            // IAC DO SGA mid-line
            (b"\xff\xfa\x18\x00xterm\xff\xf0ok\n", &[b"ok"]),           // subnegotiation
            (b"\xff\xf4x\n",                      &[b"x"]),             // IAC IP
            (b"\xff\xfa\xff\xffstill sub\xff\xf0y\n", &[b"y"]),         // escaped IAC inside SB
            (b"abc\xff\ndef\n",                  &[b"abc\xff", b"def"]), // a Latin-1 \xff, then Enter: kept, so invalid UTF-8
            (b"abc\xff\xfb\ndef\n",              &[b"abc", b"def"]),    // IAC WILL, then Enter
            (b"\xff\x41bc\n",                    &[b"\xffAbc"]),       // not a command: both are data
            (b"y umlaut \xff here\n",          &[b"y umlaut \xff here"]), // a Latin-1 \xff mid-line
        ];
        for (input, expected) in cases {
            for chunk in [1, 2, 3, 7, 1024] {
                assert_eq!(
                    frame(input, chunk),
                    lines(expected),
                    "input {input:?} chunk {chunk}"
                );
            }
        }
    }

    #[test]
    fn an_endless_subnegotiation_gives_the_line_back() {
        let mut input = b"\xff\xfa".to_vec();
        input.extend_from_slice(&[b'x'; 100]);
        input.extend_from_slice(b"\nok\n");
        let framed = frame(&input, 7);
        assert_eq!(framed.len(), 2, "{framed:?}");
        assert_eq!(framed[1], Ok(b"ok".to_vec()));
    }

    /// The objects of a JSON stream as text, `!` for stray bytes, `~` for an overlong object.
    fn objects(input: &[u8], chunk: usize) -> Vec<std::string::String> {
        let (framer, events) = feed_all(input, chunk);
        assert_eq!(framer.dialect(), Dialect::Json);
        events
            .into_iter()
            .map(|(framed, object)| match framed {
                Framed::Object => std::string::String::from_utf8(object).unwrap(),
                Framed::Stray => "!".into(),
                Framed::TooLong => "~".into(),
                other => panic!("{other:?} in a JSON stream"),
            })
            .collect()
    }

    #[test]
    fn json_objects_back_to_back_in_any_pieces() {
        let stream = br#"{"type":"nickname","message":"a}b"}{"type":"boardcast","message":"\"{"}
 {"type":"listall","message":""}oops{"x":"y"}"#;
        for chunk in [1, 2, 5, 64, 4096] {
            assert_eq!(
                objects(stream, chunk),
                [
                    r#"{"type":"nickname","message":"a}b"}"#,
                    r#"{"type":"boardcast","message":"\"{"}"#,
                    r#"{"type":"listall","message":""}"#,
                    "!",
                    r#"{"x":"y"}"#,
                ],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn an_overlong_object_is_reported_and_skipped_whole() {
        let mut stream = br#"{"type":"boardcast","message":""#.to_vec();
        stream.extend_from_slice(&[b'}'; 600]); // braces inside a string do not count
        stream.extend_from_slice(br#""}{"type":"listall"}"#);
        assert_eq!(objects(&stream, 7), ["~", r#"{"type":"listall"}"#]);
    }

    #[test]
    fn escaped_iac_is_kept_as_data() {
        assert_eq!(frame(b"a\xff\xffb\n", 1), vec![Ok(b"a\xffb".to_vec())]);
    }

    #[test]
    fn longest_line_is_accepted_with_either_ending() {
        let line = [b'x'; MAX_LINE_BYTES];
        for ending in [&b"\n"[..], b"\r\n"] {
            let input = [&line[..], ending].concat();
            for chunk in [1, 100, 4096] {
                assert_eq!(frame(&input, chunk), vec![Ok(line.to_vec())]);
            }
        }
    }

    #[test]
    fn overlong_line_is_reported_once_and_the_stream_recovers() {
        for extra in [1, 2, 5000] {
            let mut input = vec![b'x'; MAX_LINE_BYTES + extra];
            input.extend_from_slice(b"\nnext\n");
            for chunk in [1, 64, 100_000] {
                assert_eq!(
                    frame(&input, chunk),
                    vec![Err(()), Ok(b"next".to_vec())],
                    "extra {extra} chunk {chunk}"
                );
            }
        }
    }

    #[test]
    fn overlong_by_one_with_a_bare_newline() {
        let mut input = vec![b'x'; MAX_LINE_BYTES];
        input.extend_from_slice(b"\r\r\nok\n");
        assert_eq!(frame(&input, 3), vec![Err(()), Ok(b"ok".to_vec())]);
    }

    /// A tag section kept apart (empty if it was not) and the rest of the line.
    type TagsAndLine = (Vec<u8>, Vec<u8>);

    /// The lines of an IRC stream as (tag section kept apart, rest), `Err` for an overlong
    /// one, fed through `framer` and `pool`.
    fn irc_frame(
        framer: &mut LineFramer,
        lines: &mut Lines,
        pool: &mut Tags,
        input: &[u8],
        chunk: usize,
    ) -> Vec<Result<TagsAndLine, ()>> {
        let mut out = Vec::new();
        for piece in input.chunks(chunk) {
            let mut rest = piece;
            while !rest.is_empty() {
                let (used, framed) = framer.feed(rest, lines, pool);
                rest = &rest[used..];
                match framed {
                    Framed::Pending => {}
                    Framed::Line => {
                        let tags = framer.take_tags(pool).map(|t| t.to_vec());
                        let line = framer.take_line(lines).to_vec();
                        out.push(Ok((tags.unwrap_or_default(), line)));
                    }
                    Framed::TooLong => out.push(Err(())),
                    other => panic!("{other:?} in an IRC stream"),
                }
            }
        }
        out
    }

    fn irc_framer() -> LineFramer {
        let mut framer = LineFramer::default();
        framer.speak_irc();
        framer
    }

    #[test]
    fn irc_tags_past_the_line_buffer_are_kept_apart_and_bounded() {
        let mut pool = Tags::new();
        let mut lines = Lines::with_capacity(128);
        let body = [b'b'; MAX_LINE_BYTES - 20];
        // Tags that fill the section to the byte, and one byte more.
        for (value, fits) in [(MAX_TAG_BYTES - 6, true), (MAX_TAG_BYTES - 5, false)] {
            let tags = [b"@+a=".as_slice(), &vec![b'x'; value], b"; "].concat();
            assert_eq!(tags.len(), MAX_TAG_BYTES + usize::from(!fits));
            let input = [&tags[..], b"PRIVMSG #a :", &body, b"\r\nPING x\r\n"].concat();
            for chunk in [1, 7, 600, 100_000] {
                let mut framer = irc_framer();
                let framed = irc_frame(&mut framer, &mut lines, &mut pool, &input, chunk);
                let first = if fits {
                    Ok((tags.clone(), [b"PRIVMSG #a :".as_slice(), &body].concat()))
                } else {
                    Err(())
                };
                assert_eq!(
                    framed,
                    vec![first, Ok((vec![], b"PING x".to_vec()))],
                    "fits {fits} chunk {chunk}"
                );
                assert_eq!(pool.lent(), 0);
            }
        }
    }

    #[test]
    fn short_irc_tags_stay_in_the_line() {
        let mut pool = Tags::new();
        let mut lines = Lines::with_capacity(128);
        let mut framer = irc_framer();
        let framed = irc_frame(&mut framer, &mut lines, &mut pool, b"@label=1 PING x\n", 3);
        assert_eq!(framed, vec![Ok((vec![], b"@label=1 PING x".to_vec()))]);
        // A section that ends inside the buffer, which then fills: moved out there.
        let input = [b"@a=1 PRIVMSG #a :".as_slice(), &[b'y'; 500], b"\n"].concat();
        let framed = irc_frame(&mut framer, &mut lines, &mut pool, &input, 1000);
        assert_eq!(
            framed,
            vec![Ok((b"@a=1 ".to_vec(), input[5..input.len() - 1].to_vec()))]
        );
        // The rest of the line is bounded as any line is.
        let input = [b"@a=1 PRIVMSG #a :".as_slice(), &[b'y'; 600], b"\nok\n"].concat();
        let framed = irc_frame(&mut framer, &mut lines, &mut pool, &input, 64);
        assert_eq!(framed, vec![Err(()), Ok((vec![], b"ok".to_vec()))]);
        assert_eq!(pool.lent(), 0);
    }

    #[test]
    fn a_full_pool_refuses_long_tags_and_a_departure_gives_back() {
        let mut pool = Tags::new();
        let mut lines = Lines::with_capacity(128);
        let long = [b"@+a=".as_slice(), &[b'x'; 1000]].concat();
        let mut framers: Vec<LineFramer> = (0..TAG_BUFFERS).map(|_| irc_framer()).collect();
        for framer in &mut framers {
            assert_eq!(
                irc_frame(framer, &mut lines, &mut pool, &long, 4096),
                vec![]
            );
        }
        assert_eq!(pool.lent(), TAG_BUFFERS);
        let (mut late, line) = (irc_framer(), [&long[..], b" PING x\n"].concat());
        let framed = irc_frame(&mut late, &mut lines, &mut pool, &line, 4096);
        assert_eq!(framed, vec![Err(())]);
        framers[0].release(&mut lines, &mut pool);
        assert_eq!(pool.lent(), TAG_BUFFERS - 1);
        let framed = irc_frame(&mut late, &mut lines, &mut pool, &line, 4096);
        assert_eq!(
            framed,
            vec![Ok(([&long[..], b" "].concat(), b"PING x".to_vec()))]
        );
        for framer in &mut framers {
            framer.release(&mut lines, &mut pool);
        }
        assert_eq!(pool.lent(), 0);
    }

    #[test]
    fn tag_buffers_are_made_as_first_needed_and_then_reused() {
        let mut pool = TagPool::<crate::Heap>::new();
        assert_eq!(pool.made(), 0, "none made before a long tag section comes");
        let first: Vec<u8> = (0..3).map(|_| pool.borrow().unwrap()).collect();
        assert_eq!((first.as_slice(), pool.made()), ([0, 1, 2].as_slice(), 3));
        pool.release(1);
        assert_eq!(
            (pool.borrow(), pool.made()),
            (Some(1), 3),
            "reused, none made"
        );
        for at in 0..3 {
            pool.release(at);
        }
        let all: Vec<u8> = (0..TAG_BUFFERS).map(|_| pool.borrow().unwrap()).collect();
        assert_eq!(all.len(), TAG_BUFFERS);
        assert_eq!(
            (pool.borrow(), pool.made()),
            (None, TAG_BUFFERS),
            "the bound holds"
        );
        pool.release(5);
        let at = pool.borrow().unwrap();
        assert_eq!((at, pool.take(at).len()), (5, 0));
    }

    #[test]
    fn a_line_buffer_is_lent_only_while_a_line_waits() {
        let (mut pool, mut lines) = (Tags::new(), Lines::with_capacity(128));
        let mut framer = LineFramer::default();
        assert_eq!(
            framer.feed(b"", &mut lines, &mut pool),
            (0, Framed::Pending)
        );
        assert!(!framer.holds_line());
        // Half a line: a buffer is lent and keeps it.
        assert_eq!(
            framer.feed(b"hel", &mut lines, &mut pool),
            (3, Framed::Pending)
        );
        assert!(framer.holds_line());
        assert_eq!(
            framer.feed(b"lo\r\nnext", &mut lines, &mut pool),
            (4, Framed::Line)
        );
        assert_eq!(framer.take_line(&mut lines).as_slice(), b"hello");
        assert!(!framer.holds_line());
        assert_eq!(lines.lent(), 0);
        // A whole line in one piece borrows and gives back the same buffer.
        assert_eq!(
            framer.feed(b"x\n", &mut lines, &mut pool),
            (2, Framed::Line)
        );
        assert_eq!(framer.take_line(&mut lines).as_slice(), b"x");
        // Telnet negotiation and an overlong line's skipped rest hold nothing.
        let negotiation = [IAC, WILL, 31, IAC, SB, 24, 0, IAC, SE];
        assert_eq!(
            framer.feed(&negotiation, &mut lines, &mut pool).1,
            Framed::Pending
        );
        assert!(!framer.holds_line());
        let long = [b'a'; MAX_LINE_BYTES + 2];
        assert_eq!(framer.feed(&long, &mut lines, &mut pool).1, Framed::TooLong);
        assert_eq!(
            framer.feed(b"aaa", &mut lines, &mut pool),
            (3, Framed::Pending)
        );
        assert!(!framer.holds_line());
        assert_eq!((lines.lent(), lines.made()), (0, 1));
        // A line put back holds a buffer until it is taken; a departure gives it back.
        framer.put_back(b"JOIN #b", &mut lines);
        assert_eq!(framer.peek_line(&lines), b"JOIN #b");
        assert_eq!(
            framer.feed(b"y\n", &mut lines, &mut pool),
            (0, Framed::Line)
        );
        assert_eq!(framer.take_line(&mut lines).as_slice(), b"JOIN #b");
        assert_eq!(
            framer.feed(b"half", &mut lines, &mut pool).1,
            Framed::Pending
        );
        framer.release(&mut lines, &mut pool);
        assert_eq!((lines.lent(), lines.made()), (0, 1));
    }

    #[test]
    fn every_connection_of_the_capacity_can_hold_a_partial_line_at_once() {
        const N: usize = 8;
        let (mut pool, mut lines) = (
            TagPool::<crate::Inline<N>>::new(),
            LinePool::<crate::Inline<N>>::with_capacity(N),
        );
        let mut framers: Vec<LineFramer> = (0..N).map(|_| LineFramer::default()).collect();
        for (at, framer) in framers.iter_mut().enumerate() {
            let half = std::format!("line {at} ");
            assert_eq!(
                framer.feed(half.as_bytes(), &mut lines, &mut pool).1,
                Framed::Pending
            );
        }
        assert_eq!(lines.lent(), N);
        // Past the capacity (which a roster never goes), bytes are refused as too long, and
        // the framer goes on once a buffer is free.
        let mut extra = LineFramer::default();
        assert_eq!(
            extra.feed(b"lost\n", &mut lines, &mut pool),
            (5, Framed::TooLong)
        );
        for (at, framer) in framers.iter_mut().enumerate() {
            assert_eq!(
                framer.feed(b"ends\n", &mut lines, &mut pool),
                (5, Framed::Line)
            );
            let line = framer.take_line(&mut lines);
            assert_eq!(line.as_slice(), std::format!("line {at} ends").as_bytes());
        }
        assert_eq!(lines.lent(), 0);
        assert_eq!(
            extra.feed(b"kept\n", &mut lines, &mut pool),
            (5, Framed::Line)
        );
        assert_eq!(extra.take_line(&mut lines).as_slice(), b"kept");
    }

    #[test]
    fn the_scanner_respects_strings_and_escapes() {
        let stream = br#" {"a":"}{\"}"}{"b":{"c":"d"}}x"#;
        let mut scanner = ObjectScanner::default();
        let ends: Vec<usize> = stream
            .iter()
            .enumerate()
            .filter(|&(_, &b)| scanner.scan(b) == Scanned::End)
            .map(|(at, _)| at)
            .collect();
        assert_eq!(ends, [13, 28]);
        assert_eq!(scanner.scan(b'x'), Scanned::Stray);
    }
}
