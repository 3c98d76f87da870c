//! Cluster mode's Redis layer: several nodes (`chat-runner` processes) share one chat through
//! one Redis. Nicknames are claimed in Redis, unique across nodes; a room's lines get one order
//! across nodes (a sequence number per room, given out by Redis), are kept in a stream per
//! room for filling gaps, and reach the other nodes through a channel per room. This module
//! only talks to Redis; the hub decides what to do with the answers.
//!
//! # Keys
//!
//! Every key of a room carries the room's name's key ([`crate::name_key`]) as its hash tag, so all of a room
//! sits in one slot of a Redis Cluster, and rooms can later be spread over several Redis
//! instances (or a Cluster, with `SPUBLISH`) without moving data:
//!
//! | key | type | what |
//! |---|---|---|
//! | `chat:room:{#name}:meta` | hash | `seq`: the last sequence number given; `epoch`: changes when the numbering starts again; `base`: the number the epoch's numbering went on after; `topic`: the last topic line, `<seq>:<epoch>:<payload>` |
//! | `chat:room:{#name}:stream` | stream | the room's lines, entry id `<seq>-0`, field `d` = the payload; about [`STREAM_KEEP`] kept |
//! | `chat:room:{#name}:live` | channel | each line as it is given its number: `<seq>:<epoch>:<payload>` |
//!
//! Channels are shared by every database of a Redis, keys are not: on database N (the URL's
//! `/N`), every channel's name starts `chat:dbN:` instead of `chat:`, so that two chats on
//! two databases of one Redis stay apart.
//!
//! Nicknames all sit under one hash tag, `{nicks}`, since a claim must see every node's claims
//! in one atomic step:
//!
//! | key | type | what |
//! |---|---|---|
//! | `chat:nicks:{nicks}:owners` | hash | nick (its key, [`crate::name_key`]: case and look-alikes aside) → the node id holding it |
//! | `chat:nicks:{nicks}:lease:NODE` | string | NODE's lease: exists while NODE renews it |
//! | `chat:nicks:{nicks}:held:NODE` | set | the nicks NODE holds, to drop them all when its lease is renewed after a lapse |
//!
//! A nick is held by a node whose lease exists. A node that dies or stops renewing loses its
//! nicks when its lease expires: the next claim of one of them takes it over. The claim script
//! reads the owner's lease, a key it cannot declare in advance; it is under the same hash tag,
//! so in the same slot.
//!
//! # The line payload
//!
//! A [`RemoteLine`] is a JSON object with a version, at most [`MAX_PAYLOAD_BYTES`] bytes:
//! `{"v":1,"node":"a-3f9c…","nick":"alice","kind":"line","text":"hi","at":1700000000000,
//! "room":"#Rust"}` (`room`: the room's name as spelt where it was said; keys and channels
//! carry the name's key, `{#rust}`)
//! (`kind`: `line`, `action`, `notice`, or `topic` for the room's new topic, the `text`;
//! `at`: Unix time in milliseconds). A reader ignores
//! fields it does not know; a change a version-1 reader would misread gets a new `v`, which
//! such a reader refuses as malformed.
//!
//! # Guarantees and bounds
//!
//! Every call to Redis is bounded by [`CALL_TIMEOUT`] (connecting by [`CONNECT_TIMEOUT`]): the
//! crate's own timeouts do not cover a call waiting for its connection manager to reconnect,
//! which was seen to take 5 s. A publish is at most once: one that timed out may or may not
//! have happened, and if it did its line arrives like any other. Lines missed on the channel
//! (a reconnect, a slow subscriber) are filled from the stream by sequence number with
//! [`Cluster::fetch`], which says honestly what the stream no longer has.

mod accounts;
mod moderation;
mod news;
mod node;
mod people;
mod relay;
#[cfg(test)]
mod tests;

pub(crate) use accounts::{Account, Made, SharedAccounts, now_millis};
pub(crate) use moderation::{
    ModerationNews, ModerationSharer, decode_room_change, describe as describe_change,
    encode_room_change,
};
pub(crate) use news::listen as listen_for_news;
pub(crate) use node::{Done, ForCore, LEAVE_TIMEOUT, Node};
pub(crate) use people::{Checked, Everyone, News, OrderNote, PersonState, PrivateLine};
pub(crate) use relay::{ForCore as Relayed, Relay, RelayDone, Unsent};

use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::ops::RangeInclusive;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use chat_core::relay::Kind;
use chat_core::{Instant, LineKind, MAX_LINE_BYTES, MAX_TOPIC_BYTES, Nickname, RoomName};
use futures_lite::Stream;
use redis::Value;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSubSink, PubSubStream};
use redis::{RedisError, RedisResult, Script};
use serde_json::Value as Json;
use smol::Timer;

/// The most time any call to Redis may take before it counts as failed.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// The most time connecting to Redis (and taking the node's first lease) may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one attempt to open a connection may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);

/// Attempts after the first, when connecting or reconnecting, before the connection manager
/// reports a failure (the next call starts another round): few, so that a call waiting for a
/// reconnection does not wait long, and an unreachable Redis is reported in about a second.
const CONNECT_RETRIES: usize = 2;

/// The lease a node gives itself unless told otherwise: a node that dies loses its nicks at
/// most this long after its last renewal.
pub(crate) const DEFAULT_LEASE: Duration = Duration::from_secs(15);

/// The shortest and longest lease a node may ask for. Shorter than a second, a lease would
/// lapse on a busy Redis; longer than five minutes, a dead node's nicks would stay taken long
/// after anyone could tell it had died.
pub(crate) const LEASE_RANGE: RangeInclusive<Duration> =
    Duration::from_secs(1)..=Duration::from_secs(300);

