//! Who is on which node: each node's people in Redis, their changes on one channel, private
//! messages on each node's inbox, and the nodes that are lost.
//!
//! | key | type | what |
//! |---|---|---|
//! | `chat:nicks:{nicks}:people:NODE` | hash | person id → their state, JSON (see [`PersonState`]): nick, rooms, away, account, and the rooms they are an operator of (`ops`) or voiced in (`voices`) |
//! | `chat:nicks:{nicks}:nodes` | hash | node id → its lease in milliseconds, set at each renewal |
//! | `chat:people` | channel | each change: `{"v":1,"node":…,"person":7,"state":{…}}`, `{"v":1,"node":…,"person":7,"gone":"quit: bye"}`, or `{"v":1,"lost":NODE}` (`"stopped":true` when it shut down) |
//! | `chat:people` | channel | also an operator's order: `{"v":1,"node":…,"order":{"room":…,"target":…,"by":…,"kick":"reason"}}` (`"kick":null`: no reason), `…"status":"o","on":true,"ms":600000}` (`o`, `v` or `m`; `ms` a mute's length), or `…"invite":true}`; a change to an unregistered room's order: `{"v":1,"node":…,"room_change":{"op":"modes",…}}` (as in `moderation.rs`) |
//! | `chat:inbox:NODE` | channel | private messages for people on NODE: `{"v":1,"node":…,"from":…,"to":…,"kind":…,"text":…,"at":…}` |
//!
//! The people keys share the nicks' hash tag: the lease a node keeps for its nicks is the one
//! that says it is alive, and the script that finds the lapsed ones reads both. A node that
//! starts (or comes back) subscribes first and reads the hashes after, so that it misses no
//! change; a change it hears twice does no harm, since each carries the person's whole state.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll};
use std::time::Duration;

use chat_core::relay::{Action, Order, Status};
use chat_core::{Instant, LineKind, MAX_LINE_BYTES, MAX_ROOMS_PER_PERSON, Nickname, RoomName};
use futures_lite::Stream;
use redis::Script;
use redis::aio::{PubSubSink, PubSubStream};
use serde_json::{Value, json};

use super::{
    CALL_TIMEOUT, CONNECT_TIMEOUT, Cluster, ClusterError, MAX_PAYLOAD_BYTES, NICKS,
    PAYLOAD_VERSION, address_of, check_node_id, connect_error, kind_name, kind_of, read_payload,
    within,
};

/// The channel every node hears the others' people on (after the cluster's channel prefix,
/// see [`Cluster::channel`]).
const PEOPLE_CHANNEL: &str = "people";

/// The most bytes of an away message or a departure's reason that are sent.
const MAX_NOTE_BYTES: usize = 200;

static PERSON_SET: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("person_set.lua")));
static NODE_LEAVE: LazyLock<Script> = LazyLock::new(|| {
    // KEYS[1] = the node's people, KEYS[2] = the set of nodes; ARGV[1] = the node id,
    // ARGV[2] = the people channel, ARGV[3] = the message that the node is gone.
    Script::new(
        r#"redis.call("DEL", KEYS[1])
redis.call("HDEL", KEYS[2], ARGV[1])
return redis.call("PUBLISH", ARGV[2], ARGV[3])"#,
    )
});
static NODES_CHECK: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("nodes_check.lua")));

/// What a person on some node is now: their nickname (a person is published once they have
/// one), the rooms they are in, their away message, and the account they are identified as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PersonState {
    pub(crate) nick: String,
    pub(crate) rooms: Vec<String>,
    pub(crate) away: Option<String>,
    /// Absent from the JSON when `None`, as nodes from before accounts wrote it.
    pub(crate) account: Option<String>,
    /// The rooms (of `rooms`) they are an operator of, and those they have a voice in:
    /// `"ops"` and `"voices"` in the JSON, absent when empty (as nodes from before wrote it).
    pub(crate) ops: Vec<String>,
    pub(crate) voices: Vec<String>,
}

