//! Accounts shared by every node of a cluster, kept in Redis: the accounts thread's place
//! (see `accounts.rs`) in cluster mode. Blocking calls on a connection of its own, since the
//! accounts thread is a plain thread that hashes between calls; each call is bounded by
//! [`CALL_TIMEOUT`], a connection attempt by [`CONNECT_TIMEOUT`].
//!
//! Keys (all with the `{accounts}` hash tag, so that they stay together on a Redis Cluster):
//! - `chat:accounts:{accounts}:all`, a hash: each account's key (`chat_core::NameKey`) to
//!   `{"name": as registered, "hash": the PHC string, "created": Unix ms}`. `HSETNX` makes an
//!   account, so two nodes registering one name at once make one account.
//! - `chat:accounts:{accounts}:failures:KEY`: wrong passwords for the account in a row, which
//!   lapses [`FAILURES_KEPT`] after the last: answers are slowed down per account whichever
//!   node is asked.
//!
//! A new account's key is published on the channel `chat:accounts` (with the database's
//! prefix, see `channels_of`), so that every node protects the nickname at once; a node reads
//! every key when it starts and each time its listener (`news.rs`) connects again, so a notice
//! missed while the listener was away is made up for.

use std::time::{Duration, SystemTime};

use redis::{Client, Commands, Connection};
use serde_json::json;

use super::{CALL_TIMEOUT, CONNECT_TIMEOUT, channels_of};
use crate::log::warn;

pub(crate) const ALL: &str = "chat:accounts:{accounts}:all";
const FAILURES: &str = "chat:accounts:{accounts}:failures:";
/// Names that may not be registered: each node's `--oper` names that have no account yet, to
/// the name of the node that lists them.
const RESERVED: &str = "chat:accounts:{accounts}:reserved";

/// How long a count of wrong passwords is kept after the last.
pub(crate) const FAILURES_KEPT: Duration = crate::accounts::FORGET_AFTER;

/// Changes a password only if the account's hash is still the one checked (`ARGV[2]`): a
/// password changed meanwhile on another node is not overwritten by one checked against the
/// old. KEYS = the accounts; ARGV = the key, the old hash, the new hash.
const CHANGE: &str = "local kept = redis.call('HGET', KEYS[1], ARGV[1]) \
     if not kept then return 0 end \
     local ok, account = pcall(cjson.decode, kept) \
     if not ok or account.hash ~= ARGV[2] then return 0 end \
     account.hash = ARGV[3] \
     redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(account)) return 1";

/// Makes an account unless one has its key, or a node reserved the name: 1 made, 0 taken,
/// -1 reserved. KEYS = the accounts, the reserved names; ARGV = the key, the account.
const MAKE: &str = "if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return -1 end \
     return redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])";

/// What became of a registration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Made {
    /// Made now.
    New,
    /// An account has the name already.
    Taken,
    /// A node lists the name as a server operator's, and it has no account yet: nobody may
    /// register it (so that nobody becomes an operator by registering it first).
    Reserved,
}

/// One account as kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Account {
    /// The name as registered.
    pub(crate) name: String,
    /// The password's Argon2id hash, in PHC form.
    pub(crate) hash: String,
    /// Unix time in milliseconds.
    pub(crate) created: i64,
}

impl Account {
    fn encode(&self) -> String {
        json!({"name": self.name, "hash": self.hash, "created": self.created}).to_string()
    }

    fn decode(text: &str) -> Result<Self, String> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|error| format!("not JSON: {error}"))?;
        let field = |name: &str| {
            value
                .get(name)
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("no {name}"))
        };
        Ok(Self {
            name: field("name")?,
            hash: field("hash")?,
            created: value
                .get("created")
                .and_then(serde_json::Value::as_i64)
                .unwrap_or(0),
        })
    }
}

/// The accounts in Redis, for the accounts thread: connects when first needed and again
/// after an error.
pub(crate) struct SharedAccounts {
    client: Client,
    connection: Option<Connection>,
    channel: String,
}

impl SharedAccounts {
    /// Reaches the Redis at `url` (checked already by the cluster's start).
    pub(crate) fn connect(url: &str) -> Result<Self, String> {
        let client = Client::open(url).map_err(|error| format!("--cluster {error}"))?;
        let channel = format!("{}{}", channels_of(&client), super::ACCOUNTS_CHANNEL);
        let mut shared = Self {
            client,
            connection: None,
            channel,
        };
        shared.call(|_| Ok(()))?;
        Ok(shared)
    }

    /// Runs `call` on the connection, made first if there is none; an error drops it.
    fn call<T>(
        &mut self,
        call: impl FnOnce(&mut Connection) -> redis::RedisResult<T>,
    ) -> Result<T, String> {
        let connection = match &mut self.connection {
            Some(connection) => connection,
            None => self.connection.insert(open(&self.client)?),
        };
        call(connection).map_err(|error| {
            self.connection = None;
            format!("Redis: {error}")
        })
    }

    /// The account whose key is `key`.
    pub(crate) fn get(&mut self, key: &str) -> Result<Option<Account>, String> {
        let text: Option<String> = self.call(|redis| redis.hget(ALL, key))?;
        text.map(|text| {
            Account::decode(&text).map_err(|error| format!("the account {key} in Redis: {error}"))
        })
        .transpose()
    }

