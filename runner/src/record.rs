//! Record and replay: every input the core receives, written to a file, and fed again to a
//! fresh core to see what each connection would have received.
//!
//! The core is deterministic: the same configuration and the same calls, at the same times,
//! give the same outputs. So a recording of its inputs (`--record FILE`) is a bug report anyone
//! can replay (`--replay FILE`). A recording holds what people wrote: make one knowingly.
//!
//! # Format
//!
//! Little-endian throughout. A header, then one record per core call, in call order:
//!
//! ```text
//! header   "chat-record 2\n"
//!          u64 start (the core's clock at start, ms)
//!          config: u8 colour, u8 irc_lobby, opt silence_timeout, u32 max_room_members,
//!                  u64 history, u64 max_clients, u8 flood? (u32 burst, u32 per_second),
//!                  u64 greeting_delay, opt ping_interval, u64 ping_timeout,
//!                  u32 announce_limit, u8 length + server name
//!          (opt: u8 0, or u8 1 then u64; durations in ms)
//! record   u8 kind, u64 at (ms), then by kind:
//!          1 connect       conn (u32 index, u32 generation; index u32::MAX if refused);
//!                          written by older versions, which knew no addresses (now 15)
//!          2 input         conn, u32 length, bytes
//!          3 more          conn
//!          4 disconnect    conn, u8 reason (0 closed, 1 error, 2 too slow)
//!          5 timeout
//!          6 lagging       conn
//!          7 caught up     conn, u64 skipped
//!          8 undelivered   conn (from), conn (to)
//!          9 shutdown
//!          10 history      u64 request (the Nth `Output::History`, from 1), u8 part, then
//!                          0 begin: u64 lines | 1 line: u64 seq, u64 at, u8 kind (0 line,
//!                          1 action, 2 notice), str nick, str text | 2 end | 3 unavailable |
//!                          4 private line: as 1, then str to (whom it was sent to)
//!          11 restore      u8 what, then 0 topic: str room, str topic, str by, u64 at |
//!                          1 last sequence number: u64 | 2 founder: str room, str account |
//!                          3 ban: str room, str mask, str by, u64 at, u64 until (u64::MAX:
//!                          none) | 4 modes: str room, str letters, str key ("" none),
//!                          u32 limit (0 none) | 5 server ban: str mask, str by, u64 at,
//!                          u64 until (u64::MAX: none), str reason | 6 ban exception or
//!                          invite exception: u8 list (the mode letter, `e` or `I`), then as 3
//!          12 notice       str text
//!          13 limits       the limits set on the running core (a reload): u64 max_clients,
//!                          u32 max_room_members, u64 history, u8 flood? (u32 burst,
//!                          u32 per_second), opt silence_timeout, u64 greeting_delay,
//!                          opt ping_interval, u64 ping_timeout, u32 announce_limit,
//!                          u64 nick_grace
//!          14 motd         the message of the day set (at start, and on each reload):
//!                          u8 0 (the built-in one) | u8 1, u32 count, then count str lines
//!          15 connect from u8 family (4 or 6), the address (4 or 16 bytes), then as connect
//!          16 operators    u32 count, then count str account names (the server operators)
//!          (str: u32 length, then UTF-8 bytes)
//! ```
//!
//! Versions: 2 added the records 13 and 14, so that a replay greets as the server did (the
//! message of the day) and applies a reload's limits when the server did. A recording of
//! version 1 (`"chat-record 1\n"`, the same otherwise) still replays, with the built-in
//! message of the day and the limits of its header throughout, as it did; any other header
//! is refused, naming the version found.
//!
//! A replay answers history from the recording, not from a store: what the asker was shown is
//! what the replay shows.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use chat_core::claim::{ClaimAnswer, NickClaim};
use chat_core::motd::Motd;
use chat_core::{
    Admission, Backlog, BanList, Config, ConnectionId, Consumed, DisconnectReason, Error,
    FloodLimit, HistoryAnswer, HistoryLine, HistoryRequest, Instant, Limits, LineKind, Output,
    Restored, ServerName,
};

use crate::core_box::Core;

/// The header of the recordings made now.
const MAGIC: &[u8] = b"chat-record 2\n";
/// The header of version 1: no limits or message of the day recorded.
const MAGIC_1: &[u8] = b"chat-record 1\n";
/// What every version's header begins with.
const MAGIC_PREFIX: &[u8] = b"chat-record ";

const CONNECT: u8 = 1;
const INPUT: u8 = 2;
const MORE: u8 = 3;
const DISCONNECT: u8 = 4;
const TIMEOUT: u8 = 5;
const LAGGING: u8 = 6;
const CAUGHT_UP: u8 = 7;
const UNDELIVERED: u8 = 8;
const SHUTDOWN: u8 = 9;
const HISTORY: u8 = 10;
const RESTORE: u8 = 11;
const NOTICE: u8 = 12;
const LIMITS: u8 = 13;
const MOTD: u8 = 14;
/// A connection from a known address (kinds 13 and 14 are the limits and the message of the
/// day).
const CONNECT_FROM: u8 = 15;
/// The accounts that are server operators.
const OPERATORS: u8 = 16;

