//! What keeps order, shared by every node of a cluster: server-wide bans, and the order of
//! registered rooms (founder, modes, key, limit, bans). A change made by an operator on one
//! node holds on all of them. (An unregistered room's modes and bans are told to the other
//! nodes on the people channel, see `people.rs`, and kept by none: they last while the room
//! has people, and nodes cannot tell when such a room has emptied everywhere.)
//!
//! - `chat:moderation:{moderation}:changes`, a hash: each thing changed ([`key_of`]) to its
//!   last change, as JSON with `"node"`, `"op"` and the change's fields: `set` and `lift` for a
//!   server ban (its key: its mask with every letter lowered one by one, as the core compares
//!   masks; `$a:` and the account's name key), `register` (a `null` founder: unregistered),
//!   `modes`, `room-ban` and `room-unban` for a room (`#room founder`, `#room modes`,
//!   `#room ban MASK`, the room by its name key, the mask in ASCII lower case: a room's bans
//!   are one if their masks are but for ASCII case, as the core has it); `room-list` and
//!   `room-unlist`, with `"list"` the mode letter `e` or `I`, for its ban exceptions and invite
//!   exceptions (`#room ban-e MASK`, `#room ban-I MASK`: ops of their own, so that a node too
//!   old to know them refuses them rather than taking them for bans). Times are Unix milliseconds; `"version"` the
//!   change's number. A lift or an unregistration is kept [`LIFTS_KEPT`], so that a node that
//!   missed it (its listener was away, or it was stopped) makes it when it reads the hash; a
//!   ban that lapsed, or a lift older than that, is dropped when a node reads the hash (only if
//!   it is still the same change).
//! - `chat:moderation:{moderation}:version`: the number of the last change. Each change takes
//!   the next in one script with its hash field and its notice, so numbers follow Redis's
//!   order.
//! - The channel `chat:moderation` (with the database's prefix): each change as it is kept.
//!
//! A node's own changes go to Redis one at a time, in the order made, from a queue of at most
//! [`QUEUE`] ([`ModerationSharer`]); each is tried [`TRIES`] times, a second apart. One that
//! could not be shared holds on its node only, and the log says so.
//!
//! **One outcome on every node** ([`ModerationOrder`]). A node applies a change heard (or read
//! in the hash) only if its number is above the last it applied or made for that thing, so a
//! late or repeated notice changes nothing. A node applies its own change at once, before it
//! has a number: a change from elsewhere heard meanwhile on the same thing was numbered before
//! it, and is overridden by it everywhere, so it is skipped. Two operators banning and lifting
//! one mask (or setting a room's modes) at once on two nodes thus leave every node with the
//! later of the two in Redis's order. A room's modes, key and limit are one thing: of two
//! changes at once, the later is kept whole.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::LazyLock;
use std::time::Duration;

use chat_core::{BanList, Instant};
use redis::{Commands, Script};
use serde_json::{Value as Json, json};
use smol::channel::{Receiver, Sender, TrySendError};
use smol::{LocalExecutor, Timer};

use super::{CALL_TIMEOUT, Cluster, ClusterError, within};
use crate::event::Event;
use crate::log::{debug, info, warn};
use crate::store::{Moderation, StoredBan};

/// The hash of every thing's last change.
pub(crate) const CHANGES: &str = "chat:moderation:{moderation}:changes";
/// The number of the last change.
const VERSION: &str = "chat:moderation:{moderation}:version";

/// The most changes waiting to be shared; past it a change holds on its node only (logged).
pub(crate) const QUEUE: usize = 256;

/// How often a change is tried before it is given up.
const TRIES: usize = 3;

/// How long a lift is kept in the hash, for nodes that missed it.
pub(crate) const LIFTS_KEPT: Duration = Duration::from_secs(7 * 24 * 3600);

/// The most keys whose last number a node remembers; past it the lowest are forgotten (a
/// notice about one of those, late by then, would be applied again: harmless, it is older
/// than anything about the key since).
const MAX_REMEMBERED: usize = 4096;

/// Numbers a change, keeps it in the hash and publishes it: KEYS = the hash, the counter;
/// ARGV = the field, the change's JSON without its number (an object), the channel. Returns
/// the number.
static SHARE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "local version = redis.call('INCR', KEYS[2]) \
         local value = string.sub(ARGV[2], 1, -2) .. ',\"version\":' .. version .. '}' \
         redis.call('HSET', KEYS[1], ARGV[1], value) \
         redis.call('PUBLISH', ARGV[3], value) \
         return version",
    )
});