/// The lines a room's stream keeps (`XADD MAXLEN ~`, so Redis may keep up to a hundred or so
/// more): twice the most `/history` shows (500), and far more than a subscriber misses while
/// it resubscribes. At most 4 KiB a line (usually about 200 bytes), some 200 KB a room.
pub(crate) const STREAM_KEEP: u64 = 1_000;

/// The most lines one [`Cluster::fetch`] returns; the caller fetches on from the last.
pub(crate) const MAX_FETCH: usize = 500;

/// The most bytes of an encoded [`RemoteLine`]: a line of [`MAX_LINE_BYTES`] with every byte
/// escaped by JSON (`\u0003`, 6 bytes) still fits, with its names.
pub(crate) const MAX_PAYLOAD_BYTES: usize = 4096;

/// The most bytes of an operator's `--node` name.
pub(crate) const MAX_NODE_NAME_BYTES: usize = 32;

/// A node id: the name, `-`, and 16 hex digits.
const MAX_NODE_ID_BYTES: usize = MAX_NODE_NAME_BYTES + 17;

/// The version of the line payload this node writes and reads.
const PAYLOAD_VERSION: u64 = 1;

/// The most bytes of an epoch read from Redis (ours are 16 hex digits).
const MAX_EPOCH_BYTES: usize = 64;

/// The nick keys' common part, hash tag included.
const NICKS: &str = "chat:nicks:{nicks}:";

// The scripts, files beside this one. Sent by their SHA-1 (EVALSHA); the crate loads a script
// again when Redis answers NOSCRIPT (after a restart or a SCRIPT FLUSH).
static NICK_CLAIM: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("nick_claim.lua")));
static NICK_RELEASE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("nick_release.lua")));
static LEASE_RENEW: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lease_renew.lua")));
static ROOM_PUBLISH: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("room_publish.lua")));
static ROOM_FETCH: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("room_fetch.lua")));

/// Why a cluster call failed; renders as a line for the operator log.
#[derive(Debug)]
pub(crate) enum ClusterError {
    /// The `--cluster` address is not a Redis URL.
    Url(RedisError),
    /// The `--node` name cannot be used: why.
    NodeName(String),
    /// The lease asked for is outside [`LEASE_RANGE`].
    Lease(Duration),
    /// Redis could not be reached at this address (host and port, never the password): the
    /// error, or `None` if it did not answer within [`CONNECT_TIMEOUT`].
    Connect {
        address: String,
        error: Option<RedisError>,
    },
    /// Redis did not answer in time.
    Timeout {
        doing: &'static str,
        after: Duration,
    },
    /// Redis answered with an error, or the connection failed.
    Redis {
        doing: &'static str,
        error: RedisError,
    },
    /// Redis answered something our scripts never return.
    Reply { doing: &'static str, reply: String },
    /// Not a room name here.
    Room(String),
    /// Not a nickname here.
    Nick(String),
    /// A line that this node will not publish: why.
    Line(String),
    /// A message on one of our channels, or an entry of a room's stream, that is not ours or
    /// not understood; `from` says where it was read.
    Malformed { from: String, reason: String },
    /// A subscriber's connection was lost (`what` it was for).
    Lost { what: &'static str },
}

impl ClusterError {
    /// Whether it says Redis cannot be reached (or answered with an error), as opposed to
    /// something Redis was not asked (a line too long, a name not valid) or a message not
    /// understood.
    pub(crate) fn is_unreachable(&self) -> bool {
        matches!(
            self,
            Self::Connect { .. } | Self::Timeout { .. } | Self::Redis { .. } | Self::Lost { .. }
        )
    }
}

impl fmt::Display for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Url(error) => write!(f, "not a Redis URL: {error}"),
            Self::NodeName(why) => write!(f, "invalid node name: {why}"),
            Self::Lease(lease) => write!(
                f,
                "a node's lease must be from {} to {} s, not {:.3} s",
                LEASE_RANGE.start().as_secs(),
                LEASE_RANGE.end().as_secs(),
                lease.as_secs_f64()
            ),
            Self::Connect {
                address,
                error: Some(error),
            } => write!(f, "cannot connect to Redis at {address}: {error}"),
            Self::Connect {
                address,
                error: None,
            } => write!(
                f,
                "cannot connect to Redis at {address}: no answer within {} s",
                CONNECT_TIMEOUT.as_secs()
            ),
            Self::Timeout { doing, after } => write!(
                f,
                "Redis did not answer within {:.1} s ({doing})",
                after.as_secs_f64()
            ),
            Self::Redis { doing, error } => write!(f, "Redis failed ({doing}): {error}"),
            Self::Reply { doing, reply } => {
                write!(f, "unexpected answer from Redis ({doing}): {reply}")
            }
            Self::Room(room) => write!(f, "not a room name: {room:?}"),
            Self::Nick(nick) => write!(f, "not a nickname: {nick:?}"),
            Self::Line(why) => write!(f, "cannot publish the line: {why}"),
            Self::Lost { what } => write!(f, "the connection for {what} was lost"),
            Self::Malformed { from, reason } => {
                write!(
                    f,
                    "ignored a malformed message from Redis ({from}): {reason}"
                )
            }
        }
    }
}

