//! Accounts for the core (see `chat_core::account`): a thread of their own hashes and checks
//! passwords with Argon2id, keeps the accounts in the data directory's database (a connection
//! of its own, so that hashing never holds up the store's commits) or, with `--no-data`, in
//! memory, and slows down wrong passwords.
//!
//! Hashing costs tens of milliseconds on purpose: on the hub thread it would stop the chat for
//! that long. The hub hands each request over (`ask`) and gets the answer back on its event
//! channel, as `Event::Account`, when it is due.
//!
//! Slowing down: after [`FREE_FAILURES`] wrong passwords for one account, or from one address,
//! each further answer to that account or address waits twice as long as the last, from 1 s up
//! to [`MAX_DELAY`]; a right password clears the account's count, and a count goes after
//! [`FORGET_AFTER`] without failures. The thread keeps answering others meanwhile: a delayed
//! answer waits in a queue of its own, not in a sleep.

use std::collections::{BinaryHeap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant, SystemTime};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use chat_core::account::{AccountAnswer, AccountAsk, AccountRequest, Password};
use rusqlite::{Connection, OptionalExtension, params};
use smol::channel::Sender;

use crate::event::Event;
use crate::log::{error, info, warn};
use crate::store::{self, OpenError, Place};

/// Wrong passwords allowed before answers slow down.
pub(crate) const FREE_FAILURES: u32 = 3;
/// The longest an answer is held back. Below the core's account timeout (30 s), so that a
/// slowed answer still arrives.
pub(crate) const MAX_DELAY: Duration = Duration::from_secs(16);
/// How long a count of failures is remembered after the last.
pub(crate) const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// The most accounts and addresses with failures remembered; past it the oldest are forgotten.
pub(crate) const MAX_REMEMBERED: usize = 10_000;
/// The most requests waiting for the thread. Past it a request is answered `Unavailable` at
/// once (the core tells the person to try again later).
pub(crate) const QUEUE: usize = 256;

/// An answer from the accounts thread, for the hub to hand to the core.
#[derive(Debug)]
struct Answered {
    request: AccountRequest,
    answer: AccountAnswer,
}

impl Answered {
    fn event(self) -> Event {
        Event::Account(Box::new(self.request), self.answer)
    }
}

struct Job {
    request: AccountRequest,
    address: IpAddr,
}

/// The hub's side: hands requests to the thread.
#[derive(Debug)]
pub(crate) struct Accounts {
    jobs: SyncSender<Job>,
}

/// Where accounts are kept.
enum Kept {
    Database(Connection),
    Memory(HashMap<String, (String, String)>),
}

impl Accounts {
    /// Starts the thread, which answers on `events`. Returns the keys of the accounts there
    /// are, for the hub to know registered nicknames without asking.
    pub(crate) fn start(
        place: &Place,
        events: Sender<Event>,
    ) -> Result<(Self, HashSet<String>), OpenError> {
        let kept = match place {
            Place::Directory(dir) => {
                let path = dir.join(store::DATABASE_FILE);
                // The store opened (and migrated) it already: this is a second connection.
                Kept::Database(store::open_file(&path, store::SyncMode::Full)?)
            }
            Place::Memory => Kept::Memory(HashMap::new()),
        };
        let registered = match &kept {
            Kept::Database(connection) => {
                let database = |error| OpenError::Database("accounts".into(), error);
                let mut statement = connection
                    .prepare("SELECT key FROM accounts")
                    .map_err(database)?;
                statement
                    .query_map([], |row| row.get(0))
                    .map_err(database)?
                    .collect::<rusqlite::Result<HashSet<String>>>()
                    .map_err(database)?
            }
            Kept::Memory(_) => HashSet::new(),
        };
        let (jobs, incoming) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("accounts".into())
            .spawn(move || Worker::new(kept).run(&incoming, &events))
            .map_err(|error| OpenError::Directory("accounts thread".into(), error))?;
        Ok((Self { jobs }, registered))
    }

    /// Hands `request` (from `address`) to the thread; `false` if it cannot take more now.
    pub(crate) fn ask(&self, request: AccountRequest, address: IpAddr) -> bool {
        match self.jobs.try_send(Job { request, address }) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                warn!("accounts: {QUEUE} requests wait already; one was answered unavailable");
                false
            }
            Err(TrySendError::Disconnected(_)) => {
                error!("bug: the accounts thread has gone");
                false
            }
        }
    }
}

/// Failures of one account or address.
#[derive(Clone, Copy, Debug)]
struct Failures {
    count: u32,
    last: Instant,
}

/// An answer held back until `at`.
struct Held {
    at: Instant,
    answered: Answered,
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Held {
    /// The earliest first out of a max-heap.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.at.cmp(&self.at)
    }
}

