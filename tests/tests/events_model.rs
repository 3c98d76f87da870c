//! The core against a reference model, judged by its events and by who gets lines, over all
//! three dialects.
//!
//! Plain-text, JSON and IRC people connect, name themselves, join and leave rooms, talk, send
//! private messages, set topics, go away and come back, rename, quit or drop. After every step
//! the model says which events the step must produce (in order, with the room's line numbers)
//! and which people other than the actor must be sent something; the core must agree exactly.
//! The wording of the lines is not judged here: `model.rs` pins the plain text, and the dialect
//! tests in the core pin IRC's.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chat_core::testing::Driver;
use chat_core::{Config, ConnectionId, DisconnectReason, Instant, Output};
use proptest::prelude::*;

/// Room names the people use; the lobby is always there.
const ROOMS: [&str; 4] = ["#a", "#b", "#Cee", "#d"];
const NICKS: [&str; 8] = ["ann", "bob", "cat", "dan", "eve", "fay", "gus", "hal"];
const TEXTS: [&str; 3] = ["hello", "how are you?", "日本語 too"];
const CAPACITY: usize = 6;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dialect {
    Plain,
    Json,
    Irc,
}

#[derive(Clone, Debug)]
enum Op {
    Connect(Dialect),
    Say {
        who: usize,
        room: usize,
        text: usize,
    },
    Act {
        who: usize,
        room: usize,
    },
    Join {
        who: usize,
        room: usize,
    },
    Part {
        who: usize,
        room: usize,
    },
    Topic {
        who: usize,
        room: usize,
        text: usize,
    },
    Msg {
        who: usize,
        to: usize,
        text: usize,
    },
    Nick {
        who: usize,
        nick: usize,
    },
    Away {
        who: usize,
        away: bool,
    },
    Quit {
        who: usize,
    },
    Drop {
        who: usize,
    },
}

fn dialect() -> impl Strategy<Value = Dialect> {
    prop_oneof![
        Just(Dialect::Plain),
        Just(Dialect::Json),
        Just(Dialect::Irc)
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let who = 0..CAPACITY;
    let room = 0..ROOMS.len() + 1;
    prop_oneof![
        2 => dialect().prop_map(Op::Connect),
        4 => (who.clone(), room.clone(), 0..TEXTS.len())
            .prop_map(|(who, room, text)| Op::Say { who, room, text }),
        1 => (who.clone(), room.clone()).prop_map(|(who, room)| Op::Act { who, room }),
        3 => (who.clone(), room.clone()).prop_map(|(who, room)| Op::Join { who, room }),
        2 => (who.clone(), room.clone()).prop_map(|(who, room)| Op::Part { who, room }),
        1 => (who.clone(), room.clone(), 0..TEXTS.len())
            .prop_map(|(who, room, text)| Op::Topic { who, room, text }),
        2 => (who.clone(), 0..CAPACITY, 0..TEXTS.len())
            .prop_map(|(who, to, text)| Op::Msg { who, to, text }),
        1 => (who.clone(), 0..NICKS.len()).prop_map(|(who, nick)| Op::Nick { who, nick }),
        1 => (who.clone(), any::<bool>()).prop_map(|(who, away)| Op::Away { who, away }),
        1 => who.clone().prop_map(|who| Op::Quit { who }),
        1 => who.prop_map(|who| Op::Drop { who }),
    ]
}

/// A room name by index; index 0 is the lobby.
fn room_name(room: usize) -> &'static str {
    if room == 0 { "#lobby" } else { ROOMS[room - 1] }
}

#[derive(Debug)]
struct Person {
    id: ConnectionId,
    dialect: Dialect,
    nick: String,
    /// The model's room indices (0: the lobby).
    rooms: BTreeSet<usize>,
    current: Option<usize>,
}

#[derive(Debug, Default)]
struct Room {
    /// The core's index for it, which decides the order of rooms (the lowest is current
    /// after a part) and is the lowest free one when it is made.
    slot: usize,
    /// A room with a topic stays when its last member leaves.
    has_topic: bool,
}