impl std::error::Error for ClusterError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Url(error)
            | Self::Connect {
                error: Some(error), ..
            }
            | Self::Redis { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// A line said in a room on some node, as every node reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RemoteLine {
    /// The id of the node it was said on ([`Cluster::node_id`]).
    pub(crate) node: String,
    /// Who said it, as they were called then.
    pub(crate) nick: String,
    /// Line, action or notice; or the room's new topic.
    pub(crate) kind: Kind,
    /// What was said (at most [`MAX_LINE_BYTES`]), or the topic (at most
    /// [`MAX_TOPIC_BYTES`]); no line break or NUL.
    pub(crate) text: String,
    /// When, in Unix time (milliseconds), by the clock of the node it was said on.
    pub(crate) at: Instant,
    /// Who said it on their node (`ConnectionId::to_bits`), for that node to know its own
    /// people's lines when they come back; other nodes pass it over.
    pub(crate) person: Option<u64>,
    /// The room's name as its speaker's node spells it. The channel and the keys carry only
    /// the name's key (see [`crate::name_key`]), which is no name to show: a node that has no
    /// room of that name yet makes it under this one. Absent in payloads of nodes from before
    /// it, and ignored unless it is a room name whose key is the room's.
    pub(crate) room: Option<String>,
}

impl RemoteLine {
    /// The payload: `{"v":1,…}`, at most [`MAX_PAYLOAD_BYTES`].
    pub(crate) fn encode(&self) -> Result<String, ClusterError> {
        self.check().map_err(ClusterError::Line)?;
        let payload = serde_json::json!({
            "v": PAYLOAD_VERSION,
            "node": self.node,
            "nick": self.nick,
            "kind": room_kind_name(self.kind),
            "text": self.text,
            "at": self.at.as_millis(),
            "person": self.person,
            "room": self.room,
        })
        .to_string();
        // Cannot happen for a line that passed the checks; kept so that the bound holds
        // whatever the checks become.
        if payload.len() > MAX_PAYLOAD_BYTES {
            return Err(ClusterError::Line(format!(
                "{} bytes encoded, more than {MAX_PAYLOAD_BYTES}",
                payload.len()
            )));
        }
        Ok(payload)
    }

    /// Reads a payload; why not, if it is not one this node can use.
    pub(crate) fn decode(payload: &[u8]) -> Result<Self, String> {
        let fields = read_payload(payload)?;
        let text_field = |name: &str| {
            fields
                .get(name)
                .and_then(Json::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("no {name:?} string"))
        };
        let kind = text_field("kind")?;
        let line = Self {
            node: text_field("node")?,
            nick: text_field("nick")?,
            kind: room_kind_of(&kind).ok_or_else(|| format!("unknown kind {kind:?}"))?,
            text: text_field("text")?,
            at: Instant::from_millis(
                fields
                    .get("at")
                    .and_then(Json::as_u64)
                    .ok_or("no \"at\" time in milliseconds")?,
            ),
            person: fields.get("person").and_then(Json::as_u64),
            room: fields
                .get("room")
                .and_then(Json::as_str)
                .filter(|room| RoomName::new(room).is_ok())
                .map(str::to_owned),
        };
        line.check()?;
        Ok(line)
    }

    /// What the other nodes would refuse, so that this one never sends it.
    fn check(&self) -> Result<(), String> {
        if let Err(why) = check_node_id(&self.node) {
            return Err(format!("node {:?}: {why}", self.node));
        }
        // The same rule the other nodes' cores check (a nickname, or anonymous-N).
        if let Err(error) = Nickname::new(&self.nick)
            && !chat_core::relay::is_speaker_name(&self.nick)
        {
            return Err(format!("nick {:?}: {error}", self.nick));
        }
        if self.text.len() > MAX_LINE_BYTES {
            return Err(format!(
                "the text has {} bytes, more than {MAX_LINE_BYTES}",
                self.text.len()
            ));
        }
        if self.kind == Kind::Topic && self.text.len() > MAX_TOPIC_BYTES {
            return Err(format!(
                "the topic has {} bytes, more than {MAX_TOPIC_BYTES}",
                self.text.len()
            ));
        }
        if self.text.contains(['\r', '\n', '\0']) {
            return Err("the text contains a line break or NUL".to_owned());
        }
        Ok(())
    }
}

/// A payload from Redis, read as far as every kind of ours shares: at most
/// [`MAX_PAYLOAD_BYTES`], a JSON object, of the version this node reads. Why not, if not.
fn read_payload(payload: &[u8]) -> Result<serde_json::Map<String, Json>, String> {
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(format!(
            "{} bytes, more than {MAX_PAYLOAD_BYTES}",
            payload.len()
        ));
    }
    let value: Json =
        serde_json::from_slice(payload).map_err(|error| format!("not JSON: {error}"))?;
    let Json::Object(fields) = value else {
        return Err("not a JSON object".to_owned());
    };
    match fields.get("v").and_then(Json::as_u64) {
        Some(PAYLOAD_VERSION) => Ok(fields),
        Some(other) => Err(format!(
            "payload version {other}, this node reads {PAYLOAD_VERSION}"
        )),
        None => Err("no payload version (\"v\")".to_owned()),
    }
}

fn kind_name(kind: LineKind) -> &'static str {
    match kind {
        LineKind::Action => "action",
        LineKind::Notice => "notice",
        // `Line`, and a kind added to the core later until it has a name of its own here.
        _ => "line",
    }
}

/// A room message's `kind`: a line's, or `topic`.
fn room_kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Topic => "topic",
        Kind::Said(kind) => kind_name(kind),
        // A kind added to the core later, until it has a name of its own here: nothing this
        // node makes.
        _ => "line",
    }
}

fn room_kind_of(name: &str) -> Option<Kind> {
    match name {
        "topic" => Some(Kind::Topic),
        name => kind_of(name).map(Kind::Said),
    }
}

fn kind_of(name: &str) -> Option<LineKind> {
    match name {
        "line" => Some(LineKind::Line),
        "action" => Some(LineKind::Action),
        "notice" => Some(LineKind::Notice),
        _ => None,
    }
}

/// What [`Cluster::renew_lease`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Renewal {
    /// The lease was alive, and is extended.
    Renewed,
    /// The lease had lapsed (or this is the first): everything the node held was dropped, and
    /// it holds a new lease. Claim every local person's nick again; others may have taken some.
    Rejoined,
}