/// An address of a connect-from record: a family byte (4 or 6) and its octets.
fn peer_address(bytes: &mut Bytes<'_>, offset: usize) -> Result<IpAddr, ReplayError> {
    Ok(match bytes.u8("an address's family")? {
        4 => {
            let octets: [u8; 4] = bytes
                .take(4, "an IPv4 address")?
                .try_into()
                .unwrap_or_default();
            IpAddr::from(octets)
        }
        6 => {
            let octets: [u8; 16] = bytes
                .take(16, "an IPv6 address")?
                .try_into()
                .unwrap_or_default();
            IpAddr::from(octets)
        }
        _ => {
            return Err(ReplayError::Corrupt {
                offset,
                what: "an address of an unknown family",
            });
        }
    })
}

fn str_bytes(text: &str) -> Vec<u8> {
    let mut bytes = u32::try_from(text.len())
        .unwrap_or(u32::MAX)
        .to_le_bytes()
        .to_vec();
    bytes.extend_from_slice(text.as_bytes());
    bytes
}

/// Writes the core's inputs to a file as they happen. A write that fails stops the recording
/// (the server goes on) and says so once.
#[derive(Debug)]
pub(crate) struct Recorder {
    out: Option<BufWriter<File>>,
}

impl Recorder {
    /// Creates `path` and writes the header: `config` and the core's clock at start.
    pub(crate) fn create(path: &Path, config: &Config, start: Instant) -> io::Result<Self> {
        let mut out = BufWriter::new(File::create(path)?);
        out.write_all(MAGIC)?;
        out.write_all(&start.as_millis().to_le_bytes())?;
        write_config(&mut out, config)?;
        out.flush()?;
        Ok(Self { out: Some(out) })
    }

    fn write(&mut self, kind: u8, at: Instant, body: &[&[u8]]) {
        let Some(out) = &mut self.out else {
            return;
        };
        let written = out
            .write_all(&[kind])
            .and_then(|()| out.write_all(&at.as_millis().to_le_bytes()))
            .and_then(|()| body.iter().try_for_each(|part| out.write_all(part)));
        if let Err(error) = written {
            crate::log::error!("recording stopped: {error}");
            self.out = None;
        }
    }

    pub(crate) fn connect_from(&mut self, at: Instant, peer: IpAddr, admission: &Admission) {
        let conn = match admission {
            Admission::Accepted(conn) => conn_bytes(*conn),
            _ => refused_bytes(),
        };
        match peer {
            IpAddr::V4(v4) => self.write(CONNECT_FROM, at, &[&[4], &v4.octets(), &conn]),
            IpAddr::V6(v6) => self.write(CONNECT_FROM, at, &[&[6], &v6.octets(), &conn]),
        }
    }