/// Drops a field only if it still holds the value read: KEYS = the hash; ARGV = field, value.
static DROP_IF_SAME: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then \
         return redis.call('HDEL', KEYS[1], ARGV[1]) end return 0",
    )
});

/// The key of the ban on `mask`: what the core counts as one ban is one key (masks compared
/// letter by letter ignoring case, accounts by their name key).
pub(crate) fn key(mask: &str) -> String {
    match mask.strip_prefix("$a:") {
        Some(account) => format!("$a:{}", crate::name_key(account)),
        None => mask.chars().flat_map(char::to_lowercase).collect(),
    }
}

/// The thing `change` is about, as the hash's field.
pub(crate) fn key_of(change: &Moderation) -> Option<String> {
    let room = |room: &str| crate::name_key(room);
    Some(match change {
        Moderation::ServerBan { ban, .. } => key(&ban.mask),
        Moderation::ServerUnban { mask } => key(mask),
        Moderation::Founder { room: name, .. } => format!("{} founder", room(name)),
        Moderation::Modes { room: name, .. } => format!("{} modes", room(name)),
        // A room's bans are one if their masks are but for ASCII case, as the core has it.
        Moderation::Ban {
            room: name,
            list,
            ban,
        } => format!(
            "{} {} {}",
            room(name),
            list_field(*list),
            ban.mask.to_ascii_lowercase()
        ),
        Moderation::Unban {
            room: name,
            list,
            mask,
        } => format!(
            "{} {} {}",
            room(name),
            list_field(*list),
            mask.to_ascii_lowercase()
        ),
        Moderation::Removed { .. } => return None,
    })
}

/// How a room's list is named in its hash fields: `ban` (as before there were others),
/// `ban-e`, `ban-I`.
fn list_field(list: BanList) -> String {
    match list {
        BanList::Bans => "ban".to_owned(),
        list => format!("ban-{}", list.letter()),
    }
}

/// A change as published and kept, with its number (0 for one from before numbers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Numbered {
    pub(crate) node: String,
    pub(crate) change: Moderation,
    pub(crate) version: u64,
}

/// The JSON of `change` by `node`, without its number.
fn encode(change: &Moderation, node: &str) -> Option<Json> {
    let now = crate::cluster::now_millis().max(0);
    Some(match change {
        Moderation::ServerBan { ban, reason } => json!({
            "node": node,
            "op": "set",
            "mask": ban.mask,
            "by": ban.by,
            "at": ban.at.as_millis(),
            "until": ban.until.map(Instant::as_millis),
            "reason": reason,
        }),
        Moderation::ServerUnban { mask } => json!({
            "node": node, "op": "lift", "mask": mask, "at": now,
        }),
        Moderation::Founder { room, founder } => json!({
            "node": node, "op": "register", "room": room, "founder": founder, "at": now,
        }),
        Moderation::Modes {
            room,
            modes,
            key,
            limit,
        } => json!({
            "node": node, "op": "modes", "room": room, "modes": modes, "key": key,
            "limit": limit,
        }),
        Moderation::Ban {
            room,
            list: BanList::Bans,
            ban,
        } => json!({
            "node": node,
            "op": "room-ban",
            "room": room,
            "mask": ban.mask,
            "by": ban.by,
            "at": ban.at.as_millis(),
            "until": ban.until.map(Instant::as_millis),
        }),
        Moderation::Ban { room, list, ban } => json!({
            "node": node,
            "op": "room-list",
            "list": list.letter().to_string(),
            "room": room,
            "mask": ban.mask,
            "by": ban.by,
            "at": ban.at.as_millis(),
            "until": ban.until.map(Instant::as_millis),
        }),
        Moderation::Unban {
            room,
            list: BanList::Bans,
            mask,
        } => json!({
            "node": node, "op": "room-unban", "room": room, "mask": mask, "at": now,
        }),
        Moderation::Unban { room, list, mask } => json!({
            "node": node, "op": "room-unlist", "list": list.letter().to_string(), "room": room,
            "mask": mask, "at": now,
        }),
        Moderation::Removed { .. } => return None,
    })
}

