//! The command line.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use argh::FromArgs;
use chat_core::{Config, FloodLimit};
use chat_runner::{ClusterSettings, ClusterSettingsError, Settings, SyncMode};
use serde::{Deserialize, Serialize};

/// Where the store lives unless `--data` or `--no-data` says otherwise.
const DEFAULT_DATA_DIR: &str = "chat-data";

/// A terminal chat server, and its client. As a server (the default), people connect with
/// `nc HOST PORT`, `telnet HOST PORT` or `chat-runner --connect HOST:PORT`, pick a nickname with
/// /nick, and talk; /help lists the commands.
#[derive(FromArgs, Clone, Debug, Default, Deserialize)]
// The config file (`--config`) is read into this struct too: each server flag is a key named
// like it (`max-per-ip = 16`); the client's and the one-shot flags are no keys (`skip`).
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
// These doc comments are the --help text, where `[::1]` is an IPv6 address, not a doc link.
#[allow(rustdoc::broken_intra_doc_links)]
pub(crate) struct Args {
    /// print "chat-runner VERSION" and exit
    #[argh(switch)]
    #[serde(skip)]
    pub(crate) version: bool,

    /// read the server's settings from this TOML file first: every server flag is a key named
    /// like it without the dashes in front (listen = "0.0.0.0:9999", max-per-ip = 16,
    /// no-data = true); flags given on the command line override the file. See README.md
    #[argh(option)]
    #[serde(skip)]
    pub(crate) config: Option<PathBuf>,

    /// print the effective configuration (the file, the flags and the defaults) as TOML, in
    /// the --config format, and exit
    #[argh(switch)]
    #[serde(skip)]
    pub(crate) print_config: bool,

    /// where to listen: a port (on every IPv4 interface), or HOST:PORT such as 127.0.0.1:9999 or
    /// [::1]:9999; port 0 picks a free port. The address actually bound is printed on stdout.
    /// Default: 9999, unless --tls-listen is given (then only TLS is served, unless --listen is
    /// given too)
    #[argh(option)]
    pub(crate) listen: Option<String>,

    /// also (or, without --listen, only) listen for TLS connections here, in the same forms
    /// as --listen: every dialect (plain text, IRC, JSON) inside TLS, the same chat as the
    /// plain port. Needs --tls-cert and --tls-key; the address bound is printed on stdout
    /// ("chat-runner listening for TLS on ADDR"). Default: no TLS
    #[argh(option)]
    pub(crate) tls_listen: Option<String>,

    /// with --tls-listen: the server's certificate chain, PEM (its own certificate first, then
    /// any intermediates). Read again, with --tls-key, on SIGHUP: new connections get the new
    /// certificate, and a file that cannot be used is logged and the old certificate kept
    #[argh(option)]
    pub(crate) tls_cert: Option<PathBuf>,

    /// with --tls-listen: the certificate's private key, PEM (PKCS#8, PKCS#1 or SEC1)
    #[argh(option)]
    pub(crate) tls_key: Option<PathBuf>,

    /// with --tls-listen: seconds a new TLS connection has to complete its handshake before it
    /// is closed (fractions allowed, above 0, at most 300). Default: 10
    #[argh(option)]
    pub(crate) tls_handshake_timeout: Option<f64>,

    /// close a connection that sends no line within this many seconds of connecting; 0 never
    /// does. Default: 300
    #[argh(option)]
    pub(crate) silence_timeout: Option<u64>,

    /// messages that may wait for a client that is not reading before room messages are
    /// skipped for it: it is shown as lagging, and told how many it missed once it has caught
    /// up. At least 1, at most --queue-limit. Default: a quarter of --queue-limit (256)
    #[argh(option)]
    pub(crate) lag_limit: Option<usize>,

    /// messages that may wait for a client that is not reading, once room messages are
    /// skipped: a private message that would reach it is not sent, and its sender told; a
    /// client whose own commands' replies reach it is disconnected. Default: 1024
    #[argh(option)]
    pub(crate) queue_limit: Option<usize>,

    /// disconnect a client when nothing could be written to it for this many seconds; 0 never
    /// does. Default: 60
    #[argh(option)]
    pub(crate) stall_timeout: Option<u64>,

    /// the most connections at once, from 1 to 1048576; more are told the server is full.
    /// Memory grows with the connections held, not with this number. Default: 16384
    #[argh(option)]
    pub(crate) max_clients: Option<usize>,

    /// the most connections from one IP address; more are refused with a reason; 0 for no
    /// limit. Default: 128
    #[argh(option)]
    pub(crate) max_per_ip: Option<u32>,

    /// how many of a room's last lines are replayed to whoever joins it, marked with how long
    /// ago they were said; 0 for none, 500 at most. Default: 20
    #[argh(option)]
    pub(crate) history: Option<usize>,