impl PersonState {
    fn to_json(&self) -> Value {
        let mut value = json!({ "nick": self.nick, "rooms": self.rooms, "away": self.away });
        if let Some(account) = &self.account {
            value["account"] = account.as_str().into();
        }
        if !self.ops.is_empty() {
            value["ops"] = json!(self.ops);
        }
        if !self.voices.is_empty() {
            value["voices"] = json!(self.voices);
        }
        value
    }

    /// Their standing in rooms, for the core's [`chat_core::relay::Person`].
    pub(crate) fn standing(&self) -> Vec<(&str, Status)> {
        let ops = self
            .ops
            .iter()
            .map(|room| (room.as_str(), Status::Operator));
        ops.chain(
            self.voices
                .iter()
                .map(|room| (room.as_str(), Status::Voice)),
        )
        .collect()
    }

    fn from_json(value: &Value) -> Result<Self, String> {
        let nick = value
            .get("nick")
            .and_then(Value::as_str)
            .ok_or("no \"nick\" string")?;
        Nickname::new(nick).map_err(|error| format!("nick {nick:?}: {error}"))?;
        let rooms = value
            .get("rooms")
            .and_then(Value::as_array)
            .ok_or("no \"rooms\" list")?;
        if rooms.len() > MAX_ROOMS_PER_PERSON {
            return Err(format!("more than {MAX_ROOMS_PER_PERSON} rooms"));
        }
        let rooms = rooms
            .iter()
            .map(|room| {
                room.as_str()
                    .filter(|room| RoomName::new(room).is_ok())
                    .map(str::to_owned)
                    .ok_or_else(|| format!("not a room name: {room}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let away = match value.get("away") {
            None | Some(Value::Null) => None,
            Some(Value::String(away)) => Some(note(away)?),
            Some(other) => return Err(format!("\"away\" is {other}")),
        };
        let account = match value.get("account") {
            None | Some(Value::Null) => None,
            Some(Value::String(account)) if Nickname::new(account).is_ok() => Some(account.clone()),
            Some(other) => return Err(format!("\"account\" is not an account name: {other}")),
        };
        // Only rooms they are in: so each list is bounded as the rooms are.
        let standing = |name: &str| match value.get(name) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(listed)) => listed
                .iter()
                .map(|room| {
                    room.as_str()
                        .filter(|room| rooms.iter().any(|of| of == room))
                        .map(str::to_owned)
                        .ok_or_else(|| format!("{name:?}: not one of their rooms: {room}"))
                })
                .collect(),
            Some(other) => Err(format!("{name:?} is {other}")),
        };
        let (ops, voices) = (standing("ops")?, standing("voices")?);
        Ok(Self {
            nick: nick.to_owned(),
            rooms,
            away,
            account,
            ops,
            voices,
        })
    }
}

/// A note (away message, reason) from elsewhere, checked: one line, bounded.
fn note(text: &str) -> Result<String, String> {
    if text.len() > MAX_NOTE_BYTES || text.contains(['\r', '\n', '\0']) {
        return Err(format!(
            "a note of {} bytes, or with a line break: at most {MAX_NOTE_BYTES} on one line",
            text.len()
        ));
    }
    Ok(text.to_owned())
}

/// A private message from a person on one node to a person on another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PrivateLine {
    /// The id of the sender's node.
    pub(crate) node: String,
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) kind: LineKind,
    pub(crate) text: String,
    pub(crate) at: Instant,
}

/// Every other node's people, by node and person id, and what of them could not be read:
/// from [`Cluster::everyone`].
pub(crate) type Everyone = (
    HashMap<String, HashMap<u64, PersonState>>,
    Vec<ClusterError>,
);

/// What [`Cluster::check_nodes`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Checked {
    /// The nodes alive, with the lease each keeps.
    pub(crate) alive: HashMap<String, Duration>,
    /// Whether Redis has this node's people (it may have lost them: a lapse of this node's
    /// lease, or a restart).
    pub(crate) own_people: bool,
}

