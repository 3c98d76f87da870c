//! Property tests of chat-core against a reference model, plus table-style scenarios.
//!
//! The model is deliberately naive: a list of people in connect order (name, silence deadline,
//! the lines they have typed but the server has not yet framed) and, for every step, the lines
//! each connection should receive. It runs beside the real [`Server`] and every step's outputs
//! are compared with it exactly, recipient by recipient and in order.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::time::Duration;

use chat_core::{
    Admission, CloseReason, Config, ConnectionId, DisconnectReason, Error, Instant, MAX_LINE_BYTES,
    Output, Server,
};
use proptest::prelude::*;
use proptest::sample::Index;

/// Small, so that "server full" comes up often.
const CLIENTS: usize = 8;
const SILENCE_SECS: u64 = 10;
const SILENCE_MILLIS: u64 = SILENCE_SECS * 1000;
const FULL: &[u8] = b"*** Sorry, the server is full. Please try again later.\r\n";
const TOO_LONG: &str = "*** error: line too long (over 512 bytes); it was not sent";
const NOT_UTF8: &str = "*** error: your line is not valid UTF-8; it was not sent";
const SHUTDOWN: &str = "*** The server is shutting down. Goodbye!";

fn plain_config() -> Config {
    Config::default()
        .with_colour(false)
        .with_silence_timeout(Some(Duration::from_secs(SILENCE_SECS)))
}

fn at(millis: u64) -> Instant {
    Instant::from_millis(millis)
}

// ----- What came out of one step -----

/// Everything one `handle_*` call produced, with each `Send` split into lines per recipient.
#[derive(Debug, Default)]
struct Step {
    lines: BTreeMap<ConnectionId, Vec<String>>,
    closes: Vec<(ConnectionId, CloseReason)>,
    renames: Vec<(ConnectionId, String)>,
}

impl Step {
    fn to(&self, conn: ConnectionId) -> &[String] {
        self.lines.get(&conn).map_or(&[], Vec::as_slice)
    }
}

/// Drains `poll_output` to `None`. With `plain`, also checks that no byte a terminal would act on
/// (anything below 0x20 but a `\r\n` line ending, or DEL) is in any line.
fn drain<const N: usize>(server: &mut Server<N>, plain: bool) -> Step {
    let mut step = Step::default();
    while let Some(output) = server.poll_output() {
        match output {
            Output::Send { to, bytes } => {
                if plain {
                    check_plain(bytes);
                }
                let text = std::str::from_utf8(bytes).expect("output is UTF-8");
                let body = text.strip_suffix("\r\n").expect("output ends in \\r\\n");
                let recipients: Vec<ConnectionId> = to.collect();
                let unique: HashSet<_> = recipients.iter().collect();
                assert_eq!(unique.len(), recipients.len(), "a recipient twice");
                for conn in recipients {
                    let lines = step.lines.entry(conn).or_default();
                    lines.extend(body.split("\r\n").map(str::to_owned));
                }
            }
            Output::Close { conn, reason } => step.closes.push((conn, reason)),
            Output::Renamed { conn, name } => step.renames.push((conn, name.to_owned())),
            other => panic!("unexpected output {other:?}"),
        }
    }
    step
}

fn check_plain(bytes: &[u8]) {
    for (at, &byte) in bytes.iter().enumerate() {
        let ok = match byte {
            b'\r' => bytes.get(at + 1) == Some(&b'\n'),
            b'\n' => at > 0 && bytes[at - 1] == b'\r',
            _ => byte >= 0x20 && byte != 0x7f,
        };
        assert!(
            ok,
            "byte {byte:#04x} at {at} in {:?}",
            String::from_utf8_lossy(bytes)
        );
    }
}

// ----- What the model expects of one step -----

/// One expected line.
#[derive(Clone, Debug)]
enum Want {
    Exact(String),
    /// Where the exact wording belongs to the core (parse errors, help text).
    Prefix(&'static str),
    /// Starts and ends so, with the core's wording between.
    Around(String, String),
}

impl Want {
    fn matches(&self, line: &str) -> bool {
        match self {
            Self::Exact(want) => line == want,
            Self::Prefix(prefix) => line.starts_with(prefix),
            Self::Around(prefix, suffix) => line.starts_with(prefix) && line.ends_with(suffix),
        }
    }
}

#[derive(Debug, Default)]
struct Expected {
    lines: BTreeMap<ConnectionId, Vec<Want>>,
    closes: Vec<(ConnectionId, CloseReason)>,
    renames: Vec<(ConnectionId, String)>,
}

impl Expected {
    fn want(&mut self, conn: ConnectionId, want: Want) {
        self.lines.entry(conn).or_default().push(want);
    }

    fn line(&mut self, conn: ConnectionId, line: impl Into<String>) {
        self.want(conn, Want::Exact(line.into()));
    }

    fn is_empty(&self) -> bool {
        self.lines.is_empty() && self.closes.is_empty() && self.renames.is_empty()
    }

