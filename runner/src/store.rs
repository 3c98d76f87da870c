//! The store: rooms, topics and every room line in an embedded SQLite database, owned by one
//! thread that the hub talks to over a bounded channel. See docs/STORAGE.md for the schema,
//! the durability rule and what happens when things go wrong.
//!
//! The hub hands it lines and topics as the core reports them ([`Store::line`],
//! [`Store::topic`]), asks it to commit once per flush ([`Store::commit`]), and asks it for
//! history ([`Store::fetch`]). Answers come back on a channel of their own ([`Reply`]), in the
//! order the jobs went in: a fetch sent after a line sees that line.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::Duration;

use chat_core::{
    BanList, HistoryLine, HistoryMark, HistoryRange, HistoryRequest, HistoryTarget, Instant,
    LineKind,
};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params};

/// The database file in the data directory.
pub(crate) const DATABASE_FILE: &str = "chat.db";

/// The lock file in the data directory: held (`flock`) while a server uses the directory, and
/// naming that server.
const LOCK_FILE: &str = "lock";

/// The schema this build writes. A database with a newer one is refused, never changed.
pub(crate) const SCHEMA_VERSION: i64 = 8;

/// The most jobs waiting for the store thread: batches of writes (one per flush, each ending
/// in a commit) and history questions. Past it the store counts as stalled (see
/// docs/STORAGE.md): lines go out without waiting for a commit, and the batch that did not fit
/// is not kept.
pub(crate) const STORE_QUEUE: usize = 1024;

/// How long a write waits for another process holding the database (a backup, an operator's
/// `sqlite3`) before it fails: the write is then reported failed, and tried again with the
/// next commit.
const BUSY_TIMEOUT: Duration = Duration::from_secs(1);

/// How many lines a room may pass its `--history-keep` by before the oldest are deleted: they
/// are deleted in batches rather than one per line said.
const PRUNE_SLACK: u64 = 256;

/// How often private messages past their retention are deleted.
const PRIVATE_PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Migrations from each version to the next; `MIGRATIONS[n]` takes version n to n + 1.
const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE rooms (
        id       INTEGER PRIMARY KEY,
        name     TEXT NOT NULL UNIQUE COLLATE NOCASE,
        topic    TEXT,
        topic_by TEXT,
        topic_at INTEGER
    );
    CREATE TABLE lines (
        room INTEGER NOT NULL REFERENCES rooms (id),
        seq  INTEGER NOT NULL,
        at   INTEGER NOT NULL,
        kind INTEGER NOT NULL,
        nick TEXT NOT NULL,
        text TEXT NOT NULL,
        PRIMARY KEY (room, seq)
    ) WITHOUT ROWID;
",
    "
    -- Rooms are found by their name's key (chat_core::NameKey: case and look-alikes aside),
    -- filled in by `fill_keys` after the migration, since SQL cannot compute it.
    ALTER TABLE rooms ADD COLUMN key TEXT;
",
    "
    -- Accounts (see accounts.rs): by the name's key, with its name as registered and its
    -- password's Argon2id hash in PHC form; created in Unix milliseconds.
    CREATE TABLE accounts (
        key     TEXT PRIMARY KEY,
        name    TEXT NOT NULL,
        hash    TEXT NOT NULL,
        created INTEGER NOT NULL
    ) WITHOUT ROWID;
",
    "
    -- What keeps order in a room across restarts: the account it is registered to, its modes
    -- (the letters of those without a value), key and limit; and its bans (times in Unix
    -- milliseconds; until NULL: until lifted). Masks compare as the core does, ASCII case
    -- aside.
    ALTER TABLE rooms ADD COLUMN founder TEXT;
    ALTER TABLE rooms ADD COLUMN modes TEXT;
    ALTER TABLE rooms ADD COLUMN room_key TEXT;
    ALTER TABLE rooms ADD COLUMN user_limit INTEGER;
    CREATE TABLE bans (
        room  INTEGER NOT NULL REFERENCES rooms (id),
        mask  TEXT NOT NULL COLLATE NOCASE,
        by    TEXT NOT NULL,
        at    INTEGER NOT NULL,
        until INTEGER,
        PRIMARY KEY (room, mask)
    ); -- with a rowid: bans come back in the order they were set
",
    "
    -- Server-wide bans: the mask (nick!user@host, $a:ACCOUNT, an address or a network), who
    -- set it, when, until when (NULL: until lifted), and why.
    CREATE TABLE server_bans (
        mask   TEXT PRIMARY KEY COLLATE NOCASE,
        by     TEXT NOT NULL,
        at     INTEGER NOT NULL,
        until  INTEGER,
        reason TEXT NOT NULL DEFAULT ''
    );
",
    "
    -- Private messages, kept per identified account: one row for each account that sent or
    -- received the message (`owner`, its name's key), with the other person (`peer`: the key
    -- of their account, or of their nickname if they were not identified). `seq` is the
    -- message id it was sent with; times in Unix milliseconds; `target` is whom it went to.
    CREATE TABLE private_lines (
        owner  TEXT NOT NULL,
        peer   TEXT NOT NULL,
        seq    INTEGER NOT NULL,
        at     INTEGER NOT NULL,
        kind   INTEGER NOT NULL,
        nick   TEXT NOT NULL,
        target TEXT NOT NULL,
        text   TEXT NOT NULL,
        PRIMARY KEY (owner, peer, seq)
    ) WITHOUT ROWID;
    CREATE INDEX private_lines_at ON private_lines (at);
",
    "
    -- Rooms gained mode `n` (only members talk), on in every new room: every room whose modes
    -- were kept had it, so it is added to what was kept (the rooms with no row of modes are
    -- made with it when they come back).
    UPDATE rooms SET modes = 'n' || coalesce(modes, '')
    WHERE modes IS NOT NULL OR room_key IS NOT NULL OR user_limit IS NOT NULL;
",
    "
    -- A room's ban exceptions (+e) and invite exceptions (+I) are kept with its bans: `list`
    -- is the mode letter, 'b', 'e' or 'I' (the bans kept before are all 'b'). The key takes
    -- the list, so one mask may be on several; SQLite cannot change a table's key, so the
    -- table is made again, its rows copied in the order they were set.
    CREATE TABLE bans_by_list (
        room  INTEGER NOT NULL REFERENCES rooms (id),
        list  TEXT NOT NULL DEFAULT 'b',
        mask  TEXT NOT NULL COLLATE NOCASE,
        by    TEXT NOT NULL,
        at    INTEGER NOT NULL,
        until INTEGER,
        PRIMARY KEY (room, list, mask)
    );
    INSERT INTO bans_by_list (room, list, mask, by, at, until)
        SELECT room, 'b', mask, by, at, until FROM bans ORDER BY rowid;
    DROP TABLE bans;
    ALTER TABLE bans_by_list RENAME TO bans;
",
];

/// A ban list as the store keeps it: its IRC mode letter.
pub(crate) fn list_letter(list: BanList) -> String {
    list.letter().to_string()
}

/// The ban list kept as `letter`, if it is one.
pub(crate) fn list_of_letter(letter: &str) -> Option<BanList> {
    let mut chars = letter.chars();
    match (chars.next(), chars.next()) {
        (Some(letter), None) => BanList::of_letter(letter),
        _ => None,
    }
}

/// A line as kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StoredLine {
    pub(crate) seq: u64,
    pub(crate) at: Instant,
    pub(crate) kind: LineKind,
    pub(crate) nick: String,
    pub(crate) text: String,
    /// For a private message, whom it went to.
    pub(crate) to: Option<String>,
}