/// What a node hears of the others, besides room lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum News {
    /// A person on `node` is now `state`.
    Person {
        node: String,
        id: u64,
        state: PersonState,
    },
    /// A person on `node` went offline.
    Gone {
        node: String,
        id: u64,
        reason: String,
    },
    /// `node`'s people are gone: its lease lapsed, or (`stopped`) it shut down.
    Lost { node: String, stopped: bool },
    /// A private message for someone here.
    Private(PrivateLine),
    /// An operator's order given on another node.
    Order(OrderNote),
    /// A change of an unregistered room's order (its modes, or a ban) made on `node`, as
    /// `moderation.rs` encodes it (read there): registered rooms' go through the moderation
    /// hash instead.
    RoomChange { node: String, change: Value },
}

/// An operator's order (see [`chat_core::relay::Order`]) as the nodes send it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OrderNote {
    /// The node it was given on.
    pub(crate) node: String,
    pub(crate) room: String,
    pub(crate) target: String,
    pub(crate) by: String,
    pub(crate) action: OrderAction,
}

/// What an [`OrderNote`] does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum OrderAction {
    Kick {
        reason: Option<String>,
    },
    Status {
        status: Status,
        on: bool,
        duration: Option<Duration>,
    },
    Invite,
}

impl OrderNote {
    /// The core's order, from node `node`.
    pub(crate) fn of(node: &str, order: &Order<'_>) -> Option<Self> {
        let action = match order.action {
            Action::Kick { reason } => OrderAction::Kick {
                reason: reason.map(str::to_owned),
            },
            Action::Status {
                status,
                on,
                duration,
            } => OrderAction::Status {
                status,
                on,
                duration,
            },
            Action::Invite => OrderAction::Invite,
            // An action added to the core later, until the nodes have a name for it.
            _ => return None,
        };
        Some(Self {
            node: node.to_owned(),
            room: order.room.to_owned(),
            target: order.target.to_owned(),
            by: order.by.to_owned(),
            action,
        })
    }

    /// The order for the core.
    pub(crate) fn order(&self) -> Order<'_> {
        Order {
            room: &self.room,
            target: &self.target,
            by: &self.by,
            action: match &self.action {
                OrderAction::Kick { reason } => Action::Kick {
                    reason: reason.as_deref(),
                },
                &OrderAction::Status {
                    status,
                    on,
                    duration,
                } => Action::Status {
                    status,
                    on,
                    duration,
                },
                OrderAction::Invite => Action::Invite,
            },
        }
    }

    /// The message on the people channel, at most [`MAX_PAYLOAD_BYTES`].
    pub(crate) fn encode(&self) -> Result<String, ClusterError> {
        let mut order = json!({ "room": self.room, "target": self.target, "by": self.by });
        match &self.action {
            OrderAction::Kick { reason } => order["kick"] = json!(reason),
            OrderAction::Invite => order["invite"] = json!(true),
            OrderAction::Status {
                status,
                on,
                duration,
            } => {
                order["status"] = json!(status_letter(*status));
                order["on"] = json!(on);
                if let Some(duration) = duration {
                    order["ms"] = json!(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX));
                }
            }
        }
        let payload =
            json!({ "v": PAYLOAD_VERSION, "node": self.node, "order": order }).to_string();
        if payload.len() > MAX_PAYLOAD_BYTES {
            return Err(ClusterError::Line(format!(
                "an order of {} bytes, more than {MAX_PAYLOAD_BYTES}",
                payload.len()
            )));
        }
        Ok(payload)
    }

    /// Reads the `order` object of a message from `node`, checked as the core checks it.
    fn decode(node: String, order: &Value) -> Result<Self, String> {
        let text = |name: &str| {
            order
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("no {name:?} string in the order"))
        };
        let action = if order.get("invite").and_then(Value::as_bool) == Some(true) {
            OrderAction::Invite
        } else if let Some(kick) = order.get("kick") {
            OrderAction::Kick {
                reason: match kick {
                    Value::Null => None,
                    Value::String(reason) => Some(reason.clone()),
                    other => return Err(format!("\"kick\" is not a reason: {other}")),
                },
            }
        } else {
            let letter = text("status")?;
            OrderAction::Status {
                status: status_of(&letter).ok_or_else(|| format!("unknown status {letter:?}"))?,
                on: order
                    .get("on")
                    .and_then(Value::as_bool)
                    .ok_or("no \"on\" in the order")?,
                duration: match order.get("ms") {
                    None | Some(Value::Null) => None,
                    Some(ms) => Some(Duration::from_millis(
                        ms.as_u64()
                            .ok_or("\"ms\" is not a number of milliseconds")?,
                    )),
                },
            }
        };
        let note = Self {
            node,
            room: text("room")?,
            target: text("target")?,
            by: text("by")?,
            action,
        };
        note.order()
            .check_from(&note.node)
            .map_err(|why| format!("an order: {why}"))?;
        Ok(note)
    }
}