/// A change from its JSON (a notice, or the hash's value).
pub(crate) fn decode(payload: &[u8]) -> Result<Numbered, String> {
    let value: Json =
        serde_json::from_slice(payload).map_err(|error| format!("not JSON: {error}"))?;
    decode_value(&value)
}

/// A change of an unregistered room's order (its modes, or a ban) by `node`, as the people
/// channel carries it; `None` for any other change.
pub(crate) fn encode_room_change(change: &Moderation, node: &str) -> Option<Json> {
    change.order_room()?;
    encode(change, node)
}

/// A change of a room's order from the people channel: why not, if it is not one.
pub(crate) fn decode_room_change(value: &Json) -> Result<Moderation, String> {
    let change = decode_value(value)?.change;
    match change.order_room() {
        Some(_) => Ok(change),
        None => Err(format!("not a change of a room's order: {change:?}")),
    }
}

/// A change from its JSON, parsed.
fn decode_value(value: &Json) -> Result<Numbered, String> {
    let millis = |name: &str| value.get(name).and_then(Json::as_u64);
    let ban = || -> Result<StoredBan, String> {
        Ok(StoredBan {
            mask: text(value, "mask")?,
            by: text(value, "by")?,
            at: Instant::from_millis(millis("at").ok_or("no at")?),
            until: millis("until").map(Instant::from_millis),
        })
    };
    // Only the exceptions' ops name a list: `b` there would be a ban under another op.
    let list = || -> Result<BanList, String> {
        let letter = text(value, "list")?;
        crate::store::list_of_letter(&letter)
            .filter(|&list| list != BanList::Bans)
            .ok_or_else(|| format!("no such list {letter:?}"))
    };
    let optional = |name: &str| match value.get(name) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(format!("{name} is {other}")),
    };
    let change = match text(value, "op")?.as_str() {
        "set" => Moderation::ServerBan {
            ban: ban()?,
            reason: text(value, "reason")?,
        },
        "lift" => Moderation::ServerUnban {
            mask: text(value, "mask")?,
        },
        "register" => Moderation::Founder {
            room: text(value, "room")?,
            founder: optional("founder")?,
        },
        "modes" => Moderation::Modes {
            room: text(value, "room")?,
            modes: text(value, "modes")?,
            key: optional("key")?,
            limit: match value.get("limit") {
                None | Some(Json::Null) => None,
                Some(limit) => Some(
                    limit
                        .as_u64()
                        .and_then(|limit| u32::try_from(limit).ok())
                        .ok_or_else(|| format!("limit is {limit}"))?,
                ),
            },
        },
        "room-ban" => Moderation::Ban {
            room: text(value, "room")?,
            list: BanList::Bans,
            ban: ban()?,
        },
        "room-unban" => Moderation::Unban {
            room: text(value, "room")?,
            list: BanList::Bans,
            mask: text(value, "mask")?,
        },
        "room-list" => Moderation::Ban {
            room: text(value, "room")?,
            list: list()?,
            ban: ban()?,
        },
        "room-unlist" => Moderation::Unban {
            room: text(value, "room")?,
            list: list()?,
            mask: text(value, "mask")?,
        },
        other => return Err(format!("no such change {other:?}")),
    };
    Ok(Numbered {
        node: text(value, "node")?,
        change,
        version: millis("version").unwrap_or(0),
    })
}

fn text(value: &Json, name: &str) -> Result<String, String> {
    value
        .get(name)
        .and_then(Json::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("no {name}"))
}

/// Every ban and lift in Redis that still counts at `now` (a ban that has not lapsed, a lift
/// younger than [`LIFTS_KEPT`]); the others are dropped from it.
pub(crate) fn read_all(
    redis: &mut redis::Connection,
    now: Instant,
) -> Result<Vec<Numbered>, String> {
    let kept: Vec<(String, String)> = redis.hgetall(CHANGES).map_err(|error| error.to_string())?;
    let mut changes = Vec::new();
    let lifts_kept = LIFTS_KEPT.as_millis() as u64;
    for (field, value) in kept {
        let numbered = match decode(value.as_bytes()) {
            Ok(numbered) => numbered,
            Err(error) => {
                warn!("cluster: the server ban {field:?} in Redis is not one ({error}); ignored");
                continue;
            }
        };
        // A lift's time is in its JSON; read again here, as `decode` does not keep it.
        let lifted_long_ago = || {
            serde_json::from_str::<Json>(&value)
                .ok()
                .and_then(|value| value.get("at").and_then(Json::as_u64))
                .is_some_and(|at| at.saturating_add(lifts_kept) <= now.as_millis())
        };
        let over = match &numbered.change {
            Moderation::ServerBan { ban, .. } | Moderation::Ban { ban, .. } => {
                ban.until.is_some_and(|until| until <= now)
            }
            Moderation::ServerUnban { .. }
            | Moderation::Unban { .. }
            | Moderation::Founder { founder: None, .. } => lifted_long_ago(),
            Moderation::Founder { .. } | Moderation::Modes { .. } | Moderation::Removed { .. } => {
                false
            }
        };
        if over {
            let dropped: Result<i64, _> = DROP_IF_SAME
                .key(CHANGES)
                .arg(&field)
                .arg(&value)
                .invoke(redis);
            if let Err(error) = dropped {
                debug!("cluster: an old server ban change in Redis stays: {error}");
            }
        } else {
            changes.push(numbered);
        }
    }
    changes.sort_by_key(|numbered| numbered.version);
    Ok(changes)
}