impl StoredLine {
    /// The line as the core takes it back.
    pub(crate) fn line(&self) -> HistoryLine<'_> {
        HistoryLine {
            seq: self.seq,
            at: self.at,
            kind: self.kind,
            nick: &self.nick,
            text: &self.text,
            to: self.to.as_deref(),
        }
    }
}

/// The key a private message's other person is kept under: their account's key, or `~` and
/// their nickname's key if they were not identified (so that whoever goes by a registered
/// name without its account is never taken for its owner).
pub(crate) fn peer_key(name: &str, account: bool) -> String {
    match account {
        true => crate::name_key(name),
        false => format!("~{}", crate::name_key(name)),
    }
}

/// A private message as kept: for `owner` (an account's key), with `peer` (see [`peer_key`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StoredPrivate {
    pub(crate) owner: String,
    pub(crate) peer: String,
    pub(crate) line: StoredLine,
}

impl From<HistoryLine<'_>> for StoredLine {
    fn from(line: HistoryLine<'_>) -> Self {
        Self {
            seq: line.seq,
            at: line.at,
            kind: line.kind,
            nick: line.nick.to_owned(),
            text: line.text.to_owned(),
            to: line.to.map(str::to_owned),
        }
    }
}

/// A topic as kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StoredTopic {
    pub(crate) room: String,
    pub(crate) topic: String,
    pub(crate) by: String,
    pub(crate) at: Instant,
}

/// A change to what keeps order (in a room, or on the whole server), as kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Moderation {
    /// Registered to `founder`'s account, or no longer (`None`).
    Founder {
        room: String,
        founder: Option<String>,
    },
    /// Its modes, all of them as they are now.
    Modes {
        room: String,
        modes: String,
        key: Option<String>,
        limit: Option<u32>,
    },
    /// A ban (or an exception, as `list` says) set, or set again.
    Ban {
        room: String,
        list: BanList,
        ban: StoredBan,
    },
    /// A ban (or an exception) lifted.
    Unban {
        room: String,
        list: BanList,
        mask: String,
    },
    /// A room went (empty, unregistered, without a topic or bans): its modes, key and limit
    /// go with it, so that a room made again under its name starts without them.
    Removed { room: String },
    /// A server-wide ban set (or set again).
    ServerBan { ban: StoredBan, reason: String },
    /// A server-wide ban lifted.
    ServerUnban { mask: String },
}

impl Moderation {
    /// The room whose order (its modes, a ban or an exception) this changes; `None` for a
    /// registration, a room's removal or a server ban.
    pub(crate) fn order_room(&self) -> Option<&str> {
        match self {
            Self::Modes { room, .. } | Self::Ban { room, .. } | Self::Unban { room, .. } => {
                Some(room)
            }
            Self::Founder { .. }
            | Self::Removed { .. }
            | Self::ServerBan { .. }
            | Self::ServerUnban { .. } => None,
        }
    }
}

/// A ban as kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StoredBan {
    pub(crate) mask: String,
    pub(crate) by: String,
    pub(crate) at: Instant,
    pub(crate) until: Option<Instant>,
}

/// A room's modes as kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StoredModes {
    pub(crate) room: String,
    pub(crate) modes: String,
    pub(crate) key: Option<String>,
    pub(crate) limit: Option<u32>,
}

/// What an earlier run left: for the core, before the first connection.
#[derive(Debug, Default)]
pub(crate) struct Restored {
    pub(crate) topics: Vec<StoredTopic>,
    /// Registered rooms and their founders' accounts.
    pub(crate) founders: Vec<(String, String)>,
    /// Bans and exceptions, by room and list.
    pub(crate) bans: Vec<(String, BanList, StoredBan)>,
    /// Rooms' modes, for rooms that have any.
    pub(crate) modes: Vec<StoredModes>,
    /// Server-wide bans, with their reasons.
    pub(crate) server_bans: Vec<(StoredBan, String)>,
    /// The number of the last line kept in each room, by its name lowercased: where a cluster
    /// node fills its history from (see `cluster::Relay`).
    pub(crate) last_in_room: std::collections::HashMap<String, u64>,
    pub(crate) last_seq: u64,
    pub(crate) rooms: u64,
    pub(crate) lines: u64,
}

/// A request for history, as the hub hands it over and gets it back: the core's request and
/// the hub's number for it (see `RecordedCore::handle_history`).
/// With, for private messages, the key the other person's lines are kept under (see
/// [`peer_key`]).
pub(crate) type Fetch = (u64, HistoryRequest, Option<String>);

/// What the store thread tells the hub.
#[derive(Debug)]
pub(crate) enum Reply {
    /// Everything handed over before the commit with this number is on disk (or the store
    /// failed, which came first as `Failed`): lines waiting for it may go out.
    Committed(u64),
    /// The answer to a fetch: the lines oldest first, or why there are none.
    Fetched(Box<Fetch>, Result<Vec<StoredLine>, String>),
    /// Writing failed: lines are not being kept. Said once, until `Recovered`.
    Failed(String),
    /// Writing works again.
    Recovered,
}

/// One write, as gathered by the hub.
#[derive(Debug)]
enum Gathered {
    Line { room: String, line: StoredLine },
    Private(StoredPrivate),
    Topic(StoredTopic),
    Moderation(Moderation),
}

/// What the store thread is sent. Writes travel in batches, one per flush, so that the thread
/// is woken once per flush rather than once per line (waking it per line cost a quarter of the
/// process's CPU under the fixed load: docs/PERFORMANCE.md).
enum Job {
    /// Writes, then a commit if numbered.
    Batch {
        writes: Vec<Gathered>,
        commit: Option<u64>,
    },
    Fetch(Box<Fetch>),
}

/// Why the store could not open. Each names the file or directory concerned.
#[derive(Debug)]
pub(crate) enum OpenError {
    /// The data directory could not be made, or written.
    Directory(PathBuf, io::Error),
    /// Another server holds the directory.
    Locked(PathBuf, String),
    /// The file is not a SQLite database (or is damaged).
    NotADatabase(PathBuf, String),
    /// The database has a schema newer than this build's.
    Newer(PathBuf, i64),
    /// Anything else SQLite said.
    Database(PathBuf, rusqlite::Error),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Directory(path, error) => {
                write!(
                    f,
                    "cannot use {} as the data directory: {error}",
                    path.display()
                )
            }
            Self::Locked(path, holder) => write!(
                f,
                "{} is in use by another chat-runner ({holder}); \
                 stop it, or give this one another --data directory",
                path.display()
            ),
            Self::NotADatabase(path, error) => write!(
                f,
                "{} is not a chat-runner database ({error}); it was left as it is",
                path.display()
            ),
            Self::Newer(path, version) => write!(
                f,
                "{} has schema version {version}, newer than this chat-runner's \
                 {SCHEMA_VERSION}; it was left as it is (run a newer chat-runner)",
                path.display()
            ),
            Self::Database(path, error) => write!(f, "cannot open {}: {error}", path.display()),
        }
    }
}

impl std::error::Error for OpenError {}

/// How the store syncs its commits to the disk (`--sync`): what a power loss may lose. A
/// process that dies loses nothing committed in either mode. See docs/STORAGE.md.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SyncMode {
    /// `synchronous=NORMAL`: the write-ahead log is synced at checkpoints, not at every
    /// commit; a power loss (or a kernel panic) may lose the commits since the last one.
    #[default]
    Normal,
    /// `synchronous=FULL`: every commit is synced to the disk before it counts as done, so it
    /// survives a power loss; each commit costs a disk flush.
    Full,
}