fn status_letter(status: Status) -> &'static str {
    match status {
        Status::Operator => "o",
        Status::Voice => "v",
        // Muted, and a status added to the core later (not sent: see `OrderNote::of`).
        _ => "m",
    }
}

fn status_of(letter: &str) -> Option<Status> {
    match letter {
        "o" => Some(Status::Operator),
        "v" => Some(Status::Voice),
        "m" => Some(Status::Muted),
        _ => None,
    }
}

impl Cluster {
    /// Records what person `id` of this node is now (`None`: they left, for `reason`), and
    /// tells the other nodes.
    pub(crate) async fn set_person(
        &self,
        id: u64,
        state: Option<&PersonState>,
        reason: &str,
    ) -> Result<(), ClusterError> {
        let stored = state.map(|state| state.to_json().to_string());
        let message = match state {
            Some(state) => json!({
                "v": PAYLOAD_VERSION, "node": &*self.node, "person": id, "state": state.to_json(),
            }),
            None => json!({
                "v": PAYLOAD_VERSION, "node": &*self.node, "person": id,
                "gone": cut(reason, MAX_NOTE_BYTES),
            }),
        }
        .to_string();
        if message.len() > MAX_PAYLOAD_BYTES {
            return Err(ClusterError::Line(format!(
                "a person's state of {} bytes, more than {MAX_PAYLOAD_BYTES}",
                message.len()
            )));
        }
        let mut commands = self.commands.clone();
        let _heard: i64 = within(
            CALL_TIMEOUT,
            "recording a person",
            PERSON_SET
                .key(self.people_key(&self.node))
                .arg(id)
                .arg(stored.unwrap_or_default())
                .arg(self.channel(PEOPLE_CHANNEL))
                .arg(message)
                .invoke_async(&mut commands),
        )
        .await?;
        Ok(())
    }

    /// Every person of every node but this one, as Redis has them now, by node; and what
    /// could not be read. Read after subscribing to the news, to start from.
    pub(crate) async fn everyone(&self) -> Result<Everyone, ClusterError> {
        let mut commands = self.commands.clone();
        let nodes: Vec<String> = within(
            CALL_TIMEOUT,
            "listing the nodes",
            redis::cmd("HKEYS")
                .arg(format!("{NICKS}nodes"))
                .query_async(&mut commands),
        )
        .await?;
        let (mut everyone, mut bad) = (HashMap::new(), Vec::new());
        for node in nodes {
            if *node == *self.node {
                continue;
            }
            if let Err(reason) = check_node_id(&node) {
                bad.push(malformed("the set of nodes", reason));
                continue;
            }
            let people: HashMap<String, String> = within(
                CALL_TIMEOUT,
                "reading a node's people",
                redis::cmd("HGETALL")
                    .arg(self.people_key(&node))
                    .query_async(&mut commands),
            )
            .await?;
            let mut known = HashMap::new();
            for (id, state) in people {
                let from = || format!("the people of {node}");
                let read = id
                    .parse::<u64>()
                    .map_err(|_| format!("person id {id:?}"))
                    .and_then(|id| {
                        let value: Value = serde_json::from_str(&state)
                            .map_err(|error| format!("not JSON: {error}"))?;
                        Ok((id, PersonState::from_json(&value)?))
                    });
                match read {
                    Ok((id, state)) => {
                        known.insert(id, state);
                    }
                    Err(reason) => bad.push(malformed(&from(), reason)),
                }
            }
            everyone.insert(node, known);
        }
        Ok((everyone, bad))
    }