    /// the directory for the store (rooms, topics and history, in chat.db); made if missing,
    /// and locked while the server runs. Default: chat-data in the working directory
    #[argh(option)]
    pub(crate) data: Option<PathBuf>,

    /// keep nothing on disk: history (and accounts) live in memory and are gone when the
    /// server stops
    #[argh(switch)]
    pub(crate) no_data: bool,

    /// seconds someone going by a registered nickname has to /identify before they are
    /// renamed anonymous-N. Default: 60
    #[argh(option)]
    pub(crate) nick_grace: Option<u64>,

    /// an account whose people are server operators once identified as it: they keep order in
    /// every room (kick, ban, modes, invitations) and come into any room past its bans, key,
    /// limit and invite-only mode. Repeat for more (at most 32); in the config file a list
    /// (oper = ["alice", "bob"]). With --cluster the accounts are the cluster's, and each node
    /// has its own list. IRC clients identify as one with OPER NAME PASSWORD. Default: none
    #[argh(option)]
    pub(crate) oper: Vec<String>,

    /// a file of server operators' accounts, a line "NAME HASH" each (HASH: the password's
    /// Argon2 hash, as --hash-password prints it; # starts a comment): each NAME is an
    /// operator, as with --oper, and its account is made at start with that password, or
    /// given it if it exists. Read at start; keep it readable by the server's user only.
    /// Default: none
    #[argh(option)]
    pub(crate) oper_file: Option<PathBuf>,

    /// read a password from stdin (one line; a terminal echoes what is typed, so pipe it in),
    /// print its Argon2id hash for --oper-file, and exit; the password is not printed or
    /// logged
    #[argh(switch)]
    #[serde(skip)]
    pub(crate) hash_password: bool,

    /// how many lines the store keeps per room; older ones are deleted. Default: 10000
    #[argh(option)]
    pub(crate) history_keep: Option<u64>,

    /// days the store keeps private messages, for the identified accounts that sent or
    /// received them (IRC clients read them with CHATHISTORY on a nickname); 0 keeps none. At
    /// most 3650. Default: 30
    #[argh(option)]
    pub(crate) private_history_days: Option<u64>,

    /// how the store syncs commits to the disk: normal (a crash of the process loses nothing,
    /// a power loss may lose the last commits) or full (every commit synced to the disk,
    /// survives a power loss, costs a disk flush per commit). No effect with --no-data.
    /// Default: normal
    #[argh(option)]
    pub(crate) sync: Option<String>,

    /// cluster mode: share the chat with the other chat-runner nodes that use the Redis at URL
    /// (redis://[:PASSWORD@]HOST[:PORT][/DB]): the same rooms, room lines in one order on every
    /// node, private messages, listings, and a nickname one person's across every node. Needs
    /// --node. The server waits up to 5 s for Redis at start, and exits if it cannot reach it;
    /// if it loses Redis later it serves its own people and tells them. Default: a server on
    /// its own
    #[argh(option)]
    pub(crate) cluster: Option<String>,

    /// this node's name in the cluster, for the logs and Redis: 1 to 32 ASCII letters, digits,
    /// '-', '_' and '.'; a suffix new at each start is added. Required with --cluster, refused
    /// without it
    #[argh(option)]
    pub(crate) node: Option<String>,

    /// with --cluster: seconds this node outlives itself on the others. It renews its lease
    /// every third of this; if it dies, or cannot reach Redis, for this long, its people leave
    /// the other nodes and its nicknames come free. 1 to 300. Default: 15
    #[argh(option)]
    pub(crate) lease: Option<u64>,

    /// serve metrics for Prometheus over HTTP at http://ADDR/metrics: connections, people,
    /// rooms, lines in and out, slow readers, flood holds, disconnects, the hub's turn times,
    /// the store's commits and the cluster's traffic (docs/METRICS.md lists them). ADDR is
    /// HOST:PORT, e.g. 127.0.0.1:9100; port 0 picks a free port, logged at start. Anyone who
    /// can reach ADDR can read them: bind to loopback or a private network. Default: off
    #[argh(option)]
    pub(crate) metrics: Option<SocketAddr>,

    /// how the server's log lines on stderr are written: text ("2026-11-25 20:10:11Z
    /// MESSAGE") or json, one object a line for log shippers
    /// ({"time":"2026-11-25T20:10:11Z","msg":"MESSAGE"}). Default: text
    #[argh(option)]
    pub(crate) log_format: Option<String>,

    /// how much the server logs: error (what it needs and lacks: the store, Redis), warn (and
    /// whoever is refused or cut off: refused connections, dropped slow clients), info (and
    /// what an operator reads at any time: start, reloads, lagging clients) or debug (and every
    /// connect, nickname change and disconnect). Changes on SIGHUP with --config. Default: info
    #[argh(option)]
    pub(crate) log_level: Option<String>,