impl SyncMode {
    /// The mode named as `--sync` takes it: `normal` or `full`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "normal" => Some(Self::Normal),
            "full" => Some(Self::Full),
            _ => None,
        }
    }

    /// The name `--sync` takes.
    pub fn name(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Full => "full",
        }
    }

    /// SQLite's `PRAGMA synchronous` value for the mode.
    fn pragma(self) -> i64 {
        match self {
            Self::Normal => 1,
            Self::Full => 2,
        }
    }

    /// The mode `PRAGMA synchronous` reads back, if it is one of these.
    fn from_pragma(value: i64) -> Option<Self> {
        [Self::Normal, Self::Full]
            .into_iter()
            .find(|mode| mode.pragma() == value)
    }
}

impl fmt::Display for SyncMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where the store keeps its data.
#[derive(Clone, Debug)]
pub(crate) enum Place {
    /// A directory on disk (`--data DIR`).
    Directory(PathBuf),
    /// Memory, gone at exit (`--no-data`).
    Memory,
}

/// The hub's handle on the store thread.
#[derive(Debug)]
pub(crate) struct Store {
    jobs: SyncSender<Job>,
    /// Held for as long as the server runs: the lock on the directory.
    _lock: Option<File>,
    /// Whether lines must wait for their commit (on disk) or need not (in memory).
    durable: bool,
    /// `PRAGMA synchronous` as the database connection reads it back after opening (on disk;
    /// `None` in memory, where there is no disk to sync).
    synchronous: Option<i64>,
    /// Where the store thread's replies come.
    replies: smol::channel::Receiver<Reply>,
    /// Writes gathered since the last batch went.
    pending: Vec<Gathered>,
}

impl Store {
    /// Opens (or makes) the store at `place`, keeping at most `keep` lines per room and syncing
    /// commits as `sync` says (on disk; memory has nothing to sync); reads what an earlier run
    /// left; starts the store thread. `holder` describes this server for the lock file.
    pub(crate) fn open(
        place: &Place,
        keep: u64,
        private_keep: Duration,
        holder: &str,
        sync: SyncMode,
    ) -> Result<(Self, Restored), OpenError> {
        let (replies, replies_to_hub) = smol::channel::unbounded();
        let (connection, lock, durable) = match place {
            Place::Memory => {
                let connection = Connection::open_in_memory()
                    .map_err(|error| OpenError::Database("memory".into(), error))?;
                (connection, None, false)
            }
            Place::Directory(dir) => {
                fs::create_dir_all(dir).map_err(|error| {
                    // "File exists" would not say that it is the very path given.
                    let error = if dir.is_file() {
                        io::Error::other("it is a file, not a directory")
                    } else {
                        error
                    };
                    OpenError::Directory(dir.clone(), error)
                })?;
                let lock = lock(dir, holder)?;
                let path = dir.join(DATABASE_FILE);
                let connection = open_file(&path, sync)?;
                (connection, Some(lock), true)
            }
        };
        let path = match place {
            Place::Directory(dir) => dir.join(DATABASE_FILE),
            Place::Memory => "memory".into(),
        };
        let database = |error| OpenError::Database(path.clone(), error);
        migrate(&connection, &path)?;
        let synchronous = match place {
            Place::Directory(_) => Some(
                connection
                    .pragma_query_value(None, "synchronous", |row| row.get(0))
                    .map_err(database)?,
            ),
            Place::Memory => None,
        };
        let restored = restore(&connection).map_err(database)?;
        let counts = counts(&connection).map_err(database)?;
        let (jobs, incoming) = sync_channel(STORE_QUEUE);
        std::thread::Builder::new()
            .name("store".into())
            .spawn(move || {
                Worker {
                    connection,
                    keep,
                    private_keep,
                    private_pruned: None,
                    counts,
                    ids: std::collections::HashMap::new(),
                    in_transaction: false,
                    failed: None,
                    failing: false,
                    replies,
                }
                .run(incoming);
            })
            .map_err(|error| OpenError::Directory(path.clone(), error))?;
        Ok((
            Self {
                jobs,
                _lock: lock,
                durable,
                synchronous,
                replies: replies_to_hub,
                pending: Vec::new(),
            },
            restored,
        ))
    }

    /// Where the store thread's replies come, in the order of the jobs.
    pub(crate) fn replies(&self) -> smol::channel::Receiver<Reply> {
        self.replies.clone()
    }

    /// Whether lines must wait for their commit before going out.
    pub(crate) fn is_durable(&self) -> bool {
        self.durable
    }

    /// How commits are synced, as the database reads `PRAGMA synchronous` back after opening:
    /// `None` in memory, `Err` with the value if it is neither NORMAL nor FULL.
    pub(crate) fn sync_mode(&self) -> Option<Result<SyncMode, i64>> {
        self.synchronous
            .map(|value| SyncMode::from_pragma(value).ok_or(value))
    }

    /// Keeps a line said in `room`, with the next batch.
    pub(crate) fn line(&mut self, room: &str, line: StoredLine) {
        self.pending.push(Gathered::Line {
            room: room.to_owned(),
            line,
        });
    }

    /// Keeps a topic (an empty one clears it), with the next batch.
    pub(crate) fn topic(&mut self, topic: StoredTopic) {
        self.pending.push(Gathered::Topic(topic));
    }

    /// Keeps a private message for an account, with the next batch.
    pub(crate) fn private(&mut self, private: StoredPrivate) {
        self.pending.push(Gathered::Private(private));
    }

    /// Keeps a change to what keeps order in a room, with the next batch.
    pub(crate) fn moderation(&mut self, change: Moderation) {
        self.pending.push(Gathered::Moderation(change));
    }

    /// Sends what was gathered and commits it; [`Reply::Committed`] with `number` follows.
    /// False if the queue is full: no reply will come, and what was gathered is not kept.
    pub(crate) fn commit(&mut self, number: u64) -> bool {
        let writes = std::mem::take(&mut self.pending);
        self.send(Job::Batch {
            writes,
            commit: Some(number),
        })
    }

    /// Reads the lines `request` asks for, after what was gathered so far (sent along,
    /// uncommitted); [`Reply::Fetched`] follows. Gives the request back if the queue is full.
    pub(crate) fn fetch(&mut self, fetch: Fetch) -> Result<(), Box<Fetch>> {
        if !self.pending.is_empty() {
            let writes = std::mem::take(&mut self.pending);
            if !self.send(Job::Batch {
                writes,
                commit: None,
            }) {
                return Err(Box::new(fetch));
            }
        }
        match self.jobs.try_send(Job::Fetch(Box::new(fetch))) {
            Ok(()) => Ok(()),
            Err(
                TrySendError::Full(Job::Fetch(fetch))
                | TrySendError::Disconnected(Job::Fetch(fetch)),
            ) => Err(fetch),
            Err(_) => unreachable!("the job sent is a fetch"),
        }
    }

    fn send(&self, job: Job) -> bool {
        self.jobs.try_send(job).is_ok()
    }
}