    /// Makes the account `key`; `false` if one with that key came first. Tell the other nodes
    /// with [`announce`](Self::announce).
    pub(crate) fn insert(&mut self, key: &str, account: &Account) -> Result<Made, String> {
        let script = redis::Script::new(MAKE);
        let made: i64 = self.call(|redis| {
            script
                .key(ALL)
                .key(RESERVED)
                .arg(key)
                .arg(account.encode())
                .invoke(redis)
        })?;
        Ok(match made {
            1 => Made::New,
            -1 => Made::Reserved,
            _ => Made::Taken,
        })
    }

    /// Tells every node (this one too) that the account `key` was made; `false` if it could
    /// not (call again later: a node that has not heard protects the name only once its
    /// listener reads every key again).
    pub(crate) fn announce(&mut self, key: &str) -> bool {
        let channel = self.channel.clone();
        match self.call(|redis| redis.publish::<_, _, i64>(channel, key)) {
            Ok(_) => true,
            Err(error) => {
                warn!("accounts: the other nodes were not told of {key} yet: {error}");
                false
            }
        }
    }

    /// Makes the reserved names of the node called `node` exactly `keys` (its `--oper` names
    /// with no account): reserves those, and frees those it reserved before and lists no more.
    pub(crate) fn reserve(&mut self, node: &str, keys: &[String]) -> Result<(), String> {
        let reserved: Vec<(String, String)> = self.call(|redis| redis.hgetall(RESERVED))?;
        for (key, by) in reserved {
            if by == node && !keys.contains(&key) {
                self.call(|redis| redis.hdel::<_, _, i64>(RESERVED, &key))?;
            }
        }
        for key in keys {
            self.call(|redis| redis.hset::<_, _, _, i64>(RESERVED, key, node))?;
        }
        Ok(())
    }

    /// Adds accounts kept elsewhere (a data directory's, from before cluster mode) that Redis
    /// does not have: how many were added, and the names Redis has otherwise (another
    /// password, or reserved) whose local accounts are not used.
    pub(crate) fn import(
        &mut self,
        accounts: &[(String, Account)],
    ) -> Result<(usize, Vec<String>), String> {
        let mut added = 0;
        let mut other = Vec::new();
        for (key, account) in accounts {
            match self.insert(key, account)? {
                Made::New => {
                    self.announce(key);
                    added += 1;
                }
                // The same account (imported at an earlier start): nothing to say.
                Made::Taken if self.get(key)?.is_some_and(|kept| kept.hash == account.hash) => {}
                Made::Taken | Made::Reserved => other.push(account.name.clone()),
            }
        }
        Ok((added, other))
    }

    /// Sets the hash of `key` to `new`, if its account is still `old`: `false` if it changed
    /// meanwhile (or went).
    pub(crate) fn replace(
        &mut self,
        key: &str,
        old: &Account,
        new: &Account,
    ) -> Result<bool, String> {
        let script = redis::Script::new(CHANGE);
        self.call(|redis| {
            script
                .key(ALL)
                .arg(key)
                .arg(&old.hash)
                .arg(&new.hash)
                .invoke(redis)
        })
    }

    /// Counts a wrong password for `key`: the count in a row, across nodes.
    pub(crate) fn failed(&mut self, key: &str) -> Result<u32, String> {
        let counted = format!("{FAILURES}{key}");
        let kept = FAILURES_KEPT.as_millis() as i64;
        let (count, _): (u32, bool) = self.call(|redis| {
            redis::pipe()
                .atomic()
                .incr(&counted, 1)
                .pexpire(&counted, kept)
                .query(redis)
        })?;
        Ok(count)
    }

    /// Forgets the wrong passwords for `key` (a right one came).
    pub(crate) fn succeeded(&mut self, key: &str) -> Result<(), String> {
        let counted = format!("{FAILURES}{key}");
        self.call(|redis| redis.del::<_, i64>(counted)).map(drop)
    }

    /// Says whether Redis keeps its data on disk; accounts in a Redis that keeps nothing are
    /// gone when it restarts. `None` if Redis will not say (`CONFIG` may be forbidden).
    pub(crate) fn persists(&mut self) -> Option<bool> {
        let setting = |redis: &mut Connection, name: &str| -> redis::RedisResult<String> {
            let pair: Vec<String> = redis::cmd("CONFIG").arg("GET").arg(name).query(redis)?;
            Ok(pair.get(1).cloned().unwrap_or_default())
        };
        let appendonly = self.call(|redis| setting(redis, "appendonly")).ok()?;
        let save = self.call(|redis| setting(redis, "save")).ok()?;
        Some(appendonly == "yes" || !save.trim().is_empty())
    }

    /// Every account's key.
    pub(crate) fn keys(&mut self) -> Result<Vec<String>, String> {
        self.call(|redis| redis.hkeys(ALL))
    }
}

/// A connection to `client`'s Redis whose calls are bounded by [`CALL_TIMEOUT`].
pub(crate) fn open(client: &Client) -> Result<Connection, String> {
    let connection = client
        .get_connection_with_timeout(CONNECT_TIMEOUT)
        .map_err(|error| format!("cannot reach Redis: {error}"))?;
    for timeout in [
        connection.set_read_timeout(Some(CALL_TIMEOUT)),
        connection.set_write_timeout(Some(CALL_TIMEOUT)),
    ] {
        timeout.map_err(|error| format!("Redis connection: {error}"))?;
    }
    Ok(connection)
}

/// Unix time in milliseconds.
pub(crate) fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_reads_back_as_written() {
        let kept = Account {
            name: "Ann".into(),
            hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            created: 1_700_000_000_000,
        };
        assert_eq!(Account::decode(&kept.encode()), Ok(kept));
        assert!(Account::decode("{\"name\": \"Ann\"}").is_err());
        assert!(Account::decode("not json").is_err());
    }
}