    /// the message of the day: a UTF-8 text file whose lines IRC clients are sent on
    /// registering (and on /motd), and whose first line plain-text users see after the
    /// welcome. At most 32 lines of 200 bytes are kept (the log says what was cut); control
    /// characters are shown as escapes. Read again on SIGHUP (a file that cannot be read then
    /// is logged and the old message kept). Default: a built-in message for IRC clients
    #[argh(option)]
    pub(crate) motd: Option<PathBuf>,

    /// flood control: lines a client may send at once before being slowed. Default: 20
    #[argh(option)]
    pub(crate) flood_burst: Option<u32>,

    /// flood control: lines a second a client may send after its burst; faster input is held
    /// back (never dropped) and the sender told once. Default: 5
    #[argh(option)]
    pub(crate) flood_rate: Option<u32>,

    /// turn flood control off, for trusted networks
    #[argh(switch)]
    pub(crate) no_flood_limit: bool,

    /// the most people in one room; joining a full room gets an error. Default: no limit
    /// beyond the server's capacity (16384)
    #[argh(option)]
    pub(crate) max_room_members: Option<u32>,

    /// milliseconds a new connection waits for the plain-text welcome; an IRC client (whose
    /// first line is NICK, USER, CAP or PASS) registers within it and never gets that welcome;
    /// 0 welcomes at once. Default: 400
    #[argh(option)]
    pub(crate) greeting_delay: Option<u64>,

    /// the server's name in IRC replies: letters, digits, '.' and '-'. Default: chat.local
    #[argh(option)]
    pub(crate) server_name: Option<String>,

    /// seconds an IRC client may be quiet before it is sent a PING; 0 never pings. (Plain-text
    /// connections are checked with TCP keepalive.) Default: 120
    #[argh(option)]
    pub(crate) ping_interval: Option<u64>,

    /// seconds an IRC client has to answer a PING before it is disconnected. Default: 60
    #[argh(option)]
    pub(crate) ping_timeout: Option<u64>,

    /// rooms with more people than this do not announce joins and departures to plain-text
    /// users (IRC clients still get them). Default: 200
    #[argh(option)]
    pub(crate) announce_limit: Option<u32>,

    /// the most milliseconds (fractions allowed, 0 to 50) lines may wait to be written
    /// together. A busy server writes each client's lines in batches: the more clients the last
    /// batch went to, and the more lines it delivers a second, the longer the next one gathers
    /// (50 µs per client at 1.5 million deliveries a second and above, less below, up to this),
    /// so each write carries more lines and costs less CPU per line, at the price of up to this
    /// much latency: 10 ms where a flush goes to 200 clients, the full interval where it goes to
    /// 600 or more. On a quiet or lightly loaded server lines go out at once. 0 writes every
    /// line at once. Default: 30
    #[argh(option)]
    pub(crate) flush_interval: Option<f64>,

    /// do not put IRC clients in #lobby when they register (everyone else still starts there)
    #[argh(switch)]
    pub(crate) no_irc_lobby: bool,

    /// no ANSI colours: as a server, send plain text; as a client, show it (also when the
    /// NO_COLOR environment variable is set, or stdout is not a terminal)
    #[argh(switch)]
    pub(crate) no_color: bool,

    /// write every input the server's core receives (connections, what they sent, the
    /// times) to FILE, which --replay FILE plays back: a bug report anyone can replay. The
    /// file holds what people wrote. Not with --cluster. Default: no recording
    #[argh(option)]
    pub(crate) record: Option<PathBuf>,

    /// instead of serving, replay a recording made with --record on a fresh core and print,
    /// for each connection, "=== #N: K bytes" and the K bytes it was sent
    #[serde(skip)]
    #[argh(option)]
    pub(crate) replay: Option<PathBuf>,

    /// run as a client instead: connect to HOST:PORT (IPv4, [IPv6] or a host name) with a `>> `
    /// prompt, line editing and history. With stdin not a terminal, sends its lines in order
    /// and exits once the server has answered them.
    #[serde(skip)]
    #[argh(option)]
    pub(crate) connect: Option<String>,

    /// as a client, reconnect with backoff when the server goes away, keeping the nickname
    #[serde(skip)]
    #[argh(switch)]
    pub(crate) reconnect: bool,

    /// as a client, speak TLS to the server (its --tls-listen port), checking its certificate
    /// for HOST (a name, or an IP address) against the public certificate authorities built
    /// into the client (Mozilla's), or against --tls-ca
    #[serde(skip)]
    #[argh(switch)]
    pub(crate) tls: bool,

