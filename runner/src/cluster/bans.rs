//! Server-wide bans shared by every node of a cluster: a ban set or lifted by a server operator
//! on one node holds on all of them.
//!
//! - `chat:bans:{bans}:server`, a hash: each ban's mask, lowered (masks are compared ignoring
//!   case), to `{"mask", "by", "at", "until", "reason"}` (times in Unix milliseconds, `until`
//!   `null` for a ban until lifted). What a node starting, or whose listener connects again,
//!   reads and sets (`news.rs`); a ban that has lapsed is dropped from it then.
//! - The channel `chat:bans` (with the database's prefix): each change as it is made,
//!   `{"node", "op": "set" | "lift", ...}`; every other node hands it to its core
//!   (`Server::handle_server_ban`) and its store.
//!
//! A node's own changes go to Redis one at a time, in the order made, from a queue of at most
//! [`QUEUE`] ([`BanSharer`]); each is tried [`TRIES`] times, a second apart. One that could
//! not be shared holds on its node only, and the log says so.
//!
//! **One outcome on every node.** Every node hears the changes in Redis's order, its own among
//! them. A node applies its own change at once, so a change from elsewhere heard while one of
//! its own on the same mask is still on its way was ordered before its own in Redis, and is
//! overridden by it on every node: it is skipped here ([`BanOrder`]). Otherwise two operators
//! banning and lifting one mask at once on two nodes could leave each node with the other's
//! choice.
//!
//! Bans are set on every node but lifted only by news: a node that missed a lift (its listener
//! was away) keeps the ban until it is lifted again there. A missed ban would let someone in;
//! a missed lift keeps them out a while longer, the safer of the two.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use chat_core::Instant;
use redis::Commands;
use serde_json::{Value as Json, json};
use smol::channel::{Receiver, Sender, TrySendError};
use smol::{LocalExecutor, Timer};

use super::{CALL_TIMEOUT, Cluster, ClusterError, within};
use crate::event::Event;
use crate::log::{debug, info, warn};
use crate::store::{Moderation, StoredBan};

/// The hash of every server ban.
pub(crate) const BANS: &str = "chat:bans:{bans}:server";

/// The most changes waiting to be shared; past it a change holds on its node only (logged).
pub(crate) const QUEUE: usize = 256;

/// How often a change is tried before it is given up.
const TRIES: usize = 3;

/// The hash field of the ban on `mask`.
fn field(mask: &str) -> String {
    mask.to_lowercase()
}

/// A ban set, as kept in the hash.
fn ban_value(ban: &StoredBan, reason: &str) -> Json {
    json!({
        "mask": ban.mask,
        "by": ban.by,
        "at": ban.at.as_millis(),
        "until": ban.until.map(Instant::as_millis),
        "reason": reason,
    })
}

/// The change of `payload` (a channel's message), and the node that made it.
pub(crate) fn decode_change(payload: &[u8]) -> Result<(String, Moderation), String> {
    let value: Json =
        serde_json::from_slice(payload).map_err(|error| format!("not JSON: {error}"))?;
    let node = text(&value, "node")?;
    let change = match text(&value, "op")?.as_str() {
        "set" => decode_ban(&value)?,
        "lift" => Moderation::ServerUnban {
            mask: text(&value, "mask")?,
        },
        other => return Err(format!("no such change {other:?}")),
    };
    Ok((node, change))
}

/// A ban set, from its JSON (the hash's value, or a channel's message).
pub(crate) fn decode_ban(value: &Json) -> Result<Moderation, String> {
    let millis = |name: &str| value.get(name).and_then(Json::as_u64);
    Ok(Moderation::ServerBan {
        ban: StoredBan {
            mask: text(value, "mask")?,
            by: text(value, "by")?,
            at: Instant::from_millis(millis("at").ok_or("no at")?),
            until: millis("until").map(Instant::from_millis),
        },
        reason: text(value, "reason")?,
    })
}

fn text(value: &Json, name: &str) -> Result<String, String> {
    value
        .get(name)
        .and_then(Json::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("no {name}"))
}