/// Takes the lock on `dir`, or says who holds it.
fn lock(dir: &Path, holder: &str) -> Result<File, OpenError> {
    let path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|error| OpenError::Directory(dir.to_owned(), error))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            let mut other = String::new();
            let _ = file.read_to_string(&mut other);
            let other = other.trim();
            let other = if other.is_empty() {
                "it did not say who it is"
            } else {
                other
            };
            return Err(OpenError::Locked(dir.to_owned(), other.to_owned()));
        }
        Err(fs::TryLockError::Error(error)) => {
            return Err(OpenError::Directory(dir.to_owned(), error));
        }
    }
    let written = file
        .set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{holder}"))
        .and_then(|()| file.flush());
    written.map_err(|error| OpenError::Directory(dir.to_owned(), error))?;
    Ok(file)
}

/// Opens the database file, checking that it is one before anything writes to it.
pub(crate) fn open_file(path: &Path, sync: SyncMode) -> Result<Connection, OpenError> {
    let database = |error| OpenError::Database(path.to_owned(), error);
    let connection = Connection::open(path).map_err(database)?;
    // The first read: a file that is not a database fails here, before any write.
    match connection.query_row("SELECT count(*) FROM sqlite_schema", [], |row| {
        row.get::<_, i64>(0)
    }) {
        Ok(_) => {}
        Err(rusqlite::Error::SqliteFailure(error, message))
            if matches!(
                error.code,
                rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt
            ) =>
        {
            let why = message.unwrap_or_else(|| error.to_string());
            return Err(OpenError::NotADatabase(path.to_owned(), why));
        }
        Err(error) => return Err(database(error)),
    }
    // Refused before anything is written: setting the journal mode below writes to the file.
    check_version(&connection, path)?;
    // WAL: readers do not block the writer, and a commit is one append to the log. NORMAL
    // syncs the log at checkpoints, not at every commit: a process that dies loses nothing
    // committed (the log is in the kernel's hands), a machine that loses power may lose the
    // last commits. FULL syncs the log at every commit: nothing committed is lost, at the
    // cost of a disk flush per commit. See docs/STORAGE.md.
    connection
        .pragma_update(None, "journal_mode", "WAL")
        .and_then(|()| connection.pragma_update(None, "synchronous", sync.pragma()))
        .and_then(|()| connection.busy_timeout(BUSY_TIMEOUT))
        .map_err(database)?;
    Ok(connection)
}

/// The database's schema version, refusing one newer than this build's.
fn check_version(connection: &Connection, path: &Path) -> Result<i64, OpenError> {
    let version: i64 = connection
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(|error| OpenError::Database(path.to_owned(), error))?;
    if version > SCHEMA_VERSION {
        return Err(OpenError::Newer(path.to_owned(), version));
    }
    Ok(version)
}

/// Brings the schema up to [`SCHEMA_VERSION`], refusing a newer one.
fn migrate(connection: &Connection, path: &Path) -> Result<(), OpenError> {
    let database = |error| OpenError::Database(path.to_owned(), error);
    let version = check_version(connection, path)?;
    for (from, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let to = from as i64 + 1;
        connection
            .execute_batch(&format!(
                "BEGIN; {migration}; PRAGMA user_version = {to}; COMMIT;"
            ))
            .map_err(database)?;
    }
    fill_keys(connection).map_err(database)
}

/// Gives every room without a key its name's key (see `chat_core::NameKey`), and makes keys
/// unique. Two rooms kept apart before keys (`#room1` and `#rooml`, whose names look alike)
/// cannot share one: the later keeps its lines under a key of its own (`KEY#ID`), found by no
/// name, and the log says so.
fn fill_keys(connection: &Connection) -> rusqlite::Result<()> {
    let unkeyed: Vec<(i64, String)> = connection
        .prepare("SELECT id, name FROM rooms WHERE key IS NULL ORDER BY id")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    if !unkeyed.is_empty() {
        connection.execute_batch("BEGIN")?;
        for (id, name) in unkeyed {
            let key = crate::name_key(&name);
            let taken: bool = connection.query_row(
                "SELECT count(*) > 0 FROM rooms WHERE key = ?1",
                [&key],
                |row| row.get(0),
            )?;
            let key = if taken {
                crate::log::warn!(
                    "store: room {name} looks like a room kept before it; its lines are kept \
                     apart, and no name finds them"
                );
                format!("{key}#{id}")
            } else {
                key
            };
            connection.execute("UPDATE rooms SET key = ?2 WHERE id = ?1", params![id, key])?;
        }
        connection.execute_batch("COMMIT")?;
    }
    connection.execute_batch("CREATE UNIQUE INDEX IF NOT EXISTS rooms_key ON rooms (key)")
}