    /// with --tls: trust the certificate authorities in this PEM file instead of the public
    /// ones, for a server whose certificate comes from a private CA
    #[serde(skip)]
    #[argh(option)]
    pub(crate) tls_ca: Option<PathBuf>,
}

/// Declares [`Options`], the effective server configuration, and [`Args::options`], which
/// makes it from the command line and the config file. Each field is listed once here, in one
/// of three kinds: flags with a default (an `Option` in [`Args`], so that an absent flag is
/// told from one given with the default's value), flags without one, and switches.
macro_rules! options {
    (
        defaulted { $($d:ident: $dty:ty = $dval:expr,)* }
        optional { $($o:ident: $oty:ty,)* }
        switches { $($s:ident,)* }
        lists { $($l:ident: $lty:ty,)* }
    ) => {
        /// The server's effective configuration: the command line over the config file over
        /// the defaults. `--print-config` prints it, in the config file's format.
        #[derive(Debug, Serialize, Deserialize)]
        #[serde(rename_all = "kebab-case")]
        pub(crate) struct Options {
            $(pub(crate) $d: $dty,)*
            $(pub(crate) $o: Option<$oty>,)*
            $(pub(crate) $s: bool,)*
            $(pub(crate) $l: Vec<$lty>,)*
        }

        impl Args {
            /// The effective configuration: each flag given on the command line, else the
            /// file's key, else the default. A switch is on if either turns it on (a flag
            /// cannot turn off a switch the file turns on).
            pub(crate) fn options(&self, file: Self) -> Options {
                Options {
                    $($d: self.$d.clone().or(file.$d).unwrap_or_else(|| $dval),)*
                    $($o: self.$o.clone().or(file.$o),)*
                    $($s: self.$s || file.$s,)*
                    $($l: if self.$l.is_empty() { file.$l } else { self.$l.clone() },)*
                }
            }
        }

        impl Options {
            /// Every config file key that may be unset (no default), by its name in the file.
            const OPTIONAL_KEYS: &[&str] = &[$(stringify!($o),)*];
        }
    };
}

options! {
    defaulted {
        tls_handshake_timeout: f64 = 10.0,
        silence_timeout: u64 = 300,
        queue_limit: usize = 1024,
        stall_timeout: u64 = 60,
        max_clients: usize = chat_runner::DEFAULT_MAX_CLIENTS,
        max_per_ip: u32 = 128,
        history: usize = 20,
        nick_grace: u64 = 60,
        history_keep: u64 = 10_000,
        private_history_days: u64 = 30,
        sync: String = String::from("normal"),
        flood_burst: u32 = 20,
        flood_rate: u32 = 5,
        greeting_delay: u64 = 400,
        server_name: String = String::from("chat.local"),
        ping_interval: u64 = 120,
        ping_timeout: u64 = 60,
        announce_limit: u32 = chat_core::DEFAULT_ANNOUNCE_LIMIT,
        flush_interval: f64 = chat_runner::DEFAULT_FLUSH_INTERVAL.as_secs_f64() * 1_000.0,
        log_format: String = String::from("text"),
        log_level: String = String::from("info"),
    }
    optional {
        listen: String,
        tls_listen: String,
        tls_cert: PathBuf,
        tls_key: PathBuf,
        lag_limit: usize,
        data: PathBuf,
        cluster: String,
        node: String,
        lease: u64,
        metrics: SocketAddr,
        max_room_members: u32,
        record: PathBuf,
        motd: PathBuf,
        oper_file: PathBuf,
    }
    switches {
        no_data,
        no_flood_limit,
        no_irc_lobby,
        no_color,
    }
    lists {
        oper: String,
    }
}

/// The config file keys whose change a running server applies on SIGHUP; a change to any
/// other key takes a restart (and is logged as such). Applying them is `Hub::reconfigure`'s
/// (the limits, the slow-reader policy, the per-address limit, the flush interval), the signal
/// task's (`motd`) and [`Reloading::reload`]'s (the log's). A setting made live later (a list
/// of operators, say) is added here and applied in `Hub::reconfigure`.
const LIVE_KEYS: &[&str] = &[
    "max-clients",
    "max-per-ip",
    "max-room-members",
    "history",
    "flood-burst",
    "flood-rate",
    "no-flood-limit",
    "silence-timeout",
    "greeting-delay",
    "ping-interval",
    "ping-timeout",
    "announce-limit",
    "nick-grace",
    "lag-limit",
    "queue-limit",
    "stall-timeout",
    "flush-interval",
    "motd",
    "log-level",
    "log-format",
    "oper",
];

