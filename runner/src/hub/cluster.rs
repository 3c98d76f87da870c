//! The hub's side of cluster mode's relay (see `cluster::relay`): what the other nodes send
//! is handed to the core in order, and what changes of the people here is published.

use chat_core::relay::{Applied, Incoming, Kind, Origin, Person, Status, Target};
use chat_core::{ConnectionId, Error, Event as CoreEvent, Instant, LineKind, PersonId};

use super::{Hub, lookup};
use crate::cluster::{News, PersonState, RelayDone, Relayed, Unsent};
use crate::core_box::Core;
use crate::log::{error, info, warn};
use crate::store::StoredLine;

/// The most calls one change of a person from elsewhere may take (a rename, a part and a join
/// a call each): past it, something is wrong, and the rest is given up with a log line.
const MAX_PERSON_STEPS: usize = 4 * chat_core::MAX_ROOMS_PER_PERSON + 4;

impl Hub {
    /// Takes in what the relay reports: its news for the core is handed over in order.
    pub(super) fn relay_done(&mut self, done: RelayDone) {
        let Some(relay) = &mut self.relay else {
            return;
        };
        let news = relay.handle(done);
        if news.is_empty() {
            return;
        }
        self.relayed.extend(news);
        self.drain();
    }

    /// Hands one piece of the relay's news to the core, carrying out what comes of it.
    pub(super) fn hand_relayed(&mut self, relayed: Relayed) {
        let Some(relay) = &self.relay else {
            return;
        };
        let own = relay.node_id().to_owned();
        // The core names this server by its own name: a line of a person here who has gone
        // since is shown as said here, not as said on another server.
        let here = self.core.core().config().server_name.as_str().to_owned();
        let now = self.now();
        match relayed {
            Relayed::Line { room, seq, line } => {
                self.stats.cluster_received += 1;
                let lag = now.as_millis().saturating_sub(line.at.as_millis());
                self.stats.cluster_lag.observe(lag as f64 / 1000.0);
                let here_conn = (line.node == own)
                    .then(|| {
                        line.person
                            .and_then(|bits| self.connection_by_bits(bits))
                            .map(Origin::Here)
                    })
                    .flatten();
                let incoming = Incoming {
                    to: Target::Room(&room),
                    nick: &line.nick,
                    origin: here_conn.unwrap_or(if line.node == own {
                        Origin::Node(&here)
                    } else {
                        Origin::Node(&line.node)
                    }),
                    kind: line.kind,
                    text: &line.text,
                    seq,
                    at: line.at,
                };
                let result = self
                    .core
                    .unrecorded("relayed lines")
                    .handle_relayed(now, &incoming);
                if let Err(error) = result {
                    warn!(
                        "cluster: a line of {room} from node {} was not shown: {error}",
                        line.node
                    );
                }
            }
            Relayed::Keep { room, lines } => {
                for (seq, line) in lines {
                    // A topic line's topic is the room's meta (see `Relay::room_created`).
                    let Kind::Said(kind) = line.kind else {
                        continue;
                    };
                    // Checked as the core checks a line it is handed, though it is kept only:
                    // history is shown later, to anyone.
                    let incoming = Incoming {
                        to: Target::Room(&room),
                        nick: &line.nick,
                        origin: Origin::Node(&line.node),
                        kind: line.kind,
                        text: &line.text,
                        seq,
                        at: line.at,
                    };
                    if let Err(refused) = incoming.check() {
                        warn!(
                            "cluster: line {seq} of {room} from node {} not kept: {refused}",
                            line.node
                        );
                        continue;
                    }
                    let line = StoredLine {
                        seq,
                        at: line.at,
                        kind,
                        nick: line.nick,
                        text: line.text,
                        to: None,
                    };
                    self.store.line(&room, line);
                }
                self.uncommitted = true;
            }
            Relayed::Undelivered {
                sender,
                what,
                reason,
            } => {
                let Some(from) = self.connection_by_bits(sender) else {
                    return;
                };
                let (to, kind) = match &what {
                    Unsent::Private { nick, node } => {
                        (Target::Person { nick, node }, Kind::Said(LineKind::Line))
                    }
                    Unsent::Topic { room } => (Target::Room(room), Kind::Topic),
                };
                match self
                    .core
                    .unrecorded("relayed lines")
                    .handle_relay_failed(now, from, to, kind, &reason)
                {
                    Ok(()) | Err(Error::UnknownConnection(_)) => {}
                    Err(error) => error!("bug: {error}"),
                }
            }
            Relayed::RoomNotice { room, text } => {
                if let Err(error) = self
                    .core
                    .unrecorded("relayed lines")
                    .handle_room_notice(now, &room, &text)
                {
                    error!("bug: {error}");
                }
            }
            Relayed::Notice(text) => self.notices.push(text),
            Relayed::News(News::Person { node, id, state }) => {
                let rooms: Vec<&str> = state.rooms.iter().map(String::as_str).collect();
                let standing = state.standing();
                let person = Person {
                    node: &node,
                    id,
                    nick: &state.nick,
                    rooms: &rooms,
                    away: state.away.as_deref(),
                    account: state.account.as_deref(),
                    standing: &standing,
                };
                let applied = self.in_steps(MAX_PERSON_STEPS, |core, now| {
                    core.handle_person(now, &person)
                });
                if let Err(error) = applied {
                    warn!(
                        "cluster: {} of node {node} is not listed here: {error}; offered again \
                         at the next check",
                        state.nick
                    );
                    if let Some(relay) = &mut self.relay {
                        relay.refused(&node, id, state.clone());
                    }
                }
            }
            Relayed::News(News::Gone { node, id, reason }) => {
                if let Err(error) = self
                    .core
                    .unrecorded("people of other nodes")
                    .handle_person_gone(now, &node, id, &reason)
                {
                    error!("bug: {error}");
                }
            }
            Relayed::News(News::Lost { node, stopped }) => {
                let name = node
                    .rsplit_once('-')
                    .map_or(node.as_str(), |(name, _)| name);
                let reason = if stopped {
                    info!("cluster: node {node} shut down; its people leave");
                    format!("server {name} shut down")
                } else {
                    info!("cluster: node {node} is lost (its lease lapsed); its people leave");
                    format!("server {name} was lost")
                };
                // One person a step: at most everyone the table holds.
                let lost = self.in_steps(crate::MAX_CLIENTS, |core, now| {
                    core.handle_node_lost(now, &node, &reason)
                });
                if let Err(error) = lost {
                    error!("bug: {error}");
                }
            }
            Relayed::News(News::Order(note)) => {
                let result = self.core.unrecorded("orders of other nodes").handle_order(
                    now,
                    &note.node,
                    &note.order(),
                );
                self.ordered_about(&note.target);
                if let Err(error) = result {
                    warn!(
                        "cluster: an order of {} (node {}) about {} in {} was not carried out: \
                         {error}",
                        note.by, note.node, note.target, note.room
                    );
                }
            }
            Relayed::News(News::RoomChange { node, change }) => {
                match crate::cluster::decode_room_change(&change) {
                    Ok(change) => {
                        if let Err(error) = self.apply_moderation(now, change) {
                            error!("bug: a room's change from node {node}: {error}");
                        }
                    }
                    Err(why) => warn!("cluster: a room's change from node {node} ignored: {why}"),
                }
            }
            Relayed::News(News::Private(line)) => {
                let incoming = Incoming {
                    to: Target::Person {
                        nick: &line.to,
                        node: &own,
                    },
                    nick: &line.from,
                    origin: Origin::Node(&line.node),
                    kind: Kind::Said(line.kind),
                    text: &line.text,
                    seq: 0,
                    at: line.at,
                };
                let result = self
                    .core
                    .unrecorded("relayed lines")
                    .handle_relayed(now, &incoming);
                if let Err(error) = result {
                    warn!(
                        "cluster: a private message from {} (node {}) to {} was not delivered: \
                         {error}",
                        line.from, line.node, line.to
                    );
                }
            }
        }
        self.carry_out();
    }