    fn check(&self, step: &Step, context: &dyn std::fmt::Debug) {
        let conns: HashSet<ConnectionId> = self
            .lines
            .keys()
            .chain(step.lines.keys())
            .copied()
            .collect();
        for conn in conns {
            let wants = self.lines.get(&conn).map_or(&[][..], Vec::as_slice);
            let got = step.to(conn);
            let ok = wants.len() == got.len()
                && wants.iter().zip(got).all(|(want, line)| want.matches(line));
            assert!(
                ok,
                "{conn:?} got {got:#?}\nbut the model wants {wants:#?}\nin {context:?}"
            );
        }
        assert_eq!(step.closes, self.closes, "closes in {context:?}");
        assert_eq!(step.renames, self.renames, "renames in {context:?}");
    }
}

// ----- The model -----

/// A line as typed, and what the model takes it to mean.
#[derive(Clone, Debug)]
enum Line {
    Say(String),
    Me(String),
    Nick(String),
    Msg {
        to: String,
        text: String,
    },
    List,
    Help,
    Quit(Option<String>),
    /// Refused before parsing (control character, invalid UTF-8): this error, nothing else.
    Refused(String),
    /// A malformed command: some error to the sender.
    Junk,
    Empty,
    TooLong,
}

/// The model's framer: one connection's partial line, by the rules in `MAX_LINE_BYTES`' docs.
#[derive(Debug, Default)]
struct Framer {
    buffer: Vec<u8>,
    discarding: bool,
}

#[derive(Debug, PartialEq)]
enum Framed {
    Line(Vec<u8>),
    TooLong,
}

impl Framer {
    /// Feeds bytes up to the first event; returns how many were taken and the event.
    fn feed(&mut self, bytes: &[u8]) -> (usize, Option<Framed>) {
        for (at, &byte) in bytes.iter().enumerate() {
            if byte == b'\n' {
                if std::mem::take(&mut self.discarding) {
                    continue;
                }
                let mut line = std::mem::take(&mut self.buffer);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                let framed = if line.len() > MAX_LINE_BYTES {
                    Framed::TooLong
                } else {
                    Framed::Line(line)
                };
                return (at + 1, Some(framed));
            }
            if self.discarding {
                continue;
            }
            // One byte of room past the limit, for a `\r` that may precede the newline.
            if self.buffer.len() == MAX_LINE_BYTES + 1 {
                self.buffer.clear();
                self.discarding = true;
                return (at + 1, Some(Framed::TooLong));
            }
            self.buffer.push(byte);
        }
        (bytes.len(), None)
    }
}

#[derive(Debug)]
struct Person {
    id: ConnectionId,
    nick: Option<String>,
    /// Silence deadline (ms), until the first complete line.
    deadline: Option<u64>,
    framer: Framer,
    /// Lines whose bytes were fed or are held back, not yet framed: bytes and meaning.
    typed: VecDeque<(Vec<u8>, Line)>,
    /// Bytes typed but held back for a later input step, so lines straddle steps.
    held: Vec<u8>,
}

impl Person {
    fn name(&self) -> String {
        match &self.nick {
            Some(nick) => nick.clone(),
            None => format!("anonymous-{}", self.id.index() + 1),
        }
    }
}

#[derive(Debug, Default)]
struct Model {
    /// In connect order, which is also silence-deadline order.
    people: Vec<Person>,
    gone: Vec<ConnectionId>,
    now: u64,
    seq: u64,
    shut_down: bool,
}

fn valid_nick(name: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_-[]\\^{}|`".contains(c);
    let Some(first) = name.chars().next() else {
        return false;
    };
    name.len() <= 16
        && name.chars().all(allowed)
        && !first.is_ascii_digit()
        && first != '-'
        && !name.to_ascii_lowercase().starts_with("anonymous")
}

impl Model {
    fn pos(&self, id: ConnectionId) -> Option<usize> {
        self.people.iter().position(|p| p.id == id)
    }

    fn others(&self, id: ConnectionId) -> Vec<ConnectionId> {
        self.people
            .iter()
            .map(|p| p.id)
            .filter(|&p| p != id)
            .collect()
    }

    fn find(&self, name: &str) -> Option<usize> {
        self.people.iter().position(|p| match &p.nick {
            Some(nick) => nick.eq_ignore_ascii_case(name),
            None => p.name().eq_ignore_ascii_case(name),
        })
    }

    fn next_deadline(&self) -> Option<u64> {
        if self.shut_down {
            return None;
        }
        self.people.iter().filter_map(|p| p.deadline).min()
    }

    fn remove(&mut self, id: ConnectionId) -> Person {
        let pos = self.pos(id).expect("live");
        self.gone.push(id);
        self.people.remove(pos)
    }

    /// The roster line as `me` sees it.
    fn listing(&self, me: ConnectionId) -> String {
        let mut people: Vec<&Person> = self.people.iter().collect();
        people.sort_by_key(|p| match &p.nick {
            Some(nick) => (false, nick.to_ascii_lowercase(), 0),
            None => (true, String::new(), p.id.index()),
        });
        let names: Vec<String> = people
            .iter()
            .map(|p| {
                let you = if p.id == me { " (you)" } else { "" };
                format!("{}{you}", p.name())
            })
            .collect();
        format!("*** Online ({}): {}", self.people.len(), names.join(", "))
    }

    fn connect(&mut self, id: ConnectionId, exp: &mut Expected) {
        assert!(id.index() < CLIENTS, "{id:?}");
        assert!(self.pos(id).is_none(), "{id:?} handed out twice");
        assert!(
            !self.gone.contains(&id),
            "a stale handle {id:?} was handed out again"
        );
        assert!(
            self.people.iter().all(|p| p.id.index() != id.index()),
            "index of {id:?} is in use"
        );
        self.people.push(Person {
            id,
            nick: None,
            deadline: Some(self.now + SILENCE_MILLIS),
            framer: Framer::default(),
            typed: VecDeque::new(),
            held: Vec::new(),
        });
        let online = self.people.len();
        let name = format!("anonymous-{}", id.index() + 1);
        let people = if online == 1 {
            "person is"
        } else {
            "people are"
        };
        exp.line(
            id,
            format!("*** Welcome to the chat! You are {name}; {online} {people} online."),
        );
        exp.line(
            id,
            "*** Pick a nickname with /nick NAME; /help lists the commands.",
        );
        exp.line(id, self.listing(id));
        for other in self.others(id) {
            exp.line(other, format!("*** {name} joined ({online} online)"));
        }
    }

    fn depart(&mut self, id: ConnectionId, why: &str, exp: &mut Expected) {
        let name = self.people[self.pos(id).expect("live")].name();
        self.remove(id);
        for other in self.others(id) {
            exp.line(other, format!("*** {name} left ({why})"));
        }
    }

    /// The server framed a line (or an overlong one) from `id`.
    fn framed(&mut self, id: ConnectionId, framed: Framed, exp: &mut Expected) {
        let pos = self.pos(id).expect("live");
        let person = &mut self.people[pos];
        person.deadline = None;
        let (bytes, line) = person.typed.pop_front().expect("a typed line");
        match framed {
            Framed::TooLong => assert!(matches!(line, Line::TooLong), "{line:?} framed too long"),
            Framed::Line(framed) => {
                assert_eq!(framed, bytes, "the model framed other bytes than it typed");
                assert!(!matches!(line, Line::TooLong));
            }
        }
        self.line(pos, line, exp);
    }

    fn line(&mut self, pos: usize, line: Line, exp: &mut Expected) {
        let id = self.people[pos].id;
        let name = self.people[pos].name();
        match line {
            Line::Say(text) => {
                if self.people.len() == 1 {
                    exp.line(id, "*** No one else is online to hear that.");
                }
                for other in self.others(id) {
                    exp.line(other, format!("{name}: {text}"));
                }
            }
            Line::Me(text) => {
                for other in self.others(id) {
                    exp.line(other, format!("* {name} {text}"));
                }
            }
            Line::Nick(wanted) => self.nick(pos, &wanted, exp),
            Line::Msg { to, text } => match self.find(&to) {
                None => exp.line(
                    id,
                    format!("*** error: no one called {to} is online; /list shows who is"),
                ),
                Some(target) => {
                    let target_id = self.people[target].id;
                    exp.line(target_id, format!("[private] {name}: {text}"));
                    if target_id != id {
                        let target_name = self.people[target].name();
                        exp.line(id, format!("[private] to {target_name}: {text}"));
                    }
                }
            },
            Line::List => exp.line(id, self.listing(id)),
            Line::Help => {
                for _ in 0..10 {
                    exp.want(id, Want::Prefix("*** "));
                }
            }
            Line::Quit(reason) => {
                exp.line(id, "*** Goodbye!");
                let why = reason.map_or_else(|| "quit".to_owned(), |r| format!("quit: {r}"));
                self.depart(id, &why, exp);
                exp.closes.push((id, CloseReason::Quit));
            }
            Line::Refused(error) => exp.line(id, error),
            Line::Junk => exp.want(id, Want::Prefix("*** error: ")),
            Line::Empty => {}
            Line::TooLong => exp.line(id, TOO_LONG),
        }
    }

    fn nick(&mut self, pos: usize, wanted: &str, exp: &mut Expected) {
        let id = self.people[pos].id;
        let old = self.people[pos].name();
        if !valid_nick(wanted) {
            let prefix = format!("*** error: \"{wanted}\" is not a valid nickname: ");
            exp.want(id, Want::Around(prefix, format!("; you are still {old}")));
            return;
        }
        let holder = self.people.iter().position(|p| {
            p.nick
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(wanted))
        });
        if holder.is_some_and(|holder| holder != pos) {
            exp.line(
                id,
                format!("*** error: the nickname {wanted} is taken; you are still {old}"),
            );
            return;
        }
        if self.people[pos].nick.as_deref() == Some(wanted) {
            exp.line(id, format!("*** You are already {wanted}."));
            return;
        }
        for other in self.others(id) {
            exp.line(other, format!("*** {old} is now known as {wanted}"));
        }
        exp.line(id, format!("*** You are now known as {wanted}."));
        exp.renames.push((id, wanted.to_owned()));
        self.people[pos].nick = Some(wanted.to_owned());
    }

    /// Closes, in connect order, the silent connections the server closed in one timeout step.
    fn silent(&mut self, closed: &[ConnectionId], exp: &mut Expected) {
        let due: Vec<ConnectionId> = self
            .people
            .iter()
            .filter(|p| p.deadline.is_some_and(|d| d <= self.now))
            .map(|p| p.id)
            .collect();
        assert!(
            due.starts_with(closed) && (due.is_empty() || !closed.is_empty()),
            "due {due:?}, closed {closed:?}"
        );
        let mut names = Vec::new();
        for &id in closed {
            names.push(self.people[self.pos(id).expect("live")].name());
            self.remove(id);
            exp.line(
                id,
                format!("*** Closing: no line received within {SILENCE_SECS} s of connecting."),
            );
            exp.closes.push((id, CloseReason::Silent));
        }
        for other in self.people.iter().map(|p| p.id) {
            for name in &names {
                exp.line(other, format!("*** {name} left (silent too long)"));
            }
        }
    }
}

// ----- Generated operations -----

#[derive(Clone, Debug)]
enum Spec {
    Say {
        kind: u8,
        trailing: bool,
    },
    Me,
    /// A nickname from a small pool (so collisions happen), recased.
    Nick {
        which: Index,
        case: u8,
    },
    /// Someone else's current name, recased: taken unless it is one's own.
    NickOfPeer {
        who: Index,
        case: u8,
    },
    InvalidNick(Index),
    /// `/msg` to someone online, by name recased.
    MsgPeer {
        who: Index,
        case: u8,
    },
    /// `/msg` to `anonymous-N`, who may or may not be online and anonymous.
    MsgAnon(u8),
    MsgUnknown,
    List(u8),
    Help,
    Quit {
        reason: bool,
    },
    /// A control character or invalid UTF-8, in a line of kind `cmd`.
    Bad {
        payload: u8,
        cmd: u8,
    },
    Junk(Index),
    Empty(bool),
    Long(usize),
}

#[derive(Clone, Debug)]
enum Op {
    Connect {
        probe: Option<u8>,
    },
    Disconnect {
        who: Index,
        reason: u8,
    },
    Input {
        who: Index,
        lines: Vec<Spec>,
        crlf: bool,
        /// Where to cut the bytes into separate `handle_input` calls.
        cuts: Vec<Index>,
        /// Where to stop, holding the rest back for this connection's next input.
        hold: Option<Index>,
        probe: Option<u8>,
    },
    /// Lets time pass by this much, then handles the timeout.
    Wait(u64),
    /// A handle that is no longer live.
    Stale {
        which: Index,
        input: bool,
    },
}

/// An operation, after letting `dt` ms pass; `late` hands the server an older time than it
/// has seen (which it must ignore).
#[derive(Clone, Debug)]
struct Timed {
    dt: u64,
    late: bool,
    op: Op,
}

fn spec() -> impl Strategy<Value = Spec> {
    prop_oneof![
        8 => (0..6u8, prop::bool::weighted(0.2))
            .prop_map(|(kind, trailing)| Spec::Say { kind, trailing }),
        3 => Just(Spec::Me),
        4 => (any::<Index>(), any::<u8>()).prop_map(|(which, case)| Spec::Nick { which, case }),
        2 => (any::<Index>(), any::<u8>())
            .prop_map(|(who, case)| Spec::NickOfPeer { who, case }),
        2 => any::<Index>().prop_map(Spec::InvalidNick),
        4 => (any::<Index>(), any::<u8>()).prop_map(|(who, case)| Spec::MsgPeer { who, case }),
        1 => (1..=CLIENTS as u8).prop_map(Spec::MsgAnon),
        1 => Just(Spec::MsgUnknown),
        2 => any::<u8>().prop_map(Spec::List),
        1 => Just(Spec::Help),
        1 => any::<bool>().prop_map(|reason| Spec::Quit { reason }),
        3 => (0..10u8, 0..4u8).prop_map(|(payload, cmd)| Spec::Bad { payload, cmd }),
        1 => any::<Index>().prop_map(Spec::Junk),
        1 => any::<bool>().prop_map(Spec::Empty),
        1 => prop_oneof![510..=515usize, Just(600), Just(1200)].prop_map(Spec::Long),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let probe = prop::option::weighted(0.1, 0..5u8);
    prop_oneof![
        6 => probe.clone().prop_map(|probe| Op::Connect { probe }),
        1 => (any::<Index>(), 0..3u8).prop_map(|(who, reason)| Op::Disconnect { who, reason }),
        9 => (
            any::<Index>(),
            prop::collection::vec(spec(), 1..4),
            any::<bool>(),
            prop::collection::vec(any::<Index>(), 0..4),
            prop::option::weighted(0.3, any::<Index>()),
            probe,
        )
            .prop_map(|(who, lines, crlf, cuts, hold, probe)| Op::Input {
                who,
                lines,
                crlf,
                cuts,
                hold,
                probe
            }),
        2 => (0..15_000u64).prop_map(Op::Wait),
        1 => (any::<Index>(), any::<bool>()).prop_map(|(which, input)| Op::Stale { which, input }),
    ]
}

fn timed() -> impl Strategy<Value = Timed> {
    (
        prop_oneof![Just(0u64), 0..400u64, 0..3_000u64],
        prop::bool::weighted(0.1),
        op(),
    )
        .prop_map(|(dt, late, op)| Timed { dt, late, op })
}

const NICKS: [&str; 8] = [
    "alice", "Bob", "carol", "dave", "eve_", "[x]", "a-b^c", "z|`{}",
];
const INVALID_NICKS: [&str; 10] = [
    "2bad",
    "-dash",
    "bad!",
    "anonymous",
    "Anonymous-3",
    "ANONYMOUSLY",
    "seventeen_chars_x",
    "héllo",
    "a.b",
    "x#",
];
const JUNK: [&str; 7] = ["/dance", "/nick a b", "/msg", "/msg x", "/me", "/", "/nick"];

fn recase(name: &str, case: u8) -> String {
    match case % 4 {
        0 => name.to_owned(),
        1 => name.to_ascii_uppercase(),
        2 => name.to_ascii_lowercase(),
        _ => name
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if i % 2 == 0 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect(),
    }
}

impl Model {
    /// The bytes of one line (without its ending) typed by `sender`, and what it means.
    fn render(&mut self, sender: usize, spec: &Spec) -> (Vec<u8>, Line) {
        self.seq += 1;
        let seq = self.seq;
        let pick = |who: &Index| &self.people[who.index(self.people.len())];
        let text = |line: String, meaning: Line| (line.into_bytes(), meaning);
        match spec {
            Spec::Say { kind, trailing } => {
                let (typed, shown) = match kind {
                    0 => (format!("m{seq} hello"), format!("m{seq} hello")),
                    1 => (format!("m{seq} héllo 中文"), format!("m{seq} héllo 中文")),
                    2 => (format!("//m{seq} slash"), format!("/m{seq} slash")),
                    3 => (format!("  m{seq} indented"), format!("  m{seq} indented")),
                    4 => (format!("m{seq}\twith tab"), format!("m{seq} with tab")),
                    _ => (format!("m{seq} /nick x"), format!("m{seq} /nick x")),
                };
                let tail = if *trailing { " \t " } else { "" };
                text(format!("{typed}{tail}"), Line::Say(shown))
            }
            Spec::Me => text(
                format!("/me a{seq} waves"),
                Line::Me(format!("a{seq} waves")),
            ),
            Spec::Nick { which, case } => {
                let name = recase(NICKS[which.index(NICKS.len())], *case);
                text(format!("/nick {name}"), Line::Nick(name))
            }
            Spec::NickOfPeer { who, case } => {
                let name = recase(&pick(who).name(), *case);
                text(format!("/NICK {name}"), Line::Nick(name))
            }
            Spec::InvalidNick(which) => {
                let name = INVALID_NICKS[which.index(INVALID_NICKS.len())].to_owned();
                text(format!("/nick {name}"), Line::Nick(name))
            }
            Spec::MsgPeer { who, case } => {
                let to = recase(&pick(who).name(), *case);
                let line = format!("/msg {to} p{seq} secret");
                let meaning = Line::Msg {
                    to,
                    text: format!("p{seq} secret"),
                };
                text(line, meaning)
            }
            Spec::MsgAnon(n) => {
                let to = format!("anonymous-{n}");
                let line = format!("/Msg {to} p{seq} psst");
                let meaning = Line::Msg {
                    to,
                    text: format!("p{seq} psst"),
                };
                text(line, meaning)
            }
            Spec::MsgUnknown => {
                let to = format!("nobody{seq}");
                let line = format!("/msg {to} p{seq} lost");
                let meaning = Line::Msg {
                    to,
                    text: format!("p{seq} lost"),
                };
                text(line, meaning)
            }
            Spec::List(kind) => {
                let line = ["/list", "/who", "/NAMES", "/list extra"][usize::from(kind % 4)];
                text(line.to_owned(), Line::List)
            }
            Spec::Help => text("/help".to_owned(), Line::Help),
            Spec::Quit { reason: false } => text("/quit".to_owned(), Line::Quit(None)),
            Spec::Quit { reason: true } => text(
                format!("/quit bye{seq} now"),
                Line::Quit(Some(format!("bye{seq} now"))),
            ),
            Spec::Bad { payload, cmd } => {
                let to = self.people[sender].name();
                let mut line = match cmd {
                    0 => format!("b{seq} "),
                    1 => format!("/me b{seq} "),
                    2 => format!("/msg {to} b{seq} "),
                    _ => format!("/nick b{seq}"),
                }
                .into_bytes();
                let control = |name: &str| {
                    format!(
                        "*** error: your line contains the control character {name}; it was not sent"
                    )
                };
                let (bytes, error): (&[u8], String) = match payload {
                    0 => (b"\x1b[2Jgone", control("^[")),
                    1 => (b"\xc3\x28", NOT_UTF8.to_owned()),
                    2 => (b"\x80x", NOT_UTF8.to_owned()),
                    3 => (b"\x07", control("^G")),
                    4 => ("\u{202e}txt".as_bytes(), control("U+202E")),
                    5 => ("\u{85}".as_bytes(), control("U+0085")),
                    6 => (b"x\x7f", control("^?")),
                    7 => (b"\xe2\x82", NOT_UTF8.to_owned()),
                    8 => (b"a\rb", control("^M")),
                    _ => (b"\x1b", control("^[")),
                };
                line.extend_from_slice(bytes);
                (line, Line::Refused(error))
            }
            Spec::Junk(which) => text(JUNK[which.index(JUNK.len())].to_owned(), Line::Junk),
            Spec::Empty(blank) => {
                let line = if *blank { " \t " } else { "" };
                text(line.to_owned(), Line::Empty)
            }
            Spec::Long(len) => {
                let mut line = format!("L{seq} ");
                while line.len() < *len {
                    line.push('x');
                }
                let meaning = if line.len() > MAX_LINE_BYTES {
                    Line::TooLong
                } else {
                    Line::Say(line.clone())
                };
                text(line, meaning)
            }
        }
    }
}

// ----- Running the model beside the server -----

struct Harness {
    server: Server<CLIENTS>,
    model: Model,
    /// The time the test is at; the server is sometimes handed an older one.
    clock: u64,
    /// Nicknames as the server reported them through `Output::Renamed`.
    observed: BTreeMap<ConnectionId, String>,
}

impl Harness {
    fn new() -> Self {
        Self {
            server: Server::new(plain_config(), Instant::ZERO),
            model: Model::default(),
            clock: 0,
            observed: BTreeMap::new(),
        }
    }