/// A config file key whose value differs between two configurations.
#[derive(Debug, PartialEq)]
pub(crate) struct Change {
    /// The key, as in the file (`max-per-ip`).
    pub(crate) key: String,
    /// The value before, as TOML, or `(not set)`.
    pub(crate) old: String,
    /// The value now, likewise.
    pub(crate) new: String,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} -> {}", self.key, self.old, self.new)
    }
}

/// The one place a reload's difference is computed: every key whose value differs between
/// `old` and `new`, in key order, split into those a running server applies ([`LIVE_KEYS`])
/// and those that take a restart.
pub(crate) fn live_diff(
    old: &Options,
    new: &Options,
) -> Result<(Vec<Change>, Vec<Change>), String> {
    let (old, new) = (old.table()?, new.table()?);
    let keys: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    let shown = |value: Option<&toml::Value>| {
        value.map_or_else(|| "(not set)".to_owned(), ToString::to_string)
    };
    let changes = keys
        .into_iter()
        .filter(|key| old.get(*key) != new.get(*key))
        .map(|key| Change {
            key: key.clone(),
            old: shown(old.get(key)),
            new: shown(new.get(key)),
        });
    Ok(changes.partition(|change| LIVE_KEYS.contains(&change.key.as_str())))
}

/// What SIGHUP reads the configuration again with: the command line given at start (whose
/// flags still win over the file), the file, the configuration running now, and what the file
/// said when last read (to tell a change the command line overrides).
pub(crate) struct Reloading {
    command_line: Args,
    path: PathBuf,
    running: Options,
    file: Options,
}

impl Reloading {
    /// `file` is what the file held at start, `running` the configuration made of it.
    pub(crate) fn new(command_line: Args, path: PathBuf, file: Args, running: Options) -> Self {
        Self {
            command_line,
            path,
            running,
            file: Args::default().options(file),
        }
    }

    /// Reads the file again: the settings to run with (the running ones with every live key
    /// of the file's), what changed and what takes a restart; or why the file cannot be used,
    /// naming the file (and the line and column, for a file that is not the configuration's
    /// TOML) or the flag whose value is out of range. The log's level and format are set here.
    pub(crate) fn reload(&mut self) -> Result<chat_runner::Reload, String> {
        let file = read_config(&self.path)?;
        let file_alone = Args::default().options(file.clone());
        let read = self.command_line.options(file);
        // The whole file is checked, the keys that take a restart too: a file that would not
        // start the server is refused whole. (The flags were checked at start.)
        let in_file = |message: String| format!("config file {}: {message}", self.path.display());
        read.settings().map_err(in_file)?;
        read.log_format().map_err(in_file)?;
        read.log_level().map_err(in_file)?;
        let (changed, restart) = live_diff(&self.running, &read)?;
        // Keys changed in the file that a flag given at start overrides: said, not applied.
        let (in_file, in_file_restart) = live_diff(&self.file, &file_alone)?;
        let overridden = in_file
            .into_iter()
            .chain(in_file_restart)
            .filter(|change| {
                !changed
                    .iter()
                    .chain(&restart)
                    .any(|other| other.key == change.key)
            })
            .map(|change| {
                format!(
                    "{change} in the file; the command line's --{} wins",
                    change.key
                )
            })
            .collect();
        let mut table = self.running.table()?;
        let new = read.table()?;
        for change in &changed {
            match new.get(&change.key) {
                Some(value) => table.insert(change.key.clone(), value.clone()),
                None => table.remove(&change.key),
            };
        }
        let applied: Options = toml::Value::Table(table)
            .try_into()
            .map_err(|error| format!("bug: a configuration that does not read back: {error}"))?;
        let settings = applied.settings()?;
        chat_runner::set_log_format(applied.log_format()?);
        chat_runner::set_log_level(applied.log_level()?);
        self.running = applied;
        self.file = file_alone;
        Ok(chat_runner::Reload {
            settings,
            changed: changed.iter().map(ToString::to_string).collect(),
            restart: restart.iter().map(ToString::to_string).collect(),
            overridden,
        })
    }
}

impl Options {
    /// The configuration as a TOML table: every key that has a value.
    fn table(&self) -> Result<toml::Table, String> {
        toml::Table::try_from(self).map_err(|error| error.to_string())
    }

    /// The configuration as a config file: every key, those without a value as a comment.
    pub(crate) fn to_toml(&self) -> Result<String, String> {
        let mut text = toml::to_string(self).map_err(|error| error.to_string())?;
        let table: toml::Table = toml::from_str(&text).map_err(|error| error.to_string())?;
        for key in Self::OPTIONAL_KEYS {
            let key = key.replace('_', "-");
            if !table.contains_key(&key) {
                text.push_str(&format!("# {key} = (not set)\n"));
            }
        }
        Ok(text)
    }
}