    /// Finds the nodes whose lease lapsed (their people are forgotten, and every node is told
    /// on the people channel): the nodes alive, with their leases, and whether this node's
    /// people are in Redis.
    pub(crate) async fn check_nodes(&self) -> Result<Checked, ClusterError> {
        let doing = "checking the nodes' leases";
        let mut commands = self.commands.clone();
        let answer: Vec<String> = within(
            CALL_TIMEOUT,
            doing,
            NODES_CHECK
                .key(format!("{NICKS}nodes"))
                .arg(format!("{NICKS}lease:"))
                .arg(format!("{NICKS}people:"))
                .arg(self.channel(PEOPLE_CHANNEL))
                .arg(&*self.node)
                .invoke_async(&mut commands),
        )
        .await?;
        let reply = || ClusterError::Reply {
            doing,
            reply: format!("{answer:?}"),
        };
        let (own, pairs) = answer.split_first().ok_or_else(reply)?;
        if pairs.len() % 2 != 0 {
            return Err(reply());
        }
        let mut alive = HashMap::new();
        for pair in pairs.chunks_exact(2) {
            let lease = pair[1].parse::<u64>().map_err(|_| reply())?;
            alive.insert(pair[0].clone(), Duration::from_millis(lease));
        }
        Ok(Checked {
            alive,
            own_people: own == "1",
        })
    }

    /// This node is stopping: its people are forgotten, and every node told they are gone at
    /// once (rather than when the lease lapses).
    pub(crate) async fn leave_people(&self) -> Result<(), ClusterError> {
        let mut commands = self.commands.clone();
        let _heard: i64 = within(
            CALL_TIMEOUT,
            "forgetting the node's people",
            NODE_LEAVE
                .key(self.people_key(&self.node))
                .key(format!("{NICKS}nodes"))
                .arg(&*self.node)
                .arg(self.channel(PEOPLE_CHANNEL))
                .arg(
                    json!({ "v": PAYLOAD_VERSION, "lost": &*self.node, "stopped": true })
                        .to_string(),
                )
                .invoke_async(&mut commands),
        )
        .await?;
        Ok(())
    }

    /// A subscriber to the news of the other nodes' people and to this node's inbox, on a
    /// connection of its own.
    pub(crate) async fn news(&self) -> Result<NewsSubscriber, ClusterError> {
        let (mut sink, messages) = match within(
            CONNECT_TIMEOUT,
            "connecting the news subscriber",
            self.client.get_async_pubsub(),
        )
        .await
        {
            Ok(pubsub) => pubsub.split(),
            Err(error) => return Err(connect_error(address_of(&self.client), error)),
        };
        within(
            CALL_TIMEOUT,
            "subscribing to the news",
            sink.subscribe(&[
                self.channel(PEOPLE_CHANNEL),
                self.channel(&inbox(&self.node)),
            ]),
        )
        .await?;
        Ok(NewsSubscriber {
            _sink: sink,
            messages,
            node: self.node.to_string(),
            channels: self.channels.to_string(),
        })
    }

    /// Tells every other node of an operator's order given here.
    pub(crate) async fn publish_order(&self, order: &OrderNote) -> Result<(), ClusterError> {
        self.publish_news(order.encode()?, "publishing an order")
            .await
    }

    /// Tells every other node of a change to an unregistered room's order made here, as
    /// `moderation.rs` encodes it.
    pub(crate) async fn publish_room_change(&self, encoded: &Value) -> Result<(), ClusterError> {
        let payload = json!({ "v": PAYLOAD_VERSION, "node": &*self.node, "room_change": encoded })
            .to_string();
        if payload.len() > MAX_PAYLOAD_BYTES {
            return Err(ClusterError::Line(format!(
                "a room's change of {} bytes, more than {MAX_PAYLOAD_BYTES}",
                payload.len()
            )));
        }
        self.publish_news(payload, "publishing a room's change")
            .await
    }