    /// Drains the step, compares it with the model's expectation, then checks the invariants.
    fn finish(&mut self, exp: &Expected, context: &dyn std::fmt::Debug) {
        let step = drain(&mut self.server, true);
        exp.check(&step, context);
        for (conn, name) in step.renames {
            self.observed.insert(conn, name);
        }
        self.observed
            .retain(|conn, _| self.model.pos(*conn).is_some());
        self.check_state();
    }

    fn check_state(&self) {
        let model = &self.model;
        assert_eq!(self.server.online(), model.people.len());
        assert_eq!(
            self.server.poll_timeout(),
            model.next_deadline().map(at),
            "poll_timeout"
        );
        let names: HashSet<String> = model
            .people
            .iter()
            .map(|p| p.name().to_ascii_lowercase())
            .collect();
        assert_eq!(names.len(), model.people.len(), "names not unique");
        let nicks: BTreeMap<ConnectionId, String> = model
            .people
            .iter()
            .filter_map(|p| Some((p.id, p.nick.clone()?)))
            .collect();
        assert_eq!(self.observed, nicks, "renames seen vs model nicknames");
    }

    /// A `handle_*` call while outputs are pending is refused and changes nothing.
    fn probe(&mut self, kind: u8, conn: ConnectionId) {
        let now = at(self.model.now);
        let result = match kind {
            0 => self.server.handle_connect(now).map(|_| ()),
            1 => self.server.handle_input(now, conn, b"x\n").map(|_| ()),
            2 => self
                .server
                .handle_disconnect(now, conn, DisconnectReason::Closed),
            3 => self.server.handle_timeout(now),
            _ => self.server.handle_shutdown(now),
        };
        assert_eq!(result, Err(Error::OutputPending), "probe {kind}");
    }