impl Options {
    /// The server's settings from the flags, or why they are out of range: a message naming
    /// the flag.
    pub(crate) fn settings(&self) -> Result<Settings, String> {
        if self.queue_limit == 0 {
            return Err("--queue-limit must be at least 1".to_owned());
        }
        let Some(lag_limit) = self.lag_limit() else {
            return Err("--lag-limit must be at least 1 and at most --queue-limit".to_owned());
        };
        let Some(flush_interval) = self.flush_interval() else {
            return Err("--flush-interval is in milliseconds, from 0 to 50".to_owned());
        };
        if self.flood_burst == 0 || self.flood_rate == 0 {
            return Err(
                "--flood-burst and --flood-rate must be at least 1 (or use --no-flood-limit)"
                    .to_owned(),
            );
        }
        if self.max_clients == 0 || self.max_clients > chat_runner::MAX_CLIENTS {
            return Err(format!(
                "--max-clients must be between 1 and {}",
                chat_runner::MAX_CLIENTS
            ));
        }
        if self.history > chat_core::MAX_HISTORY_LINES {
            return Err(format!(
                "--history is at most {}",
                chat_core::MAX_HISTORY_LINES
            ));
        }
        if self.private_history_days > 3650 {
            return Err("--private-history-days is at most 3650 (ten years)".to_owned());
        }
        if self.history_keep == 0 {
            return Err("--history-keep must be at least 1".to_owned());
        }
        if self.no_data && self.data.is_some() {
            return Err("--data and --no-data cannot go together".to_owned());
        }
        let data = match (&self.data, self.no_data) {
            (_, true) => None,
            (Some(dir), false) => Some(dir.clone()),
            (None, false) => Some(PathBuf::from(DEFAULT_DATA_DIR)),
        };
        let Some(sync) = SyncMode::from_name(&self.sync) else {
            return Err(format!("--sync {:?}: expected normal or full", self.sync));
        };
        if !(1..=3600).contains(&self.nick_grace) {
            return Err("--nick-grace is in seconds, from 1 to 3600".to_owned());
        }
        if self.max_room_members == Some(0) {
            return Err("--max-room-members must be at least 1".to_owned());
        }
        let server_name = self.server_name()?;
        let cluster = self.cluster()?;
        if cluster.is_some() && self.record.is_some() {
            return Err(
                "--record cannot go with --cluster: a recording does not hold the \
                        cluster's answers to nickname claims"
                    .to_owned(),
            );
        }
        chat_core::account::Operators::new(self.oper.iter().map(String::as_str)).map_err(
            |error| match error {
                chat_core::account::OperatorsError::NotAName(at) => format!(
                    "--oper {:?} is not an account name (a valid nickname)",
                    self.oper[at]
                ),
                error => format!("--oper: {error}"),
            },
        )?;
        // The file's accounts are operators too, after those named by --oper.
        let operator_accounts = match &self.oper_file {
            Some(path) => chat_runner::read_operator_file(path)
                .map_err(|error| format!("--oper-file {}: {error}", path.display()))?,
            None => Vec::new(),
        };
        let mut operators = self.oper.clone();
        let key = |name: &str| chat_core::NameKey::of(name);
        for account in &operator_accounts {
            if !operators.iter().any(|name| key(name) == key(&account.name)) {
                operators.push(account.name.clone());
            }
        }
        chat_core::account::Operators::new(operators.iter().map(String::as_str))
            .map_err(|error| format!("--oper and --oper-file: {error}"))?;
        let core = Config::default()
            .with_colour(!self.no_color)
            .with_silence_timeout(self.silence_timeout())
            .with_max_room_members(self.max_room_members.unwrap_or(u32::MAX))
            .with_max_clients(self.max_clients)
            .with_history(self.history)
            .with_greeting_delay(Duration::from_millis(self.greeting_delay))
            .with_server_name(server_name)
            .with_irc_lobby(!self.no_irc_lobby)
            .with_announce_limit(self.announce_limit)
            .with_nick_grace(Duration::from_secs(self.nick_grace))
            .with_ping(
                (self.ping_interval > 0).then(|| Duration::from_secs(self.ping_interval)),
                Duration::from_secs(self.ping_timeout.max(1)),
            )
            .with_flood_limit((!self.no_flood_limit).then_some(FloodLimit {
                burst: self.flood_burst,
                per_second: self.flood_rate,
            }));
        Ok(Settings {
            core,
            lag_limit,
            queue_limit: self.queue_limit,
            stall_timeout: self.stall_timeout(),
            max_per_address: self.max_per_ip,
            flush_interval,
            record: self.record.clone(),
            data,
            history_keep: self.history_keep,
            private_history: Duration::from_secs(self.private_history_days * 24 * 3600),
            sync,
            cluster,
            metrics: self.metrics,
            motd: self.motd.clone(),
            operators,
            operator_accounts,
        })
    }