/// The answer to [`Cluster::claim_nick`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Claim {
    /// The nick is this node's now (and the previous one, if given, is released).
    Granted,
    /// A node with a live lease holds it: this one (another person here) or another.
    Taken {
        /// The id of the node holding it.
        owner: String,
    },
    /// This node's lease lapsed: it claims nothing until [`Cluster::renew_lease`] rejoins.
    LeaseLost,
}

/// Where a published line sits in its room's one order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Position {
    /// The room's sequence number for the line: 1 for the first of its epoch.
    pub(crate) seq: u64,
    /// The numbering's epoch: a new one means the numbers started again.
    pub(crate) epoch: String,
}

/// A line for [`Cluster::send_batch`].
#[derive(Clone, Debug)]
pub(crate) enum Outbound {
    /// A room line said here. `floor` is the last number this node knows the room had: if
    /// Redis has lost the room's numbering, the new numbering goes on after it, so that new
    /// lines do not take the numbers of lines the stores keep.
    Line {
        room: String,
        line: RemoteLine,
        floor: u64,
    },
    /// A private message for someone on `node`, from person `sender` here (their
    /// `ConnectionId::to_bits`), who is told if it does not get there.
    Private {
        node: String,
        line: PrivateLine,
        sender: u64,
    },
}

/// What became of an [`Outbound`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Sent {
    /// A room line's place in its room's order.
    Placed(Position),
    /// Whether a private message reached its node.
    Heard(bool),
}

/// A line read back from a room's stream.
#[derive(Debug)]
pub(crate) struct Entry {
    /// Its sequence number.
    pub(crate) seq: u64,
    /// The line, or why it could not be read (the number still counts as seen).
    pub(crate) line: Result<RemoteLine, ClusterError>,
}

/// What [`Cluster::fetch`] found after the sequence number it was given.
#[derive(Debug)]
pub(crate) struct Fetched {
    /// The room's last sequence number; 0 if it never had a line (in this epoch).
    pub(crate) top: u64,
    /// The numbering's epoch, `None` for a room with no line. When it is not the epoch the
    /// caller's numbers came from, those numbers mean nothing here: start again from 0.
    pub(crate) epoch: Option<String>,
    /// The lines the stream still has, in order, at most the `max` asked for. If the last is
    /// below `top`, fetch again after it.
    pub(crate) entries: Vec<Entry>,
    /// What the stream could not give.
    pub(crate) gap: Option<Gap>,
}

/// Lines a [`Fetched`] cannot give: to be announced, never silently skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Gap {
    /// These lines were numbered but the stream no longer has them (trimmed past
    /// [`STREAM_KEEP`]).
    Trimmed(RangeInclusive<u64>),
    /// The room's numbering is behind the number the caller gave: Redis lost lines it had
    /// numbered (a restart with lost writes, a failover), in the same epoch.
    Behind,
}

/// A line that arrived on a room's channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Heard {
    /// The room, lowercased.
    pub(crate) room: String,
    /// Where it sits in the room's order.
    pub(crate) position: Position,
    /// The line (which may be this node's own).
    pub(crate) line: RemoteLine,
}

/// One node's handle on the cluster: its id, its lease, and a command connection that
/// reconnects by itself. Cheap to clone; the clones share the connection.
#[derive(Clone)]
pub(crate) struct Cluster {
    client: redis::Client,
    commands: ConnectionManager,
    node: Arc<str>,
    /// The start of every channel's name: `chat:`, or `chat:dbN:` on database N (see
    /// [`channels_of`]).
    channels: Arc<str>,
    lease: Duration,
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("address", &address_of(&self.client))
            .field("node", &self.node)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Connects to the Redis at `url` as a new node named `node_name` (1 to
    /// [`MAX_NODE_NAME_BYTES`] of ASCII letters, digits, `-`, `_` and `.`), and takes a lease
    /// of `lease` (within [`LEASE_RANGE`]; keep it with [`renew_lease`](Self::renew_lease)).
    pub(crate) async fn connect(
        url: &str,
        node_name: &str,
        lease: Duration,
    ) -> Result<Self, ClusterError> {
        check_node_name(node_name).map_err(ClusterError::NodeName)?;
        if !LEASE_RANGE.contains(&lease) {
            return Err(ClusterError::Lease(lease));
        }
        let client = redis::Client::open(url).map_err(ClusterError::Url)?;
        let address = address_of(&client);
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(ATTEMPT_TIMEOUT))
            .set_response_timeout(Some(CALL_TIMEOUT))
            .set_number_of_retries(CONNECT_RETRIES)
            .set_min_delay(Duration::from_millis(100))
            .set_max_delay(Duration::from_secs(1));
        let commands = match within(
            CONNECT_TIMEOUT,
            "connecting",
            client.get_connection_manager_with_config(config),
        )
        .await
        {
            Ok(commands) => commands,
            Err(error) => return Err(connect_error(address, error)),
        };
        let channels = channels_of(&client).into();
        let cluster = Self {
            client,
            commands,
            node: new_node_id(node_name).into(),
            channels,
            lease,
        };
        cluster.renew_lease().await?;
        Ok(cluster)
    }

    /// This node's id: the `--node` name, `-`, and 16 hex digits new for each handle. With the
    /// name alone, a node restarted within its lease would find its previous process's lease
    /// alive and take that process's claims for its own: nicks nobody here holds would stay
    /// taken, and could be granted to the wrong person here. A new id lets them lapse.
    pub(crate) fn node_id(&self) -> &str {
        &self.node
    }

    /// Where this node's Redis is, for the log: host and port (or socket path), never the
    /// password the URL may carry.
    pub(crate) fn address(&self) -> String {
        address_of(&self.client)
    }