struct Worker {
    kept: Kept,
    argon2: Argon2<'static>,
    by_account: HashMap<String, Failures>,
    by_address: HashMap<IpAddr, Failures>,
    held: BinaryHeap<Held>,
}

impl Worker {
    fn new(kept: Kept) -> Self {
        Self {
            kept,
            argon2: Argon2::default(),
            by_account: HashMap::new(),
            by_address: HashMap::new(),
            held: BinaryHeap::new(),
        }
    }

    fn run(mut self, jobs: &Receiver<Job>, events: &Sender<Event>) {
        loop {
            let now = Instant::now();
            while self.held.peek().is_some_and(|held| held.at <= now) {
                if let Some(held) = self.held.pop()
                    && events.send_blocking(held.answered.event()).is_err()
                {
                    return;
                }
            }
            let job = match self.held.peek() {
                Some(held) => match jobs.recv_timeout(held.at.saturating_duration_since(now)) {
                    Ok(job) => job,
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => return,
                },
                None => match jobs.recv() {
                    Ok(job) => job,
                    Err(_) => return,
                },
            };
            let key = crate::name_key(job.request.account().as_str());
            let answer = self.answer(&key, &job.request).unwrap_or_else(|error| {
                warn!("accounts: {error}");
                AccountAnswer::Unavailable
            });
            let delay = self.count(&key, job.address, answer);
            let answered = Answered {
                request: job.request,
                answer,
            };
            if delay.is_zero() {
                if events.send_blocking(answered.event()).is_err() {
                    return;
                }
            } else {
                self.held.push(Held {
                    at: Instant::now() + delay,
                    answered,
                });
            }
        }
    }

    /// Counts a wrong password against the account and the address; how long the answer is
    /// to be held back.
    fn count(&mut self, key: &str, address: IpAddr, answer: AccountAnswer) -> Duration {
        let now = Instant::now();
        if answer == AccountAnswer::Done {
            self.by_account.remove(key);
        }
        if !matches!(
            answer,
            AccountAnswer::WrongPassword | AccountAnswer::NoSuchAccount
        ) {
            return Duration::ZERO;
        }
        let bump = |failures: &mut Failures| {
            if now.duration_since(failures.last) > FORGET_AFTER {
                failures.count = 0;
            }
            failures.count += 1;
            failures.last = now;
            failures.count
        };
        let fresh = Failures {
            count: 0,
            last: now,
        };
        forget_old(&mut self.by_account, now);
        forget_old(&mut self.by_address, now);
        let of_account = if answer == AccountAnswer::WrongPassword {
            bump(self.by_account.entry(key.to_owned()).or_insert(fresh))
        } else {
            0
        };
        let of_address = bump(self.by_address.entry(address).or_insert(fresh));
        delay_after(of_account.max(of_address))
    }

    fn answer(&mut self, key: &str, request: &AccountRequest) -> Result<AccountAnswer, String> {
        let name = request.account().as_str();
        match request.ask() {
            AccountAsk::Register(password) => {
                if self.hash_of(key)?.is_some() {
                    return Ok(AccountAnswer::Taken);
                }
                let hash = self.hash(password)?;
                Ok(if self.insert(key, name, &hash)? {
                    info!("accounts: {name} registered");
                    AccountAnswer::Done
                } else {
                    AccountAnswer::Taken
                })
            }
            AccountAsk::Identify(password) => match self.hash_of(key)? {
                None => Ok(AccountAnswer::NoSuchAccount),
                Some(hash) if self.verify(password, &hash) => Ok(AccountAnswer::Done),
                Some(_) => Ok(AccountAnswer::WrongPassword),
            },
            AccountAsk::ChangePassword { old, new } => match self.hash_of(key)? {
                None => Ok(AccountAnswer::NoSuchAccount),
                Some(hash) if self.verify(old, &hash) => {
                    let hash = self.hash(new)?;
                    self.update(key, &hash)?;
                    info!("accounts: {name} changed its password");
                    Ok(AccountAnswer::Done)
                }
                Some(_) => Ok(AccountAnswer::WrongPassword),
            },
            _ => Ok(AccountAnswer::Unavailable),
        }
    }

    fn hash(&self, password: &Password) -> Result<String, String> {
        self.argon2
            .hash_password(password.as_str().as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|error| format!("hashing a password failed: {error}"))
    }

    fn verify(&self, password: &Password, hash: &str) -> bool {
        match PasswordHash::new(hash) {
            Ok(parsed) => self
                .argon2
                .verify_password(password.as_str().as_bytes(), &parsed)
                .is_ok(),
            Err(error) => {
                error!("accounts: a stored hash cannot be read ({error}); the password is refused");
                false
            }
        }
    }

