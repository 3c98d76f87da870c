//! Accounts for the core (see `chat_core::account`): a thread of their own hashes and checks
//! passwords with Argon2id, keeps the accounts in the data directory's database (a connection
//! of its own, so that hashing never holds up the store's commits), with `--no-data` in
//! memory, or in cluster mode in the cluster's Redis (`cluster/accounts.rs`), and slows down
//! wrong passwords.
//!
//! Hashing costs tens of milliseconds on purpose: on the hub thread it would stop the chat for
//! that long. The hub hands each request over (`ask`) and gets the answer back on its event
//! channel, as `Event::Account`, when it is due.
//!
//! Slowing down: after [`FREE_FAILURES`] wrong passwords for one account, or from one address,
//! each further answer to that account or address waits twice as long as the last, from 1 s up
//! to [`MAX_DELAY`]; a right password clears the account's count, and a count goes after
//! [`FORGET_AFTER`] without failures. The thread keeps answering others meanwhile: a delayed
//! answer waits in a queue of its own, not in a sleep. In cluster mode an account's count is
//! kept in Redis, so that spreading guesses over the nodes gains nothing; an address's stays
//! with the node it connected to.

use std::collections::{BinaryHeap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use chat_core::account::{AccountAnswer, AccountAsk, AccountRequest, Password};
use rusqlite::{Connection, OptionalExtension, params};
use smol::channel::Sender;

use crate::cluster::{Account, Made, SharedAccounts, now_millis};
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

// Requests are what the queue holds nearly always: boxing them to shrink the rare `Reserve`
// would cost an allocation each.
#[allow(clippy::large_enum_variant)]
enum Job {
    /// A person's request, from `address`.
    Ask {
        request: AccountRequest,
        address: IpAddr,
    },
    /// Cluster mode: the keys of this node's `--oper` names with no account, reserved so that
    /// no node lets anyone register them (see `cluster/accounts.rs`).
    Reserve(Vec<String>),
}

/// The most lines of an operators' file (`--oper-file`): one account each, and there are at
/// most [`chat_core::account::MAX_OPERATORS`] operators.
const MAX_OPERATOR_FILE_BYTES: u64 = 64 * 1024;

/// A server operator's account as an operators' file (`--oper-file`) gives it: made at start
/// with this password hash, or given it if it exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorAccount {
    /// The account's name: a valid nickname.
    pub name: String,
    /// The password's Argon2 hash, in PHC form (`$argon2id$v=19$...`), as
    /// [`hash_password`] makes it.
    pub hash: String,
}

/// The Argon2id hash of `password` (in PHC form, with a fresh salt), as accounts keep it:
/// what `chat-runner --hash-password` prints for an operators' file. The password must be one
/// the server accepts (8 to 128 bytes, no spaces or control characters).
pub fn hash_password(password: &str) -> Result<String, String> {
    let password = Password::new(password).map_err(|error| error.to_string())?;
    Argon2::default()
        .hash_password(password.as_str().as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|error| format!("hashing failed: {error}"))
}

/// Reads an operators' file (`--oper-file`): a line `NAME HASH` for each server operator's
/// account, `HASH` being an Argon2 hash in PHC form ([`hash_password`]); blank lines and lines
/// starting with `#` are skipped. At most [`chat_core::account::MAX_OPERATORS`] accounts and
/// 64 KB. The error names the line that is wrong, never showing what it holds beyond the name.
pub fn read_operator_file(path: &std::path::Path) -> Result<Vec<OperatorAccount>, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|error| error.to_string())?;
    let mut text = String::new();
    file.take(MAX_OPERATOR_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|error| error.to_string())?;
    if text.len() as u64 > MAX_OPERATOR_FILE_BYTES {
        return Err(format!("longer than {MAX_OPERATOR_FILE_BYTES} bytes"));
    }
    let mut accounts: Vec<OperatorAccount> = Vec::new();
    for (number, line) in text
        .lines()
        .enumerate()
        .map(|(at, line)| (at + 1, line.trim()))
    {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(name), Some(hash), None) = (words.next(), words.next(), words.next()) else {
            return Err(format!("line {number}: expected NAME HASH"));
        };
        if chat_core::Nickname::new(name).is_err() {
            return Err(format!(
                "line {number}: the name is not an account name (a valid nickname)"
            ));
        }
        let algorithm = PasswordHash::new(hash).map(|parsed| parsed.algorithm.to_string());
        if !matches!(algorithm.as_deref(), Ok("argon2id" | "argon2i" | "argon2d")) {
            return Err(format!(
                "line {number}: the hash is not an Argon2 hash in PHC form                  (chat-runner --hash-password makes one)"
            ));
        }
        let key = crate::name_key(name);
        if accounts
            .iter()
            .any(|kept| crate::name_key(&kept.name) == key)
        {
            return Err(format!("line {number}: {name} is given twice"));
        }
        accounts.push(OperatorAccount {
            name: name.to_owned(),
            hash: hash.to_owned(),
        });
        if accounts.len() > chat_core::account::MAX_OPERATORS {
            return Err(format!(
                "more than {} accounts",
                chat_core::account::MAX_OPERATORS
            ));
        }
    }
    Ok(accounts)
}

