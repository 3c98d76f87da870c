//! What every node hears of besides the chat: accounts made (`accounts.rs`) and server bans
//! set or lifted (`bans.rs`), on two channels. A thread of its own, with blocking calls: it
//! subscribes, then reads everything there is (every account's key, every server ban), so
//! that nothing made meanwhile is missed, then passes each notice on to the hub as an
//! [`Event`]. When Redis goes, it tries again every [`RETRY`], and reads everything again once
//! subscribed; it stops when the hub does.

use std::time::Duration;

use redis::{Client, Commands};
use smol::channel::Sender;

use super::accounts::{self, ALL};
use super::moderation::{self, ModerationNews};
use super::{ACCOUNTS_CHANNEL, MODERATION_CHANNEL, channels_of};
use crate::event::Event;
use crate::log::{info, warn};

/// How long the listener waits before it tries again after losing Redis.
const RETRY: Duration = Duration::from_secs(1);

/// How long the listener waits for a notice before it asks Redis whether the connection lives.
const IDLE_CHECK: Duration = Duration::from_secs(15);

/// Starts the listener, on the Redis at `url`.
pub(crate) fn listen(url: &str, events: Sender<Event>) -> Result<(), String> {
    let client = Client::open(url).map_err(|error| format!("--cluster {error}"))?;
    std::thread::Builder::new()
        .name("cluster-news".into())
        .spawn(move || run(&client, &events))
        .map(drop)
        .map_err(|error| format!("cluster news thread: {error}"))
}

fn run(client: &Client, events: &Sender<Event>) {
    let mut failing = false;
    loop {
        match listen_once(client, events, &mut failing) {
            // The hub has gone: the server is stopping.
            Ok(()) => return,
            Err(error) => {
                if !failing {
                    warn!(
                        "cluster: news of accounts and server bans from other nodes stopped \
                         ({error}); trying again every {} s",
                        RETRY.as_secs()
                    );
                }
                failing = true;
            }
        }
        std::thread::sleep(RETRY);
        if events.is_closed() {
            return;
        }
    }
}

/// Subscribes, reads everything, then passes notices on until the connection fails (an error)
/// or the hub goes (`Ok`). `failing`: the last attempt failed, and was logged.
fn listen_once(client: &Client, events: &Sender<Event>, failing: &mut bool) -> Result<(), String> {
    let prefix = channels_of(client);
    let (accounts, bans) = (
        format!("{prefix}{ACCOUNTS_CHANNEL}"),
        format!("{prefix}{MODERATION_CHANNEL}"),
    );
    let mut subscribed = accounts::open(client)?;
    // A quiet connection is asked whether it is alive every IDLE_CHECK: one that went without
    // a word (its host gone, a partition) would otherwise be waited on for ever.
    subscribed
        .set_read_timeout(Some(IDLE_CHECK))
        .map_err(|error| error.to_string())?;
    let mut news = subscribed.as_pubsub();
    news.subscribe(&[&accounts, &bans])
        .map_err(|error| error.to_string())?;
    let mut reader = accounts::open(client)?;
    let keys: Vec<String> = reader.hkeys(ALL).map_err(|error| error.to_string())?;
    let now = chat_core::Instant::from_millis(accounts::now_millis().max(0) as u64);
    let all_bans = moderation::read_all(&mut reader, now)?;
    drop(reader);
    info!(
        "cluster: {} account(s) and {} server ban change(s) in the cluster; listening for more",
        keys.len(),
        all_bans.len()
    );
    if std::mem::take(failing) {
        info!("cluster: news of accounts and server bans from other nodes comes again");
    }
    if events
        .send_blocking(Event::AccountsRegistered(keys))
        .is_err()
        || events
            .send_blocking(Event::Moderation(Box::new(ModerationNews::All(all_bans))))
            .is_err()
    {
        return Ok(());
    }
    loop {
        let message = match news.get_message() {
            Ok(message) => message,
            Err(error) if error.is_timeout() => {
                news.ping::<()>()
                    .map_err(|error| format!("no answer to a ping: {error}"))?;
                continue;
            }
            Err(error) => return Err(error.to_string()),
        };
        let event = if message.get_channel_name() == accounts {
            match message.get_payload::<String>() {
                Ok(key) => Event::AccountsRegistered(vec![key]),
                Err(_) => {
                    warn!("cluster: a notice that is not text on {accounts}: ignored");
                    continue;
                }
            }
        } else {
            match moderation::decode(message.get_payload_bytes()) {
                Ok(numbered) => Event::Moderation(Box::new(ModerationNews::Changed(numbered))),
                Err(error) => {
                    warn!("cluster: a notice on {bans} that is not a change ({error}): ignored");
                    continue;
                }
            }
        };
        if events.send_blocking(event).is_err() {
            return Ok(());
        }
    }
}