    fn hash_of(&self, key: &str) -> Result<Option<String>, String> {
        match &self.kept {
            Kept::Database(connection) => connection
                .prepare_cached("SELECT hash FROM accounts WHERE key = ?1")
                .and_then(|mut statement| statement.query_row([key], |row| row.get(0)).optional())
                .map_err(|error| format!("reading an account failed: {error}")),
            Kept::Memory(accounts) => Ok(accounts.get(key).map(|(_, hash)| hash.clone())),
        }
    }

    /// Keeps a new account; `false` if one with its key came first.
    fn insert(&mut self, key: &str, name: &str, hash: &str) -> Result<bool, String> {
        let created = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as i64);
        match &mut self.kept {
            Kept::Database(connection) => connection
                .prepare_cached(
                    "INSERT OR IGNORE INTO accounts (key, name, hash, created)
                     VALUES (?1, ?2, ?3, ?4)",
                )
                .and_then(|mut statement| statement.execute(params![key, name, hash, created]))
                .map(|added| added == 1)
                .map_err(|error| format!("keeping an account failed: {error}")),
            Kept::Memory(accounts) => Ok(accounts
                .insert(key.to_owned(), (name.to_owned(), hash.to_owned()))
                .is_none()),
        }
    }

    fn update(&mut self, key: &str, hash: &str) -> Result<(), String> {
        match &mut self.kept {
            Kept::Database(connection) => connection
                .prepare_cached("UPDATE accounts SET hash = ?2 WHERE key = ?1")
                .and_then(|mut statement| statement.execute(params![key, hash]))
                .map(drop)
                .map_err(|error| format!("changing a password failed: {error}")),
            Kept::Memory(accounts) => {
                if let Some(account) = accounts.get_mut(key) {
                    account.1 = hash.to_owned();
                }
                Ok(())
            }
        }
    }
}

/// How long an answer waits after `failures` wrong passwords in a row.
fn delay_after(failures: u32) -> Duration {
    match failures.checked_sub(FREE_FAILURES) {
        None | Some(0) => Duration::ZERO,
        Some(over) => Duration::from_secs(1 << (over - 1).min(8)).min(MAX_DELAY),
    }
}

/// Forgets counts past [`FORGET_AFTER`], and the oldest past [`MAX_REMEMBERED`].
fn forget_old<K: Clone + Eq + std::hash::Hash>(counts: &mut HashMap<K, Failures>, now: Instant) {
    if counts.len() < MAX_REMEMBERED {
        return;
    }
    counts.retain(|_, failures| now.duration_since(failures.last) <= FORGET_AFTER);
    while counts.len() >= MAX_REMEMBERED {
        let Some(oldest) = counts
            .iter()
            .min_by_key(|(_, failures)| failures.last)
            .map(|(key, _)| key.clone())
        else {
            return;
        };
        counts.remove(&oldest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_passwords_slow_answers_down_to_a_bound() {
        let delays: Vec<u64> = (1..=12).map(|n| delay_after(n).as_secs()).collect();
        assert_eq!(delays, [0, 0, 0, 1, 2, 4, 8, 16, 16, 16, 16, 16]);
        assert!(MAX_DELAY < chat_core::account::DEFAULT_ACCOUNT_TIMEOUT);
    }

    #[test]
    fn a_password_is_kept_hashed_and_checked() {
        let mut worker = Worker::new(Kept::Memory(HashMap::new()));
        let password = Password::new("hunter2hunter2").unwrap();
        let hash = worker.hash(&password).unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(!hash.contains("hunter2"));
        assert!(worker.verify(&password, &hash));
        assert!(!worker.verify(&Password::new("hunter3hunter3").unwrap(), &hash));
        assert!(!worker.verify(&password, "not a hash"));
        assert!(worker.insert("ann", "Ann", &hash).unwrap());
        assert!(
            !worker.insert("ann", "ANN", &hash).unwrap(),
            "one account per key"
        );
        let address: IpAddr = [127, 0, 0, 1].into();
        // Three free, then slower and slower.
        let delays: Vec<Duration> = (0..5)
            .map(|_| worker.count("ann", address, AccountAnswer::WrongPassword))
            .collect();
        assert_eq!(delays[..3], [Duration::ZERO; 3]);
        assert_eq!(
            delays[3..],
            [Duration::from_secs(1), Duration::from_secs(2)]
        );
        // The address is counted across accounts; a right password clears the account's.
        assert_eq!(
            worker.count("bob", address, AccountAnswer::NoSuchAccount),
            Duration::from_secs(4)
        );
        worker.count("ann", address, AccountAnswer::Done);
        let other: IpAddr = [127, 0, 0, 2].into();
        assert_eq!(
            worker.count("ann", other, AccountAnswer::WrongPassword),
            Duration::ZERO
        );
    }
}