    /// The lease this node keeps.
    pub(crate) fn lease(&self) -> Duration {
        self.lease
    }

    /// How often to call [`renew_lease`](Self::renew_lease): a third of the lease, so that
    /// two renewals in a row may fail before it lapses.
    pub(crate) fn renew_interval(&self) -> Duration {
        self.lease / 3
    }

    /// Keeps this node's lease alive, or takes a new one after a lapse.
    pub(crate) async fn renew_lease(&self) -> Result<Renewal, ClusterError> {
        let doing = "renewing the node's lease";
        let mut commands = self.commands.clone();
        let renewed: i64 = within(
            CALL_TIMEOUT,
            doing,
            LEASE_RENEW
                .key(format!("{NICKS}owners"))
                .key(self.lease_key())
                .key(self.held_key())
                .key(format!("{NICKS}nodes"))
                .arg(&*self.node)
                .arg(self.lease.as_millis() as u64)
                .invoke_async(&mut commands),
        )
        .await?;
        match renewed {
            1 => Ok(Renewal::Renewed),
            0 => Ok(Renewal::Rejoined),
            other => Err(ClusterError::Reply {
                doing,
                reply: other.to_string(),
            }),
        }
    }

    /// Claims `nick` for a person here, case-insensitively across every node. With `previous`
    /// (the person's current nick), that one is released in the same step if this node holds
    /// it: a rename. A change of case of `previous` is granted.
    pub(crate) async fn claim_nick(
        &self,
        nick: &str,
        previous: Option<&str>,
    ) -> Result<Claim, ClusterError> {
        let doing = "claiming a nickname";
        let folded = fold_nick(nick)?;
        let previous = previous.map(fold_nick).transpose()?.unwrap_or_default();
        let mut commands = self.commands.clone();
        let (code, owner): (i64, String) = within(
            CALL_TIMEOUT,
            doing,
            NICK_CLAIM
                .key(format!("{NICKS}owners"))
                .key(self.lease_key())
                .key(self.held_key())
                .arg(&folded)
                .arg(&*self.node)
                .arg(format!("{NICKS}lease:"))
                .arg(format!("{NICKS}held:"))
                .arg(&previous)
                .invoke_async(&mut commands),
        )
        .await?;
        match code {
            1 => Ok(Claim::Granted),
            0 => Ok(Claim::Taken { owner }),
            -1 => Ok(Claim::LeaseLost),
            other => Err(ClusterError::Reply {
                doing,
                reply: format!("{other} {owner:?}"),
            }),
        }
    }

    /// Gives `nick` back if this node holds it; true if it did.
    pub(crate) async fn release_nick(&self, nick: &str) -> Result<bool, ClusterError> {
        let folded = fold_nick(nick)?;
        let mut commands = self.commands.clone();
        let released: i64 = within(
            CALL_TIMEOUT,
            "releasing a nickname",
            NICK_RELEASE
                .key(format!("{NICKS}owners"))
                .key(self.held_key())
                .arg(&folded)
                .arg(&*self.node)
                .invoke_async(&mut commands),
        )
        .await?;
        Ok(released == 1)
    }