impl Cluster {
    /// Numbers `change` (a server ban set or lifted here), keeps it in Redis and tells every
    /// node, in one script; its number.
    pub(crate) async fn share_moderation(&self, change: &Moderation) -> Result<u64, ClusterError> {
        let Some(value) = encode(change, self.node_id()) else {
            return Ok(0);
        };
        let Some(field) = key_of(change) else {
            return Ok(0);
        };
        let mut commands = self.commands.clone();
        within(
            CALL_TIMEOUT,
            "sharing a change of order",
            SHARE
                .key(CHANGES)
                .key(VERSION)
                .arg(field)
                .arg(value.to_string())
                .arg(self.channel(super::MODERATION_CHANNEL))
                .invoke_async(&mut commands),
        )
        .await
    }
}

/// What the hub hears of server bans.
#[derive(Debug)]
pub(crate) enum ModerationNews {
    /// Every ban and recent lift in Redis, read when the listener (re)connected, in number
    /// order.
    All(Vec<Numbered>),
    /// A change as published, by any node.
    Changed(Numbered),
    /// One of this node's changes on the thing `key` ([`key_of`]) was numbered `Some`, or
    /// given up.
    Shared { key: String, version: Option<u64> },
}

/// Which changes heard to apply here, so that every node ends with the last change of each
/// ban in Redis's order (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct ModerationOrder {
    /// The highest number applied or made here, by key.
    last: HashMap<String, u64>,
    /// This node's changes not numbered yet, by key.
    unnumbered: HashMap<String, u32>,
}

impl ModerationOrder {
    /// This node applied `change` and sends it.
    pub(crate) fn sent(&mut self, change: &Moderation) {
        if let Some(key) = key_of(change) {
            *self.unnumbered.entry(key).or_default() += 1;
        }
    }

    /// What of `news` the core is to be told, in order.
    pub(crate) fn heard(&mut self, news: ModerationNews) -> Vec<Moderation> {
        match news {
            ModerationNews::All(changes) => changes
                .into_iter()
                .filter_map(|numbered| self.newer(numbered))
                .collect(),
            ModerationNews::Changed(numbered) => self.newer(numbered).into_iter().collect(),
            ModerationNews::Shared { key, version } => {
                if let Some(count) = self.unnumbered.get_mut(&key) {
                    *count -= 1;
                    if *count == 0 {
                        self.unnumbered.remove(&key);
                    }
                }
                if let Some(version) = version {
                    self.numbered(key, version);
                }
                Vec::new()
            }
        }
    }

    /// `numbered`'s change, if it is to be applied here.
    fn newer(&mut self, numbered: Numbered) -> Option<Moderation> {
        let key = key_of(&numbered.change)?;
        if self.unnumbered.contains_key(&key) {
            // Numbered before this node's own change, which overrides it everywhere.
            debug!("cluster: a change of {key} from elsewhere overridden by this node's");
            return None;
        }
        if self
            .last
            .get(&key)
            .is_some_and(|&last| numbered.version <= last)
        {
            return None;
        }
        self.numbered(key, numbered.version);
        Some(numbered.change)
    }

    fn numbered(&mut self, key: String, version: u64) {
        let last = self.last.entry(key).or_default();
        *last = (*last).max(version);
        if self.last.len() > MAX_REMEMBERED {
            let lowest = self
                .last
                .iter()
                .min_by_key(|(_, version)| **version)
                .map(|(key, _)| key.clone());
            if let Some(lowest) = lowest {
                self.last.remove(&lowest);
            }
        }
    }
}