    pub(crate) fn operators(&mut self, at: Instant, operators: &[String]) {
        let count = u32::try_from(operators.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes();
        let mut record: Vec<Vec<u8>> = vec![count.to_vec()];
        record.extend(operators.iter().map(|name| str_bytes(name).to_vec()));
        let parts: Vec<&[u8]> = record.iter().map(Vec::as_slice).collect();
        self.write(OPERATORS, at, &parts);
    }

    pub(crate) fn input(&mut self, at: Instant, conn: ConnectionId, bytes: &[u8]) {
        let length = u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_le_bytes();
        self.write(INPUT, at, &[&conn_bytes(conn), &length, bytes]);
    }

    pub(crate) fn more(&mut self, at: Instant, conn: ConnectionId) {
        self.write(MORE, at, &[&conn_bytes(conn)]);
    }

    pub(crate) fn disconnect(&mut self, at: Instant, conn: ConnectionId, reason: DisconnectReason) {
        let reason = match reason {
            DisconnectReason::Closed => 0_u8,
            DisconnectReason::TooSlow => 2,
            _ => 1,
        };
        self.write(DISCONNECT, at, &[&conn_bytes(conn), &[reason]]);
    }

    pub(crate) fn timeout(&mut self, at: Instant) {
        self.write(TIMEOUT, at, &[]);
    }

    pub(crate) fn backlog(&mut self, at: Instant, conn: ConnectionId, backlog: Backlog) {
        match backlog {
            Backlog::CaughtUp { skipped } => {
                self.write(CAUGHT_UP, at, &[&conn_bytes(conn), &skipped.to_le_bytes()]);
            }
            _ => self.write(LAGGING, at, &[&conn_bytes(conn)]),
        }
    }

    pub(crate) fn undelivered(&mut self, at: Instant, from: ConnectionId, to: ConnectionId) {
        self.write(UNDELIVERED, at, &[&conn_bytes(from), &conn_bytes(to)]);
    }

    pub(crate) fn shutdown(&mut self, at: Instant) {
        self.write(SHUTDOWN, at, &[]);
        self.flush();
    }

    pub(crate) fn history(&mut self, at: Instant, request: u64, answer: &HistoryAnswer<'_>) {
        let request = request.to_le_bytes();
        match answer {
            HistoryAnswer::Begin { lines } => {
                let lines = (*lines as u64).to_le_bytes();
                self.write(HISTORY, at, &[&request, &[0], &lines]);
            }
            HistoryAnswer::Line(line) => {
                let kind = match line.kind {
                    LineKind::Action => 1_u8,
                    LineKind::Notice => 2,
                    _ => 0,
                };
                // A private line (part 4) says whom it went to, after the rest.
                let (part, to) = match line.to {
                    Some(to) => (4, str_bytes(to)),
                    None => (1, Vec::new()),
                };
                self.write(
                    HISTORY,
                    at,
                    &[
                        &request,
                        &[part],
                        &line.seq.to_le_bytes(),
                        &line.at.as_millis().to_le_bytes(),
                        &[kind],
                        &str_bytes(line.nick),
                        &str_bytes(line.text),
                        &to,
                    ],
                );
            }
            HistoryAnswer::End => self.write(HISTORY, at, &[&request, &[2]]),
            _ => self.write(HISTORY, at, &[&request, &[3]]),
        }
    }

    pub(crate) fn restore(&mut self, at: Instant, restored: &Restored<'_>) {
        match restored {
            Restored::Topic {
                room,
                topic,
                by,
                at: set,
            } => self.write(
                RESTORE,
                at,
                &[
                    &[0],
                    &str_bytes(room),
                    &str_bytes(topic),
                    &str_bytes(by),
                    &set.as_millis().to_le_bytes(),
                ],
            ),
            Restored::LastSeq(last) => self.write(RESTORE, at, &[&[1], &last.to_le_bytes()]),
            Restored::Founder { room, account } => {
                self.write(RESTORE, at, &[&[2], &str_bytes(room), &str_bytes(account)]);
            }
            Restored::Ban {
                room,
                list,
                mask,
                by,
                at: set,
                until,
            } => self.write(
                RESTORE,
                at,
                &[
                    // Bans as before there were other lists, so older builds replay them.
                    match list {
                        BanList::Bans => &[3],
                        BanList::Exceptions => &[6, b'e'],
                        _ => &[6, b'I'],
                    },
                    &str_bytes(room),
                    &str_bytes(mask),
                    &str_bytes(by),
                    &set.as_millis().to_le_bytes(),
                    &until.map_or(u64::MAX, Instant::as_millis).to_le_bytes(),
                ],
            ),
            Restored::ServerBan {
                mask,
                by,
                at: set,
                until,
                reason,
            } => self.write(
                RESTORE,
                at,
                &[
                    &[5],
                    &str_bytes(mask),
                    &str_bytes(by),
                    &set.as_millis().to_le_bytes(),
                    &until.map_or(u64::MAX, Instant::as_millis).to_le_bytes(),
                    &str_bytes(reason),
                ],
            ),
            Restored::RoomModes {
                room,
                modes,
                key,
                limit,
            } => self.write(
                RESTORE,
                at,
                &[
                    &[4],
                    &str_bytes(room),
                    &str_bytes(modes),
                    &str_bytes(key.unwrap_or("")),
                    &limit.unwrap_or(0).to_le_bytes(),
                ],
            ),
            _ => {}
        }
    }

    pub(crate) fn notice(&mut self, at: Instant, text: &str) {
        self.write(NOTICE, at, &[&str_bytes(text)]);
    }

    pub(crate) fn limits(&mut self, at: Instant, limits: &Limits) {
        let mut body = Vec::new();
        // Cannot fail: writing to a Vec.
        let _ = write_limits(&mut body, limits);
        self.write(LIMITS, at, &[&body]);
    }

    pub(crate) fn motd(&mut self, at: Instant, motd: Option<&Motd>) {
        let mut body = Vec::new();
        match motd {
            None => body.push(0),
            Some(motd) => {
                body.push(1);
                body.extend_from_slice(&(motd.len() as u32).to_le_bytes());
                for line in motd.lines() {
                    body.extend_from_slice(&str_bytes(line));
                }
            }
        }
        self.write(MOTD, at, &[&body]);
    }

    /// Writes out what is buffered (the hub calls this at its flushes, so a recording is
    /// complete up to the last lines that went out).
    pub(crate) fn flush(&mut self) {
        if let Some(out) = &mut self.out
            && let Err(error) = out.flush()
        {
            crate::log::error!("recording stopped: {error}");
            self.out = None;
        }
    }
}

/// The serving core, each input written to the recording (if one is kept) as it goes in: the
/// hub calls this as it would the core, so no input can miss the recording.
#[derive(Debug)]
pub(crate) struct RecordedCore {
    core: Box<Core>,
    recorder: Option<Recorder>,
}

impl RecordedCore {
    pub(crate) fn new(core: Box<Core>, recorder: Option<Recorder>) -> Self {
        Self { core, recorder }
    }

    fn record(&mut self, write: impl FnOnce(&mut Recorder)) {
        if let Some(recorder) = &mut self.recorder {
            write(recorder);
        }
    }

    pub(crate) fn handle_connect_from(
        &mut self,
        now: Instant,
        peer: IpAddr,
    ) -> Result<Admission, Error> {
        let admission = self.core.handle_connect_from(now, peer)?;
        self.record(|recorder| recorder.connect_from(now, peer, &admission));
        Ok(admission)
    }

    pub(crate) fn handle_input(
        &mut self,
        now: Instant,
        conn: ConnectionId,
        bytes: &[u8],
    ) -> Result<Consumed, Error> {
        self.record(|recorder| recorder.input(now, conn, bytes));
        self.core.handle_input(now, conn, bytes)
    }

    pub(crate) fn handle_more(
        &mut self,
        now: Instant,
        conn: ConnectionId,
    ) -> Result<Consumed, Error> {
        self.record(|recorder| recorder.more(now, conn));
        self.core.handle_more(now, conn)
    }

    pub(crate) fn handle_disconnect(
        &mut self,
        now: Instant,
        conn: ConnectionId,
        reason: DisconnectReason,
    ) -> Result<(), Error> {
        self.record(|recorder| recorder.disconnect(now, conn, reason));
        self.core.handle_disconnect(now, conn, reason)
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        self.record(|recorder| recorder.timeout(now));
        self.core.handle_timeout(now)
    }