    /// Gives `line` (said on this node) the room's next number, appends it to the room's
    /// stream and publishes it on the room's channel, all in one step. At most once: after a
    /// timeout the line may or may not be out. (One at a time, for the tests: the hub sends
    /// its lines in batches, see [`send_batch`](Self::send_batch).)
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) async fn publish(
        &self,
        room: &str,
        line: &RemoteLine,
    ) -> Result<Position, ClusterError> {
        if line.node != *self.node {
            return Err(ClusterError::Line(format!(
                "it names node {:?}, this is {:?}",
                line.node, self.node
            )));
        }
        let keys = RoomKeys::new(room)?;
        let payload = line.encode()?;
        let mut commands = self.commands.clone();
        let (seq, epoch): (u64, String) = within(
            CALL_TIMEOUT,
            "publishing a line",
            ROOM_PUBLISH
                .key(&keys.meta)
                .key(&keys.stream)
                .arg(payload)
                .arg(STREAM_KEEP)
                .arg(new_epoch())
                .arg(self.live_channel(&keys))
                .arg(is_topic(line))
                .arg(0)
                .invoke_async(&mut commands),
        )
        .await?;
        Ok(Position { seq, epoch })
    }

    /// Sends `batch` in its order, in one round trip (a pipeline): each room line published
    /// as [`publish`](Self::publish) does, each private message to its node's inbox. Calls
    /// made one by one on the shared connection may reach Redis in another order than they
    /// were made (a call waiting for room in the connection's queue is woken in no set
    /// order), and one person's lines must keep theirs: the relay sends a batch at a time.
    /// The answers, in order: a room line's place, or whether a private message was heard.
    /// All or nothing: on an error none may be counted as sent (some may have been).
    pub(crate) async fn send_batch(&self, batch: &[Outbound]) -> Result<Vec<Sent>, ClusterError> {
        let mut pipe = redis::pipe();
        // Loaded with every batch (cheap, and idempotent), so that no call in it meets a
        // Redis that has forgotten the script (after a restart).
        pipe.load_script(&ROOM_PUBLISH).ignore();
        for outbound in batch {
            match outbound {
                Outbound::Line { room, line, floor } => {
                    if line.node != *self.node {
                        return Err(ClusterError::Line(format!(
                            "it names node {:?}, this is {:?}",
                            line.node, self.node
                        )));
                    }
                    let keys = RoomKeys::new(room)?;
                    let mut invocation = ROOM_PUBLISH.prepare_invoke();
                    invocation
                        .key(&keys.meta)
                        .key(&keys.stream)
                        .arg(line.encode()?)
                        .arg(STREAM_KEEP)
                        .arg(new_epoch())
                        .arg(self.live_channel(&keys))
                        .arg(is_topic(line))
                        .arg(*floor);
                    pipe.invoke_script(&invocation);
                }
                Outbound::Private { node, line, .. } => {
                    pipe.cmd("PUBLISH")
                        .arg(self.channel(&people::inbox(node)))
                        .arg(people::private_payload(&self.node, line)?);
                }
            }
        }
        let mut commands = self.commands.clone();
        let answers: Vec<Value> = within(
            CALL_TIMEOUT,
            "sending lines",
            pipe.query_async(&mut commands),
        )
        .await?;
        let doing = "sending lines";
        if answers.len() != batch.len() {
            return Err(ClusterError::Reply {
                doing,
                reply: format!("{} answers to {} lines", answers.len(), batch.len()),
            });
        }
        batch
            .iter()
            .zip(answers)
            .map(|(outbound, answer)| match outbound {
                Outbound::Line { .. } => {
                    let (seq, epoch): (u64, String) =
                        redis::from_redis_value(answer).map_err(|error| ClusterError::Redis {
                            doing,
                            error: error.into(),
                        })?;
                    Ok(Sent::Placed(Position { seq, epoch }))
                }
                Outbound::Private { .. } => {
                    let heard: i64 =
                        redis::from_redis_value(answer).map_err(|error| ClusterError::Redis {
                            doing,
                            error: error.into(),
                        })?;
                    Ok(Sent::Heard(heard > 0))
                }
            })
            .collect()
    }

    /// The room's topic as the last topic line published in it left it (empty: cleared),
    /// with that line's place in the room's order; `None` if no topic was ever set there (in
    /// this epoch).
    pub(crate) async fn topic(
        &self,
        room: &str,
    ) -> Result<Option<(Position, RemoteLine)>, ClusterError> {
        let keys = RoomKeys::new(room)?;
        let mut commands = self.commands.clone();
        let kept: Option<Vec<u8>> = within(
            CALL_TIMEOUT,
            "reading a room's topic",
            redis::cmd("HGET")
                .arg(&keys.meta)
                .arg("topic")
                .query_async(&mut commands),
        )
        .await?;
        let Some(kept) = kept else {
            return Ok(None);
        };
        read_placed(&kept)
            .map(Some)
            .map_err(|reason| ClusterError::Malformed {
                from: format!("{}, field topic", keys.meta),
                reason,
            })
    }

    /// The room's lines numbered after `after_seq`, at most `max` (and at most
    /// [`MAX_FETCH`]), with the room's top number and epoch, and what the stream no longer
    /// has.
    pub(crate) async fn fetch(
        &self,
        room: &str,
        after_seq: u64,
        max: usize,
    ) -> Result<Fetched, ClusterError> {
        let doing = "fetching a room's lines";
        let keys = RoomKeys::new(room)?;
        let max = max.clamp(1, MAX_FETCH);
        let first = after_seq.saturating_add(1);
        let mut commands = self.commands.clone();
        let (top, epoch, raw, base): (String, String, Vec<RawEntry>, String) = within(
            CALL_TIMEOUT,
            doing,
            ROOM_FETCH
                .key(&keys.meta)
                .key(&keys.stream)
                .arg(format!("{first}-0"))
                .arg(max)
                .invoke_async(&mut commands),
        )
        .await?;
        let number = |name: &str, value: String| {
            value.parse::<u64>().map_err(|_| ClusterError::Reply {
                doing,
                reply: format!("{name} {value:?}"),
            })
        };
        let (top, base) = (number("top", top)?, number("base", base)?);
        let mut entries = Vec::with_capacity(raw.len().min(max));
        for (id, fields) in raw.into_iter().take(max) {
            let Some(seq) = id.strip_suffix("-0").and_then(|seq| seq.parse().ok()) else {
                return Err(ClusterError::Reply {
                    doing,
                    reply: format!("stream entry id {id:?}"),
                });
            };
            let from = || format!("{}, stream entry {seq}", keys.stream);
            let line = match stream_payload(&fields) {
                Some(payload) => {
                    RemoteLine::decode(payload).map_err(|reason| ClusterError::Malformed {
                        from: from(),
                        reason,
                    })
                }
                None => Err(ClusterError::Malformed {
                    from: from(),
                    reason: "no field \"d\"".to_owned(),
                }),
            };
            entries.push(Entry { seq, line });
        }
        let gap = if top < after_seq {
            Some(Gap::Behind)
        } else {
            // The stream loses lines only from its old end, so whatever is missing comes
            // before the first entry returned (or is everything up to the top). The numbers
            // up to the epoch's base were never given in it.
            let first = first.max(base.saturating_add(1));
            let present = entries
                .first()
                .map_or(top.saturating_add(1), |entry| entry.seq);
            (present > first).then(|| Gap::Trimmed(first..=present - 1))
        };
        Ok(Fetched {
            top,
            epoch: (!epoch.is_empty()).then_some(epoch),
            entries,
            gap,
        })
    }

    /// A subscriber on a connection of its own (a subscribed connection can do nothing else),
    /// subscribed to no room yet.
    pub(crate) async fn subscriber(&self) -> Result<Subscriber, ClusterError> {
        let (sink, messages) = match within(
            CONNECT_TIMEOUT,
            "connecting the subscriber",
            self.client.get_async_pubsub(),
        )
        .await
        {
            Ok(pubsub) => pubsub.split(),
            Err(error) => return Err(connect_error(address_of(&self.client), error)),
        };
        Ok(Subscriber {
            sink,
            messages,
            channels: self.channels.clone(),
        })
    }

    fn lease_key(&self) -> String {
        format!("{NICKS}lease:{}", self.node)
    }

    fn held_key(&self) -> String {
        format!("{NICKS}held:{}", self.node)
    }

    /// The channel of the room of `keys`.
    fn live_channel(&self, keys: &RoomKeys) -> String {
        format!("{}{}", self.channels, keys.live)
    }

    /// The name of the channel `name` (`people`, `inbox:NODE`, …) for this cluster.
    pub(crate) fn channel(&self, name: &str) -> String {
        format!("{}{name}", self.channels)
    }
}