    /// The `--cluster`, `--node` and `--lease` values, checked as the server would use them.
    fn cluster(&self) -> Result<Option<ClusterSettings>, String> {
        let Some(url) = &self.cluster else {
            if self.node.is_some() {
                return Err("--node names this node in a cluster: use it with --cluster".to_owned());
            }
            if self.lease.is_some() {
                return Err("--lease is a cluster node's: use it with --cluster".to_owned());
            }
            return Ok(None);
        };
        let Some(node) = &self.node else {
            return Err(
                "--cluster needs --node NAME, this node's name (letters, digits, '-', '_', '.')"
                    .to_owned(),
            );
        };
        let settings = ClusterSettings {
            url: url.clone(),
            node: node.clone(),
            lease: self
                .lease
                .map_or(ClusterSettings::DEFAULT_LEASE, Duration::from_secs),
        };
        match settings.check() {
            Ok(()) => Ok(Some(settings)),
            Err(error @ ClusterSettingsError::Url(_)) => Err(format!("--cluster: {error}")),
            Err(error @ ClusterSettingsError::Node(_)) => Err(format!("--node: {error}")),
            Err(error) => Err(format!("--lease: {error}")),
        }
    }

    /// The `--listen` value as a socket address: 9999 unless told, or none when only
    /// `--tls-listen` is given.
    pub(crate) fn listen_addr(&self) -> Result<Option<SocketAddr>, String> {
        match (&self.listen, &self.tls_listen) {
            (Some(listen), _) => parse_listen(listen, "--listen").map(Some),
            (None, Some(_)) => Ok(None),
            (None, None) => parse_listen(DEFAULT_LISTEN, "--listen").map(Some),
        }
    }

    /// The TLS listener's settings (`--tls-listen`, `--tls-cert`, `--tls-key`,
    /// `--tls-handshake-timeout`), checked but not loaded; `None` without `--tls-listen`.
    pub(crate) fn tls_listen(&self) -> Result<Option<TlsArgs>, String> {
        let Some(listen) = &self.tls_listen else {
            if self.tls_cert.is_some() || self.tls_key.is_some() {
                return Err(
                    "--tls-cert and --tls-key are for the TLS port: use them with --tls-listen"
                        .to_owned(),
                );
            }
            return Ok(None);
        };
        let addr = parse_listen(listen, "--tls-listen")?;
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Err(
                "--tls-listen needs --tls-cert FILE and --tls-key FILE (the server's \
                 certificate chain and its private key, PEM)"
                    .to_owned(),
            );
        };
        if !(self.tls_handshake_timeout > 0.0 && self.tls_handshake_timeout <= 300.0) {
            return Err(
                "--tls-handshake-timeout is in seconds, above 0 and at most 300".to_owned(),
            );
        }
        Ok(Some(TlsArgs {
            addr,
            cert: cert.clone(),
            key: key.clone(),
            handshake_timeout: Duration::from_secs_f64(self.tls_handshake_timeout),
        }))
    }

    /// The `--log-format` value, checked.
    pub(crate) fn log_format(&self) -> Result<chat_runner::LogFormat, String> {
        match self.log_format.as_str() {
            "text" => Ok(chat_runner::LogFormat::Text),
            "json" => Ok(chat_runner::LogFormat::Json),
            other => Err(format!("--log-format {other:?}: expected text or json")),
        }
    }

    /// The `--log-level` value, checked.
    pub(crate) fn log_level(&self) -> Result<chat_runner::LogLevel, String> {
        chat_runner::LogLevel::from_name(&self.log_level).ok_or_else(|| {
            format!(
                "--log-level {:?}: expected error, warn, info or debug",
                self.log_level
            )
        })
    }

    /// The `--server-name` value, checked; kept for the life of the process.
    fn server_name(&self) -> Result<chat_core::ServerName, String> {
        chat_core::ServerName::new(&self.server_name).ok_or_else(|| {
            format!(
                "--server-name {:?}: expected 1 to 63 letters, digits, '.' and '-', starting with a letter or digit",
                self.server_name
            )
        })
    }

    /// The `--lag-limit` value, or its default; `None` if it is out of range.
    fn lag_limit(&self) -> Option<usize> {
        let limit = self.lag_limit.unwrap_or((self.queue_limit / 4).max(1));
        (1..=self.queue_limit).contains(&limit).then_some(limit)
    }

    /// The `--flush-interval` value; `None` if it is out of range.
    fn flush_interval(&self) -> Option<Duration> {
        (0.0..=50.0)
            .contains(&self.flush_interval)
            .then(|| Duration::from_secs_f64(self.flush_interval / 1000.0))
    }

    fn stall_timeout(&self) -> Option<Duration> {
        (self.stall_timeout > 0).then(|| Duration::from_secs(self.stall_timeout))
    }

    fn silence_timeout(&self) -> Option<Duration> {
        (self.silence_timeout > 0).then(|| Duration::from_secs(self.silence_timeout))
    }
}