/// The hub's side: the node's own server ban changes, shared in order by a task of their own.
#[derive(Debug)]
pub(crate) struct ModerationSharer {
    queue: Sender<Moderation>,
    order: ModerationOrder,
}

impl ModerationSharer {
    /// Starts the task on `executor`; it tells the hub on `events` of each change's number,
    /// or that it gave the change up.
    pub(crate) fn start(
        cluster: Cluster,
        executor: &Rc<LocalExecutor<'static>>,
        events: Sender<Event>,
    ) -> Self {
        let (queue, changes) = smol::channel::bounded(QUEUE);
        executor.spawn(share(cluster, changes, events)).detach();
        Self {
            queue,
            order: ModerationOrder::default(),
        }
    }

    /// Shares `change` (a server ban set or lifted here, applied already) with the other
    /// nodes.
    pub(crate) fn share(&mut self, change: Moderation) {
        let sent = change.clone();
        match self.queue.try_send(change) {
            Ok(()) => self.order.sent(&sent),
            Err(TrySendError::Full(change) | TrySendError::Closed(change)) => {
                warn!(
                    "cluster: {QUEUE} server ban changes wait to be shared already; {} holds on \
                     this node only",
                    describe(&change)
                );
            }
        }
    }

    /// What of `news` the core is to be told, in order.
    pub(crate) fn heard(&mut self, news: ModerationNews) -> Vec<Moderation> {
        self.order.heard(news)
    }
}

async fn share(cluster: Cluster, changes: Receiver<Moderation>, events: Sender<Event>) {
    while let Ok(change) = changes.recv().await {
        let mut tries = 0;
        let version = loop {
            tries += 1;
            match cluster.share_moderation(&change).await {
                Ok(version) => {
                    info!(
                        "cluster: {} shared with the other nodes (change {version})",
                        describe(&change)
                    );
                    break Some(version);
                }
                Err(error) if tries < TRIES => {
                    warn!(
                        "cluster: sharing {} failed ({error}); trying again",
                        describe(&change)
                    );
                    Timer::after(Duration::from_secs(1)).await;
                }
                Err(error) => {
                    warn!(
                        "cluster: {} holds on this node only: it could not be shared ({error}); \
                         lift the ban and set it again (or set and lift it) once Redis answers",
                        describe(&change)
                    );
                    break None;
                }
            }
        };
        let Some(key) = key_of(&change) else {
            continue;
        };
        // Waited for: a lost report would hold back the other nodes' changes of this thing.
        if events
            .send(Event::Moderation(Box::new(ModerationNews::Shared {
                key,
                version,
            })))
            .await
            .is_err()
        {
            return;
        }
    }
}