/// The channel of new accounts' keys, after the database's prefix (see `accounts.rs`).
const ACCOUNTS_CHANNEL: &str = "accounts";
/// The channel of changes of order, after the database's prefix (see `moderation.rs`).
const MODERATION_CHANNEL: &str = "moderation";

/// The start of every channel's name for the Redis database of `client`: `chat:` on database
/// 0, `chat:dbN:` on database N. Keys are apart in each database, but channels are shared by
/// all of them: with this, two chats on two databases of one Redis stay apart (the tests run
/// side by side that way).
fn channels_of(client: &redis::Client) -> String {
    match client.get_connection_info().redis_settings().db() {
        0 => "chat:".to_owned(),
        db => format!("chat:db{db}:"),
    }
}

/// The lines published in the rooms it is subscribed to, as a [`Stream`]: each a [`Heard`],
/// or a [`ClusterError::Malformed`] for a message that is not one of ours (the stream goes
/// on). The stream ends when the connection is lost; make a new subscriber, subscribe again,
/// and fill what was missed with [`Cluster::fetch`].
pub(crate) struct Subscriber {
    sink: PubSubSink,
    messages: PubSubStream,
    /// See [`Cluster::channel`].
    channels: Arc<str>,
}

impl fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscriber").finish_non_exhaustive()
    }
}

impl Subscriber {
    /// Starts receiving `room`'s lines; those published from the answer on arrive. (The hub
    /// subscribes to every room at once; one room at a time is for the tests, and for a Redis
    /// Cluster's sharded channels later.)
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) async fn subscribe(&mut self, room: &str) -> Result<(), ClusterError> {
        let keys = RoomKeys::new(room)?;
        within(
            CALL_TIMEOUT,
            "subscribing to a room",
            self.sink
                .subscribe(format!("{}{}", self.channels, keys.live)),
        )
        .await
    }

    /// Starts receiving the lines of every room: with one subscription made at the start, a
    /// node hears its own lines back even in a room it has just entered.
    pub(crate) async fn subscribe_all(&mut self) -> Result<(), ClusterError> {
        within(
            CALL_TIMEOUT,
            "subscribing to every room",
            self.sink
                .psubscribe(format!("{}room:*:live", self.channels)),
        )
        .await
    }

    /// Stops receiving `room`'s lines (some may still be on their way).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) async fn unsubscribe(&mut self, room: &str) -> Result<(), ClusterError> {
        let keys = RoomKeys::new(room)?;
        within(
            CALL_TIMEOUT,
            "unsubscribing from a room",
            self.sink
                .unsubscribe(format!("{}{}", self.channels, keys.live)),
        )
        .await
    }
}

impl Stream for Subscriber {
    type Item = Result<Heard, ClusterError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let channels = self.channels.clone();
        Pin::new(&mut self.messages)
            .poll_next(cx)
            .map(|message| message.map(|message| heard(&channels, &message)))
    }
}

/// Reads a message from a room's channel: `<seq>:<epoch>:<payload>` on
/// `chat:room:{#name}:live`.
fn heard(channels: &str, message: &redis::Msg) -> Result<Heard, ClusterError> {
    read_heard(
        channels,
        message.get_channel_name(),
        message.get_payload_bytes(),
    )
}

/// Reads a message from the channel `channel` of a cluster whose channels start with
/// `channels` (see [`Cluster::channel`]).
fn read_heard(channels: &str, channel: &str, bytes: &[u8]) -> Result<Heard, ClusterError> {
    let malformed = |reason: String| ClusterError::Malformed {
        from: format!("channel {channel:?}"),
        reason,
    };
    let room = channel
        .strip_prefix(channels)
        .and_then(|rest| rest.strip_prefix("room:{"))
        .and_then(|rest| rest.strip_suffix("}:live"))
        // A room's key (see `crate::name_key`), which need not be a valid name itself (the
        // key of a Cyrillic name may mix in Latin look-alikes), but is its own key.
        .filter(|room| room.starts_with('#') && room.len() > 1 && crate::name_key(room) == *room)
        .ok_or_else(|| malformed("not a room's channel".to_owned()))?;
    let (position, line) = read_placed(bytes).map_err(malformed)?;
    Ok(Heard {
        room: crate::name_key(room),
        position,
        line,
    })
}

/// Reads `<seq>:<epoch>:<payload>`: a room line (or topic) and its place in the room's order,
/// as a room's channel carries it and its meta hash keeps the topic.
fn read_placed(bytes: &[u8]) -> Result<(Position, RemoteLine), String> {
    let mut parts = bytes.splitn(3, |&byte| byte == b':');
    let (Some(seq), Some(epoch), Some(payload)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("not <seq>:<epoch>:<payload>".to_owned());
    };
    let seq = std::str::from_utf8(seq)
        .ok()
        .and_then(|seq| seq.parse::<u64>().ok())
        .filter(|&seq| seq >= 1)
        .ok_or_else(|| "the sequence number is not a number from 1".to_owned())?;
    let epoch = std::str::from_utf8(epoch)
        .ok()
        .filter(|epoch| {
            !epoch.is_empty()
                && epoch.len() <= MAX_EPOCH_BYTES
                && epoch.bytes().all(|byte| byte.is_ascii_alphanumeric())
        })
        .ok_or_else(|| format!("the epoch is not 1 to {MAX_EPOCH_BYTES} letters and digits"))?;
    let line = RemoteLine::decode(payload)?;
    let position = Position {
        seq,
        epoch: epoch.to_owned(),
    };
    Ok((position, line))
}