    pub(crate) fn handle_backlog(
        &mut self,
        now: Instant,
        conn: ConnectionId,
        backlog: Backlog,
    ) -> Result<(), Error> {
        self.record(|recorder| recorder.backlog(now, conn, backlog));
        self.core.handle_backlog(now, conn, backlog)
    }

    pub(crate) fn handle_undelivered(
        &mut self,
        now: Instant,
        from: ConnectionId,
        to: ConnectionId,
    ) -> Result<(), Error> {
        self.record(|recorder| recorder.undelivered(now, from, to));
        self.core.handle_undelivered(now, from, to)
    }

    pub(crate) fn handle_shutdown(&mut self, now: Instant) -> Result<(), Error> {
        self.record(|recorder| recorder.shutdown(now));
        self.core.handle_shutdown(now)
    }

    /// `request` is the hub's count of `Output::History` so far when this one came (from 1),
    /// which names it in the recording.
    pub(crate) fn handle_history(
        &mut self,
        now: Instant,
        request: (u64, &HistoryRequest),
        answer: HistoryAnswer<'_>,
    ) -> Result<(), Error> {
        self.record(|recorder| recorder.history(now, request.0, &answer));
        self.core.handle_history(now, request.1, answer)
    }

    /// `now` is only for the recording: restoring takes no time.
    pub(crate) fn handle_restore(
        &mut self,
        now: Instant,
        restored: Restored<'_>,
    ) -> Result<(), Error> {
        self.record(|recorder| recorder.restore(now, &restored));
        self.core.handle_restore(restored)
    }

    /// `now` is only for the recording: setting the message takes no step.
    pub(crate) fn set_motd(&mut self, now: Instant, motd: Option<Motd>) {
        self.record(|recorder| recorder.motd(now, motd.as_ref()));
        self.core.set_motd(motd);
    }

    /// The account the person called `nick` is identified as (a question: not recorded).
    pub(crate) fn account_of(&self, nick: &str) -> Option<&chat_core::Nickname> {
        self.core.account_of(nick)
    }

    /// `names` are the accounts that are server operators (checked by the caller: see
    /// [`chat_core::account::Operators::new`]).
    pub(crate) fn set_operators(&mut self, now: Instant, names: &[String]) {
        let Ok(operators) = chat_core::account::Operators::new(names.iter().map(String::as_str))
        else {
            return;
        };
        self.record(|recorder| recorder.operators(now, names));
        self.core.set_operators(operators);
    }

    /// `now` is only for the recording: the limits apply from the next step.
    pub(crate) fn set_limits(&mut self, now: Instant, limits: Limits) {
        self.record(|recorder| recorder.limits(now, &limits));
        self.core.set_limits(limits);
    }

    pub(crate) fn handle_notice(&mut self, now: Instant, text: &str) -> Result<(), Error> {
        self.record(|recorder| recorder.notice(now, text));
        self.core.handle_notice(now, text)
    }

    /// Not recorded: the format has no record for a claim's answer (nor the header for
    /// `nick_claims`), so `serve` refuses `--record` in cluster mode. Should a recorder be here
    /// anyway, it stops, rather than go on making a recording that does not replay.
    pub(crate) fn handle_claim(
        &mut self,
        now: Instant,
        claim: &NickClaim,
        answer: ClaimAnswer,
    ) -> Result<(), Error> {
        if self.recorder.take().is_some() {
            crate::log::error!("recording stopped: nickname claims cannot be recorded");
        }
        self.core.handle_claim(now, claim, answer)
    }

    /// The core, for a call the recording format has no place for (cluster mode's, where
    /// `--record` is refused): any recording stops, so a replay is never silently wrong.
    pub(crate) fn unrecorded(&mut self, what: &str) -> &mut Core {
        if self.recorder.take().is_some() {
            crate::log::error!("recording stopped: {what} cannot be recorded");
        }
        &mut self.core
    }

    /// The core, for its getters.
    pub(crate) fn core(&self) -> &Core {
        &self.core
    }

    pub(crate) fn poll_output(&mut self) -> Option<Output<'_>> {
        self.core.poll_output()
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.core.poll_timeout()
    }

    pub(crate) fn online(&self) -> usize {
        self.core.online()
    }

    /// Writes out what the recording has buffered.
    pub(crate) fn flush_recording(&mut self) {
        self.record(Recorder::flush);
    }
}

fn conn_bytes(conn: ConnectionId) -> [u8; 8] {
    conn.to_bits().to_le_bytes()
}

/// No connection: what a refused connect records.
const REFUSED: u64 = u64::MAX;

fn refused_bytes() -> [u8; 8] {
    REFUSED.to_le_bytes()
}

/// A duration in whole milliseconds, as recordings keep them.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// An optional duration: `0`, or `1` then its milliseconds.
fn option(out: &mut dyn Write, duration: Option<Duration>) -> io::Result<()> {
    match duration {
        Some(duration) => out
            .write_all(&[1])
            .and_then(|()| out.write_all(&millis(duration).to_le_bytes())),
        None => out.write_all(&[0]),
    }
}

/// Flood control: `0` (off), or `1`, the burst and the rate.
fn write_flood(out: &mut dyn Write, flood: Option<FloodLimit>) -> io::Result<()> {
    match flood {
        Some(limit) => {
            out.write_all(&[1])?;
            out.write_all(&limit.burst.to_le_bytes())?;
            out.write_all(&limit.per_second.to_le_bytes())
        }
        None => out.write_all(&[0]),
    }
}