/// Every server ban in Redis that holds at `now`; those that lapsed are dropped from it.
pub(crate) fn read_all(
    redis: &mut redis::Connection,
    now: Instant,
) -> Result<Vec<Moderation>, String> {
    let kept: Vec<(String, String)> = redis.hgetall(BANS).map_err(|error| error.to_string())?;
    let mut bans = Vec::new();
    for (field, value) in kept {
        let ban = serde_json::from_str(&value)
            .map_err(|error| error.to_string())
            .and_then(|value| decode_ban(&value));
        match ban {
            Ok(Moderation::ServerBan { ban, .. })
                if ban.until.is_some_and(|until| until <= now) =>
            {
                let _: Result<i64, _> = redis.hdel(BANS, &field);
            }
            Ok(ban) => bans.push(ban),
            Err(error) => {
                warn!("cluster: the server ban {field:?} in Redis is not one ({error}); ignored");
            }
        }
    }
    Ok(bans)
}

impl Cluster {
    /// Keeps `change` (a server ban set or lifted here) in Redis and tells the other nodes,
    /// in one atomic call.
    pub(crate) async fn share_server_ban(&self, change: &Moderation) -> Result<(), ClusterError> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        let message = match change {
            Moderation::ServerBan { ban, reason } => {
                let value = ban_value(ban, reason);
                pipe.hset(BANS, field(&ban.mask), value.to_string())
                    .ignore();
                let mut message = value;
                message["op"] = "set".into();
                message
            }
            Moderation::ServerUnban { mask } => {
                pipe.hdel(BANS, field(mask)).ignore();
                json!({"op": "lift", "mask": mask})
            }
            _ => return Ok(()),
        };
        let mut message = message;
        message["node"] = self.node_id().into();
        pipe.publish(self.channel(super::news::BANS_CHANNEL), message.to_string())
            .ignore();
        let mut commands = self.commands.clone();
        within(
            CALL_TIMEOUT,
            "sharing a server ban",
            pipe.query_async::<()>(&mut commands),
        )
        .await
    }
}

/// What the hub hears of server bans.
#[derive(Debug)]
pub(crate) enum BanNews {
    /// Every ban in Redis, read when the listener (re)connected.
    All(Vec<Moderation>),
    /// A change as published, by this node (`own`) or another.
    Changed { own: bool, change: Moderation },
    /// A change of this node's on this mask could not be shared: no echo of it will come.
    Unshared(String),
}

/// The mask a server ban change is about, as compared (lowered).
fn mask_of(change: &Moderation) -> Option<String> {
    match change {
        Moderation::ServerBan { ban, .. } => Some(field(&ban.mask)),
        Moderation::ServerUnban { mask } => Some(field(mask)),
        _ => None,
    }
}

/// Which changes heard to apply here, so that every node ends with the outcome of the last
/// change in Redis's order (see the module docs): the node's own changes on each mask that
/// are still on their way.
#[derive(Debug, Default)]
pub(crate) struct BanOrder {
    on_their_way: HashMap<String, u32>,
}

impl BanOrder {
    /// This node applied `change` and sends it.
    pub(crate) fn sent(&mut self, change: &Moderation) {
        if let Some(mask) = mask_of(change) {
            *self.on_their_way.entry(mask).or_default() += 1;
        }
    }

    /// What of `news` the core is to be told, in order.
    pub(crate) fn heard(&mut self, news: BanNews) -> Vec<Moderation> {
        match news {
            BanNews::All(bans) => {
                // Read after subscribing: whatever was on its way is in it, or lost.
                self.on_their_way.clear();
                bans
            }
            BanNews::Changed { own: true, change } => {
                if let Some(mask) = mask_of(&change) {
                    self.arrived(&mask);
                }
                Vec::new()
            }
            BanNews::Changed { own: false, change } => match mask_of(&change) {
                Some(mask) if self.on_their_way.contains_key(&mask) => {
                    debug!(
                        "cluster: a change of the server ban on {mask} overridden by this node's"
                    );
                    Vec::new()
                }
                _ => vec![change],
            },
            BanNews::Unshared(mask) => {
                self.arrived(&field(&mask));
                Vec::new()
            }
        }
    }

    fn arrived(&mut self, mask: &str) {
        if let Some(count) = self.on_their_way.get_mut(mask) {
            *count -= 1;
            if *count == 0 {
                self.on_their_way.remove(mask);
            }
        }
    }
}

/// The hub's side: the node's own server ban changes, shared in order by a task of their own.
#[derive(Debug)]
pub(crate) struct BanSharer {
    queue: Sender<Moderation>,
    order: BanOrder,
}