/// The room script's last argument: whether the line is a topic, to be kept in the room's
/// meta hash.
fn is_topic(line: &RemoteLine) -> &'static str {
    if line.kind == Kind::Topic { "1" } else { "0" }
}

/// A stream entry as XRANGE gives it: the id, and the fields `[name, value, name, value, …]`.
type RawEntry = (String, Vec<Vec<u8>>);

/// The value of field `d` of a stream entry's fields `[name, value, name, value, …]`.
fn stream_payload(fields: &[Vec<u8>]) -> Option<&[u8]> {
    fields
        .chunks_exact(2)
        .find(|pair| pair[0] == b"d")
        .map(|pair| pair[1].as_slice())
}

/// A room's keys and channel, named by its name's key ([`crate::name_key`]).
struct RoomKeys {
    meta: String,
    stream: String,
    live: String,
}

impl RoomKeys {
    /// For a room's name, or its key (which need not be a valid name itself: a Cyrillic
    /// name's key may mix in Latin look-alikes).
    fn new(room: &str) -> Result<Self, ClusterError> {
        let is_key = || {
            room.starts_with('#')
                && room.len() > 1
                && !room.contains(['{', '}'])
                && crate::name_key(room) == room
        };
        // A valid name has no brace, nor its key: the key is the whole hash tag.
        if RoomName::new(room).is_err() && !is_key() {
            return Err(ClusterError::Room(room.to_owned()));
        }
        let room = crate::name_key(room);
        Ok(Self {
            meta: format!("chat:room:{{{room}}}:meta"),
            stream: format!("chat:room:{{{room}}}:stream"),
            live: format!("room:{{{room}}}:live"),
        })
    }
}

/// A nick as the claims key it: its name's key, as the server compares nicks (see
/// [`crate::name_key`]).
fn fold_nick(nick: &str) -> Result<String, ClusterError> {
    Nickname::new(nick).map_err(|_| ClusterError::Nick(nick.to_owned()))?;
    Ok(crate::name_key(nick))
}

/// An operator's `--node` name: 1 to [`MAX_NODE_NAME_BYTES`] of ASCII letters, digits, `-`,
/// `_` and `.`.
pub(crate) fn check_node_name(name: &str) -> Result<(), String> {
    check_node_chars(name, MAX_NODE_NAME_BYTES)
}

/// A node id read from another node: a name and its suffix.
fn check_node_id(id: &str) -> Result<(), String> {
    check_node_chars(id, MAX_NODE_ID_BYTES)
}

fn check_node_chars(name: &str, most: usize) -> Result<(), String> {
    if name.is_empty() {
        return Err("it is empty".to_owned());
    }
    if name.len() > most {
        return Err(format!("more than {most} bytes"));
    }
    // Node ids end up in key names: no `:` or brace, which would blur the key layout.
    if let Some(bad) = name
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "{name:?} contains {bad:?}; use letters, digits, -, _ and ."
        ));
    }
    Ok(())
}

fn new_node_id(name: &str) -> String {
    format!("{name}-{:016x}", unique_number())
}

/// A new room's epoch: only needs to differ from the room's earlier ones.
fn new_epoch() -> String {
    format!("{:016x}", unique_number())
}

/// A number that differs from one call to the next, in this process and any other: std's
/// `RandomState` keys come from the system's random source (once per thread, then counted
/// up), and the process id and the time are mixed in. Unique, not secret.
fn unique_number() -> u64 {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    RandomState::new().hash_one((std::process::id(), now))
}

/// `url` as it may be shown: whatever stands between `://` and an `@` (a user name and a
/// password), and a query (which may carry a password), replaced by `…`.
pub(crate) fn url_for_display(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        // Not a URL at all: nothing of it is a known secret, but show no more than the start.
        return url.chars().take(64).collect();
    };
    let (rest, query) = match rest.split_once('?') {
        Some((rest, _)) => (rest, "?…"),
        None => (rest, ""),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let rest = match rest[..authority_end].rfind('@') {
        Some(at) => format!("…@{}", &rest[at + 1..]),
        None => rest.to_owned(),
    };
    format!("{scheme}://{rest}{query}")
}

/// Checks that `url` is a Redis URL this build can use, without connecting.
pub(crate) fn check_url(url: &str) -> Result<(), String> {
    redis::Client::open(url)
        .map(drop)
        .map_err(|error| error.to_string())
}

/// Where the client connects, for messages: host and port (or socket path), never the
/// password the URL may carry.
fn address_of(client: &redis::Client) -> String {
    client.get_connection_info().addr().to_string()
}

/// A failure to connect, as [`ClusterError::Connect`], naming the address.
fn connect_error(address: String, error: ClusterError) -> ClusterError {
    match error {
        ClusterError::Redis { error, .. } => ClusterError::Connect {
            address,
            error: Some(error),
        },
        ClusterError::Timeout { .. } => ClusterError::Connect {
            address,
            error: None,
        },
        other => other,
    }
}

/// Runs one Redis call, giving up after `limit`.
async fn within<T>(
    limit: Duration,
    doing: &'static str,
    call: impl Future<Output = RedisResult<T>>,
) -> Result<T, ClusterError> {
    futures_lite::future::or(
        async {
            call.await
                .map_err(|error| ClusterError::Redis { doing, error })
        },
        async {
            Timer::after(limit).await;
            Err(ClusterError::Timeout {
                doing,
                after: limit,
            })
        },
    )
    .await
}