    /// Publishes `payload` on the people channel (`doing` names it in an error).
    async fn publish_news(&self, payload: String, doing: &'static str) -> Result<(), ClusterError> {
        let mut commands = self.commands.clone();
        let _heard: i64 = within(
            CALL_TIMEOUT,
            doing,
            redis::cmd("PUBLISH")
                .arg(self.channel(PEOPLE_CHANNEL))
                .arg(payload)
                .query_async(&mut commands),
        )
        .await?;
        Ok(())
    }

    fn people_key(&self, node: &str) -> String {
        format!("{NICKS}people:{node}")
    }
}

/// A private message as sent to its node's inbox.
pub(super) fn private_payload(node: &str, line: &PrivateLine) -> Result<String, ClusterError> {
    let payload = json!({
        "v": PAYLOAD_VERSION, "node": node, "from": line.from, "to": line.to,
        "kind": kind_name(line.kind), "text": line.text, "at": line.at.as_millis(),
    })
    .to_string();
    if line.text.len() > MAX_LINE_BYTES || payload.len() > MAX_PAYLOAD_BYTES {
        return Err(ClusterError::Line("a private message too long".to_owned()));
    }
    Ok(payload)
}

pub(super) fn inbox(node: &str) -> String {
    format!("inbox:{node}")
}

fn malformed(from: &str, reason: String) -> ClusterError {
    ClusterError::Malformed {
        from: from.to_owned(),
        reason,
    }
}

fn cut(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The news of the other nodes, as a [`Stream`] of [`News`] (or a
/// [`ClusterError::Malformed`] for a message not understood; the stream goes on). This node's
/// own news is left out. The stream ends when the connection is lost: subscribe again, and
/// read [`Cluster::everyone`] again.
pub(crate) struct NewsSubscriber {
    /// Kept so that the subscriptions stay.
    _sink: PubSubSink,
    messages: PubSubStream,
    node: String,
    /// See [`Cluster::channel`].
    channels: String,
}

impl std::fmt::Debug for NewsSubscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewsSubscriber").finish_non_exhaustive()
    }
}

impl Stream for NewsSubscriber {
    type Item = Result<News, ClusterError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            let Poll::Ready(message) = Pin::new(&mut self.messages).poll_next(cx) else {
                return Poll::Pending;
            };
            let Some(message) = message else {
                return Poll::Ready(None);
            };
            let channel = message.get_channel_name().to_owned();
            let read = match channel.strip_prefix(self.channels.as_str()) {
                Some(name) => read_news(name, message.get_payload_bytes()),
                None => Err("not one of the news channels".to_owned()),
            };
            match read {
                // Its own, heard back.
                Ok(Some(
                    News::Person { node, .. }
                    | News::Gone { node, .. }
                    | News::Order(OrderNote { node, .. })
                    | News::RoomChange { node, .. },
                )) if node == self.node => {}
                Ok(Some(news)) => return Poll::Ready(Some(Ok(news))),
                Ok(None) => {}
                Err(reason) => {
                    return Poll::Ready(Some(Err(malformed(
                        &format!("channel {channel:?}"),
                        reason,
                    ))));
                }
            }
        }
    }
}