impl BanSharer {
    /// Starts the task on `executor`; it tells the hub on `events` of a change it gave up.
    pub(crate) fn start(
        cluster: Cluster,
        executor: &Rc<LocalExecutor<'static>>,
        events: Sender<Event>,
    ) -> Self {
        let (queue, changes) = smol::channel::bounded(QUEUE);
        executor.spawn(share(cluster, changes, events)).detach();
        Self {
            queue,
            order: BanOrder::default(),
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
    pub(crate) fn heard(&mut self, news: BanNews) -> Vec<Moderation> {
        self.order.heard(news)
    }
}

async fn share(cluster: Cluster, changes: Receiver<Moderation>, events: Sender<Event>) {
    while let Ok(change) = changes.recv().await {
        let mut tries = 0;
        loop {
            tries += 1;
            match cluster.share_server_ban(&change).await {
                Ok(()) => {
                    info!("cluster: {} shared with the other nodes", describe(&change));
                    break;
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
                         set it again once Redis answers",
                        describe(&change)
                    );
                    if let Some(mask) = mask_of(&change) {
                        let _ = events.try_send(Event::ServerBans(BanNews::Unshared(mask)));
                    }
                    break;
                }
            }
        }
    }
}

/// `the server ban on MASK` or `lifting the server ban on MASK`, for the log.
fn describe(change: &Moderation) -> String {
    match change {
        Moderation::ServerBan { ban, .. } => format!("the server ban on {}", ban.mask),
        Moderation::ServerUnban { mask } => format!("lifting the server ban on {mask}"),
        _ => "a change".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_reads_back_as_sent() {
        let ban = StoredBan {
            mask: "198.51.100.0/24".into(),
            by: "root".into(),
            at: Instant::from_millis(1_700_000_000_000),
            until: Some(Instant::from_millis(1_700_000_060_000)),
        };
        let mut message = ban_value(&ban, "botnet");
        message["op"] = "set".into();
        message["node"] = "a-1".into();
        let (node, change) = decode_change(message.to_string().as_bytes()).unwrap();
        assert_eq!(node, "a-1");
        assert_eq!(
            change,
            Moderation::ServerBan {
                ban,
                reason: "botnet".into()
            }
        );
        let lift = json!({"op": "lift", "mask": "EVE", "node": "b-2"}).to_string();
        assert_eq!(
            decode_change(lift.as_bytes()).unwrap().1,
            Moderation::ServerUnban { mask: "EVE".into() }
        );
        assert!(decode_change(b"{\"op\": \"drop\", \"node\": \"a\"}").is_err());
        assert!(decode_change(b"not json").is_err());
        assert_eq!(field("Eve!*@*"), "eve!*@*");
    }

    fn ban(mask: &str) -> Moderation {
        Moderation::ServerBan {
            ban: StoredBan {
                mask: mask.into(),
                by: "root".into(),
                at: Instant::from_millis(1),
                until: None,
            },
            reason: String::new(),
        }
    }

    fn lift(mask: &str) -> Moderation {
        Moderation::ServerUnban { mask: mask.into() }
    }

    #[test]
    fn a_change_from_elsewhere_ordered_before_one_of_ours_is_skipped() {
        let mut order = BanOrder::default();
        // Banned here; another node's lift comes before our ban's echo: Redis ordered it
        // first, and our ban overrides it everywhere.
        order.sent(&ban("Eve"));
        let heard =
            |order: &mut BanOrder, own, change| order.heard(BanNews::Changed { own, change });
        assert!(heard(&mut order, false, lift("EVE")).is_empty());
        assert!(
            heard(&mut order, true, ban("Eve")).is_empty(),
            "ours: applied already"
        );
        // After our echo, the others' changes are later ones.
        assert_eq!(heard(&mut order, false, lift("eve")), [lift("eve")]);
        // Other masks are not held back.
        order.sent(&ban("bob"));
        assert_eq!(heard(&mut order, false, ban("carol")), [ban("carol")]);
        // A change of ours that could not be shared has no echo coming.
        order.heard(BanNews::Unshared("BOB".into()));
        assert_eq!(heard(&mut order, false, lift("bob")), [lift("bob")]);
        // Reading everything again starts afresh.
        order.sent(&ban("dan"));
        assert_eq!(order.heard(BanNews::All(vec![ban("dan")])), [ban("dan")]);
        assert_eq!(heard(&mut order, false, lift("dan")), [lift("dan")]);
    }
}