    /// Calls `step` (a core call that applies a change a part at a time) until it is done, at
    /// most `most` times, carrying out each part's output before the next. A call that goes on
    /// past `most` is a bug, logged.
    fn in_steps(
        &mut self,
        most: usize,
        mut step: impl FnMut(&mut Core, Instant) -> Result<Applied, Error>,
    ) -> Result<(), Error> {
        for _ in 0..most {
            let now = self.now();
            let applied = step(self.core.unrecorded("what other nodes relay"), now);
            self.carry_out();
            if applied? == Applied::Done {
                return Ok(());
            }
        }
        error!("bug: a change relayed from another node took more than {most} steps");
        Ok(())
    }

    /// Notes in `changed` who an event changes here, for the other nodes; a departure is
    /// handed to `relay` at once (the person is gone after the drain), and so is a room new
    /// here.
    pub(super) fn person_event(
        changed: &mut Vec<ConnectionId>,
        relay: &mut crate::cluster::Relay,
        event: &CoreEvent<'_>,
    ) {
        match *event {
            CoreEvent::Arrived {
                person: PersonId::Local(conn),
                ..
            }
            | CoreEvent::Joined {
                person: PersonId::Local(conn),
                ..
            }
            | CoreEvent::Parted {
                person: PersonId::Local(conn),
                ..
            }
            | CoreEvent::Renamed {
                person: PersonId::Local(conn),
                ..
            }
            | CoreEvent::Away {
                person: PersonId::Local(conn),
                ..
            }
            | CoreEvent::Identified {
                person: PersonId::Local(conn),
                ..
            } => changed.push(conn),
            CoreEvent::Departed {
                person: PersonId::Local(conn),
                reason,
                ..
            } => relay.gone(conn.to_bits(), reason),
            // Its topic may have been set before this node came.
            CoreEvent::RoomCreated { room } => relay.room_created(room),
            _ => {}
        }
    }

