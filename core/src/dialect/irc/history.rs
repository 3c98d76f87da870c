//! IRCv3 `draft/chathistory`: `CHATHISTORY LATEST|BEFORE|AFTER|AROUND|BETWEEN|TARGETS`, and how
//! history answers look to IRC clients (a `chathistory` batch of tagged lines for a client that
//! negotiated `batch`, server `NOTICE`s for one that did not).

use core::fmt::Write;

use super::Step;
use super::events::{Shown, Tags, verb};
use crate::dialect::text::Visible;
use crate::history::{
    HistoryAnswer, HistoryMark, HistoryRange, HistoryRequest, MAX_HISTORY_LINES, Purpose,
};
use crate::output::Audience;
use crate::state::connection::Caps;
use crate::state::roster::ConnectionId;
use crate::time::Timestamp;
use crate::wire::irc::Message;

use super::*;

/// The reference of the batch a history answer comes in. One answer is written at a time for
/// a connection (the runner keeps the rest of its output back meanwhile), so one reference does.
const BATCH_REF: &str = "history";

impl<S: crate::Storage> Step<'_, S> {
    /// `CHATHISTORY SUBCOMMAND TARGET ...`.
    pub(crate) fn chathistory(&mut self, conn: ConnectionId, message: &Message<'_>) {
        let server = self.server_name;
        let sub = message.param(0).unwrap_or_default();
        let fail = |hub: &mut Self, code: &str, text: &str| {
            let what = Visible(message.param(1).unwrap_or("*"));
            irc!(
                hub,
                Audience::one(conn),
                ":{server} FAIL CHATHISTORY {code} {} {what} :{text}",
                Visible(sub)
            );
        };
        if sub.eq_ignore_ascii_case("TARGETS") {
            // Only rooms keep history, and a client knows its rooms: an empty list.
            if message.param(3).is_none() {
                return fail(self, "NEED_MORE_PARAMS", "Missing parameters");
            }
            irc!(
                self,
                Audience::one(conn),
                ":{server} BATCH +{BATCH_REF} draft/chathistory-targets"
            );
            irc!(self, Audience::one(conn), ":{server} BATCH -{BATCH_REF}");
            return;
        }
        let between = sub.eq_ignore_ascii_case("BETWEEN");
        let (Some(target), Some(first), Some(limit)) = (
            message.param(1),
            message.param(2),
            message.param(if between { 4 } else { 3 }),
        ) else {
            return fail(self, "NEED_MORE_PARAMS", "Missing parameters");
        };
        let Ok(limit) = limit.parse::<usize>() else {
            return fail(self, "INVALID_PARAMS", "The limit is not a number");
        };
        let limit = limit.clamp(1, MAX_HISTORY_LINES);
        let mark = |text: &str| parse_mark(text);
        let range = if sub.eq_ignore_ascii_case("LATEST") {
            match first {
                "*" => Some(HistoryRange::Latest),
                _ => mark(first).map(HistoryRange::LatestAfter),
            }
        } else if sub.eq_ignore_ascii_case("BEFORE") {
            mark(first).map(HistoryRange::Before)
        } else if sub.eq_ignore_ascii_case("AFTER") {
            mark(first).map(HistoryRange::After)
        } else if sub.eq_ignore_ascii_case("AROUND") {
            mark(first).map(HistoryRange::Around)
        } else if between {
            let second = message.param(3).and_then(mark);
            mark(first)
                .zip(second)
                .map(|(a, b)| HistoryRange::Between(a, b))
        } else {
            return fail(self, "INVALID_PARAMS", "Unknown subcommand");
        };
        let Some(range) = range else {
            return fail(
                self,
                "INVALID_PARAMS",
                "A mark is msgid=ID or timestamp=TIME",
            );
        };
        if !target.starts_with('#') {
            // Private messages are kept per account: an identified asker gets those with the
            // person named (by their account, if they are here and identified); anyone else,
            // an empty history, whatever nickname they go by.
            let account = self.roster.account(conn).cloned();
            let here = self
                .roster
                .find(target)
                .filter(|&id| self.roster.get(id).is_some());
            let (peer, peer_account) = match here.map(|id| self.roster.account(id).cloned()) {
                Some(Some(peer)) => (Some(peer), Some(true)),
                here => (
                    crate::state::nickname::Nickname::new(target).ok(),
                    here.map(|_| false),
                ),
            };
            if let (Some(account), Some(peer)) = (account, peer) {
                let peer = (account, peer, peer_account);
                let request = HistoryRequest::private(conn, peer, range, limit);
                self.out.request(request);
                return;
            }
            let start = self.out.mark();
            let _ = write!(
                self.out,
                ":{server} BATCH +{BATCH_REF} chathistory {}\r\n:{server} BATCH -{BATCH_REF}\r\n",
                Visible(target)
            );
            self.out.send(start, Audience::one(conn));
            return;
        }
        match self.rooms.find(target) {
            Some(room) if self.roster.in_room(conn, room) => {
                self.ask_history(conn, room, range, limit, Purpose::ChatHistory);
            }
            _ => fail(self, "INVALID_TARGET", "Messages could not be retrieved"),
        }
    }

    /// One part of a history answer, for an IRC client.
    pub(crate) fn irc_history(&mut self, request: &HistoryRequest, answer: HistoryAnswer<'_>) {
        let first = self.out.records_mark();
        self.irc_history_part(request, answer);
        if let Some(label) = request.label() {
            let (opening, closing) = match answer {
                HistoryAnswer::Begin { .. } => (true, false),
                HistoryAnswer::Line(_) => (false, false),
                HistoryAnswer::End => (false, true),
                HistoryAnswer::Unavailable => (true, true),
            };
            self.label_answer(request.conn(), first, Some(label), opening, closing);
        }
    }

    fn irc_history_part(&mut self, request: &HistoryRequest, answer: HistoryAnswer<'_>) {
        // A room's history is named by the room; private messages, by the other person.
        let name: &str = match request.target() {
            crate::history::HistoryTarget::Room(room) => room.as_str(),
            crate::history::HistoryTarget::Private { peer, .. } => peer.as_str(),
        };
        let name = Visible(name);
        let (conn, server) = (request.conn(), self.server_name);
        let caps = self.caps(conn);
        let purpose = request.purpose();
        // A join replay to a client without batches comes as server notices, readable
        // anywhere; CHATHISTORY always answers with the messages themselves.
        let batched = caps.has(Caps::BATCH);
        let as_messages = batched || caps.tagged() || purpose == Purpose::ChatHistory;
        match answer {
            HistoryAnswer::Begin { .. } if batched => {
                irc!(
                    self,
                    Audience::one(conn),
                    ":{server} BATCH +{BATCH_REF} chathistory {name}"
                );
            }
            HistoryAnswer::Line(line) if as_messages => {
                let tags = caps.tagged().then_some(Tags {
                    at: line.at,
                    msgid: Some(line.seq),
                    // Not kept with the line.
                    account: None,
                });
                let start = self.out.mark();
                let _ = match (batched, tags) {
                    (true, Some(tags)) => write!(self.out, "@batch={BATCH_REF};{tags} "),
                    (true, None) => write!(self.out, "@batch={BATCH_REF} "),
                    (false, tags) => write!(self.out, "{}", Shown(tags, ClientTags::NONE)),
                };
                let (who, verb) = (Visible(line.nick), verb(line.kind));
                let body = IrcText(line.kind, line.text);
                let _ = match line.to {
                    Some(to) => write!(self.out, ":{who} {verb} {} :{body}\r\n", Visible(to)),
                    None => write!(self.out, ":{who} {verb} {name} :{body}\r\n"),
                };
                self.out.send(start, Audience::one(conn));
            }
            HistoryAnswer::Line(line) => {
                let age = Ago(self.now.saturating_duration_since(line.at));
                let (who, text) = (Visible(line.nick), Visible(line.text));
                let start = self.out.mark();
                let _ = match line.kind {
                    LineKind::Action => {
                        write!(
                            self.out,
                            ":{server} NOTICE {name} :[{age}] * {who} {text}\r\n"
                        )
                    }
                    _ => write!(
                        self.out,
                        ":{server} NOTICE {name} :[{age}] {who}: {text}\r\n"
                    ),
                };
                self.out.send(start, Audience::one(conn));
            }
            HistoryAnswer::End if batched => {
                irc!(self, Audience::one(conn), ":{server} BATCH -{BATCH_REF}");
            }
            HistoryAnswer::Unavailable if purpose != Purpose::Replay => {
                irc!(
                    self,
                    Audience::one(conn),
                    ":{server} FAIL CHATHISTORY MESSAGE_ERROR {name} :Messages could not be retrieved"
                );
            }
            _ => {}
        }
    }
}

/// `msgid=ID` or `timestamp=YYYY-MM-DDThh:mm:ss.sssZ`.
fn parse_mark(text: &str) -> Option<HistoryMark> {
    if let Some(id) = text.strip_prefix("msgid=") {
        return id.parse().ok().map(HistoryMark::Seq);
    }
    let time = text.strip_prefix("timestamp=")?;
    Timestamp::parse(time).map(HistoryMark::At)
}