/// How often an account's notice that could not be sent is tried again.
const ANNOUNCE_RETRY: Duration = Duration::from_secs(5);

/// The hub's side: hands requests to the thread.
#[derive(Debug)]
pub(crate) struct Accounts {
    jobs: SyncSender<Job>,
}

/// Where accounts are kept.
enum Keeper {
    Database(Connection),
    Memory(HashMap<String, Account>),
    /// The cluster's Redis.
    Shared(SharedAccounts),
}

impl Accounts {
    /// Starts the thread, which answers on `events`. Returns the keys of the accounts there
    /// are, for the hub to know registered nicknames without asking. With `cluster` (the
    /// Redis URL of cluster mode) accounts are the cluster's: the data directory's own, if any,
    /// are added to it first where the cluster has no account of that name (the hub hears of
    /// accounts made later on other nodes from `cluster/news.rs`).
    pub(crate) fn start(
        place: &Place,
        cluster: Option<(&str, &str)>,
        operators: &[OperatorAccount],
        events: Sender<Event>,
    ) -> Result<(Self, HashSet<String>), String> {
        let (cluster, node) = cluster.unzip();
        let local = match place {
            Place::Directory(dir) => {
                let path = dir.join(store::DATABASE_FILE);
                // The store opened (and migrated) it already: this is a second connection.
                Some(
                    store::open_file(&path, store::SyncMode::Full)
                        .map_err(|error: OpenError| error.to_string())?,
                )
            }
            Place::Memory => None,
        };
        let (keeper, registered) = match (cluster, local) {
            (Some(url), local) => {
                let mut shared = SharedAccounts::connect(url)
                    .map_err(|error| format!("accounts in the cluster: {error}"))?;
                if let Some(connection) = local {
                    let mine = local_accounts(&connection)?;
                    if !mine.is_empty() {
                        let (added, had) = shared.import(&mine).map_err(|error| {
                            format!("adding this directory's accounts to the cluster: {error}")
                        })?;
                        info!(
                            "accounts: {added} of this data directory's {} added to the \
                             cluster's",
                            mine.len()
                        );
                        if !had.is_empty() {
                            warn!(
                                "accounts: the cluster has account(s) {} with another password \
                                 (or keeps the names for server operators); this directory's \
                                 are not used",
                                had.join(", ")
                            );
                        }
                    }
                }
                if shared.persists() == Some(false) {
                    warn!(
                        "accounts: the cluster's Redis keeps nothing on disk (no appendonly, no \
                         save): its accounts are lost if it restarts; see docs/CLUSTER.md"
                    );
                }
                let keys = shared
                    .keys()
                    .map_err(|error| format!("reading the cluster's accounts: {error}"))?;
                (Keeper::Shared(shared), keys.into_iter().collect())
            }
            (None, Some(connection)) => {
                let keys = local_accounts(&connection)?
                    .into_iter()
                    .map(|(key, _)| key)
                    .collect();
                (Keeper::Database(connection), keys)
            }
            (None, None) => (Keeper::Memory(HashMap::new()), HashSet::new()),
        };
        let mut registered = registered;
        let mut worker = Worker::new(keeper, node.map(str::to_owned));
        for operator in operators {
            worker.provide(operator)?;
            registered.insert(crate::name_key(&operator.name));
        }
        let (jobs, incoming) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("accounts".into())
            .spawn(move || worker.run(&incoming, &events))
            .map_err(|error| format!("accounts thread: {error}"))?;
        Ok((Self { jobs }, registered))
    }