    fn run(&mut self, timed: &Timed) {
        self.clock += timed.dt;
        let live = self.model.people.len();
        let idle = match timed.op {
            Op::Disconnect { .. } | Op::Input { .. } => live == 0,
            Op::Stale { .. } => self.model.gone.is_empty(),
            Op::Connect { .. } | Op::Wait(_) => false,
        };
        if idle {
            // Nothing to call the server with; it must not see this time either.
            return;
        }
        let passed = if timed.late {
            self.clock.saturating_sub(700)
        } else {
            self.clock
        };
        let now = at(passed);
        // Time never goes backwards for the server: it keeps the latest it was handed. Only
        // calls actually made count, so this is done just before each.
        let seen = self.model.now.max(passed);
        match &timed.op {
            Op::Connect { probe } => {
                self.model.now = seen;
                let mut exp = Expected::default();
                match self.server.handle_connect(now).expect("connect") {
                    Admission::Accepted(id) => {
                        assert!(live < CLIENTS, "accepted past {CLIENTS}");
                        self.model.connect(id, &mut exp);
                        if let Some(kind) = probe {
                            self.probe(*kind, id);
                        }
                    }
                    Admission::Refused(bytes) => {
                        assert_eq!(live, CLIENTS, "refused with room");
                        assert_eq!(bytes, FULL);
                    }
                }
                self.finish(&exp, timed);
            }
            Op::Disconnect { who, reason } => {
                if live == 0 {
                    return;
                }
                let id = self.model.people[who.index(live)].id;
                self.model.now = seen;
                let (reason, why) = match reason {
                    0 => (DisconnectReason::Closed, "connection closed"),
                    1 => (DisconnectReason::Error, "connection error"),
                    _ => (DisconnectReason::TooSlow, "too slow to keep up"),
                };
                self.server
                    .handle_disconnect(now, id, reason)
                    .expect("disconnect");
                let mut exp = Expected::default();
                self.model.depart(id, why, &mut exp);
                self.finish(&exp, timed);
            }
            Op::Input {
                who,
                lines,
                crlf,
                cuts,
                hold,
                probe,
            } => {
                if live == 0 {
                    return;
                }
                let pos = who.index(live);
                let id = self.model.people[pos].id;
                let mut bytes = std::mem::take(&mut self.model.people[pos].held);
                for spec in lines {
                    let (line, meaning) = self.model.render(pos, spec);
                    bytes.extend_from_slice(&line);
                    bytes.extend_from_slice(if *crlf { b"\r\n" } else { b"\n" });
                    self.model.people[pos].typed.push_back((line, meaning));
                }
                let keep = hold.map_or(bytes.len(), |hold| hold.index(bytes.len() + 1));
                self.model.people[pos].held = bytes.split_off(keep);
                let mut cuts: Vec<usize> = cuts.iter().map(|cut| cut.index(keep + 1)).collect();
                cuts.extend([0, keep]);
                cuts.sort_unstable();
                cuts.dedup();
                for chunk in cuts.windows(2) {
                    let mut rest = &bytes[chunk[0]..chunk[1]];
                    while !rest.is_empty() {
                        let Some(pos) = self.model.pos(id) else {
                            // Quit earlier in this input: the handle is dead now.
                            let result = self.server.handle_input(now, id, rest);
                            assert_eq!(result, Err(Error::UnknownConnection(id)));
                            assert!(self.server.poll_output().is_none());
                            return;
                        };
                        self.model.now = seen;
                        let taken = self.server.handle_input(now, id, rest).expect("input");
                        let (want, framed) = self.model.people[pos].framer.feed(rest);
                        assert_eq!(taken.bytes(), want, "bytes taken from {rest:?}");
                        let mut exp = Expected::default();
                        if let Some(framed) = framed {
                            self.model.framed(id, framed, &mut exp);
                        }
                        if let Some(kind) = probe.filter(|_| !exp.is_empty()) {
                            self.probe(kind, id);
                        }
                        self.finish(&exp, &(timed, &rest[..want]));
                        rest = &rest[want..];
                    }
                }
            }
            Op::Wait(millis) => {
                self.clock += millis;
                self.model.now = self.clock;
                let now = at(self.clock);
                for _ in 0..=CLIENTS {
                    self.server.handle_timeout(now).expect("timeout");
                    let step = drain(&mut self.server, true);
                    let closed: Vec<ConnectionId> = step.closes.iter().map(|c| c.0).collect();
                    let mut exp = Expected::default();
                    self.model.silent(&closed, &mut exp);
                    exp.check(&step, timed);
                    self.observed
                        .retain(|conn, _| self.model.pos(*conn).is_some());
                    self.check_state();
                    match self.server.poll_timeout() {
                        Some(due) if due <= now => {}
                        _ => return,
                    }
                }
                panic!("handle_timeout made no progress");
            }
            Op::Stale { which, input } => {
                if self.model.gone.is_empty() {
                    return;
                }
                let id = self.model.gone[which.index(self.model.gone.len())];
                self.model.now = seen;
                let result = if *input {
                    self.server.handle_input(now, id, b"hi\n").map(|_| ())
                } else {
                    self.server
                        .handle_disconnect(now, id, DisconnectReason::Closed)
                };
                assert_eq!(result, Err(Error::UnknownConnection(id)));
                self.finish(&Expected::default(), timed);
            }
        }
    }

