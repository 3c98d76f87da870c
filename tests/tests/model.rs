//! Property tests of chat-core against a reference model, plus table-style scenarios.
//!
//! The model is deliberately naive: a list of people in connect order (name, silence deadline,
//! the lines they have typed but the server has not yet framed, the rooms they are in and the
//! one they talk in), a table of rooms by slot, and, for every step, the lines each connection
//! should receive. It runs beside the real [`Server`] and every step's outputs are compared
//! with it exactly, recipient by recipient and in order.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::time::Duration;

use chat_core::{
    Admission, CloseReason, Config, ConnectionId, DisconnectReason, Error, Event, Instant, LOBBY,
    MAX_LINE_BYTES, MAX_LISTED_NAMES, MAX_LISTED_ROOMS, MAX_ROOM_NAME_CHARS, MAX_ROOMS,
    MAX_ROOMS_PER_PERSON, MAX_TOPIC_BYTES, Output, PersonId, Server,
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
const NO_ROOM: &str = "*** error: you are in no room; /join #lobby to talk";
const HELP_LINES: usize = 23;

fn plain_config() -> Config {
    // Flood control is tested on its own (tests/flood.rs and the core's unit tests).
    Config::default()
        .with_greeting_delay(Duration::ZERO)
        .with_colour(false)
        .with_flood_limit(None)
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
fn drain<const N: usize>(server: &mut Server<chat_core::Inline<N>>, plain: bool) -> Step {
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
            Output::Event(Event::Renamed {
                person: PersonId::Local(conn),
                to,
                ..
            }) => step.renames.push((conn, to.to_owned())),
            Output::Event(_) => {}
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
    /// `/join NAME`, the name as typed (valid or not).
    Join(String),
    /// `/part [#ROOM] [REASON]`, as the parser splits it.
    Part {
        room: Option<String>,
        reason: Option<String>,
    },
    Rooms,
    /// `/topic [TEXT]`, the text as the parser hands it on.
    Topic(Option<String>),
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
    /// The slots of the rooms this person is in.
    rooms: BTreeSet<usize>,
    /// The slot of the room their lines go to; `None` exactly when `rooms` is empty.
    current: Option<usize>,
}

impl Person {
    fn name(&self) -> String {
        match &self.nick {
            Some(nick) => nick.clone(),
            None => format!("anonymous-{}", self.id.index() + 1),
        }
    }

    fn shares_a_room(&self, rooms: &BTreeSet<usize>) -> bool {
        !self.rooms.is_disjoint(rooms)
    }
}

/// One room. Who is in it is kept on each [`Person`].
#[derive(Debug)]
struct Room {
    /// The name as its creator typed it.
    name: String,
    topic: String,
}

#[derive(Debug)]
struct Model {
    /// In connect order, which is also silence-deadline order.
    people: Vec<Person>,
    /// The room table by slot: #lobby in slot 0 for good, a new room in the lowest free slot,
    /// a room other than #lobby freed when its last member leaves.
    rooms: Vec<Option<Room>>,
    max_room_members: u32,
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

fn valid_room(name: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    name.strip_prefix('#')
        .is_some_and(|rest| !rest.is_empty() && rest.chars().all(allowed))
        && name.chars().count() <= MAX_ROOM_NAME_CHARS
}

/// A topic as `/rooms` shows it: its first 60 characters, cut further to whole characters
/// within 120 bytes, then `...` if anything was cut.
fn preview(topic: &str) -> String {
    let mut shown = String::new();
    for c in topic.chars().take(60) {
        if shown.len() + c.len_utf8() > 120 {
            break;
        }
        shown.push(c);
    }
    if shown.len() < topic.len() {
        shown.push_str("...");
    }
    shown
}

impl Model {
    fn new(max_room_members: u32) -> Self {
        Self {
            people: Vec::new(),
            rooms: vec![Some(Room {
                name: LOBBY.to_owned(),
                topic: String::new(),
            })],
            max_room_members,
            gone: Vec::new(),
            now: 0,
            seq: 0,
            shut_down: false,
        }
    }

    fn pos(&self, id: ConnectionId) -> Option<usize> {
        self.people.iter().position(|p| p.id == id)
    }

    fn find(&self, name: &str) -> Option<usize> {
        self.people.iter().position(|p| match &p.nick {
            Some(nick) => nick.eq_ignore_ascii_case(name),
            None => p.name().eq_ignore_ascii_case(name),
        })
    }

    fn room(&self, room: usize) -> &Room {
        self.rooms[room].as_ref().expect("the room exists")
    }

    fn find_room(&self, name: &str) -> Option<usize> {
        self.rooms.iter().position(|room| {
            room.as_ref()
                .is_some_and(|room| room.name.eq_ignore_ascii_case(name))
        })
    }

    /// The people in `room`, in connect order.
    fn members(&self, room: usize) -> impl Iterator<Item = &Person> {
        self.people.iter().filter(move |p| p.rooms.contains(&room))
    }

    /// Everyone but the person at `pos` who shares at least one room with them.
    fn neighbours(&self, pos: usize) -> Vec<ConnectionId> {
        let me = &self.people[pos];
        self.people
            .iter()
            .filter(|p| p.id != me.id && p.shares_a_room(&me.rooms))
            .map(|p| p.id)
            .collect()
    }

    fn next_deadline(&self) -> Option<u64> {
        if self.shut_down {
            return None;
        }
        self.people.iter().filter_map(|p| p.deadline).min()
    }

    /// Takes `id` out of every room, then off the roster.
    fn remove(&mut self, id: ConnectionId) -> Person {
        let pos = self.pos(id).expect("live");
        let rooms: Vec<usize> = self.people[pos].rooms.iter().copied().collect();
        for room in rooms {
            self.leave_room(pos, room);
        }
        self.gone.push(id);
        self.people.remove(pos)
    }

    /// Takes the person at `pos` out of `room`; if it was their current room, the lowest slot
    /// they are still in becomes current. An empty room other than #lobby goes.
    fn leave_room(&mut self, pos: usize, room: usize) {
        let person = &mut self.people[pos];
        assert!(person.rooms.remove(&room), "not in room {room}");
        if person.current == Some(room) {
            person.current = person.rooms.first().copied();
        }
        // A room with a topic stays.
        let topic = self.rooms[room]
            .as_ref()
            .is_some_and(|r| !r.topic.is_empty());
        if room != 0 && !topic && self.members(room).next().is_none() {
            self.rooms[room] = None;
        }
    }

    /// The member listing of `room` as `me` sees it.
    fn listing(&self, room: usize, me: ConnectionId) -> String {
        let mut people: Vec<&Person> = self.members(room).collect();
        assert!(people.len() <= MAX_LISTED_NAMES, "the model lists everyone");
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
        let name = &self.room(room).name;
        format!("*** {name} ({}): {}", people.len(), names.join(", "))
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
            rooms: BTreeSet::new(),
            current: None,
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
        self.join(online - 1, LOBBY, exp);
    }

    /// `id` leaves the server: everyone sharing a room with it is told why.
    fn depart(&mut self, id: ConnectionId, why: &str, exp: &mut Expected) {
        let pos = self.pos(id).expect("live");
        let name = self.people[pos].name();
        for other in self.neighbours(pos) {
            exp.line(other, format!("*** {name} left ({why})"));
        }
        self.remove(id);
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
            Line::Say(text) => self.say(pos, &format!("{name}: {text}"), exp),
            Line::Me(text) => self.say(pos, &format!("* {name} {text}"), exp),
            Line::Nick(wanted) => self.nick(pos, &wanted, exp),
            Line::Msg { to, text } => match self.find(&to) {
                None => exp.line(id, format!("*** error: no one called {to} is online")),
                Some(target) => {
                    let target_id = self.people[target].id;
                    exp.line(target_id, format!("[private] {name}: {text}"));
                    if target_id != id {
                        let target_name = self.people[target].name();
                        exp.line(id, format!("[private] to {target_name}: {text}"));
                    }
                }
            },
            Line::List => match self.people[pos].current {
                Some(room) => exp.line(id, self.listing(room, id)),
                None => exp.line(id, NO_ROOM),
            },
            Line::Help => {
                for _ in 0..HELP_LINES {
                    exp.want(id, Want::Prefix("*** "));
                }
            }
            Line::Quit(reason) => {
                exp.line(id, "*** Goodbye!");
                let why = reason.map_or_else(|| "quit".to_owned(), |r| format!("quit: {r}"));
                self.depart(id, &why, exp);
                exp.closes.push((id, CloseReason::Quit));
            }
            Line::Join(room) => self.join(pos, &room, exp),
            Line::Part { room, reason } => self.part(pos, room.as_deref(), reason.as_deref(), exp),
            Line::Rooms => self.list_rooms(pos, exp),
            Line::Topic(topic) => self.topic(pos, topic, exp),
            Line::Refused(error) => exp.line(id, error),
            Line::Junk => exp.want(id, Want::Prefix("*** error: ")),
            Line::Empty => {}
            Line::TooLong => exp.line(id, TOO_LONG),
        }
    }

    /// `shown` (`NAME: TEXT` or `* NAME TEXT`) to the sender's current room: as it is to those
    /// talking there, with the room's name to members talking elsewhere.
    fn say(&mut self, pos: usize, shown: &str, exp: &mut Expected) {
        let id = self.people[pos].id;
        let Some(room) = self.people[pos].current else {
            exp.line(id, NO_ROOM);
            return;
        };
        let room_name = &self.room(room).name;
        if self.members(room).count() == 1 {
            exp.line(
                id,
                format!("*** No one else is in {room_name} to hear that."),
            );
        }
        for other in self.members(room).filter(|p| p.id != id) {
            if other.current == Some(room) {
                exp.line(other.id, shown);
            } else {
                exp.line(other.id, format!("[{room_name}] {shown}"));
            }
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
        for other in self.neighbours(pos) {
            exp.line(other, format!("*** {old} is now known as {wanted}"));
        }
        exp.line(id, format!("*** You are now known as {wanted}."));
        exp.renames.push((id, wanted.to_owned()));
        self.people[pos].nick = Some(wanted.to_owned());
    }

    /// `/join NAME`: switch to it if a member already, else enter it (creating it in the
    /// lowest free slot if new) and make it current.
    fn join(&mut self, pos: usize, wanted: &str, exp: &mut Expected) {
        let id = self.people[pos].id;
        if !valid_room(wanted) {
            let prefix = format!("*** error: \"{wanted}\" is not a valid room name: ");
            exp.want(id, Want::Around(prefix, String::new()));
            return;
        }
        let (room, new) = match self.find_room(wanted) {
            Some(room) => (room, false),
            None => {
                let free = self
                    .rooms
                    .iter()
                    .position(Option::is_none)
                    .unwrap_or(self.rooms.len());
                if free == MAX_ROOMS {
                    exp.line(id, format!("*** error: there are already {MAX_ROOMS} rooms, the most there can be; /rooms lists them"));
                    return;
                }
                (free, true)
            }
        };
        if self.people[pos].rooms.contains(&room) {
            self.people[pos].current = Some(room);
            exp.line(id, format!("*** Now talking in {}.", self.room(room).name));
            return;
        }
        let here: Vec<ConnectionId> = if new {
            Vec::new()
        } else {
            self.members(room).map(|p| p.id).collect()
        };
        if here.len() as u64 >= u64::from(self.max_room_members) {
            let error = if new {
                // The room was never really made.
                "*** error: that room is full".to_owned()
            } else {
                let name = &self.room(room).name;
                format!("*** error: {name} is full ({} people)", here.len())
            };
            exp.line(id, error);
            return;
        }
        if new {
            let made = Some(Room {
                name: wanted.to_owned(),
                topic: String::new(),
            });
            if room == self.rooms.len() {
                self.rooms.push(made);
            } else {
                self.rooms[room] = made;
            }
        }
        let person = &mut self.people[pos];
        person.rooms.insert(room);
        person.current = Some(room);
        let me = person.name();
        let Room { name, topic } = self.room(room);
        let count = here.len() + 1;
        for other in here {
            exp.line(other, format!("*** {me} joined {name} ({count} here)"));
        }
        exp.line(id, format!("*** You are now talking in {name}."));
        if !topic.is_empty() {
            exp.line(id, format!("*** Topic of {name}: {topic}"));
        }
        exp.line(id, self.listing(room, id));
    }

    /// `/part [#ROOM] [REASON]`.
    fn part(&mut self, pos: usize, room: Option<&str>, reason: Option<&str>, exp: &mut Expected) {
        let person = &self.people[pos];
        let id = person.id;
        let room = match room {
            Some(name) => self
                .find_room(name)
                .filter(|room| person.rooms.contains(room)),
            None => person.current,
        };
        let Some(room) = room else {
            exp.line(id, "*** error: you are not in that room");
            return;
        };
        let me = person.name();
        let name = self.room(room).name.clone();
        for other in self.members(room).filter(|p| p.id != id) {
            let notice = match reason {
                Some(reason) => format!("*** {me} left {name} ({reason})"),
                None => format!("*** {me} left {name}"),
            };
            exp.line(other.id, notice);
        }
        exp.line(id, format!("*** You left {name}."));
        self.leave_room(pos, room);
        match self.people[pos].current {
            Some(now) => exp.line(id, format!("*** Now talking in {}.", self.room(now).name)),
            None => exp.line(
                id,
                "*** You are in no room now; /join #lobby to talk again.",
            ),
        }
    }

    /// `/rooms`: every room in slot order, with its size, whether one is in it, and its topic.
    fn list_rooms(&self, pos: usize, exp: &mut Expected) {
        let me = &self.people[pos];
        let rooms: Vec<(usize, &Room)> = self
            .rooms
            .iter()
            .enumerate()
            .filter_map(|(slot, room)| Some((slot, room.as_ref()?)))
            .collect();
        exp.line(me.id, format!("*** Rooms ({}):", rooms.len()));
        for (slot, room) in rooms {
            let count = self.members(slot).count();
            let here = if me.rooms.contains(&slot) {
                ", you are in it"
            } else {
                ""
            };
            let mut line = format!("***   {} ({count}{here})", room.name);
            if !room.topic.is_empty() {
                line.push(' ');
                line.push_str(&preview(&room.topic));
            }
            exp.line(me.id, line);
        }
    }

    /// `/topic [TEXT]` in the current room: shown, or set and announced to the whole room.
    fn topic(&mut self, pos: usize, topic: Option<String>, exp: &mut Expected) {
        let id = self.people[pos].id;
        let Some(room) = self.people[pos].current else {
            exp.line(id, NO_ROOM);
            return;
        };
        let me = self.people[pos].name();
        let Some(topic) = topic else {
            let Room { name, topic } = self.room(room);
            if topic.is_empty() {
                exp.line(id, format!("*** {name} has no topic."));
            } else {
                exp.line(id, format!("*** Topic of {name}: {topic}"));
            }
            return;
        };
        if topic.len() > MAX_TOPIC_BYTES {
            exp.line(
                id,
                format!(
                    "*** error: a topic has at most {MAX_TOPIC_BYTES} bytes; it was not changed"
                ),
            );
            return;
        }
        // `/topic -` clears it.
        let topic = if topic == "-" { String::new() } else { topic };
        let name = &self.room(room).name;
        for member in self.members(room) {
            let said = if topic.is_empty() {
                format!("*** {me} cleared the topic of {name}")
            } else {
                format!("*** {me} set the topic of {name}: {topic}")
            };
            exp.line(member.id, said);
        }
        self.rooms[room].as_mut().expect("the room exists").topic = topic;
    }

    /// Closes, in connect order, the silent connections the server closed in one timeout step.
    /// Each one's departure reaches those left who shared a room with it.
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
        let mut departures = Vec::new();
        for &id in closed {
            let person = &self.people[self.pos(id).expect("live")];
            departures.push((person.name(), person.rooms.clone()));
            self.remove(id);
            exp.line(
                id,
                format!("*** Closing: no line received within {SILENCE_SECS} s of connecting."),
            );
            exp.closes.push((id, CloseReason::Silent));
        }
        for other in &self.people {
            for (name, rooms) in &departures {
                if other.shares_a_room(rooms) {
                    exp.line(other.id, format!("*** {name} left (silent too long)"));
                }
            }
        }
    }

    /// Checks the model's own bookkeeping.
    fn check(&self) {
        for person in &self.people {
            assert_eq!(
                person.current.is_none(),
                person.rooms.is_empty(),
                "{person:?}"
            );
            if let Some(current) = person.current {
                assert!(person.rooms.contains(&current), "{person:?}");
            }
            for &room in &person.rooms {
                assert!(self.rooms[room].is_some(), "{person:?} in a gone room");
            }
        }
        assert!(self.rooms[0].is_some(), "#lobby stays");
        let mut names = HashSet::new();
        for (slot, room) in self.rooms.iter().enumerate() {
            let Some(room) = room else { continue };
            assert!(
                names.insert(room.name.to_ascii_lowercase()),
                "two {}",
                room.name
            );
            let members = self.members(slot).count();
            assert!(
                slot == 0 || members > 0 || !room.topic.is_empty(),
                "empty room {} without a topic kept",
                room.name
            );
            assert!(members as u64 <= u64::from(self.max_room_members));
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
    /// `/join` a room of the pool, recased, with one of a few spellings of the command.
    Join {
        which: Index,
        case: u8,
        verb: u8,
    },
    JoinInvalid(Index),
    /// `/part`: of the current room (`target` 0), of a room of the pool (1, maybe not one the
    /// sender is in) or of one of the sender's rooms (2 or more), with or without a reason.
    Part {
        target: u8,
        which: Index,
        case: u8,
        reason: bool,
        verb: u8,
    },
    Rooms(bool),
    /// `/topic` of one of a few shapes: none, short, long, multibyte, too long.
    Topic(u8),
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
        3 => (0..10u8, 0..7u8).prop_map(|(payload, cmd)| Spec::Bad { payload, cmd }),
        1 => any::<Index>().prop_map(Spec::Junk),
        1 => any::<bool>().prop_map(Spec::Empty),
        1 => prop_oneof![510..=515usize, Just(600), Just(1200)].prop_map(Spec::Long),
        6 => (any::<Index>(), any::<u8>(), 0..4u8)
            .prop_map(|(which, case, verb)| Spec::Join { which, case, verb }),
        1 => any::<Index>().prop_map(Spec::JoinInvalid),
        5 => (0..4u8, any::<Index>(), any::<u8>(), any::<bool>(), 0..3u8).prop_map(
            |(target, which, case, reason, verb)| Spec::Part {
                target,
                which,
                case,
                reason,
                verb
            }
        ),
        1 => any::<bool>().prop_map(Spec::Rooms),
        3 => (0..14u8).prop_map(Spec::Topic),
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
    // A Cyrillic а among Latin letters (names in one script are fine: see the core's tests).
    "h\u{430}llo",
    "a.b",
    "x#",
];
const JUNK: [&str; 10] = [
    "/dance",
    "/nick a b",
    "/msg",
    "/msg x",
    "/me",
    "/",
    "/nick",
    "/join",
    "/join #a #b",
    "/JOIN   ",
];
/// Rooms to join and part, few so that people meet; recased, so names match ignoring case.
const ROOMS: [&str; 5] = [
    "#lobby",
    "#a",
    "#b",
    "#C",
    "#Thirty-two_chars_with_the_hash1",
];
const INVALID_ROOMS: [&str; 7] = [
    "lobby",
    "#",
    "#a!",
    "#\u{430}bc",
    "#thirty-three_chars_with_the_hash",
    "#a.b",
    "##",
];
// The longest valid name, and one character more (ASCII: as many bytes).
const _: () = assert!(ROOMS[4].len() == MAX_ROOM_NAME_CHARS);
const _: () = assert!(INVALID_ROOMS[4].len() == MAX_ROOM_NAME_CHARS + 1);

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
                    3 => format!("/topic b{seq} "),
                    4 => format!("/join #b{seq}"),
                    5 => format!("/part #a b{seq} "),
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
            Spec::Join { which, case, verb } => {
                let room = recase(ROOMS[which.index(ROOMS.len())], *case);
                let line = match verb {
                    0 => format!("/join {room}"),
                    1 => format!("/JOIN {room}"),
                    2 => format!("/Join\t{room} "),
                    _ => format!("/join   {room}"),
                };
                text(line, Line::Join(room))
            }
            Spec::JoinInvalid(which) => {
                let room = INVALID_ROOMS[which.index(INVALID_ROOMS.len())].to_owned();
                text(format!("/join {room}"), Line::Join(room))
            }
            Spec::Part {
                target,
                which,
                case,
                reason,
                verb,
            } => {
                let mine = &self.people[sender].rooms;
                let room = match target {
                    0 => None,
                    2.. if !mine.is_empty() => {
                        let slot = *mine.iter().nth(which.index(mine.len())).expect("in range");
                        Some(recase(&self.room(slot).name, *case))
                    }
                    _ => Some(recase(ROOMS[which.index(ROOMS.len())], *case)),
                };
                let reason = reason.then(|| format!("r{seq}  gone home"));
                let mut line = ["/part", "/leave", "/PART"][usize::from(*verb % 3)].to_owned();
                for word in room.iter().chain(&reason) {
                    line.push(' ');
                    line.push_str(word);
                }
                text(line, Line::Part { room, reason })
            }
            Spec::Rooms(extra) => {
                let line = if *extra {
                    "/ROOMS all of them"
                } else {
                    "/rooms"
                };
                text(line.to_owned(), Line::Rooms)
            }
            Spec::Topic(kind) => {
                let head = format!("t{seq} ");
                // `head`, then `fill` for as long as `fits` holds of the result.
                let padded = |fill: char, fits: &dyn Fn(&str) -> bool| {
                    let mut topic = head.clone();
                    loop {
                        let mut longer = topic.clone();
                        longer.push(fill);
                        if !fits(&longer) {
                            return topic;
                        }
                        topic = longer;
                    }
                };
                let chars = |n: usize| move |t: &str| t.chars().count() <= n;
                let bytes = |n: usize| move |t: &str| t.len() <= n;
                let typed = match kind {
                    0 | 12 | 13 => String::new(),
                    1 => format!("t{seq} about things"),
                    2 => format!("   t{seq}  two  spaces"),
                    3 => format!("t{seq}\twith tab"),
                    5 => padded('x', &chars(60)),
                    6 => padded('x', &chars(61)),
                    7 => padded('y', &bytes(MAX_TOPIC_BYTES)),
                    8 => padded('z', &bytes(MAX_TOPIC_BYTES + 1)),
                    9 => padded('中', &bytes(MAX_TOPIC_BYTES)),
                    10 => padded('é', &bytes(MAX_TOPIC_BYTES)),
                    11 => padded('😀', &chars(60)),
                    // Only blanks: no topic given.
                    _ => " \t ".to_owned(),
                };
                // A tab becomes a space, and the blanks around the text are not part of it.
                let topic = typed.replace('\t', " ").trim().to_owned();
                let topic = Some(topic).filter(|topic| !topic.is_empty());
                let line = if typed.is_empty() {
                    "/topic".to_owned()
                } else {
                    format!("/TOPIC {typed}")
                };
                text(line, Line::Topic(topic))
            }
        }
    }
}

// ----- Running the model beside the server -----

struct Harness {
    server: Server<chat_core::Inline<CLIENTS>>,
    model: Model,
    /// The time the test is at; the server is sometimes handed an older one.
    clock: u64,
    /// Nicknames as the server reported them through `Output::Renamed`.
    observed: BTreeMap<ConnectionId, String>,
}

impl Harness {
    /// A server whose rooms hold at most `max_room_members` people.
    fn new(max_room_members: u32) -> Self {
        let config = plain_config().with_max_room_members(max_room_members);
        Self {
            server: Server::new(config, Instant::ZERO),
            model: Model::new(max_room_members),
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
        model.check();
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
                    other => panic!("no address, no ban: {other:?}"),
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
        cases: 256,
        // Failures print their minimal input; no regression files are written.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Random sessions against the model: every step's output, exactly.
    #[test]
    fn server_matches_model(
        ops in prop::collection::vec(timed(), 1..120),
        shutdown in prop::bool::weighted(0.25),
        // Mostly no limit; sometimes rooms (#lobby too) fill up.
        max_room_members in prop_oneof![4 => Just(u32::MAX), 1 => 0..4u32],
    ) {
        let mut harness = Harness::new(max_room_members);
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
        let mut server: Server<chat_core::Inline<4>> = Server::new(plain_config(), Instant::ZERO);
        let ids: Vec<ConnectionId> = (0..3).map(|_| accept(&mut server)).collect();
        let _ = drain(&mut server, true);
        let prefix: &[u8] = [&b""[..], b"/me ", b"/msg anonymous-2 "][cmd];
        let mut line = [prefix, &before, taint, &after, b"\n"].concat();
        // A connection whose first byte is `{` speaks the JSON dialect (tests/json.rs); this
        // test is about lines.
        if line[0] == b'{' {
            line[0] = b'(';
        }
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
fn join<const N: usize>(server: &mut Server<chat_core::Inline<N>>) -> (ConnectionId, Step) {
    match server.handle_connect(Instant::ZERO).expect("connect") {
        Admission::Accepted(id) => (id, drain(server, !server.config().colour)),
        other => panic!("refused: {other:?}"),
    }
}

/// Connects, ignoring the welcome.
fn accept<const N: usize>(server: &mut Server<chat_core::Inline<N>>) -> ConnectionId {
    join(server).0
}

/// Feeds `bytes` from `conn`, one line per call, and gathers every step's output.
fn say<const N: usize>(
    server: &mut Server<chat_core::Inline<N>>,
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

fn plain_server() -> Server<chat_core::Inline<4>> {
    Server::new(plain_config(), Instant::ZERO)
}

#[test]
fn welcome_banner_shows_count_and_the_lobby() {
    let mut server = plain_server();
    let (alice, first) = join(&mut server);
    assert_eq!(
        first.to(alice),
        [
            "*** Welcome to the chat! You are anonymous-1; 1 person is online.",
            "*** Pick a nickname with /nick NAME; /help lists the commands.",
            "*** You are now talking in #lobby.",
            "*** #lobby (1): anonymous-1 (you)",
        ]
    );
    let _ = say(&mut server, 0, alice, b"/nick alice\n");
    let (bob, second) = join(&mut server);
    assert_eq!(
        second.to(bob),
        [
            "*** Welcome to the chat! You are anonymous-2; 2 people are online.",
            "*** Pick a nickname with /nick NAME; /help lists the commands.",
            "*** You are now talking in #lobby.",
            "*** #lobby (2): alice, anonymous-2 (you)",
        ]
    );
}

#[test]
fn the_lobby_sees_a_join_notice() {
    let mut server = plain_server();
    let alice = accept(&mut server);
    let _ = drain(&mut server, true);
    let (bob, step) = join(&mut server);
    assert_eq!(step.to(alice), ["*** anonymous-2 joined #lobby (2 here)"]);
    assert_eq!(step.to(bob).len(), 4);
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
    assert_eq!(heard(&steps, talker), ["*** #lobby (1): anonymous-1 (you)"]);
}

#[test]
fn many_silent_connections_all_close() {
    let mut server: Server<chat_core::Inline<16>> = Server::new(plain_config(), Instant::ZERO);
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
    assert_eq!(step.to(alice), ["*** anonymous-2 joined #lobby (2 here)"]);
    assert_eq!(step.to(bob).len(), 4);
    assert_eq!(server.online(), 2);
    // Half-drained is still pending: a nick change queues three outputs, the event first.
    let _ = server
        .handle_input(now, alice, b"/nick alice\n")
        .expect("input");
    assert!(matches!(
        server.poll_output(),
        Some(Output::Event(Event::Renamed { to: "alice", .. }))
    ));
    let refused = server.handle_input(now, alice, b"two\n");
    assert_eq!(refused, Err(Error::OutputPending));
    let rest = drain(&mut server, true);
    assert_eq!(rest.to(alice), ["*** You are now known as alice."]);
    assert_eq!(rest.to(bob), ["*** anonymous-1 is now known as alice"]);
    let steps = say(&mut server, 2, alice, b"two\n");
    assert_eq!(heard(&steps, bob), ["alice: two"]);
}

#[test]
fn a_full_server_refuses() {
    let mut server: Server<chat_core::Inline<2>> = Server::new(plain_config(), Instant::ZERO);
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
    let mut server: Server<chat_core::Inline<4>> = Server::new(
        Config::default()
            .with_greeting_delay(Duration::ZERO)
            .with_flood_limit(None),
        Instant::ZERO,
    );
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

// ----- Room scenarios -----

#[test]
fn joining_creates_a_room_and_the_next_member_sees_who_is_there() {
    let mut server = plain_server();
    let alice = accept(&mut server);
    let bob = accept(&mut server);
    let _ = drain(&mut server, true);
    let _ = say(&mut server, 0, alice, b"/nick alice\n");
    let steps = say(&mut server, 0, alice, b"/join #Rust\n");
    assert_eq!(
        heard(&steps, alice),
        [
            "*** You are now talking in #Rust.",
            "*** #Rust (1): alice (you)"
        ]
    );
    assert!(heard(&steps, bob).is_empty());
    // Room names match ignoring case, and keep their creator's spelling.
    let steps = say(&mut server, 0, bob, b"/JOIN #rUST\n");
    assert_eq!(
        heard(&steps, bob),
        [
            "*** You are now talking in #Rust.",
            "*** #Rust (2): alice, anonymous-2 (you)"
        ]
    );
    assert_eq!(
        heard(&steps, alice),
        ["*** anonymous-2 joined #Rust (2 here)"]
    );
    // Joining a room one is in only switches to it.
    let steps = say(&mut server, 0, bob, b"/join #lobby\n/join #rust\n");
    assert_eq!(
        heard(&steps, bob),
        ["*** Now talking in #lobby.", "*** Now talking in #Rust."]
    );
    assert!(heard(&steps, alice).is_empty());
    let steps = say(&mut server, 0, bob, b"/rooms\n/list\n");
    assert_eq!(
        heard(&steps, bob),
        [
            "*** Rooms (2):",
            "***   #lobby (2, you are in it)",
            "***   #Rust (2, you are in it)",
            "*** #Rust (2): alice, anonymous-2 (you)",
        ]
    );
    let steps = say(
        &mut server,
        0,
        bob,
        b"/join rust\n/join #a.b\n/join #a #b\n",
    );
    assert_eq!(
        heard(&steps, bob),
        [
            "*** error: \"rust\" is not a valid room name: a room name starts with #",
            "*** error: \"#a.b\" is not a valid room name: a room name cannot contain '.'; \
             use letters, digits, _ and -",
            "*** error: too many arguments; usage: /join #ROOM [KEY]",
        ]
    );
    assert!(heard(&steps, alice).is_empty());
}

#[test]
fn a_line_goes_to_its_room_marked_for_members_talking_elsewhere() {
    let mut server = plain_server();
    let alice = accept(&mut server);
    let bob = accept(&mut server);
    let carol = accept(&mut server);
    let _ = drain(&mut server, true);
    let _ = say(&mut server, 0, alice, b"/join #a\n");
    let _ = say(&mut server, 0, bob, b"/join #a\n/join #lobby\n");
    // alice talks in #a; bob is in it but talks in #lobby; carol is not in it.
    let steps = say(&mut server, 0, alice, b"hi\n/me waves\n");
    assert!(heard(&steps, alice).is_empty());
    assert_eq!(
        heard(&steps, bob),
        ["[#a] anonymous-1: hi", "[#a] * anonymous-1 waves"]
    );
    assert!(heard(&steps, carol).is_empty());
    let steps = say(&mut server, 0, bob, b"yo\n");
    assert_eq!(heard(&steps, alice), ["[#lobby] anonymous-2: yo"]);
    assert_eq!(heard(&steps, carol), ["anonymous-2: yo"]);
    let _ = say(&mut server, 0, bob, b"/part #a\n");
    let steps = say(&mut server, 0, alice, b"anyone?\n/me looks around\n");
    assert_eq!(
        heard(&steps, alice),
        [
            "*** No one else is in #a to hear that.",
            "*** No one else is in #a to hear that."
        ]
    );
    assert!(heard(&steps, bob).is_empty());
    assert!(heard(&steps, carol).is_empty());
}

#[test]
fn parting_the_last_member_removes_the_room() {
    let mut server = plain_server();
    let alice = accept(&mut server);
    let bob = accept(&mut server);
    let _ = drain(&mut server, true);
    let _ = say(&mut server, 0, alice, b"/join #a\n/topic old news\n");
    let _ = say(&mut server, 0, bob, b"/join #A\n");
    let steps = say(&mut server, 0, alice, b"/part #A  see  you\n");
    assert_eq!(
        heard(&steps, alice),
        ["*** You left #a.", "*** Now talking in #lobby."]
    );
    assert_eq!(heard(&steps, bob), ["*** anonymous-1 left #a (see  you)"]);
    // A room with a topic stays while empty: its topic is cleared first.
    let steps = say(&mut server, 0, bob, b"/rooms\n/topic -\n/leave\n");
    assert_eq!(
        heard(&steps, bob),
        [
            "*** Rooms (2):",
            "***   #lobby (2, you are in it)",
            "***   #a (1, you are in it) old news",
            "*** anonymous-2 cleared the topic of #a",
            "*** You left #a.",
            "*** Now talking in #lobby.",
        ]
    );
    assert!(heard(&steps, alice).is_empty(), "alice is not in #a");
    let steps = say(&mut server, 0, bob, b"/rooms\n");
    assert_eq!(
        heard(&steps, bob),
        ["*** Rooms (1):", "***   #lobby (2, you are in it)"]
    );
    // Made again, it is a new room: the new spelling, and no topic.
    let steps = say(&mut server, 0, alice, b"/join #A\n/topic\n");
    assert_eq!(
        heard(&steps, alice),
        [
            "*** You are now talking in #A.",
            "*** #A (1): anonymous-1 (you)",
            "*** #A has no topic."
        ]
    );
}

#[test]
fn after_a_part_the_lowest_slot_becomes_current_and_none_leaves_no_room() {
    let mut server = plain_server();
    let alice = accept(&mut server);
    let _ = drain(&mut server, true);
    // #a takes slot 1 and #b slot 2; #a goes, so #z takes slot 1 and #q slot 3.
    let _ = say(&mut server, 0, alice, b"/join #a\n/join #b\n/part #a\n");
    let _ = say(&mut server, 0, alice, b"/join #z\n/join #q\n");
    let steps = say(&mut server, 0, alice, b"/part #lobby\n/part\n/rooms\n");
    assert_eq!(
        heard(&steps, alice),
        [
            // #lobby was not current: #q stays so.
            "*** You left #lobby.",
            "*** Now talking in #q.",
            // #z, in slot 1, comes before #b although joined after it.
            "*** You left #q.",
            "*** Now talking in #z.",
            "*** Rooms (3):",
            "***   #lobby (0)",
            "***   #z (1, you are in it)",
            "***   #b (1, you are in it)",
        ]
    );
    let steps = say(&mut server, 0, alice, b"/part #z\n/part\n");
    assert_eq!(
        heard(&steps, alice),
        [
            "*** You left #z.",
            "*** Now talking in #b.",
            "*** You left #b.",
            "*** You are in no room now; /join #lobby to talk again.",
        ]
    );
    let steps = say(
        &mut server,
        0,
        alice,
        b"hello\n/me waves\n/list\n/topic\n/topic x\n/part\n",
    );
    let no_room = "*** error: you are in no room; /join #lobby to talk";
    assert_eq!(
        heard(&steps, alice),
        [
            no_room,
            no_room,
            no_room,
            no_room,
            no_room,
            "*** error: you are not in that room"
        ]
    );
    let steps = say(&mut server, 0, alice, b"/join #lobby\n");
    assert_eq!(
        heard(&steps, alice),
        [
            "*** You are now talking in #lobby.",
            "*** #lobby (1): anonymous-1 (you)"
        ]
    );
}

#[test]
fn a_topic_set_is_announced_to_the_room() {
    let mut server = plain_server();
    let alice = accept(&mut server);
    let bob = accept(&mut server);
    let carol = accept(&mut server);
    let _ = drain(&mut server, true);
    let _ = say(&mut server, 0, alice, b"/join #a\n");
    let _ = say(&mut server, 0, bob, b"/join #a\n");
    let steps = say(&mut server, 0, alice, b"/topic   all about  a\n");
    let set = "*** anonymous-1 set the topic of #a: all about  a";
    assert_eq!(heard(&steps, alice), [set]);
    assert_eq!(heard(&steps, bob), [set]);
    assert!(heard(&steps, carol).is_empty());
    let steps = say(&mut server, 0, bob, b"/topic\n");
    assert_eq!(heard(&steps, bob), ["*** Topic of #a: all about  a"]);
    let steps = say(&mut server, 0, carol, b"/topic\n/join #A\n");
    assert_eq!(
        heard(&steps, carol),
        [
            "*** #lobby has no topic.",
            "*** You are now talking in #a.",
            "*** Topic of #a: all about  a",
            "*** #a (3): anonymous-1, anonymous-2, anonymous-3 (you)",
        ]
    );
    assert_eq!(heard(&steps, alice), ["*** anonymous-3 joined #a (3 here)"]);
    // /rooms shows 60 characters of a topic, then "...".
    let long = "é".repeat(61);
    let steps = say(
        &mut server,
        0,
        carol,
        format!("/topic {long}\n/rooms\n").as_bytes(),
    );
    assert_eq!(
        heard(&steps, carol)[3],
        format!("***   #a (3, you are in it) {}...", "é".repeat(60))
    );
    let steps = say(
        &mut server,
        0,
        carol,
        format!("/topic {}\n", "x".repeat(201)).as_bytes(),
    );
    assert_eq!(
        heard(&steps, carol),
        ["*** error: a topic has at most 200 bytes; it was not changed"]
    );
    assert!(heard(&steps, alice).is_empty());
}

#[test]
fn nick_and_departure_notices_reach_only_those_sharing_a_room() {
    let mut server: Server<chat_core::Inline<5>> = Server::new(plain_config(), Instant::ZERO);
    let alice = accept(&mut server);
    let bob = accept(&mut server);
    let carol = accept(&mut server);
    let dave = accept(&mut server);
    let _ = drain(&mut server, true);
    // carol is only in #x; dave is in #lobby and #x.
    let _ = say(&mut server, 0, carol, b"/join #x\n/part #lobby\n");
    let _ = say(&mut server, 0, dave, b"/join #x\n");
    let steps = say(&mut server, 0, alice, b"/nick alice\n");
    assert_eq!(
        heard(&steps, bob),
        ["*** anonymous-1 is now known as alice"]
    );
    assert_eq!(
        heard(&steps, dave),
        ["*** anonymous-1 is now known as alice"]
    );
    assert!(heard(&steps, carol).is_empty());
    server
        .handle_disconnect(at(1), dave, DisconnectReason::Closed)
        .expect("disconnect");
    let step = drain(&mut server, true);
    let left = "*** anonymous-4 left (connection closed)";
    for conn in [alice, bob, carol] {
        assert_eq!(step.to(conn), [left], "{conn:?}");
    }
    // Alone in #x, carol goes unnoticed.
    let steps = say(&mut server, 2, carol, b"/nick carol\n/quit bye\n");
    assert!(heard(&steps, alice).is_empty());
    assert!(heard(&steps, bob).is_empty());
}

#[test]
fn a_full_room_refuses_to_take_more() {
    let config = plain_config().with_max_room_members(2);
    let mut server: Server<chat_core::Inline<4>> = Server::new(config, Instant::ZERO);
    let alice = accept(&mut server);
    let bob = accept(&mut server);
    let _ = drain(&mut server, true);
    let (carol, step) = join(&mut server);
    assert_eq!(
        step.to(carol),
        [
            "*** Welcome to the chat! You are anonymous-3; 3 people are online.",
            "*** Pick a nickname with /nick NAME; /help lists the commands.",
            "*** error: #lobby is full (2 people)",
        ]
    );
    assert!(step.to(alice).is_empty() && step.to(bob).is_empty());
    let steps = say(&mut server, 0, carol, b"hi\n/join #a\n");
    assert_eq!(
        heard(&steps, carol),
        [
            "*** error: you are in no room; /join #lobby to talk",
            "*** You are now talking in #a.",
            "*** #a (1): anonymous-3 (you)",
        ]
    );
    // No room at all: a new room is not even made.
    let config = plain_config().with_max_room_members(0);
    let mut server: Server<chat_core::Inline<4>> = Server::new(config, Instant::ZERO);
    let (alice, step) = join(&mut server);
    assert_eq!(step.to(alice)[2], "*** error: #lobby is full (0 people)");
    let steps = say(&mut server, 0, alice, b"/join #a\n/rooms\n");
    assert_eq!(
        heard(&steps, alice),
        [
            "*** error: that room is full",
            "*** Rooms (1):",
            "***   #lobby (0)"
        ]
    );
}

#[test]
fn a_person_is_in_at_most_max_rooms_per_person() {
    let mut server = plain_server();
    let alice = accept(&mut server);
    let bob = accept(&mut server);
    let _ = drain(&mut server, true);
    for n in 1..MAX_ROOMS_PER_PERSON {
        let steps = say(&mut server, 0, alice, format!("/join #p{n}\n").as_bytes());
        assert_eq!(heard(&steps, alice).len(), 2, "#p{n}");
    }
    let steps = say(&mut server, 0, alice, b"/join #one-more\n/join #lobby\n");
    assert_eq!(
        heard(&steps, alice),
        [
            format!(
                "*** error: you are in {MAX_ROOMS_PER_PERSON} rooms, the most one can be in; /part one first"
            )
            .as_str(),
            "*** Now talking in #lobby.",
        ]
    );
    // A room that exists is refused too, and nothing changed for anyone.
    let _ = say(&mut server, 0, bob, b"/join #bobs\n");
    let steps = say(&mut server, 0, alice, b"/join #bobs\n/rooms\n");
    let heard = heard(&steps, alice);
    assert!(heard[0].contains("the most one can be in"), "{heard:?}");
    assert_eq!(
        heard[1],
        format!("*** Rooms ({}):", MAX_ROOMS_PER_PERSON + 1)
    );
    assert!(heard.contains(&"***   #bobs (1)".to_owned()), "{heard:?}");
}

#[test]
fn the_room_table_holds_at_most_max_rooms() {
    // Enough people to fill the table, each in as many rooms as one can be.
    let mut server: Box<Server<chat_core::Inline<256>>> =
        Box::new(Server::new(plain_config(), Instant::ZERO));
    let alice = accept(&mut server);
    let bob = accept(&mut server);
    let _ = drain(&mut server, true);
    let (mut member, mut joined) = (alice, 0);
    for n in 1..MAX_ROOMS {
        if joined == MAX_ROOMS_PER_PERSON - 1 {
            (member, joined) = (accept(&mut server), 0);
            let _ = drain(&mut server, true);
        }
        let steps = say(&mut server, 0, member, format!("/join #r{n}\n").as_bytes());
        assert_eq!(heard(&steps, member).len(), 2, "#r{n}");
        joined += 1;
    }
    let steps = say(&mut server, 0, bob, b"/join #one-more\n/join #R7\n");
    assert_eq!(
        heard(&steps, bob),
        [
            &format!(
                "*** error: there are already {MAX_ROOMS} rooms, the most there can be; /rooms lists them"
            ),
            "*** You are now talking in #r7.",
            "*** #r7 (2): anonymous-1, anonymous-2 (you)",
        ]
    );
    let steps = say(&mut server, 0, alice, b"/rooms\n");
    let listing = heard(&steps, alice);
    assert_eq!(
        listing.len(),
        1 + MAX_LISTED_ROOMS + 1,
        "the first rooms, then how many more"
    );
    assert_eq!(
        listing[listing.len() - 1],
        format!(
            "***   and {} more; /join #ROOM to enter one by name",
            MAX_ROOMS - MAX_LISTED_ROOMS
        )
    );
    // One room freed, one can be made, in its slot.
    let _ = say(&mut server, 0, alice, b"/part #r5\n");
    let steps = say(&mut server, 0, bob, b"/join #one-more\n/rooms\n");
    assert_eq!(
        heard(&steps, bob)[1],
        "*** #one-more (1): anonymous-2 (you)"
    );
    assert_eq!(
        heard(&steps, bob)[2 + 1 + 5],
        "***   #one-more (1, you are in it)"
    );
}