/// What one step must do: its events, and who besides the actor gets lines.
#[derive(Debug, Default, PartialEq, Eq)]
struct Expected {
    events: Vec<String>,
    others: BTreeSet<ConnectionId>,
}

#[derive(Debug, Default)]
struct Model {
    people: Vec<Person>,
    rooms: BTreeMap<usize, Room>,
    /// The number of the last line said in any room: lines are numbered server-wide.
    last_seq: u64,
}

impl Model {
    fn new() -> Self {
        let mut model = Self::default();
        model.rooms.insert(0, Room::default());
        model
    }

    fn members(&self, room: usize) -> impl Iterator<Item = &Person> {
        self.people.iter().filter(move |p| p.rooms.contains(&room))
    }

    fn others_in(&self, room: usize, actor: ConnectionId) -> BTreeSet<ConnectionId> {
        self.members(room)
            .map(|p| p.id)
            .filter(|&id| id != actor)
            .collect()
    }

    /// Everyone who shares a room with `pos`, once each.
    fn co_members(&self, pos: usize) -> BTreeSet<ConnectionId> {
        let me = &self.people[pos];
        self.people
            .iter()
            .filter(|p| p.id != me.id && p.rooms.intersection(&me.rooms).next().is_some())
            .map(|p| p.id)
            .collect()
    }

    fn find(&self, nick: &str) -> Option<usize> {
        self.people
            .iter()
            .position(|p| p.nick.eq_ignore_ascii_case(nick))
    }

    fn name_of(&self, room: usize) -> &'static str {
        room_name(room)
    }

    /// Puts `pos` in `room`, making it if needed.
    fn join(&mut self, pos: usize, room: usize, exp: &mut Expected) {
        if !self.rooms.contains_key(&room) {
            let used: BTreeSet<usize> = self.rooms.values().map(|r| r.slot).collect();
            let slot = (0..).find(|slot| !used.contains(slot)).unwrap();
            self.rooms.insert(
                room,
                Room {
                    slot,
                    has_topic: false,
                },
            );
            exp.events.push(format!("created {}", self.name_of(room)));
        }
        let person = &mut self.people[pos];
        person.rooms.insert(room);
        person.current = Some(room);
        let (id, nick) = (person.id, person.nick.clone());
        exp.events
            .push(format!("joined {nick} {}", self.name_of(room)));
        exp.others.extend(self.others_in(room, id));
    }

    /// Takes `pos` out of `room` (its members were told already).
    fn leave(&mut self, pos: usize, room: usize, exp: &mut Expected) {
        let person = &mut self.people[pos];
        person.rooms.remove(&room);
        if person.current == Some(room) {
            let rooms = &self.rooms;
            person.current = person.rooms.iter().copied().min_by_key(|r| rooms[r].slot);
        }
        if room != 0 && !self.rooms[&room].has_topic && self.members(room).next().is_none() {
            self.rooms.remove(&room);
            exp.events.push(format!("removed {}", self.name_of(room)));
        }
    }

    fn depart(&mut self, pos: usize, reason: &str, exp: &mut Expected) {
        let nick = self.people[pos].nick.clone();
        exp.events.push(format!("departed {nick} {reason:?}"));
        exp.others.extend(self.co_members(pos));
        let mut rooms: Vec<usize> = self.people[pos].rooms.iter().copied().collect();
        rooms.sort_by_key(|r| self.rooms[r].slot);
        for room in rooms {
            self.leave(pos, room, exp);
        }
        self.people.remove(pos);
    }

    fn said(
        &mut self,
        pos: usize,
        room: usize,
        kind: &str,
        text: &str,
        at: u64,
        exp: &mut Expected,
    ) {
        self.last_seq += 1;
        let (id, nick) = (self.people[pos].id, &self.people[pos].nick);
        exp.events.push(format!(
            "said {nick} {} {kind} #{} {text:?} at {at}",
            room_name(room),
            self.last_seq
        ));
        exp.others.extend(self.others_in(room, id));
    }
}

/// Notes an output of a step: its event, or who got lines.
fn observe(seen: &mut Expected, output: Output<'_>) {
    match output {
        Output::Event(event) => seen.events.push(event.to_string()),
        Output::Send { to, .. } => seen.others.extend(to),
        _ => {}
    }
}