    /// Cluster mode: reserves `keys` (this node's `--oper` names with no account) so that no
    /// node lets anyone register them, and frees the names this node reserved before and no
    /// longer lists. Logged if the thread cannot take it now.
    pub(crate) fn reserve(&self, keys: Vec<String>) {
        if self.jobs.try_send(Job::Reserve(keys)).is_err() {
            warn!("accounts: the operators' names could not be reserved now; reload to try again");
        }
    }

    /// Hands `request` (from `address`) to the thread; `false` if it cannot take more now.
    pub(crate) fn ask(&self, request: AccountRequest, address: IpAddr) -> bool {
        match self.jobs.try_send(Job::Ask { request, address }) {
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
    keeper: Keeper,
    /// This node's name, in cluster mode.
    node: Option<String>,
    /// Accounts made whose notice to the other nodes could not be sent yet.
    unannounced: Vec<String>,
    argon2: Argon2<'static>,
    by_account: HashMap<String, Failures>,
    by_address: HashMap<IpAddr, Failures>,
    held: BinaryHeap<Held>,
}

impl Worker {
    fn new(keeper: Keeper, node: Option<String>) -> Self {
        Self {
            keeper,
            node,
            unannounced: Vec::new(),
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
            self.announce_again();
            let wait = self
                .held
                .peek()
                .map(|held| held.at.saturating_duration_since(now));
            let wait = match (wait, self.unannounced.is_empty()) {
                (wait, true) => wait,
                (Some(wait), false) => Some(wait.min(ANNOUNCE_RETRY)),
                (None, false) => Some(ANNOUNCE_RETRY),
            };
            let job = match wait {
                Some(wait) => match jobs.recv_timeout(wait) {
                    Ok(job) => job,
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => return,
                },
                None => match jobs.recv() {
                    Ok(job) => job,
                    Err(_) => return,
                },
            };
            let (mut request, address) = match job {
                Job::Ask { request, address } => (request, address),
                Job::Reserve(keys) => {
                    self.reserve(&keys);
                    continue;
                }
            };
            let key = crate::name_key(request.account().as_str());
            let answer = match self.answer(&key, &request) {
                Ok((answer, registered_as)) => {
                    // Identified as the account is spelt, whatever the person typed.
                    if let Some(name) = registered_as {
                        request.spell_as_registered(&name);
                    }
                    answer
                }
                Err(error) => {
                    warn!("accounts: {error}");
                    AccountAnswer::Unavailable
                }
            };
            let delay = self.count(&key, address, answer);
            let made =
                answer == AccountAnswer::Done && matches!(request.ask(), AccountAsk::Register(_));
            let answered = Answered { request, answer };
            if delay.is_zero() {
                if events.send_blocking(answered.event()).is_err() {
                    return;
                }
                // After the answer: this node's hub knows the account is its registrant's
                // before the notice comes back to it, and does not take them for an impostor.
                if made
                    && let Keeper::Shared(shared) = &mut self.keeper
                    && !shared.announce(&key)
                {
                    self.unannounced.push(key);
                }
            } else {
                self.held.push(Held {
                    at: Instant::now() + delay,
                    answered,
                });
            }
        }
    }

    /// Makes the account of an operators' file (`--oper-file`), or gives it the file's
    /// password hash if it exists with another: the file is what decides these accounts'
    /// passwords.
    fn provide(&mut self, operator: &OperatorAccount) -> Result<(), String> {
        let key = crate::name_key(&operator.name);
        let name = &operator.name;
        match self.account(&key)? {
            Some(account) if account.hash == operator.hash => Ok(()),
            Some(account) => {
                let changed = Account {
                    hash: operator.hash.clone(),
                    ..account.clone()
                };
                if !self.replace(&key, &account, &changed)? {
                    return Err(format!("the account {name} changed while it was being set"));
                }
                info!("accounts: {name}'s password set from the operators' file");
                Ok(())
            }
            None => {
                let account = Account {
                    name: name.clone(),
                    hash: operator.hash.clone(),
                    created: now_millis(),
                };
                match self.insert(&key, &account)? {
                    Made::New => {
                        info!("accounts: {name} made from the operators' file");
                        if let Keeper::Shared(shared) = &mut self.keeper
                            && !shared.announce(&key)
                        {
                            self.unannounced.push(key);
                        }
                        Ok(())
                    }
                    // Made meanwhile on another node, or kept for an operator by one.
                    Made::Taken | Made::Reserved => Err(format!(
                        "the account {name} could not be made from the operators' file; start \
                         again"
                    )),
                }
            }
        }
    }

    /// Tries again to tell the other nodes of the accounts made whose notice failed.
    fn announce_again(&mut self) {
        if let Keeper::Shared(shared) = &mut self.keeper {
            self.unannounced.retain(|key| !shared.announce(key));
        }
    }

    /// Reserves this node's `--oper` names with no account (see [`Accounts::reserve`]).
    fn reserve(&mut self, keys: &[String]) {
        if let (Keeper::Shared(shared), Some(node)) = (&mut self.keeper, &self.node) {
            match shared.reserve(node, keys) {
                Ok(()) if keys.is_empty() => {}
                Ok(()) => info!(
                    "accounts: {} operator name(s) with no account reserved: no node lets \
                     anyone register them",
                    keys.len()
                ),
                Err(error) => warn!(
                    "accounts: the operators' names could not be reserved ({error}); another \
                     node may let someone register them: reload once Redis answers"
                ),
            }
        }
    }

    /// Counts a wrong password against the account and the address; how long the answer is
    /// to be held back.
    fn count(&mut self, key: &str, address: IpAddr, answer: AccountAnswer) -> Duration {
        let now = Instant::now();
        if answer == AccountAnswer::Done {
            self.by_account.remove(key);
            if let Keeper::Shared(shared) = &mut self.keeper
                && let Err(error) = shared.succeeded(key)
            {
                warn!("accounts: the wrong passwords for {key} were not forgotten: {error}");
            }
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
        let shared_count = match (&mut self.keeper, answer) {
            (Keeper::Shared(shared), AccountAnswer::WrongPassword) => match shared.failed(key) {
                Ok(count) => Some(count),
                Err(error) => {
                    // Counted here instead: slowed down on this node at least.
                    warn!("accounts: a wrong password for {key} was not counted in Redis: {error}");
                    None
                }
            },
            _ => None,
        };
        let of_account = match (shared_count, answer) {
            (Some(count), _) => count,
            (None, AccountAnswer::WrongPassword) => {
                bump(self.by_account.entry(key.to_owned()).or_insert(fresh))
            }
            (None, _) => 0,
        };
        let of_address = bump(self.by_address.entry(address).or_insert(fresh));
        delay_after(of_account.max(of_address))
    }

    /// The answer to `request`, and the account's name as registered where the person is
    /// identified as it.
    fn answer(
        &mut self,
        key: &str,
        request: &AccountRequest,
    ) -> Result<(AccountAnswer, Option<String>), String> {
        let name = request.account().as_str();
        match request.ask() {
            AccountAsk::Register(password) => {
                if self.account(key)?.is_some() {
                    return Ok((AccountAnswer::Taken, None));
                }
                let account = Account {
                    name: name.to_owned(),
                    hash: self.hash(password)?,
                    created: now_millis(),
                };
                Ok(match self.insert(key, &account)? {
                    Made::New => {
                        info!("accounts: {name} registered");
                        (AccountAnswer::Done, None)
                    }
                    Made::Taken => (AccountAnswer::Taken, None),
                    Made::Reserved => {
                        warn!(
                            "accounts: refused to register {name}: a node of the cluster lists \
                             it as a server operator's account"
                        );
                        (AccountAnswer::Taken, None)
                    }
                })
            }
            AccountAsk::Identify(password) => Ok(match self.account(key)? {
                None => (AccountAnswer::NoSuchAccount, None),
                Some(account) if self.verify(password, &account.hash) => {
                    (AccountAnswer::Done, Some(account.name))
                }
                Some(_) => (AccountAnswer::WrongPassword, None),
            }),
            AccountAsk::ChangePassword { old, new } => match self.account(key)? {
                None => Ok((AccountAnswer::NoSuchAccount, None)),
                Some(account) if self.verify(old, &account.hash) => {
                    let changed = Account {
                        hash: self.hash(new)?,
                        ..account.clone()
                    };
                    if self.replace(key, &account, &changed)? {
                        info!("accounts: {name} changed its password");
                        Ok((AccountAnswer::Done, None))
                    } else {
                        // Changed on another node between the check and now.
                        warn!("accounts: {name}'s password changed meanwhile; not changed again");
                        Ok((AccountAnswer::Unavailable, None))
                    }
                }
                Some(_) => Ok((AccountAnswer::WrongPassword, None)),
            },
            _ => Ok((AccountAnswer::Unavailable, None)),
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

    fn account(&mut self, key: &str) -> Result<Option<Account>, String> {
        match &mut self.keeper {
            Keeper::Database(connection) => connection
                .prepare_cached("SELECT name, hash, created FROM accounts WHERE key = ?1")
                .and_then(|mut statement| {
                    statement
                        .query_row([key], |row| {
                            Ok(Account {
                                name: row.get(0)?,
                                hash: row.get(1)?,
                                created: row.get(2)?,
                            })
                        })
                        .optional()
                })
                .map_err(|error| format!("reading an account failed: {error}")),
            Keeper::Memory(accounts) => Ok(accounts.get(key).cloned()),
            Keeper::Shared(shared) => shared.get(key),
        }
    }

    /// Keeps a new account, unless one with its key came first or (in cluster mode) the name is
    /// reserved.
    fn insert(&mut self, key: &str, account: &Account) -> Result<Made, String> {
        let made = |added: bool| if added { Made::New } else { Made::Taken };
        match &mut self.keeper {
            Keeper::Database(connection) => connection
                .prepare_cached(
                    "INSERT OR IGNORE INTO accounts (key, name, hash, created)
                     VALUES (?1, ?2, ?3, ?4)",
                )
                .and_then(|mut statement| {
                    statement.execute(params![key, account.name, account.hash, account.created])
                })
                .map(|added| made(added == 1))
                .map_err(|error| format!("keeping an account failed: {error}")),
            Keeper::Memory(accounts) => Ok(made(
                accounts.insert(key.to_owned(), account.clone()).is_none(),
            )),
            Keeper::Shared(shared) => shared.insert(key, account),
        }
    }

    /// Replaces the account `key`, read as `old`, with `new`; `false` if it was changed
    /// meanwhile (only the cluster's can be: elsewhere this thread alone writes them).
    fn replace(&mut self, key: &str, old: &Account, new: &Account) -> Result<bool, String> {
        match &mut self.keeper {
            Keeper::Database(connection) => connection
                .prepare_cached("UPDATE accounts SET hash = ?2 WHERE key = ?1")
                .and_then(|mut statement| statement.execute(params![key, new.hash]))
                .map(|changed| changed == 1)
                .map_err(|error| format!("changing a password failed: {error}")),
            Keeper::Memory(accounts) => Ok(match accounts.get_mut(key) {
                Some(account) => {
                    *account = new.clone();
                    true
                }
                None => false,
            }),
            Keeper::Shared(shared) => shared.replace(key, old, new),
        }
    }
}

/// Every account of a data directory's database, by key.
fn local_accounts(connection: &Connection) -> Result<Vec<(String, Account)>, String> {
    let database = |error: rusqlite::Error| format!("reading the accounts failed: {error}");
    let mut statement = connection
        .prepare("SELECT key, name, hash, created FROM accounts")
        .map_err(database)?;
    statement
        .query_map([], |row| {
            Ok((
                row.get(0)?,
                Account {
                    name: row.get(1)?,
                    hash: row.get(2)?,
                    created: row.get(3)?,
                },
            ))
        })
        .map_err(database)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(database)
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
        let mut worker = Worker::new(Keeper::Memory(HashMap::new()), None);
        let password = Password::new("hunter2hunter2").unwrap();
        let hash = worker.hash(&password).unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(!hash.contains("hunter2"));
        assert!(worker.verify(&password, &hash));
        assert!(!worker.verify(&Password::new("hunter3hunter3").unwrap(), &hash));
        assert!(!worker.verify(&password, "not a hash"));
        let account = |name: &str| Account {
            name: name.to_owned(),
            hash: hash.clone(),
            created: 0,
        };
        assert_eq!(worker.insert("ann", &account("Ann")).unwrap(), Made::New);
        assert_eq!(
            worker.insert("ann", &account("ANN")).unwrap(),
            Made::Taken,
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