fn write_config(out: &mut impl Write, config: &Config) -> io::Result<()> {
    out.write_all(&[u8::from(config.colour), u8::from(config.irc_lobby)])?;
    option(out, config.silence_timeout)?;
    out.write_all(&config.max_room_members.to_le_bytes())?;
    out.write_all(&(config.history as u64).to_le_bytes())?;
    out.write_all(&(config.max_clients as u64).to_le_bytes())?;
    write_flood(out, config.flood_limit)?;
    out.write_all(&millis(config.greeting_delay).to_le_bytes())?;
    option(out, config.ping_interval)?;
    out.write_all(&millis(config.ping_timeout).to_le_bytes())?;
    out.write_all(&config.announce_limit.to_le_bytes())?;
    let name = config.server_name.as_str().as_bytes();
    out.write_all(&[name.len() as u8])?;
    out.write_all(name)
}

fn write_limits(out: &mut impl Write, limits: &Limits) -> io::Result<()> {
    out.write_all(&(limits.max_clients as u64).to_le_bytes())?;
    out.write_all(&limits.max_room_members.to_le_bytes())?;
    out.write_all(&(limits.history as u64).to_le_bytes())?;
    write_flood(out, limits.flood_limit)?;
    option(out, limits.silence_timeout)?;
    out.write_all(&millis(limits.greeting_delay).to_le_bytes())?;
    option(out, limits.ping_interval)?;
    out.write_all(&millis(limits.ping_timeout).to_le_bytes())?;
    out.write_all(&limits.announce_limit.to_le_bytes())?;
    out.write_all(&millis(limits.nick_grace).to_le_bytes())
}

/// Reads a limits record into `limits` (the core's, so that what the format does not hold
/// stays as it is).
fn read_limits(bytes: &mut Bytes<'_>, mut limits: Limits) -> Result<Limits, ReplayError> {
    limits.max_clients = bytes.u64("the connection limit")? as usize;
    limits.max_room_members = bytes.u32("the room limit")?;
    limits.history = bytes.u64("the history")? as usize;
    limits.flood_limit = match bytes.u8("the flood limit")? {
        0 => None,
        1 => Some(FloodLimit {
            burst: bytes.u32("the flood limit")?,
            per_second: bytes.u32("the flood limit")?,
        }),
        _ => return Err(bytes.corrupt("the flood limit")),
    };
    limits.silence_timeout = bytes.option("the silence timeout")?;
    limits.greeting_delay = bytes.millis("the greeting delay")?;
    limits.ping_interval = bytes.option("the ping interval")?;
    limits.ping_timeout = bytes.millis("the ping timeout")?;
    limits.announce_limit = bytes.u32("the announce limit")?;
    limits.nick_grace = bytes.millis("the nickname grace")?;
    Ok(limits)
}

/// Reads a message-of-the-day record.
fn read_motd(bytes: &mut Bytes<'_>) -> Result<Option<Motd>, ReplayError> {
    match bytes.u8("a motd")? {
        0 => Ok(None),
        1 => {
            let count = bytes.u32("a motd's length")?;
            let mut lines = Vec::new();
            for _ in 0..count.min(chat_core::motd::MAX_MOTD_LINES as u32 + 1) {
                lines.push(bytes.text("a motd line")?);
            }
            if lines.len() != count as usize {
                return Err(bytes.corrupt("a motd longer than the core keeps"));
            }
            Ok(Some(Motd::from_lines(lines.iter().map(String::as_str)).0))
        }
        _ => Err(bytes.corrupt("a motd")),
    }
}

/// Why a recording could not be replayed.
#[derive(Debug)]
pub enum ReplayError {
    /// The file could not be read.
    Read(io::Error),
    /// The file is not a recording, or is cut short or damaged at this byte offset.
    Corrupt {
        /// Where.
        offset: usize,
        /// What was wrong there.
        what: &'static str,
    },
    /// The file is a recording of a version this one does not replay (named).
    Version(String),
    /// The core did not behave as when recorded (a recording from another version), at this
    /// byte offset.
    Diverged {
        /// Where.
        offset: usize,
        /// What differed.
        what: String,
    },
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read(error) => write!(f, "cannot read the recording: {error}"),
            Self::Corrupt { offset, what } => {
                write!(f, "not a valid recording at byte {offset}: {what}")
            }
            Self::Version(version) => write!(
                f,
                "a recording of format version {version:?}; this chat-runner replays versions \
                 1 and 2"
            ),
            Self::Diverged { offset, what } => write!(
                f,
                "the recording does not replay on this version at byte {offset}: {what}"
            ),
        }
    }
}

impl std::error::Error for ReplayError {}

/// What each connection was sent, in connection order.
pub type Replayed = Vec<(ConnectionId, Vec<u8>)>;

/// A cursor over the recording's bytes, with errors that name the offset.
struct Bytes<'a> {
    data: &'a [u8],
    at: usize,
}