    fn shut_down(&mut self) {
        let now = at(self.model.now);
        self.server.handle_shutdown(now).expect("shutdown");
        let mut exp = Expected::default();
        for person in &self.model.people {
            exp.line(person.id, SHUTDOWN);
        }
        self.model.shut_down = true;
        self.finish(&exp, &"shutdown");
        let id = self.model.people.first().map(|p| p.id);
        let stale = self.model.gone.first().copied();
        for conn in id.into_iter().chain(stale) {
            assert_eq!(
                self.server.handle_input(now, conn, b"hi\n"),
                Err(Error::ShutDown)
            );
            assert_eq!(
                self.server
                    .handle_disconnect(now, conn, DisconnectReason::Closed),
                Err(Error::ShutDown)
            );
        }
        assert_eq!(self.server.handle_connect(now), Err(Error::ShutDown));
        assert_eq!(self.server.handle_timeout(now), Err(Error::ShutDown));
        assert_eq!(self.server.handle_shutdown(now), Err(Error::ShutDown));
        assert!(self.server.poll_output().is_none());
        assert_eq!(self.server.poll_timeout(), None);
    }
}

/// Any byte but a newline or a telnet IAC (0xFF), which would frame or swallow bytes.
fn text_byte() -> impl Strategy<Value = u8> {
    any::<u8>().prop_map(|b| if b == b'\n' || b == 0xff { b'.' } else { b })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 192,
        // Failures print their minimal input; no regression files are written.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Random sessions against the model: every step's output, exactly.
    #[test]
    fn server_matches_model(
        ops in prop::collection::vec(timed(), 1..80),
        shutdown in prop::bool::weighted(0.25),
    ) {
        let mut harness = Harness::new();
        for op in &ops {
            harness.run(op);
        }
        if shutdown {
            harness.shut_down();
        }
    }

    /// A line with an ESC or invalid UTF-8 anywhere reaches no one; its sender gets one error.
    #[test]
    fn tainted_lines_reach_no_one(
        before in prop::collection::vec(text_byte(), 0..40),
        after in prop::collection::vec(text_byte(), 0..40),
        taint in prop_oneof![Just(&b"\x1b"[..]), Just(&b"\x1b[2J"[..]), Just(&b"\xc3("[..]), Just(&b"\xc0"[..]), Just(&b"\xfe"[..])],
        cmd in 0..3usize,
        chunk in 1..8usize,
    ) {
        let mut server: Server<4> = Server::new(plain_config(), Instant::ZERO);
        let ids: Vec<ConnectionId> = (0..3).map(|_| accept(&mut server)).collect();
        let _ = drain(&mut server, true);
        let prefix: &[u8] = [&b""[..], b"/me ", b"/msg anonymous-2 "][cmd];
        let line = [prefix, &before, taint, &after, b"\n"].concat();
        let mut steps = Vec::new();
        for piece in line.chunks(chunk) {
            let mut rest = piece;
            while !rest.is_empty() {
                let taken = server.handle_input(Instant::ZERO, ids[0], rest).unwrap().bytes();
                rest = &rest[taken..];
                steps.push(drain(&mut server, true));
            }
        }
        let heard: Vec<&String> = steps.iter().flat_map(|s| s.to(ids[0])).collect();
        prop_assert_eq!(heard.len(), 1, "{:?}", heard);
        prop_assert!(heard[0].starts_with("*** error: "), "{:?}", heard);
        for other in &ids[1..] {
            let heard: Vec<&String> = steps.iter().flat_map(|s| s.to(*other)).collect();
            prop_assert!(heard.is_empty(), "{:?} heard {:?}", other, heard);
        }
    }
}

// ----- Scenarios -----

/// Connects, returning the handle and the step's output.
fn join<const N: usize>(server: &mut Server<N>) -> (ConnectionId, Step) {
    match server.handle_connect(Instant::ZERO).expect("connect") {
        Admission::Accepted(id) => (id, drain(server, !server.config().colour)),
        Admission::Refused(_) => panic!("refused"),
    }
}

/// Connects, ignoring the welcome.
fn accept<const N: usize>(server: &mut Server<N>) -> ConnectionId {
    join(server).0
}

/// Feeds `bytes` from `conn`, one line per call, and gathers every step's output.
fn say<const N: usize>(
    server: &mut Server<N>,
    now: u64,
    conn: ConnectionId,
    bytes: &[u8],
) -> Vec<Step> {
    let mut rest = bytes;
    let mut steps = Vec::new();
    while !rest.is_empty() {
        let taken = server.handle_input(at(now), conn, rest).expect("input");
        rest = &rest[taken.bytes()..];
        let plain = !server.config().colour;
        steps.push(drain(server, plain));
    }
    steps
}

/// Every line `conn` got across `steps`.
fn heard(steps: &[Step], conn: ConnectionId) -> Vec<String> {
    steps.iter().flat_map(|s| s.to(conn)).cloned().collect()
}

fn plain_server() -> Server<4> {
    Server::new(plain_config(), Instant::ZERO)
}

#[test]
fn welcome_banner_shows_count_and_roster() {
    let mut server = plain_server();
    let (alice, first) = join(&mut server);
    assert_eq!(
        first.to(alice),
        [
            "*** Welcome to the chat! You are anonymous-1; 1 person is online.",
            "*** Pick a nickname with /nick NAME; /help lists the commands.",
            "*** Online (1): anonymous-1 (you)",
        ]
    );
    let _ = say(&mut server, 0, alice, b"/nick alice\n");
    let (bob, second) = join(&mut server);
    assert_eq!(
        second.to(bob),
        [
            "*** Welcome to the chat! You are anonymous-2; 2 people are online.",
            "*** Pick a nickname with /nick NAME; /help lists the commands.",
            "*** Online (2): alice, anonymous-2 (you)",
        ]
    );
}

#[test]
fn others_see_a_join_notice() {
    let mut server = plain_server();
    let alice = accept(&mut server);
    let _ = drain(&mut server, true);
    let (bob, step) = join(&mut server);
    assert_eq!(step.to(alice), ["*** anonymous-2 joined (2 online)"]);
    assert_eq!(step.to(bob).len(), 3);
}

#[test]
fn nick_change_is_announced() {
    let mut server = plain_server();
    let alice = accept(&mut server);
    let bob = accept(&mut server);
    let _ = drain(&mut server, true);
    let steps = say(&mut server, 0, alice, b"/nick alice\r\n/nick Alice\n");
    assert_eq!(
        heard(&steps, bob),
        [
            "*** anonymous-1 is now known as alice",
            "*** alice is now known as Alice"
        ]
    );
    assert_eq!(
        heard(&steps, alice),
        [
            "*** You are now known as alice.",
            "*** You are now known as Alice."
        ]
    );
    assert_eq!(steps[0].renames, [(alice, "alice".to_owned())]);
    let again = say(&mut server, 0, alice, b"/nick Alice\n");
    assert_eq!(heard(&again, alice), ["*** You are already Alice."]);
    assert!(heard(&again, bob).is_empty());
}

#[test]
fn a_taken_name_is_refused_and_the_old_name_kept() {
    let mut server = plain_server();
    let alice = accept(&mut server);
    let bob = accept(&mut server);
    let _ = drain(&mut server, true);
    let _ = say(&mut server, 0, alice, b"/nick alice\n");
    #[rustfmt::skip]
    let cases: &[(&[u8], &str)] = &[
        (b"/nick ALICE\n",   "*** error: the nickname ALICE is taken; you are still anonymous-2"),
        (b"/nick aLiCe\n",   "*** error: the nickname aLiCe is taken; you are still anonymous-2"),
        (b"/nick 9lives\n",  "*** error: \"9lives\" is not a valid nickname: a nickname cannot start with '9'; you are still anonymous-2"),
    ];
    for (input, error) in cases {
        let steps = say(&mut server, 0, bob, input);
        assert_eq!(heard(&steps, bob), [*error], "{input:?}");
        assert!(heard(&steps, alice).is_empty(), "{input:?}");
        assert!(steps.iter().all(|s| s.renames.is_empty()));
    }
    let steps = say(&mut server, 0, bob, b"still me\n");
    assert_eq!(heard(&steps, alice), ["anonymous-2: still me"]);
}

#[test]
fn an_overlong_line_gets_an_error_and_the_connection_goes_on() {
    let mut server = plain_server();
    let alice = accept(&mut server);
    let bob = accept(&mut server);
    let _ = drain(&mut server, true);
    for extra in [1, 2, 700] {
        let mut input = vec![b'x'; MAX_LINE_BYTES + extra];
        input.extend_from_slice(b"\nafter\n");
        // In pieces, as from a socket.
        let mut steps = Vec::new();
        for piece in input.chunks(100) {
            steps.extend(say(&mut server, 0, alice, piece));
        }
        assert_eq!(heard(&steps, alice), [TOO_LONG], "extra {extra}");
        assert_eq!(heard(&steps, bob), ["anonymous-1: after"], "extra {extra}");
    }
    let longest = [vec![b'y'; MAX_LINE_BYTES], b"\r\n".to_vec()].concat();
    let steps = say(&mut server, 0, alice, &longest);
    assert_eq!(
        heard(&steps, bob)[0].len(),
        "anonymous-1: ".len() + MAX_LINE_BYTES
    );
}

#[test]
fn silence_timeout_closes_only_the_silent() {
    let mut server = plain_server();
    let talker = accept(&mut server);
    let _ = drain(&mut server, true);
    assert_eq!(server.poll_timeout(), Some(at(SILENCE_MILLIS)));
    let second = server.handle_connect(at(1_000)).expect("connect");
    assert!(matches!(second, Admission::Accepted(_)));
    let _ = drain(&mut server, true);
    let _ = say(&mut server, 500, talker, b"hi\n");
    let deadline = at(1_000 + SILENCE_MILLIS);
    assert_eq!(server.poll_timeout(), Some(deadline));
    server
        .handle_timeout(at(deadline.as_millis() - 1))
        .expect("timeout");
    assert!(server.poll_output().is_none());
    server.handle_timeout(deadline).expect("timeout");
    let step = drain(&mut server, true);
    let silent = step.closes[0].0;
    assert_eq!(step.closes, [(silent, CloseReason::Silent)]);
    assert_eq!(
        step.to(silent),
        ["*** Closing: no line received within 10 s of connecting."]
    );
    assert_eq!(step.to(talker), ["*** anonymous-2 left (silent too long)"]);
    assert_eq!(server.poll_timeout(), None);
    assert_eq!(server.online(), 1);
    let steps = say(&mut server, 60_000, talker, b"/list\n");
    assert_eq!(heard(&steps, talker), ["*** Online (1): anonymous-1 (you)"]);
}

#[test]
fn many_silent_connections_all_close() {
    let mut server: Server<16> = Server::new(plain_config(), Instant::ZERO);
    let ids: Vec<ConnectionId> = (0..16)
        .map(|_| {
            let id = accept(&mut server);
            let _ = drain(&mut server, true);
            id
        })
        .collect();
    let now = at(SILENCE_MILLIS);
    let mut closed = Vec::new();
    for _ in 0..ids.len() {
        if server.poll_timeout().is_none_or(|due| due > now) {
            break;
        }
        server.handle_timeout(now).expect("timeout");
        let step = drain(&mut server, true);
        assert!(!step.closes.is_empty(), "a due timeout closed no one");
        closed.extend(step.closes.into_iter().map(|c| c.0));
    }
    assert_eq!(closed, ids);
    assert_eq!(server.online(), 0);
}

#[test]
fn shutdown_tells_everyone_then_refuses() {
    let mut server = plain_server();
    let alice = accept(&mut server);
    let bob = accept(&mut server);
    let _ = drain(&mut server, true);
    server.handle_shutdown(at(5)).expect("shutdown");
    let step = drain(&mut server, true);
    assert_eq!(step.to(alice), [SHUTDOWN]);
    assert_eq!(step.to(bob), [SHUTDOWN]);
    assert!(step.closes.is_empty());
    let now = at(6);
    assert_eq!(server.handle_connect(now), Err(Error::ShutDown));
    assert_eq!(
        server.handle_input(now, alice, b"hi\n"),
        Err(Error::ShutDown)
    );
    assert_eq!(
        server.handle_disconnect(now, bob, DisconnectReason::Closed),
        Err(Error::ShutDown)
    );
    assert_eq!(server.handle_timeout(now), Err(Error::ShutDown));
    assert_eq!(server.handle_shutdown(now), Err(Error::ShutDown));
    assert_eq!(server.poll_timeout(), None);
    assert!(server.poll_output().is_none());
}

#[test]
fn a_stale_handle_is_unknown_even_after_its_slot_is_reused() {
    let mut server = plain_server();
    let alice = accept(&mut server);
    let bob = accept(&mut server);
    let _ = drain(&mut server, true);
    server
        .handle_disconnect(at(1), bob, DisconnectReason::Closed)
        .expect("disconnect");
    assert_eq!(
        drain(&mut server, true).to(alice),
        ["*** anonymous-2 left (connection closed)"]
    );
    let unknown = Err(Error::UnknownConnection(bob));
    assert_eq!(
        server.handle_input(at(2), bob, b"hi\n").map(|_| ()),
        unknown
    );
    assert_eq!(
        server.handle_disconnect(at(2), bob, DisconnectReason::Closed),
        unknown
    );
    let carol = accept(&mut server);
    let _ = drain(&mut server, true);
    assert_eq!(carol.index(), bob.index(), "the slot is reused");
    assert_ne!(carol, bob);
    assert_eq!(
        server.handle_input(at(3), bob, b"hi\n").map(|_| ()),
        unknown
    );
    assert!(server.poll_output().is_none());
    // A connection closed by the core (here by /quit) is just as gone.
    let _ = say(&mut server, 4, carol, b"/quit\n");
    assert_eq!(
        server.handle_input(at(5), carol, b"hi\n"),
        Err(Error::UnknownConnection(carol))
    );
}

#[test]
fn pending_output_refuses_every_input_and_changes_nothing() {
    let mut server = plain_server();
    let alice = accept(&mut server);
    let _ = drain(&mut server, true);
    let Ok(Admission::Accepted(bob)) = server.handle_connect(Instant::ZERO) else {
        panic!("refused");
    };
    // Outputs are pending: bob's welcome and alice's join notice.
    let now = at(1);
    assert_eq!(server.handle_connect(now), Err(Error::OutputPending));
    assert_eq!(
        server.handle_input(now, alice, b"hi\n"),
        Err(Error::OutputPending)
    );
    assert_eq!(
        server.handle_disconnect(now, alice, DisconnectReason::Closed),
        Err(Error::OutputPending)
    );
    assert_eq!(server.handle_timeout(now), Err(Error::OutputPending));
    assert_eq!(server.handle_shutdown(now), Err(Error::OutputPending));
    let step = drain(&mut server, true);
    assert_eq!(step.to(alice), ["*** anonymous-2 joined (2 online)"]);
    assert_eq!(step.to(bob).len(), 3);
    assert_eq!(server.online(), 2);
    // Half-drained is still pending: a nick change queues three outputs.
    let _ = server
        .handle_input(now, alice, b"/nick alice\n")
        .expect("input");
    let _ = server.poll_output();
    let refused = server.handle_input(now, alice, b"two\n");
    assert_eq!(refused, Err(Error::OutputPending));
    let rest = drain(&mut server, true);
    assert_eq!(rest.to(alice), ["*** You are now known as alice."]);
    assert_eq!(rest.renames, [(alice, "alice".to_owned())]);
    let steps = say(&mut server, 2, alice, b"two\n");
    assert_eq!(heard(&steps, bob), ["alice: two"]);
}

#[test]
fn a_full_server_refuses() {
    let mut server: Server<2> = Server::new(plain_config(), Instant::ZERO);
    let _ = accept(&mut server);
    let _ = accept(&mut server);
    let _ = drain(&mut server, true);
    assert_eq!(
        server.handle_connect(Instant::ZERO),
        Ok(Admission::Refused(FULL))
    );
    assert!(server.poll_output().is_none());
}

/// Removes the server's own colour codes (`ESC [ digits m`), leaving any other ESC in place.
fn strip_colours(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = rest.find('\x1b') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let digits = after
            .strip_prefix('[')
            .map(|a| a.len() - a.trim_start_matches(|c: char| c.is_ascii_digit()).len());
        match digits {
            Some(n) if n > 0 && after[1 + n..].starts_with('m') => rest = &after[n + 2..],
            _ => {
                out.push('\x1b');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn colour_paints_names_but_never_passes_a_users_escape() {
    let mut server: Server<4> = Server::new(Config::default(), Instant::ZERO);
    let alice = accept(&mut server);
    let bob = accept(&mut server);
    let _ = drain(&mut server, false);
    let mut steps = say(&mut server, 0, alice, b"/nick alice\nhello\n");
    let hello = &steps[1].to(bob)[0];
    assert!(hello.starts_with("\x1b["), "{hello:?}");
    assert!(hello.ends_with("alice\x1b[0m: hello"), "{hello:?}");
    assert_eq!(strip_colours(hello), "alice: hello");
    #[rustfmt::skip]
    let evil: &[&[u8]] = &[
        b"boom \x1b[2J\n",
        b"/me \x1b]0;title\x07\n",
        b"/msg bob\x1b[31m hi\n",
        b"/nick a\x1b[31m\n",
        b"/quit \x1b[2J\n",
        b"\x1b\n",
        b"/msg anonymous-2 \x9b2J\n",
    ];
    for input in evil {
        let got = say(&mut server, 0, alice, input);
        assert_eq!(heard(&got, alice).len(), 1, "{input:?}");
        assert!(strip_colours(&heard(&got, alice)[0]).starts_with("*** error: "));
        assert!(heard(&got, bob).is_empty(), "{input:?}");
        steps.extend(got);
    }
    for step in &steps {
        for line in step.lines.values().flatten() {
            assert!(!strip_colours(line).contains('\x1b'), "raw ESC in {line:?}");
        }
    }
}