/// What `change` is, for the log: `the server ban on MASK`, `the modes of #room`, ...
pub(crate) fn describe(change: &Moderation) -> String {
    match change {
        Moderation::ServerBan { ban, .. } => format!("the server ban on {}", ban.mask),
        Moderation::ServerUnban { mask } => format!("lifting the server ban on {mask}"),
        Moderation::Founder {
            room,
            founder: Some(founder),
        } => format!("registering {room} to {founder}"),
        Moderation::Founder {
            room,
            founder: None,
        } => format!("unregistering {room}"),
        Moderation::Modes { room, .. } => format!("the modes of {room}"),
        Moderation::Ban { room, list, ban } => format!("the {list} on {} in {room}", ban.mask),
        Moderation::Unban { room, list, mask } => {
            format!("lifting the {list} on {mask} in {room}")
        }
        Moderation::Removed { room } => format!("removing {room}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ban(mask: &str) -> Moderation {
        Moderation::ServerBan {
            ban: StoredBan {
                mask: mask.into(),
                by: "root".into(),
                at: Instant::from_millis(1_700_000_000_000),
                until: Some(Instant::from_millis(1_700_000_060_000)),
            },
            reason: "botnet".into(),
        }
    }

    fn lift(mask: &str) -> Moderation {
        Moderation::ServerUnban { mask: mask.into() }
    }

    fn numbered(change: Moderation, version: u64) -> Numbered {
        Numbered {
            node: "b-1".into(),
            change,
            version,
        }
    }

    #[test]
    fn a_change_reads_back_as_sent() {
        let room_ban = Moderation::Ban {
            room: "#Den".into(),
            list: BanList::Bans,
            ban: StoredBan {
                mask: "$a:mallory".into(),
                by: "root".into(),
                at: Instant::from_millis(1),
                until: None,
            },
        };
        let changes = [
            ban("198.51.100.0/24"),
            lift("EVE!*@*"),
            Moderation::Founder {
                room: "#Den".into(),
                founder: Some("Ann".into()),
            },
            Moderation::Founder {
                room: "#Den".into(),
                founder: None,
            },
            Moderation::Modes {
                room: "#Den".into(),
                modes: "it".into(),
                key: Some("sesame".into()),
                limit: Some(10),
            },
            room_ban.clone(),
            Moderation::Unban {
                room: "#den".into(),
                list: BanList::Bans,
                mask: "$A:Mallory".into(),
            },
            Moderation::Ban {
                room: "#Den".into(),
                list: BanList::Exceptions,
                ban: StoredBan {
                    mask: "$a:mallory".into(),
                    by: "root".into(),
                    at: Instant::from_millis(1),
                    until: None,
                },
            },
            Moderation::Unban {
                room: "#den".into(),
                list: BanList::InviteExceptions,
                mask: "Bob!*@*".into(),
            },
        ];
        // A ban and an exception on one mask are two things.
        assert_ne!(key_of(&room_ban), key_of(&changes[7]));
        // A room's ban and its lift are one thing, whatever the case.
        assert_eq!(key_of(&room_ban), key_of(&changes[6]));
        assert_ne!(key_of(&changes[2]), key_of(&changes[4]));
        for change in changes {
            let mut value = encode(&change, "a-1").unwrap();
            value["version"] = 7.into();
            let read = decode(value.to_string().as_bytes()).unwrap();
            assert_eq!(
                read,
                Numbered {
                    node: "a-1".into(),
                    change,
                    version: 7
                }
            );
        }
        assert!(decode(b"{\"op\": \"drop\", \"node\": \"a\"}").is_err());
        assert!(decode(b"not json").is_err());
    }

    #[test]
    fn a_key_is_one_per_ban_as_the_core_counts_them() {
        assert_eq!(key("ΟΔΟΣ!*@*"), key("οδοσ!*@*"));
        assert_eq!(key("Eve!*@*"), "eve!*@*");
        assert_eq!(key("$a:Bob"), key("$a:BOB"));
        assert_ne!(key("eve!*@*"), key("$a:eve"));
    }

    #[test]
    fn every_node_ends_with_the_last_change_in_redis_order() {
        let mut order = ModerationOrder::default();
        let heard = |order: &mut ModerationOrder, change, version| {
            order.heard(ModerationNews::Changed(numbered(change, version)))
        };
        // Banned here; another node's lift, numbered 4 before our ban, is heard first: it is
        // overridden by ours everywhere.
        order.sent(&ban("Eve"));
        assert!(heard(&mut order, lift("EVE"), 4).is_empty());
        // Our ban's echo (5) may come before or after its report: nothing either way.
        assert!(heard(&mut order, ban("Eve"), 5).is_empty());
        order.heard(ModerationNews::Shared {
            key: key("Eve"),
            version: Some(5),
        });
        // Later changes are applied; late or repeated ones are not.
        assert_eq!(heard(&mut order, lift("eve"), 6), [lift("eve")]);
        assert!(heard(&mut order, lift("eve"), 6).is_empty());
        assert!(heard(&mut order, ban("eve"), 3).is_empty());
        // Reading everything again applies only what is newer, and lifts too.
        let all = vec![
            numbered(ban("carol"), 2),
            numbered(lift("eve"), 6),
            numbered(lift("dan"), 9),
        ];
        assert_eq!(
            order.heard(ModerationNews::All(all)),
            [ban("carol"), lift("dan")]
        );
        // A change of ours still unnumbered when everything is read again holds back the
        // hash's older change of the same ban.
        order.sent(&lift("carol"));
        assert!(
            order
                .heard(ModerationNews::All(vec![numbered(ban("carol"), 10)]))
                .is_empty()
        );
        // One given up no longer holds anything back.
        order.heard(ModerationNews::Shared {
            key: key("CAROL"),
            version: None,
        });
        assert_eq!(heard(&mut order, ban("carol"), 11), [ban("carol")]);
    }
}