impl Bytes<'_> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&[u8], ReplayError> {
        let end = self.at.checked_add(n).filter(|&end| end <= self.data.len());
        let Some(end) = end else {
            return Err(ReplayError::Corrupt {
                offset: self.at,
                what,
            });
        };
        let taken = &self.data[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, ReplayError> {
        Ok(self.take(1, what)?[0])
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, ReplayError> {
        let bytes = self.take(4, what)?;
        Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, ReplayError> {
        let bytes = self.take(8, what)?;
        let mut array = [0; 8];
        array.copy_from_slice(bytes);
        Ok(u64::from_le_bytes(array))
    }

    fn millis(&mut self, what: &'static str) -> Result<Duration, ReplayError> {
        Ok(Duration::from_millis(self.u64(what)?))
    }

    fn option(&mut self, what: &'static str) -> Result<Option<Duration>, ReplayError> {
        match self.u8(what)? {
            0 => Ok(None),
            1 => self.millis(what).map(Some),
            _ => Err(self.corrupt(what)),
        }
    }

    fn text(&mut self, what: &'static str) -> Result<String, ReplayError> {
        let length = self.u32(what)? as usize;
        let at = self.at;
        let bytes = self.take(length, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| ReplayError::Corrupt { offset: at, what })
    }

    fn conn(&mut self) -> Result<u64, ReplayError> {
        self.u64("a connection")
    }

    fn corrupt(&self, what: &'static str) -> ReplayError {
        ReplayError::Corrupt {
            offset: self.at,
            what,
        }
    }
}

fn read_config(bytes: &mut Bytes<'_>) -> Result<Config, ReplayError> {
    let colour = bytes.u8("the configuration")? != 0;
    let irc_lobby = bytes.u8("the configuration")? != 0;
    let silence = bytes.option("the silence timeout")?;
    let max_room_members = bytes.u32("the room limit")?;
    let history = bytes.u64("the history")? as usize;
    let max_clients = bytes.u64("the connection limit")? as usize;
    let flood = match bytes.u8("the flood limit")? {
        0 => None,
        1 => Some(FloodLimit {
            burst: bytes.u32("the flood limit")?,
            per_second: bytes.u32("the flood limit")?,
        }),
        _ => return Err(bytes.corrupt("the flood limit")),
    };
    let greeting_delay = bytes.millis("the greeting delay")?;
    let ping_interval = bytes.option("the ping interval")?;
    let ping_timeout = bytes.millis("the ping timeout")?;
    let announce_limit = bytes.u32("the announce limit")?;
    let length = usize::from(bytes.u8("the server name")?);
    let at = bytes.at;
    let name = bytes.take(length, "the server name")?;
    let name = std::str::from_utf8(name)
        .ok()
        .and_then(ServerName::new)
        .ok_or(ReplayError::Corrupt {
            offset: at,
            what: "the server name",
        })?;
    Ok(Config::default()
        .with_colour(colour)
        .with_irc_lobby(irc_lobby)
        .with_silence_timeout(silence)
        .with_max_room_members(max_room_members)
        .with_history(history)
        .with_max_clients(max_clients)
        .with_flood_limit(flood)
        .with_greeting_delay(greeting_delay)
        .with_ping(ping_interval, ping_timeout)
        .with_announce_limit(announce_limit)
        .with_server_name(name))
}

/// Replays the recording at `path` on a fresh core: what each connection was sent.
pub fn replay(path: &Path) -> Result<Replayed, ReplayError> {
    let mut data = Vec::new();
    File::open(path)
        .and_then(|mut file| file.read_to_end(&mut data))
        .map_err(ReplayError::Read)?;
    let mut bytes = Bytes { data: &data, at: 0 };
    let header = bytes.take(MAGIC.len(), "the header")?.to_vec();
    if header != MAGIC && header != MAGIC_1 {
        if !header.starts_with(MAGIC_PREFIX) {
            return Err(ReplayError::Corrupt {
                offset: 0,
                what: "not a chat-runner recording",
            });
        }
        let line = data.split(|&byte| byte == b'\n').next().unwrap_or_default();
        return Err(ReplayError::Version(
            String::from_utf8_lossy(&line[MAGIC_PREFIX.len()..]).into_owned(),
        ));
    }
    let start = Instant::from_millis(bytes.u64("the start time")?);
    let config = read_config(&mut bytes)?;
    let mut core = crate::core_box::new_core(config, start);
    let mut sent: BTreeMap<ConnectionId, Vec<u8>> = BTreeMap::new();
    let mut order: Vec<ConnectionId> = Vec::new();
    let mut requests: Vec<HistoryRequest> = Vec::new();
    // As the hub does: while history asked for a connection is on its way, what it is sent
    // is kept back, so that the history goes out first (see `Hub::answer`).
    let mut parked = Parking::default();
    while bytes.at < data.len() {
        let offset = bytes.at;
        let kind = bytes.u8("a record")?;
        let at = Instant::from_millis(bytes.u64("a record's time")?);
        let diverged = |what: String| ReplayError::Diverged { offset, what };
        let known = |bits: u64| {
            order
                .iter()
                .copied()
                .find(|conn| conn.to_bits() == bits)
                .ok_or_else(|| diverged(format!("connection {bits:#x} was never connected")))
        };
        let result = match kind {
            CONNECT | CONNECT_FROM => {
                let peer = match kind {
                    CONNECT => None,
                    _ => Some(peer_address(&mut bytes, offset)?),
                };
                let bits = bytes.conn()?;
                let admission = match peer {
                    Some(peer) => core.handle_connect_from(at, peer),
                    None => core.handle_connect(at),
                };
                match admission {
                    Ok(Admission::Accepted(conn)) => {
                        if conn.to_bits() != bits {
                            return Err(diverged(format!(
                                "the core accepted {conn}, not the connection recorded"
                            )));
                        }
                        order.push(conn);
                        Ok(())
                    }
                    Ok(_) if bits == REFUSED => Ok(()),
                    Ok(_) => return Err(diverged("the core refused a connection".into())),
                    Err(error) => Err(error),
                }
            }
            OPERATORS => {
                let count = bytes.u32("how many operators")?;
                let mut names = Vec::new();
                for _ in 0..count.min(chat_core::account::MAX_OPERATORS as u32 + 1) {
                    names.push(bytes.text("an operator's account")?);
                }
                match chat_core::account::Operators::new(names.iter().map(String::as_str)) {
                    Ok(operators) => {
                        core.set_operators(operators);
                        Ok(())
                    }
                    Err(_) => {
                        return Err(ReplayError::Corrupt {
                            offset,
                            what: "a list of operators that is not one",
                        });
                    }
                }
            }
            INPUT => {
                let conn = known(bytes.conn()?)?;
                let length = bytes.u32("an input's length")? as usize;
                let input = bytes.take(length, "an input's bytes")?;
                core.handle_input(at, conn, input).map(|_| ())
            }
            MORE => {
                let conn = known(bytes.conn()?)?;
                core.handle_more(at, conn).map(|_| ())
            }
            DISCONNECT => {
                let conn = known(bytes.conn()?)?;
                let reason = match bytes.u8("a disconnect's reason")? {
                    0 => DisconnectReason::Closed,
                    2 => DisconnectReason::TooSlow,
                    _ => DisconnectReason::Error,
                };
                core.handle_disconnect(at, conn, reason)
            }
            TIMEOUT => core.handle_timeout(at),
            LAGGING => {
                let conn = known(bytes.conn()?)?;
                core.handle_backlog(at, conn, Backlog::Lagging)
            }
            CAUGHT_UP => {
                let conn = known(bytes.conn()?)?;
                let skipped = bytes.u64("a count skipped")?;
                core.handle_backlog(at, conn, Backlog::CaughtUp { skipped })
            }
            UNDELIVERED => {
                let from = known(bytes.conn()?)?;
                let to = known(bytes.conn()?)?;
                core.handle_undelivered(at, from, to)
            }
            SHUTDOWN => core.handle_shutdown(at),
            HISTORY => {
                let number = bytes.u64("a history request's number")?;
                let request = usize::try_from(number)
                    .ok()
                    .and_then(|n| requests.get(n.checked_sub(1)?))
                    .ok_or_else(|| diverged(format!("history request {number} was never made")))?
                    .clone();
                let (nick, text, to);
                let answer = match bytes.u8("a history answer's part")? {
                    0 => HistoryAnswer::Begin {
                        lines: bytes.u64("a history answer's length")? as usize,
                    },
                    part @ (1 | 4) => {
                        let seq = bytes.u64("a history line's number")?;
                        let at = Instant::from_millis(bytes.u64("a history line's time")?);
                        let kind = match bytes.u8("a history line's kind")? {
                            1 => LineKind::Action,
                            2 => LineKind::Notice,
                            _ => LineKind::Line,
                        };
                        nick = bytes.text("a history line's nick")?;
                        text = bytes.text("a history line's text")?;
                        to = match part {
                            4 => Some(bytes.text("a private line's recipient")?),
                            _ => None,
                        };
                        HistoryAnswer::Line(HistoryLine {
                            seq,
                            at,
                            kind,
                            nick: &nick,
                            text: &text,
                            to: to.as_deref(),
                        })
                    }
                    2 => HistoryAnswer::End,
                    _ => HistoryAnswer::Unavailable,
                };
                let conn = request.conn();
                if matches!(
                    answer,
                    HistoryAnswer::Begin { .. } | HistoryAnswer::Unavailable
                ) {
                    parked.answer_begins(conn, &mut sent);
                }
                let result = core.handle_history(at, &request, answer);
                drain(&mut core, &mut sent, &mut parked, &mut requests);
                if matches!(answer, HistoryAnswer::End | HistoryAnswer::Unavailable) {
                    parked.answer_ended(conn, &mut sent);
                }
                result
            }
            RESTORE => match bytes.u8("what was restored")? {
                0 => {
                    let room = bytes.text("a restored room")?;
                    let topic = bytes.text("a restored topic")?;
                    let by = bytes.text("a restored topic's setter")?;
                    let set = Instant::from_millis(bytes.u64("a restored topic's time")?);
                    core.handle_restore(Restored::Topic {
                        room: &room,
                        topic: &topic,
                        by: &by,
                        at: set,
                    })
                }
                1 => core.handle_restore(Restored::LastSeq(bytes.u64("a restored number")?)),
                2 => {
                    let room = bytes.text("a restored room")?;
                    let account = bytes.text("a restored founder")?;
                    core.handle_restore(Restored::Founder {
                        room: &room,
                        account: &account,
                    })
                }
                what @ (3 | 6) => {
                    let list = match what {
                        3 => BanList::Bans,
                        _ => match bytes.u8("a restored list")? {
                            b'e' => BanList::Exceptions,
                            b'I' => BanList::InviteExceptions,
                            _ => {
                                return Err(ReplayError::Corrupt {
                                    offset,
                                    what: "an unknown list of a room",
                                });
                            }
                        },
                    };
                    let room = bytes.text("a restored room")?;
                    let mask = bytes.text("a restored ban's mask")?;
                    let by = bytes.text("a restored ban's setter")?;
                    let set = Instant::from_millis(bytes.u64("a restored ban's time")?);
                    let until = bytes.u64("a restored ban's end")?;
                    core.handle_restore(Restored::Ban {
                        room: &room,
                        list,
                        mask: &mask,
                        by: &by,
                        at: set,
                        until: (until != u64::MAX).then(|| Instant::from_millis(until)),
                    })
                }
                4 => {
                    let room = bytes.text("a restored room")?;
                    let modes = bytes.text("a restored room's modes")?;
                    let key = bytes.text("a restored room's key")?;
                    let limit = bytes.u32("a restored room's limit")?;
                    core.handle_restore(Restored::RoomModes {
                        room: &room,
                        modes: &modes,
                        key: Some(key.as_str()).filter(|key| !key.is_empty()),
                        limit: Some(limit).filter(|&limit| limit != 0),
                    })
                }
                5 => {
                    let mask = bytes.text("a restored server ban's mask")?;
                    let by = bytes.text("a restored server ban's setter")?;
                    let set = Instant::from_millis(bytes.u64("a restored server ban's time")?);
                    let until = bytes.u64("a restored server ban's end")?;
                    let reason = bytes.text("a restored server ban's reason")?;
                    core.handle_restore(Restored::ServerBan {
                        mask: &mask,
                        by: &by,
                        at: set,
                        until: (until != u64::MAX).then(|| Instant::from_millis(until)),
                        reason: &reason,
                    })
                }
                _ => {
                    return Err(ReplayError::Corrupt {
                        offset,
                        what: "an unknown kind of restored state",
                    });
                }
            },
            NOTICE => {
                let text = bytes.text("a notice")?;
                core.handle_notice(at, &text)
            }
            LIMITS if header == MAGIC => {
                let limits = read_limits(&mut bytes, core.config().limits())?;
                core.set_limits(limits);
                Ok(())
            }
            MOTD if header == MAGIC => {
                core.set_motd(read_motd(&mut bytes)?);
                Ok(())
            }
            _ => {
                return Err(ReplayError::Corrupt {
                    offset,
                    what: "an unknown kind of record",
                });
            }
        };
        // As recorded: the runner logged these and went on, so the replay does too.
        let _ = result;
        drain(&mut core, &mut sent, &mut parked, &mut requests);
    }
    Ok(order
        .into_iter()
        .map(|conn| {
            let bytes = sent.remove(&conn).unwrap_or_default();
            (conn, bytes)
        })
        .collect())
}

/// Takes the core's outputs: bytes to each connection's transcript (or kept back while it
/// waits for history), requests for history to `requests`.
fn drain(
    core: &mut Core,
    sent: &mut BTreeMap<ConnectionId, Vec<u8>>,
    parked: &mut Parking,
    requests: &mut Vec<HistoryRequest>,
) {
    while let Some(output) = core.poll_output() {
        match output {
            Output::Send { to, bytes } => {
                for conn in to {
                    parked.send(conn, bytes, sent);
                }
            }
            Output::History(request) => {
                parked.asked(request.conn());
                requests.push(request.clone());
            }
            _ => {}
        }
    }
}

/// What the replay keeps back for connections waiting for history, as the hub does (without
/// the hub's bound on room lines kept back, which a recording of a bug report does not reach).
#[derive(Default)]
struct Parking {
    parked: BTreeMap<ConnectionId, VecDeque<Parked>>,
    /// What was kept back behind the answer being given now.
    behind: BTreeMap<ConnectionId, VecDeque<Parked>>,
}

enum Parked {
    Bytes(Vec<u8>),
    /// Where the answer to the next request goes.
    Answer,
}

impl Parking {
    fn send(
        &mut self,
        conn: ConnectionId,
        bytes: &[u8],
        sent: &mut BTreeMap<ConnectionId, Vec<u8>>,
    ) {
        match self.parked.get_mut(&conn) {
            Some(parked) => parked.push_back(Parked::Bytes(bytes.to_vec())),
            None => sent.entry(conn).or_default().extend_from_slice(bytes),
        }
    }

    fn asked(&mut self, conn: ConnectionId) {
        self.parked
            .entry(conn)
            .or_default()
            .push_back(Parked::Answer);
    }

    /// An answer begins: what was sent before the request goes out, the rest waits behind
    /// the answer.
    fn answer_begins(&mut self, conn: ConnectionId, sent: &mut BTreeMap<ConnectionId, Vec<u8>>) {
        let Some(mut parked) = self.parked.remove(&conn) else {
            return;
        };
        while let Some(next) = parked.pop_front() {
            match next {
                Parked::Bytes(bytes) => sent.entry(conn).or_default().extend_from_slice(&bytes),
                Parked::Answer => break,
            }
        }
        self.behind.insert(conn, parked);
    }

    /// The answer ended: what waited behind it goes out, up to the place of the next answer.
    fn answer_ended(&mut self, conn: ConnectionId, sent: &mut BTreeMap<ConnectionId, Vec<u8>>) {
        let Some(mut parked) = self.behind.remove(&conn) else {
            return;
        };
        while let Some(next) = parked.pop_front() {
            match next {
                Parked::Bytes(bytes) => sent.entry(conn).or_default().extend_from_slice(&bytes),
                Parked::Answer => {
                    parked.push_front(Parked::Answer);
                    self.parked.insert(conn, parked);
                    return;
                }
            }
        }
    }
}

/// Writes a replay's result: for each connection, a line `=== #N: K bytes`, then its bytes.
pub fn print_replay(replayed: &Replayed, out: &mut impl Write) -> io::Result<()> {
    for (conn, bytes) in replayed {
        writeln!(out, "=== {conn}: {} bytes", bytes.len())?;
        out.write_all(bytes)?;
    }
    out.flush()
}