impl Args {
    /// Flags that only a client (`--connect`) or only a server may have, given to the other.
    pub(crate) fn misplaced(&self) -> Option<&'static str> {
        if self.connect.is_some() {
            return None;
        }
        if self.reconnect {
            return Some("--reconnect is for clients: use it with --connect");
        }
        if self.tls {
            return Some(
                "--tls is for clients: use it with --connect (a server speaks TLS with \
                 --tls-listen)",
            );
        }
        if self.tls_ca.is_some() {
            return Some("--tls-ca is for clients: use it with --connect and --tls");
        }
        None
    }
}

/// Reads a config file (`--config`) into an [`Args`] holding what it sets; a bad file is a
/// message naming the file, with the line and column of what is wrong in it.
pub(crate) fn read_config(path: &Path) -> Result<Args, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("config file {}: {error}", path.display()))?;
    toml::from_str(&text).map_err(|error| {
        let mut message = error.message().trim_end();
        // serde lists every key after an unknown one: the key, and --help, say enough.
        if message.starts_with("unknown field") {
            message = message.split(", expected").next().unwrap_or(message);
        }
        match error.span() {
            Some(span) => {
                let (line, column) = line_column(&text, span.start);
                format!(
                    "config file {}: line {line}, column {column}: {message}",
                    path.display()
                )
            }
            None => format!("config file {}: {message}", path.display()),
        }
    })
}

/// The 1-based line and column (in characters) of a byte offset into `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}

/// The TLS listener's settings from the command line, before the certificate is read.
#[derive(Debug)]
pub(crate) struct TlsArgs {
    pub(crate) addr: SocketAddr,
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
    pub(crate) handshake_timeout: Duration,
}

/// The port listened on unless `--listen` or `--tls-listen` says otherwise.
const DEFAULT_LISTEN: &str = "9999";

fn parse_listen(listen: &str, flag: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = listen.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port));
    }
    if let Ok(addr) = listen.parse::<SocketAddr>() {
        return Ok(addr);
    }
    // A host name, such as localhost:9999.
    listen
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| format!("{flag} {listen:?}: expected a port, HOST:PORT or [IPv6]:PORT"))
}

#[cfg(test)]
mod tests {
    use super::{Args, LIVE_KEYS, Options, line_column, live_diff, parse_listen as parse};

    fn options(text: &str) -> Options {
        Args::default().options(toml::from_str(text).unwrap())
    }

    #[test]
    fn a_diff_splits_live_keys_from_those_that_take_a_restart() {
        let (live, restart) = live_diff(
            &options("max-per-ip = 3\nlisten = \"1\"\nhistory = 5\n"),
            &options("max-per-ip = 4\ndata = \"d\"\nhistory = 5\n"),
        )
        .unwrap();
        let shown = |changes: Vec<super::Change>| {
            changes.iter().map(ToString::to_string).collect::<Vec<_>>()
        };
        assert_eq!(shown(live), ["max-per-ip: 3 -> 4"]);
        assert_eq!(
            shown(restart),
            ["data: (not set) -> \"d\"", "listen: \"1\" -> (not set)"]
        );
    }

    #[test]
    fn every_live_key_is_a_key() {
        let printed = options("").to_toml().unwrap();
        for key in LIVE_KEYS {
            assert!(
                printed.contains(&format!("\n{key} = "))
                    || printed.contains(&format!("# {key} = ")),
                "{key}"
            );
        }
    }

    #[test]
    fn line_and_column_of_an_offset() {
        assert_eq!(line_column("ab\ncd", 0), (1, 1));
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
        assert_eq!(line_column("é\nx", 3), (2, 1));
        assert_eq!(line_column("éx", 2), (1, 2));
    }

    fn parse_listen(listen: &str) -> Result<std::net::SocketAddr, String> {
        parse(listen, "--listen")
    }

    #[test]
    fn listen_forms() {
        assert_eq!(parse_listen("9999").unwrap().to_string(), "0.0.0.0:9999");
        assert_eq!(
            parse_listen("127.0.0.1:0").unwrap().to_string(),
            "127.0.0.1:0"
        );
        assert_eq!(
            parse_listen("[::1]:9999").unwrap().to_string(),
            "[::1]:9999"
        );
        assert!(parse_listen("localhost:9999").unwrap().ip().is_loopback());
        assert!(parse_listen("99999").is_err());
        assert!(parse_listen("nonsense").is_err());
    }
}