    /// An order was about `nick`: if they are here, their standing may have changed, and they
    /// are published anew (after the order).
    pub(super) fn ordered_about(&mut self, nick: &str) {
        if let Some(conn) = self.core.core().find_nickname(nick) {
            self.changed.push(conn);
        }
    }

    /// Publishes what the people whose state changed in this drain are now.
    pub(super) fn publish_changed(&mut self) {
        if self.changed.is_empty() {
            return;
        }
        let Some(relay) = &mut self.relay else {
            self.changed.clear();
            return;
        };
        self.changed.sort_unstable();
        self.changed.dedup();
        let core = self.core.core();
        for conn in self.changed.drain(..) {
            let state = core.nickname(conn).map(|nick| {
                let rooms: Vec<String> = core
                    .rooms_of(conn)
                    .map(|room| room.as_str().to_owned())
                    .collect();
                let having = |status| {
                    rooms
                        .iter()
                        .filter(|room| core.has_status(conn, room, status))
                        .cloned()
                        .collect()
                };
                PersonState {
                    nick: nick.as_str().to_owned(),
                    ops: having(Status::Operator),
                    voices: having(Status::Voice),
                    rooms,
                    away: core.away(conn).map(str::to_owned),
                    account: core
                        .account(conn)
                        .map(|account| account.as_str().to_owned()),
                }
            });
            // Someone who left meanwhile was published gone by their departure.
            if state.is_some() || lookup(&self.connections, conn).is_some() {
                relay.person(conn.to_bits(), state);
            }
        }
    }

    /// The live connection whose handle is `bits` (`ConnectionId::to_bits`).
    fn connection_by_bits(&self, bits: u64) -> Option<ConnectionId> {
        let index = (bits & u64::from(u32::MAX)) as usize;
        self.connections
            .get(index)?
            .as_ref()
            .map(|connection| connection.id)
            .filter(|id| id.to_bits() == bits)
    }
}