/// Reads one message of the news channels; `None` for one to pass over.
pub(crate) fn read_news(channel: &str, payload: &[u8]) -> Result<Option<News>, String> {
    let value = read_payload(payload)?;
    let text = |name: &str| {
        value
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("no {name:?} string"))
    };
    let node_field = |name: &str| {
        let node = text(name)?;
        check_node_id(node).map_err(|why| format!("node {node:?}: {why}"))?;
        Ok::<_, String>(node.to_owned())
    };
    if channel.starts_with("inbox:") {
        let kind = text("kind")?;
        let from = text("from")?;
        if !chat_core::relay::is_speaker_name(from) {
            return Err(format!("from {from:?}: not a nickname or anonymous-N"));
        }
        let to = text("to")?;
        Nickname::new(to).map_err(|error| format!("to {to:?}: {error}"))?;
        let line = PrivateLine {
            node: node_field("node")?,
            from: from.to_owned(),
            to: to.to_owned(),
            kind: kind_of(kind).ok_or_else(|| format!("unknown kind {kind:?}"))?,
            text: text("text")?.to_owned(),
            at: Instant::from_millis(
                value
                    .get("at")
                    .and_then(Value::as_u64)
                    .ok_or("no \"at\" time in milliseconds")?,
            ),
        };
        if line.text.len() > MAX_LINE_BYTES || line.text.contains(['\r', '\n', '\0']) {
            return Err("the text is too long or has a line break".to_owned());
        }
        return Ok(Some(News::Private(line)));
    }
    if channel != PEOPLE_CHANNEL {
        return Err("not one of the news channels".to_owned());
    }
    if value.get("lost").is_some() {
        return Ok(Some(News::Lost {
            node: node_field("lost")?,
            stopped: value.get("stopped").and_then(Value::as_bool) == Some(true),
        }));
    }
    let node = node_field("node")?;
    if let Some(order) = value.get("order") {
        return OrderNote::decode(node, order).map(|note| Some(News::Order(note)));
    }
    if let Some(change) = value.get("room_change") {
        if !change.is_object() {
            return Err("\"room_change\" is not an object".to_owned());
        }
        return Ok(Some(News::RoomChange {
            node,
            change: change.clone(),
        }));
    }
    let id = value
        .get("person")
        .and_then(Value::as_u64)
        .ok_or("no \"person\" id")?;
    if let Some(state) = value.get("state") {
        return Ok(Some(News::Person {
            node,
            id,
            state: PersonState::from_json(state)?,
        }));
    }
    let reason = note(text("gone")?)?;
    Ok(Some(News::Gone { node, id, reason }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_go_out_and_come_back_whole_and_bad_ones_are_refused() {
        let note = |action| OrderNote {
            node: "a-00ff".to_owned(),
            room: "#den".to_owned(),
            target: "bob".to_owned(),
            by: "alice".to_owned(),
            action,
        };
        for action in [
            OrderAction::Kick {
                reason: Some("too loud".to_owned()),
            },
            OrderAction::Kick { reason: None },
            OrderAction::Status {
                status: Status::Muted,
                on: true,
                duration: Some(Duration::from_secs(600)),
            },
            OrderAction::Status {
                status: Status::Operator,
                on: false,
                duration: None,
            },
            OrderAction::Invite,
        ] {
            let sent = note(action);
            let payload = sent.encode().unwrap();
            assert_eq!(
                read_news(PEOPLE_CHANNEL, payload.as_bytes()),
                Ok(Some(News::Order(sent)))
            );
        }
        for bad in [
            r##"{"v":1,"node":"a-00ff","order":{"room":"den","target":"bob","by":"alice","kick":null}}"##,
            r##"{"v":1,"node":"a-00ff","order":{"room":"#den","target":"b b","by":"alice","kick":null}}"##,
            r##"{"v":1,"node":"a-00ff","order":{"room":"#den","target":"bob","by":"alice","kick":"a\u001b[2J"}}"##,
            r##"{"v":1,"node":"a-00ff","order":{"room":"#den","target":"bob","by":"alice","status":"q","on":true}}"##,
            r##"{"v":1,"node":"a-00ff","order":{"room":"#den","target":"bob","by":"alice","status":"m","on":true,"ms":0}}"##,
        ] {
            assert!(read_news(PEOPLE_CHANNEL, bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_unregistered_rooms_changes_go_out_and_come_back_whole() {
        let change = crate::store::Moderation::Modes {
            room: "#den".to_owned(),
            modes: "im".to_owned(),
            key: Some("sesame".to_owned()),
            limit: Some(10),
        };
        let encoded = crate::cluster::encode_room_change(&change, "a-00ff").unwrap();
        let payload = json!({ "v": 1, "node": "a-00ff", "room_change": encoded }).to_string();
        let Ok(Some(News::RoomChange {
            node,
            change: heard,
        })) = read_news(PEOPLE_CHANNEL, payload.as_bytes())
        else {
            panic!("not read: {payload}");
        };
        assert_eq!(node, "a-00ff");
        assert_eq!(crate::cluster::decode_room_change(&heard), Ok(change));
        // Only a room's modes and bans come this way.
        let lift = json!({"node": "a-00ff", "op": "lift", "mask": "x!*@*", "at": 1});
        assert!(crate::cluster::decode_room_change(&lift).is_err());
        let not_an_object = r#"{"v":1,"node":"a-00ff","room_change":"modes"}"#;
        assert!(read_news(PEOPLE_CHANNEL, not_an_object.as_bytes()).is_err());
    }

    #[test]
    fn a_persons_standing_goes_with_them_for_their_rooms_only() {
        let state = PersonState {
            nick: "alice".to_owned(),
            rooms: vec!["#den".to_owned(), "#lobby".to_owned()],
            away: None,
            account: None,
            ops: vec!["#den".to_owned()],
            voices: vec!["#lobby".to_owned()],
        };
        let json = state.to_json();
        assert_eq!(PersonState::from_json(&json), Ok(state.clone()));
        assert_eq!(
            state.standing(),
            [("#den", Status::Operator), ("#lobby", Status::Voice)]
        );
        // An operator of a room they are not in is refused.
        let mut bad = json;
        bad["ops"] = json!(["#elsewhere"]);
        assert!(PersonState::from_json(&bad).is_err());
        // Nodes from before standing: none.
        let old = json!({ "nick": "bob", "rooms": ["#den"], "away": null });
        let read = PersonState::from_json(&old).unwrap();
        assert!(read.ops.is_empty() && read.voices.is_empty());
    }

    #[test]
    fn news_is_read_and_checked() {
        let person = br##"{"v":1,"node":"a-00ff","person":7,"state":{"nick":"alice","rooms":["#lobby"],"away":null}}"##;
        assert_eq!(
            read_news(PEOPLE_CHANNEL, person),
            Ok(Some(News::Person {
                node: "a-00ff".to_owned(),
                id: 7,
                state: PersonState {
                    nick: "alice".to_owned(),
                    rooms: vec!["#lobby".to_owned()],
                    away: None,
                    account: None,
                    ops: Vec::new(),
                    voices: Vec::new(),
                },
            }))
        );
        let gone = br#"{"v":1,"node":"a-00ff","person":7,"gone":"quit: bye"}"#;
        assert!(matches!(
            read_news(PEOPLE_CHANNEL, gone),
            Ok(Some(News::Gone { id: 7, .. }))
        ));
        assert_eq!(
            read_news(PEOPLE_CHANNEL, br#"{"v":1,"lost":"b-01"}"#),
            Ok(Some(News::Lost {
                node: "b-01".to_owned(),
                stopped: false,
            }))
        );
        let private = br#"{"v":1,"node":"a-00ff","from":"alice","to":"bob","kind":"action","text":"waves","at":5}"#;
        assert!(matches!(
            read_news("inbox:b-01", private),
            Ok(Some(News::Private(PrivateLine {
                kind: LineKind::Action,
                ..
            })))
        ));
        for bad in [
            &br#"{"v":2,"lost":"b"}"#[..],
            br#"not json"#,
            br#"{"v":1,"lost":"b c"}"#,
            br##"{"v":1,"node":"a","person":7,"state":{"nick":"a b","rooms":[]}}"##,
            br##"{"v":1,"node":"a","person":7,"state":{"nick":"al","rooms":["lobby"]}}"##,
            br#"{"v":1,"node":"a","person":7,"gone":"a\nb"}"#,
        ] {
            assert!(
                read_news(PEOPLE_CHANNEL, bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(read_news("elsewhere", br#"{"v":1,"lost":"b"}"#).is_err());
    }
}