struct Harness {
    driver: Driver<CAPACITY>,
    model: Model,
}

impl Harness {
    fn new() -> Self {
        let config = Config::default()
            .with_colour(false)
            .with_flood_limit(None)
            .with_silence_timeout(None)
            .with_ping(None, Duration::from_secs(60))
            // A first line decides the dialect; no one is welcomed by the clock here.
            .with_greeting_delay(Duration::from_secs(3600));
        Self {
            driver: Driver::new(config, Instant::ZERO),
            model: Model::new(),
        }
    }

    /// Feeds `bytes` from `id` as a runner does, through every part of a line; its events,
    /// and who besides `id` got lines.
    fn input(&mut self, id: ConnectionId, bytes: &str) -> Expected {
        let mut seen = Expected::default();
        let fed = self.driver.input(id, bytes.as_bytes(), &mut |output| {
            observe(&mut seen, output);
        });
        assert!(!fed.held, "flood control is off");
        seen.others.remove(&id);
        seen
    }

    fn check(&self, op: &Op, seen: Expected, exp: Expected) {
        assert_eq!(seen, exp, "after {op:?}\nmodel: {:#?}", self.model.people);
    }

    fn step(&mut self, op: &Op) {
        let people = self.model.people.len();
        let at = self.driver.now().as_millis();
        let pick = |who: usize| (people > 0).then(|| who % people);
        let mut exp = Expected::default();
        match *op {
            Op::Connect(dialect) => {
                let mut seen = Expected::default();
                let Some(id) = self
                    .driver
                    .connect(&mut |output| observe(&mut seen, output))
                else {
                    assert_eq!(people, CAPACITY, "refused below capacity");
                    return;
                };
                assert_eq!(seen, Expected::default(), "nothing before the first line");
                let Some(nick) = NICKS.iter().find(|n| self.model.find(n).is_none()) else {
                    return;
                };
                let anonymous = format!("anonymous-{}", id.index() + 1);
                let lines = match dialect {
                    Dialect::Plain => format!("/nick {nick}\n"),
                    Dialect::Json => format!("{{\"type\":\"nickname\",\"message\":\"{nick}\"}}"),
                    Dialect::Irc => format!("NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n"),
                };
                let first = if dialect == Dialect::Irc {
                    nick.to_string()
                } else {
                    anonymous.clone()
                };
                exp.events.push(format!("arrived {first}"));
                self.model.people.push(Person {
                    id,
                    dialect,
                    nick: first,
                    rooms: BTreeSet::new(),
                    current: None,
                });
                let pos = self.model.people.len() - 1;
                self.model.join(pos, 0, &mut exp);
                if dialect != Dialect::Irc {
                    exp.events.push(format!("renamed {anonymous} {nick}"));
                    self.model.people[pos].nick = nick.to_string();
                }
                let seen = self.input(id, &lines);
                self.check(op, seen, exp);
            }
            Op::Say { who, room, text } | Op::Topic { who, room, text } if pick(who).is_some() => {
                let pos = pick(who).unwrap();
                let person = &self.model.people[pos];
                let (id, dialect, text) = (person.id, person.dialect, TEXTS[text]);
                let topic = matches!(op, Op::Topic { .. });
                // Text people speak in their current room; IRC people name one.
                let target = match dialect {
                    Dialect::Plain | Dialect::Json => person.current,
                    Dialect::Irc => Some(room),
                };
                let member = target.is_some_and(|room| person.rooms.contains(&room));
                let line = match (dialect, topic) {
                    (Dialect::Json, true) => return,
                    (Dialect::Plain, true) => format!("/topic {text}\n"),
                    (Dialect::Irc, true) => format!("TOPIC {} :{text}\r\n", room_name(room)),
                    (Dialect::Plain, false) => format!("{text}\n"),
                    (Dialect::Json, false) => {
                        format!("{{\"type\":\"boardcast\",\"message\":\"{text}\"}}")
                    }
                    (Dialect::Irc, false) => format!("PRIVMSG {} :{text}\r\n", room_name(room)),
                };
                if let (true, Some(room)) = (member, target) {
                    if topic {
                        let nick = &person.nick;
                        exp.events
                            .push(format!("topic {nick} {} {text:?} at {at}", room_name(room)));
                        if let Some(info) = self.model.rooms.get_mut(&room) {
                            info.has_topic = true;
                        }
                        exp.others.extend(self.model.others_in(room, id));
                    } else {
                        self.model.said(pos, room, "line", text, at, &mut exp);
                    }
                }
                let seen = self.input(id, &line);
                self.check(op, seen, exp);
            }
            Op::Act { who, room } if pick(who).is_some() => {
                let pos = pick(who).unwrap();
                let person = &self.model.people[pos];
                let (id, dialect) = (person.id, person.dialect);
                let (line, target) = match dialect {
                    Dialect::Json => return,
                    Dialect::Plain => ("/me waves\n".to_owned(), person.current),
                    Dialect::Irc => (
                        format!("PRIVMSG {} :\x01ACTION waves\x01\r\n", room_name(room)),
                        Some(room),
                    ),
                };
                if let Some(room) = target.filter(|room| person.rooms.contains(room)) {
                    self.model.said(pos, room, "action", "waves", at, &mut exp);
                }
                let seen = self.input(id, &line);
                self.check(op, seen, exp);
            }
            Op::Join { who, room } if pick(who).is_some() => {
                let pos = pick(who).unwrap();
                let person = &self.model.people[pos];
                let (id, dialect) = (person.id, person.dialect);
                let line = match dialect {
                    Dialect::Json => return,
                    Dialect::Plain => format!("/join {}\n", room_name(room)),
                    Dialect::Irc => format!("JOIN {}\r\n", room_name(room)),
                };
                if person.rooms.contains(&room) {
                    self.model.people[pos].current = Some(room);
                } else {
                    self.model.join(pos, room, &mut exp);
                }
                let seen = self.input(id, &line);
                self.check(op, seen, exp);
            }
            Op::Part { who, room } if pick(who).is_some() => {
                let pos = pick(who).unwrap();
                let person = &self.model.people[pos];
                let (id, dialect) = (person.id, person.dialect);
                let line = match dialect {
                    Dialect::Json => return,
                    Dialect::Plain => format!("/part {}\n", room_name(room)),
                    Dialect::Irc => format!("PART {}\r\n", room_name(room)),
                };
                if person.rooms.contains(&room) {
                    exp.events
                        .push(format!("parted {} {}", person.nick, room_name(room)));
                    exp.others.extend(self.model.others_in(room, id));
                    self.model.leave(pos, room, &mut exp);
                }
                let seen = self.input(id, &line);
                self.check(op, seen, exp);
            }
            Op::Msg { who, to, text } if pick(who).is_some() => {
                let (pos, to) = (pick(who).unwrap(), pick(to).unwrap());
                let (person, target) = (&self.model.people[pos], &self.model.people[to]);
                let text = TEXTS[text];
                let line = match person.dialect {
                    Dialect::Plain => format!("/msg {} {text}\n", target.nick),
                    Dialect::Json => format!(
                        "{{\"type\":\"client\",\"user\":\"{}\",\"message\":\"{text}\"}}",
                        target.nick
                    ),
                    Dialect::Irc => format!("PRIVMSG {} :{text}\r\n", target.nick),
                };
                exp.events.push(format!(
                    "private {} {} line {text:?} at {at}",
                    person.nick, target.nick
                ));
                if target.id != person.id {
                    exp.others.insert(target.id);
                }
                let id = person.id;
                // A private message takes a number too (its IRCv3 msgid).
                self.model.last_seq += 1;
                let seen = self.input(id, &line);
                self.check(op, seen, exp);
            }
            Op::Nick { who, nick } if pick(who).is_some() => {
                let pos = pick(who).unwrap();
                let (new, person) = (NICKS[nick], &self.model.people[pos]);
                let line = match person.dialect {
                    Dialect::Plain => format!("/nick {new}\n"),
                    Dialect::Json => format!("{{\"type\":\"nickname\",\"message\":\"{new}\"}}"),
                    Dialect::Irc => format!("NICK {new}\r\n"),
                };
                let id = person.id;
                let taken = self.model.find(new);
                if taken.is_none() {
                    exp.events.push(format!("renamed {} {new}", person.nick));
                    exp.others.extend(self.model.co_members(pos));
                    self.model.people[pos].nick = new.to_owned();
                }
                let seen = self.input(id, &line);
                self.check(op, seen, exp);
            }
            Op::Away { who, away } if pick(who).is_some() => {
                let pos = pick(who).unwrap();
                let person = &self.model.people[pos];
                if person.dialect != Dialect::Irc {
                    return;
                }
                let (line, message) = if away {
                    ("AWAY :lunch\r\n", "Some(\"lunch\")")
                } else {
                    ("AWAY\r\n", "None")
                };
                exp.events.push(format!("away {} {message}", person.nick));
                let id = person.id;
                let seen = self.input(id, line);
                self.check(op, seen, exp);
            }
            Op::Quit { who } if pick(who).is_some() => {
                let pos = pick(who).unwrap();
                let person = &self.model.people[pos];
                let (id, line, reason) = match person.dialect {
                    Dialect::Json => return,
                    Dialect::Plain => (person.id, "/quit\n", "quit"),
                    Dialect::Irc => (person.id, "QUIT :bye\r\n", "quit: bye"),
                };
                self.model.depart(pos, reason, &mut exp);
                let seen = self.input(id, line);
                self.check(op, seen, exp);
            }
            Op::Drop { who } if pick(who).is_some() => {
                let pos = pick(who).unwrap();
                let id = self.model.people[pos].id;
                self.model.depart(pos, "connection closed", &mut exp);
                let mut seen = Expected::default();
                let known = self
                    .driver
                    .disconnect(id, DisconnectReason::Closed, &mut |output| {
                        observe(&mut seen, output);
                    });
                assert!(known);
                self.check(op, seen, exp);
            }
            _ => {}
        }
        self.driver.advance(Duration::from_millis(10), &mut |_| {
            panic!("no deadline is armed");
        });
        // The core's view of rooms matches the model's.
        for person in &self.model.people {
            let mut rooms: Vec<String> = self
                .driver
                .server()
                .rooms_of(person.id)
                .map(|room| room.as_str().to_owned())
                .collect();
            rooms.sort();
            let mut want: Vec<String> = person
                .rooms
                .iter()
                .map(|&room| room_name(room).to_owned())
                .collect();
            want.sort();
            assert_eq!(rooms, want, "rooms of {}", person.nick);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn events_and_deliveries_follow_the_model(ops in prop::collection::vec(op(), 1..60)) {
        let mut harness = Harness::new();
        for op in &ops {
            harness.step(op);
        }
    }
}

#[test]
fn a_scripted_day_in_every_dialect() {
    let mut harness = Harness::new();
    let script = [
        Op::Connect(Dialect::Plain),
        Op::Connect(Dialect::Irc),
        Op::Connect(Dialect::Json),
        Op::Join { who: 0, room: 1 },
        Op::Join { who: 1, room: 1 },
        Op::Say {
            who: 0,
            room: 0,
            text: 0,
        },
        Op::Say {
            who: 1,
            room: 1,
            text: 2,
        },
        Op::Act { who: 1, room: 1 },
        Op::Say {
            who: 2,
            room: 0,
            text: 1,
        },
        Op::Topic {
            who: 1,
            room: 1,
            text: 0,
        },
        Op::Msg {
            who: 2,
            to: 1,
            text: 0,
        },
        Op::Nick { who: 1, nick: 7 },
        Op::Away { who: 1, away: true },
        Op::Part { who: 0, room: 1 },
        Op::Quit { who: 1 },
        Op::Drop { who: 0 },
    ];
    for op in &script {
        harness.step(op);
    }
    assert_eq!(harness.model.people.len(), 1, "the JSON person is left");
    assert!(
        harness.model.rooms.contains_key(&1),
        "#a has a topic: it stays without members"
    );
}