/// What an earlier run left for the core.
fn restore(connection: &Connection) -> rusqlite::Result<Restored> {
    let mut statement = connection.prepare(
        "SELECT name, topic, coalesce(topic_by, ''), coalesce(topic_at, 0) FROM rooms
         WHERE topic IS NOT NULL AND topic != '' ORDER BY id",
    )?;
    let topics = statement
        .query_map([], |row| {
            Ok(StoredTopic {
                room: row.get(0)?,
                topic: row.get(1)?,
                by: row.get(2)?,
                at: Instant::from_millis(row.get::<_, i64>(3)?.max(0) as u64),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let founders = connection
        .prepare("SELECT name, founder FROM rooms WHERE founder IS NOT NULL ORDER BY id")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let bans = connection
        .prepare(
            "SELECT rooms.name, bans.mask, bans.by, bans.at, bans.until, bans.list
             FROM bans JOIN rooms ON rooms.id = bans.room ORDER BY bans.rowid",
        )?
        .query_map([], |row| {
            Ok((
                row.get(0)?,
                row.get::<_, String>(5)?,
                StoredBan {
                    mask: row.get(1)?,
                    by: row.get(2)?,
                    at: millis(row.get(3)?),
                    until: row.get::<_, Option<i64>>(4)?.map(millis),
                },
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?
        .into_iter()
        // A list this build does not know (written by a newer one) is left out, not misread.
        .filter_map(|(room, list, ban)| Some((room, list_of_letter(&list)?, ban)))
        .collect();
    let modes = connection
        .prepare(
            "SELECT name, coalesce(modes, ''), room_key, user_limit FROM rooms
             WHERE modes IS NOT NULL OR room_key IS NOT NULL OR user_limit IS NOT NULL
             ORDER BY id",
        )?
        .query_map([], |row| {
            Ok(StoredModes {
                room: row.get(0)?,
                modes: row.get(1)?,
                key: row.get(2)?,
                limit: row.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let server_bans = connection
        .prepare("SELECT mask, by, at, until, reason FROM server_bans ORDER BY rowid")?
        .query_map([], |row| {
            Ok((
                StoredBan {
                    mask: row.get(0)?,
                    by: row.get(1)?,
                    at: millis(row.get(2)?),
                    until: row.get::<_, Option<i64>>(3)?.map(millis),
                },
                row.get(4)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    // Private messages draw their ids from the same numbering as room lines: numbering goes on
    // after the last of either, so no new message takes a number kept before.
    let (last_seq, lines): (i64, i64) = connection.query_row(
        "SELECT max(coalesce((SELECT max(seq) FROM lines), 0),
                    coalesce((SELECT max(seq) FROM private_lines), 0)),
                (SELECT count(*) FROM lines)",
        [],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    let rooms: i64 = connection.query_row("SELECT count(*) FROM rooms", [], |row| row.get(0))?;
    let mut statement = connection.prepare(
        "SELECT rooms.name, max(lines.seq) FROM lines JOIN rooms ON rooms.id = lines.room
         GROUP BY lines.room",
    )?;
    let last_in_room = statement
        .query_map([], |row| {
            Ok((
                crate::name_key(&row.get::<_, String>(0)?),
                row.get::<_, i64>(1)?.max(0) as u64,
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Restored {
        topics,
        founders,
        bans,
        modes,
        server_bans,
        last_in_room,
        last_seq: last_seq.max(0) as u64,
        rooms: rooms.max(0) as u64,
        lines: lines.max(0) as u64,
    })
}

/// Unix milliseconds as kept, as the core's time (a negative one as 0).
fn millis(millis: i64) -> Instant {
    Instant::from_millis(millis.max(0) as u64)
}

/// How many lines each room keeps, by room id, for pruning.
fn counts(connection: &Connection) -> rusqlite::Result<std::collections::HashMap<i64, u64>> {
    let mut statement = connection.prepare("SELECT room, count(*) FROM lines GROUP BY room")?;
    statement
        .query_map([], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?.max(0) as u64))
        })?
        .collect()
}

/// The store thread's state.
struct Worker {
    connection: Connection,
    keep: u64,
    /// How long private messages are kept (`--private-history-days`), and when they were last
    /// pruned.
    private_keep: Duration,
    private_pruned: Option<std::time::Instant>,
    /// Lines kept per room id.
    counts: std::collections::HashMap<i64, u64>,
    /// Room ids by their name's key, so that a line costs one statement, not three.
    ids: std::collections::HashMap<String, i64>,
    in_transaction: bool,
    /// The first error in the open transaction: it is rolled back at the commit.
    failed: Option<String>,
    /// The last commit failed (the hub was told); the next that succeeds says `Recovered`.
    failing: bool,
    replies: smol::channel::Sender<Reply>,
}

impl Worker {
    fn run(mut self, jobs: Receiver<Job>) {
        while let Ok(job) = jobs.recv() {
            match job {
                Job::Batch { writes, commit } => {
                    for write in writes {
                        match write {
                            Gathered::Line { room, line } => {
                                self.write(|worker| worker.insert(&room, &line));
                            }
                            Gathered::Topic(topic) => self.write(|worker| worker.set_topic(&topic)),
                            Gathered::Private(private) => {
                                self.write(|worker| worker.insert_private(&private));
                            }
                            Gathered::Moderation(change) => {
                                self.write(|worker| worker.keep_moderation(&change));
                            }
                        }
                    }
                    let Some(number) = commit else {
                        continue;
                    };
                    self.commit();
                    if self
                        .replies
                        .send_blocking(Reply::Committed(number))
                        .is_err()
                    {
                        return;
                    }
                }
                Job::Fetch(fetch) => {
                    let answer = self
                        .fetch(&fetch.1, fetch.2.as_deref())
                        .map_err(|error| error.to_string());
                    if self
                        .replies
                        .send_blocking(Reply::Fetched(fetch, answer))
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
        // The hub has gone: what is handed over is committed before the thread ends.
        self.commit();
    }

    /// Runs `write` inside the open transaction (beginning one), unless it already failed.
    fn write(&mut self, write: impl FnOnce(&mut Self) -> rusqlite::Result<()>) {
        if self.failed.is_some() {
            return;
        }
        if !self.in_transaction {
            if let Err(error) = self.connection.execute_batch("BEGIN") {
                self.failed = Some(error.to_string());
                return;
            }
            self.in_transaction = true;
        }
        if let Err(error) = write(self) {
            self.failed = Some(error.to_string());
        }
    }

    fn commit(&mut self) {
        if !self.in_transaction {
            return;
        }
        self.in_transaction = false;
        let result = match self.failed.take() {
            Some(error) => Err(error),
            None => self
                .connection
                .execute_batch("COMMIT")
                .map_err(|error| error.to_string()),
        };
        match result {
            Ok(()) => {
                if std::mem::take(&mut self.failing) {
                    let _ = self.replies.send_blocking(Reply::Recovered);
                }
                self.prune();
            }
            Err(error) => {
                let _ = self.connection.execute_batch("ROLLBACK");
                // A room made in the transaction is gone with it.
                self.ids.clear();
                // Counts may be off by the lines rolled back: read them again.
                if let Ok(counts) = counts(&self.connection) {
                    self.counts = counts;
                }
                if !std::mem::replace(&mut self.failing, true) {
                    let _ = self.replies.send_blocking(Reply::Failed(error));
                }
            }
        }
    }

    fn room_id(&mut self, room: &str) -> rusqlite::Result<i64> {
        let key = crate::name_key(room);
        if let Some(&id) = self.ids.get(&key) {
            return Ok(id);
        }
        // The name is the first spelling kept; another spelling of it finds the same row.
        self.connection
            .prepare_cached("INSERT INTO rooms (name, key) VALUES (?1, ?2) ON CONFLICT DO NOTHING")?
            .execute([room, &key])?;
        let id = self
            .connection
            .prepare_cached("SELECT id FROM rooms WHERE key = ?1")?
            .query_row([&key], |row| row.get(0))?;
        self.ids.insert(key, id);
        Ok(id)
    }

    /// Keeps `line` under its number in `room`, in place of one kept under that number before
    /// (a line kept twice, fetched from Redis and heard too, say). Only a new number counts
    /// towards the room's kept lines.
    fn insert(&mut self, room: &str, line: &StoredLine) -> rusqlite::Result<()> {
        let id = self.room_id(room)?;
        let values = params![
            id,
            line.seq as i64,
            line.at.as_millis() as i64,
            kind_number(line.kind),
            line.nick,
            line.text
        ];
        let added = self
            .connection
            .prepare_cached(
                "INSERT OR IGNORE INTO lines (room, seq, at, kind, nick, text)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(values)?;
        if added == 0 {
            self.connection
                .prepare_cached(
                    "UPDATE lines SET at = ?3, kind = ?4, nick = ?5, text = ?6
                     WHERE room = ?1 AND seq = ?2",
                )?
                .execute(values)?;
            return Ok(());
        }
        *self.counts.entry(id).or_default() += 1;
        Ok(())
    }

    fn set_topic(&mut self, topic: &StoredTopic) -> rusqlite::Result<()> {
        let id = self.room_id(&topic.room)?;
        self.connection
            .prepare_cached(
                "UPDATE rooms SET topic = ?2, topic_by = ?3, topic_at = ?4 WHERE id = ?1",
            )?
            .execute(params![
                id,
                topic.topic,
                topic.by,
                topic.at.as_millis() as i64
            ])?;
        Ok(())
    }

    /// Keeps a private message for its owner (kept once, whatever its retries).
    fn insert_private(&mut self, private: &StoredPrivate) -> rusqlite::Result<()> {
        let line = &private.line;
        self.connection
            .prepare_cached(
                "INSERT OR IGNORE INTO private_lines (owner, peer, seq, at, kind, nick, target, text)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                private.owner,
                private.peer,
                line.seq as i64,
                line.at.as_millis() as i64,
                kind_number(line.kind),
                line.nick,
                line.to.as_deref().unwrap_or(""),
                line.text
            ])?;
        Ok(())
    }

    fn keep_moderation(&mut self, change: &Moderation) -> rusqlite::Result<()> {
        match change {
            Moderation::Founder { room, founder } => {
                let id = self.room_id(room)?;
                self.connection
                    .prepare_cached("UPDATE rooms SET founder = ?2 WHERE id = ?1")?
                    .execute(params![id, founder])?;
            }
            Moderation::Modes {
                room,
                modes,
                key,
                limit,
            } => {
                let id = self.room_id(room)?;
                // Kept even when empty: no modes at all (`-n`) is not a new room's (`+n`),
                // which a row without modes (NULL) stands for.
                self.connection
                    .prepare_cached(
                        "UPDATE rooms SET modes = ?2, room_key = ?3, user_limit = ?4 WHERE id = ?1",
                    )?
                    .execute(params![id, modes, key, limit])?;
            }
            Moderation::Ban { room, list, ban } => {
                let id = self.room_id(room)?;
                self.connection
                    .prepare_cached(
                        "INSERT INTO bans (room, list, mask, by, at, until)
                         VALUES (?1, ?6, ?2, ?3, ?4, ?5)
                         ON CONFLICT (room, list, mask) DO UPDATE SET until = excluded.until",
                    )?
                    .execute(params![
                        id,
                        ban.mask,
                        ban.by,
                        ban.at.as_millis() as i64,
                        ban.until.map(|until| until.as_millis() as i64),
                        list_letter(*list)
                    ])?;
            }
            Moderation::Removed { room } => {
                // Only a room kept before has anything to forget: no row is made for it.
                self.connection
                    .prepare_cached(
                        "UPDATE rooms SET modes = NULL, room_key = NULL, user_limit = NULL
                         WHERE key = ?1",
                    )?
                    .execute([crate::name_key(room)])?;
            }
            Moderation::ServerBan { ban, reason } => {
                self.connection
                    .prepare_cached(
                        "INSERT INTO server_bans (mask, by, at, until, reason)
                         VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT (mask) DO UPDATE SET until = excluded.until,
                         reason = excluded.reason",
                    )?
                    .execute(params![
                        ban.mask,
                        ban.by,
                        ban.at.as_millis() as i64,
                        ban.until.map(|until| until.as_millis() as i64),
                        reason
                    ])?;
            }
            Moderation::ServerUnban { mask } => {
                self.connection
                    .prepare_cached("DELETE FROM server_bans WHERE mask = ?1")?
                    .execute([mask])?;
            }
            Moderation::Unban { room, list, mask } => {
                let id = self.room_id(room)?;
                self.connection
                    .prepare_cached("DELETE FROM bans WHERE room = ?1 AND list = ?3 AND mask = ?2")?
                    .execute(params![id, mask, list_letter(*list)])?;
            }
        }
        Ok(())
    }

    /// Deletes the oldest lines of rooms past `keep` by more than [`PRUNE_SLACK`], in a
    /// transaction of its own. A failure is only tried again later.
    fn prune(&mut self) {
        // Private messages past their retention, at most once a minute (by time, through
        // the index on `at`).
        if self
            .private_pruned
            .is_none_or(|pruned| pruned.elapsed() >= PRIVATE_PRUNE_EVERY)
        {
            self.private_pruned = Some(std::time::Instant::now());
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            let oldest = now.saturating_sub(self.private_keep).as_millis() as i64;
            let _ = self
                .connection
                .execute("DELETE FROM private_lines WHERE at < ?1", [oldest]);
        }
        let over: Vec<i64> = self
            .counts
            .iter()
            .filter(|&(_, &count)| count > self.keep + PRUNE_SLACK)
            .map(|(&room, _)| room)
            .collect();
        for room in over {
            let excess = self.counts.get(&room).copied().unwrap_or(0) - self.keep;
            // The first line to keep, found from the old end: a walk over the excess (a few
            // hundred lines), not over the lines kept.
            let deleted = self.connection.execute(
                "DELETE FROM lines WHERE room = ?1 AND seq < (
                     SELECT seq FROM lines WHERE room = ?1 ORDER BY seq LIMIT 1 OFFSET ?2
                 )",
                params![room, excess as i64],
            );
            if let Ok(deleted) = deleted {
                let count = self.counts.entry(room).or_default();
                *count = count.saturating_sub(deleted as u64);
            }
        }
    }

    fn fetch(
        &self,
        request: &HistoryRequest,
        peer: Option<&str>,
    ) -> rusqlite::Result<Vec<StoredLine>> {
        let scope = match request.target() {
            HistoryTarget::Room(room) => {
                let Some(room): Option<i64> = self
                    .connection
                    .prepare_cached("SELECT id FROM rooms WHERE key = ?1")?
                    .query_row([crate::name_key(room.as_str())], |row| row.get(0))
                    .optional()?
                else {
                    return Ok(Vec::new());
                };
                Scope::Room(room)
            }
            HistoryTarget::Private { account, .. } => {
                let Some(peer) = peer else {
                    return Ok(Vec::new());
                };
                Scope::Private(crate::name_key(account.as_str()), peer.to_owned())
            }
            _ => return Ok(Vec::new()),
        };
        let scope = &scope;
        let limit = request.limit() as i64;
        // Every range comes down to sequence numbers: `from` is the first line at or after a
        // mark, `past` the first line after it.
        let from = |mark| self.first_seq(scope, mark, false);
        let past = |mark| self.first_seq(scope, mark, true);
        match request.range() {
            HistoryRange::Before(mark) => self.lines_before(scope, from(mark)?, limit),
            HistoryRange::LatestAfter(mark) => {
                let start = past(mark)?;
                let mut lines = self.lines_before(scope, i64::MAX, limit)?;
                lines.retain(|line| line.seq as i64 >= start);
                Ok(lines)
            }
            HistoryRange::After(mark) => self.lines_from(scope, past(mark)?, i64::MAX, limit),
            HistoryRange::Around(mark) => {
                let middle = from(mark)?;
                let earlier = self.lines_before(scope, middle, limit / 2)?;
                let later =
                    self.lines_from(scope, middle, i64::MAX, limit - earlier.len() as i64)?;
                Ok(earlier.into_iter().chain(later).collect())
            }
            HistoryRange::Between(a, b) => {
                let (from_a, from_b) = (from(a)?, from(b)?);
                let (start, end) = (past(a)?.min(past(b)?), from_a.max(from_b));
                if from_a > from_b {
                    // Asked backwards: the lines nearest the first mark, the later one.
                    self.lines_last(scope, start, end, limit)
                } else {
                    self.lines_from(scope, start, end, limit)
                }
            }
            // `Latest`, and any range added later: the last lines.
            _ => self.lines_before(scope, i64::MAX, limit),
        }
    }

    /// The first sequence number at or after `mark` (after it, if `past`).
    fn first_seq(&self, scope: &Scope, mark: HistoryMark, past: bool) -> rusqlite::Result<i64> {
        Ok(match mark {
            HistoryMark::Seq(seq) => (seq as i64).saturating_add(i64::from(past)),
            HistoryMark::At(at) => {
                let (from, next, mut values) = scope.sql();
                let sql = format!(
                    "SELECT min(seq) {from} AND at {} ?{next}",
                    if past { ">" } else { ">=" }
                );
                values.push(Value::Integer(at.as_millis() as i64));
                self.connection
                    .prepare_cached(&sql)?
                    .query_row(rusqlite::params_from_iter(values), |row| {
                        row.get::<_, Option<i64>>(0)
                    })?
                    .unwrap_or(i64::MAX)
            }
            _ => i64::MAX,
        })
    }

    /// The last `limit` lines before `end`, oldest first.
    fn lines_before(
        &self,
        scope: &Scope,
        end: i64,
        limit: i64,
    ) -> rusqlite::Result<Vec<StoredLine>> {
        self.lines_last(scope, i64::MIN, end, limit)
    }

    /// The last `limit` lines from `start` and before `end`, oldest first.
    fn lines_last(
        &self,
        scope: &Scope,
        start: i64,
        end: i64,
        limit: i64,
    ) -> rusqlite::Result<Vec<StoredLine>> {
        let mut lines = self.select(scope, start, end, limit, "DESC")?;
        lines.reverse();
        Ok(lines)
    }

    /// The first `limit` lines from `start` and before `end`, oldest first.
    fn lines_from(
        &self,
        scope: &Scope,
        start: i64,
        end: i64,
        limit: i64,
    ) -> rusqlite::Result<Vec<StoredLine>> {
        self.select(scope, start, end, limit, "")
    }

    /// At most `limit` lines of `scope` numbered from `start` and below `end`, in the order of
    /// their numbers (`order` "DESC": from the last).
    fn select(
        &self,
        scope: &Scope,
        start: i64,
        end: i64,
        limit: i64,
        order: &str,
    ) -> rusqlite::Result<Vec<StoredLine>> {
        let (from, next, mut values) = scope.sql();
        let sql = format!(
            "SELECT seq, at, kind, nick, text, {} {from} AND seq >= ?{next} AND seq < ?{} \
             ORDER BY seq {order} LIMIT ?{}",
            scope.target_column(),
            next + 1,
            next + 2
        );
        values.extend([start, end, limit].map(Value::Integer));
        self.connection
            .prepare_cached(&sql)?
            .query_map(rusqlite::params_from_iter(values), |row| {
                Ok(StoredLine {
                    seq: row.get::<_, i64>(0)?.max(0) as u64,
                    at: Instant::from_millis(row.get::<_, i64>(1)?.max(0) as u64),
                    kind: kind_of(row.get(2)?),
                    nick: row.get(3)?,
                    text: row.get(4)?,
                    to: row.get(5)?,
                })
            })?
            .collect()
    }
}

/// Whose lines a fetch reads: a room's (by its id), or the private messages kept for an
/// account (by its key) with a peer (by its key).
enum Scope {
    Room(i64),
    Private(String, String),
}

impl Scope {
    /// `FROM table WHERE ...` for its lines, the number of the next free parameter, and the
    /// values of those taken.
    fn sql(&self) -> (&'static str, usize, Vec<Value>) {
        match self {
            Self::Room(room) => ("FROM lines WHERE room = ?1", 2, vec![Value::Integer(*room)]),
            Self::Private(owner, peer) => (
                "FROM private_lines WHERE owner = ?1 AND peer = ?2",
                3,
                vec![Value::Text(owner.clone()), Value::Text(peer.clone())],
            ),
        }
    }

    /// The column of whom a line went to: none for a room's.
    fn target_column(&self) -> &'static str {
        match self {
            Self::Room(_) => "NULL",
            Self::Private(..) => "target",
        }
    }
}

fn kind_number(kind: LineKind) -> i64 {
    match kind {
        LineKind::Action => 1,
        LineKind::Notice => 2,
        _ => 0,
    }
}

fn kind_of(number: i64) -> LineKind {
    match number {
        1 => LineKind::Action,
        2 => LineKind::Notice,
        _ => LineKind::Line,
    }
}

/// The store alone, for `runner/benches/store.rs`: commits `lines` lines into `dir` (or
/// memory), `batch` lines per commit as the hub sends them, syncing as `sync` says, and waits
/// for the last commit. Returns how long that took.
#[doc(hidden)]
pub fn measure_commits(
    dir: Option<&Path>,
    sync: SyncMode,
    lines: u64,
    batch: u64,
    rooms: u64,
) -> Duration {
    let place = match dir {
        Some(dir) => Place::Directory(dir.to_owned()),
        None => Place::Memory,
    };
    let (mut store, restored) =
        Store::open(&place, 10_000, Duration::ZERO, "the store benchmark", sync)
            .expect("opening the store");
    let replies = store.replies();
    let started = std::time::Instant::now();
    let mut seq = restored.last_seq;
    let mut commits = 0;
    let text = "x".repeat(60);
    for n in 0..lines {
        seq += 1;
        store.line(
            &format!("#room{}", n % rooms.max(1)),
            StoredLine {
                seq,
                at: Instant::from_millis(seq),
                kind: LineKind::Line,
                nick: "someone".to_owned(),
                text: text.clone(),
                to: None,
            },
        );
        if (n + 1) % batch.max(1) == 0 || n + 1 == lines {
            commits += 1;
            while !store.commit(commits) {
                // Full: wait for the store thread to take some.
                let _ = replies.recv_blocking();
            }
        }
    }
    while let Ok(reply) = replies.recv_blocking() {
        if matches!(reply, Reply::Committed(number) if number == commits) {
            break;
        }
    }
    started.elapsed()
}

#[cfg(test)]
mod tests {
    use super::{Place, Store, SyncMode};

    #[test]
    fn sync_mode_sets_the_pragma_the_connection_reads_back() {
        for (mode, pragma) in [(SyncMode::Normal, 1), (SyncMode::Full, 2)] {
            let dir = std::env::temp_dir().join(format!(
                "chat-store-unit-sync-{mode}-{}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            let (store, _) = Store::open(
                &Place::Directory(dir.clone()),
                100,
                std::time::Duration::ZERO,
                "a test",
                mode,
            )
            .expect("opening the store");
            assert_eq!(store.synchronous, Some(pragma), "--sync {mode}");
            assert_eq!(store.sync_mode(), Some(Ok(mode)));
            drop(store);
            let _ = std::fs::remove_dir_all(&dir);
        }
        // In memory there is nothing to sync, whatever the flag says.
        let (store, _) = Store::open(
            &Place::Memory,
            100,
            std::time::Duration::ZERO,
            "a test",
            SyncMode::Full,
        )
        .expect("opening the store");
        assert_eq!(store.sync_mode(), None);
    }

    /// A store thread's state on a fresh database in memory, keeping private messages for
    /// `private_keep`, driven by hand.
    fn worker(private_keep: std::time::Duration) -> super::Worker {
        let connection = rusqlite::Connection::open_in_memory().unwrap();
        super::migrate(&connection, std::path::Path::new("memory")).unwrap();
        let (replies, _) = smol::channel::unbounded();
        super::Worker {
            connection,
            keep: 100,
            private_keep,
            private_pruned: None,
            counts: std::collections::HashMap::new(),
            ids: std::collections::HashMap::new(),
            in_transaction: false,
            failed: None,
            failing: false,
            replies,
        }
    }

    #[test]
    fn private_messages_past_their_retention_are_deleted() {
        let mut worker = worker(std::time::Duration::from_secs(24 * 3600));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        for (seq, age_hours) in [(1, 30), (2, 1)] {
            let private = super::StoredPrivate {
                owner: "ann".to_owned(),
                peer: "bob".to_owned(),
                line: super::StoredLine {
                    seq,
                    at: chat_core::Instant::from_millis(now - age_hours * 3600 * 1000),
                    kind: chat_core::LineKind::Line,
                    nick: "ann".to_owned(),
                    text: format!("{age_hours} hours ago"),
                    to: Some("bob".to_owned()),
                },
            };
            worker.insert_private(&private).unwrap();
            // Kept once, however often it comes.
            worker.insert_private(&private).unwrap();
        }
        worker.prune();
        let kept: Vec<String> = worker
            .connection
            .prepare("SELECT text FROM private_lines ORDER BY seq")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(kept, ["1 hours ago"]);
    }

    #[test]
    fn a_line_kept_again_under_its_number_replaces_it_and_counts_once() {
        let mut worker = worker(std::time::Duration::ZERO);
        let line = |seq, text: &str| super::StoredLine {
            seq,
            at: chat_core::Instant::from_millis(seq),
            kind: chat_core::LineKind::Line,
            nick: "ann".to_owned(),
            text: text.to_owned(),
            to: None,
        };
        for seq in 1..=3 {
            worker.insert("#lobby", &line(seq, "first")).unwrap();
        }
        // Fetched from Redis and heard too: the same numbers again.
        for seq in 2..=4 {
            worker.insert("#Lobby", &line(seq, "again")).unwrap();
        }
        let kept: Vec<(i64, String)> = worker
            .connection
            .prepare("SELECT seq, text FROM lines ORDER BY seq")
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            kept,
            [
                (1, "first".to_owned()),
                (2, "again".to_owned()),
                (3, "again".to_owned()),
                (4, "again".to_owned())
            ]
        );
        assert_eq!(worker.counts.values().copied().collect::<Vec<_>>(), [4]);
        assert_eq!(super::counts(&worker.connection).unwrap(), worker.counts);
    }

    #[test]
    fn rooms_kept_before_keys_get_them_and_look_alikes_are_kept_apart() {
        let connection = rusqlite::Connection::open_in_memory().unwrap();
        // A database of schema 1, from before names had keys.
        connection
            .execute_batch(&format!(
                "{} ; PRAGMA user_version = 1;
                 INSERT INTO rooms (name) VALUES ('#Room1'), ('#rooml'), ('#Ærø');
                 INSERT INTO lines VALUES (1, 1, 0, 0, 'ann', 'one'), (2, 1, 0, 0, 'bob', 'ell');",
                super::MIGRATIONS[0]
            ))
            .unwrap();
        super::migrate(&connection, std::path::Path::new("memory")).unwrap();
        let keys: Vec<(String, String)> = connection
            .prepare("SELECT name, key FROM rooms ORDER BY id")
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(keys[0], ("#Room1".to_owned(), crate::name_key("#ROOM1")));
        // `#rooml` looks like `#Room1` (a digit one, a small L): kept apart.
        assert_eq!(
            keys[1],
            (
                "#rooml".to_owned(),
                format!("{}#2", crate::name_key("#room1"))
            )
        );
        assert_eq!(keys[2].1, crate::name_key("#æRØ"));
        // Again: nothing changes.
        super::migrate(&connection, std::path::Path::new("memory")).unwrap();
        let again: i64 = connection
            .query_row(
                "SELECT count(*) FROM rooms WHERE key LIKE '%#2'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(again, 1);
    }

    #[test]
    fn rooms_whose_modes_were_kept_before_there_was_an_n_get_it() {
        let connection = rusqlite::Connection::open_in_memory().unwrap();
        // A database of schema 6: a room with modes, one with a key alone, one with nothing.
        let before: String = super::MIGRATIONS[..6].join(";");
        connection
            .execute_batch(&format!(
                "{before} ; PRAGMA user_version = 6;
                 INSERT INTO rooms (name, modes) VALUES ('#a', 'mt');
                 INSERT INTO rooms (name, room_key) VALUES ('#b', 'beer');
                 INSERT INTO rooms (name, topic) VALUES ('#c', 'hello');"
            ))
            .unwrap();
        super::migrate(&connection, std::path::Path::new("memory")).unwrap();
        let modes: Vec<Option<String>> = connection
            .prepare("SELECT modes FROM rooms ORDER BY id")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(modes, [Some("nmt".into()), Some("n".into()), None]);
        // Again: nothing changes.
        super::migrate(&connection, std::path::Path::new("memory")).unwrap();
        let again: String = connection
            .query_row("SELECT modes FROM rooms WHERE name = '#a'", [], |row| {
                row.get(0)
            })
            .unwrap();
        assert_eq!(again, "nmt");
    }

    #[test]
    fn bans_kept_by_schema_6_become_bans_beside_which_exceptions_are_kept() {
        use super::{Moderation, StoredBan};
        use chat_core::{BanList, Instant};
        let connection = rusqlite::Connection::open_in_memory().unwrap();
        // A database of schema 6, with two bans kept in this order.
        let mut schema = super::MIGRATIONS[..6].join(";");
        schema.push_str(&format!(
            "; PRAGMA user_version = 6;
             INSERT INTO rooms (name, key) VALUES ('#Den', '{}');
             INSERT INTO bans VALUES (1, 'zed!*@*', 'ann', 5, NULL);
             INSERT INTO bans VALUES (1, 'amy!*@*', 'ann', 6, 9000);",
            crate::name_key("#Den")
        ));
        connection.execute_batch(&schema).unwrap();
        super::migrate(&connection, std::path::Path::new("memory")).unwrap();
        let version: i64 = connection
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        assert_eq!(version, super::SCHEMA_VERSION);
        let ban = |mask: &str, at: u64, until: Option<u64>| StoredBan {
            mask: mask.into(),
            by: "ann".into(),
            at: Instant::from_millis(at),
            until: until.map(Instant::from_millis),
        };
        let restored = super::restore(&connection).unwrap();
        assert_eq!(
            restored.bans,
            [
                ("#Den".to_owned(), BanList::Bans, ban("zed!*@*", 5, None)),
                (
                    "#Den".to_owned(),
                    BanList::Bans,
                    ban("amy!*@*", 6, Some(9000))
                ),
            ]
        );
        // One mask on every list: three rows; lifting the exception leaves the others.
        let mut worker = super::Worker {
            connection,
            ..worker(std::time::Duration::from_secs(60))
        };
        for list in [BanList::Exceptions, BanList::InviteExceptions] {
            worker
                .keep_moderation(&Moderation::Ban {
                    room: "#den".into(),
                    list,
                    ban: ban("ZED!*@*", 7, None),
                })
                .unwrap();
        }
        worker
            .keep_moderation(&Moderation::Unban {
                room: "#den".into(),
                list: BanList::Exceptions,
                mask: "zed!*@*".into(),
            })
            .unwrap();
        let restored = super::restore(&worker.connection).unwrap();
        let lists: Vec<_> = restored
            .bans
            .iter()
            .map(|(room, list, ban)| (room.as_str(), *list, ban.mask.as_str()))
            .collect();
        assert_eq!(
            lists,
            [
                ("#Den", BanList::Bans, "zed!*@*"),
                ("#Den", BanList::Bans, "amy!*@*"),
                ("#Den", BanList::InviteExceptions, "ZED!*@*"),
            ]
        );
        // A list this build does not know is left out, not taken for a ban.
        worker
            .connection
            .execute_batch("INSERT INTO bans VALUES (1, 'q', 'x!*@*', 'ann', 8, NULL)")
            .unwrap();
        assert_eq!(super::restore(&worker.connection).unwrap().bans.len(), 3);
    }

    #[test]
    fn sync_mode_names() {
        assert_eq!(SyncMode::from_name("normal"), Some(SyncMode::Normal));
        assert_eq!(SyncMode::from_name("full"), Some(SyncMode::Full));
        assert_eq!(SyncMode::from_name("off"), None);
        assert_eq!(SyncMode::from_name(""), None);
        assert_eq!(SyncMode::default(), SyncMode::Normal);
    }
}
