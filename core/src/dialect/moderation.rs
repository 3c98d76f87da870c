//! Keeping order in a room: its operators (whoever made it, and whom they make one), who may
//! put people out of it (`/kick`, IRC `KICK`) and make others operators or not (`/op`,
//! `/deop`, IRC `MODE #room +o/-o`). Per server: with several servers, a room's operators on
//! one are not known on the others yet, and people of other servers cannot be put out.

use core::fmt::Write;

use super::irc::numeric::{
    ERR_CANNOTSENDTOCHAN, ERR_CHANOPRIVSNEEDED, ERR_NOSUCHCHANNEL, ERR_NOSUCHNICK,
    ERR_NOTONCHANNEL, ERR_USERNOTINCHANNEL,
};
use super::{Audience, Happened, Step, Visible};
use crate::state::members::Status;
use crate::state::rooms::{RoomId, RoomMode};
use crate::state::roster::ConnectionId;

/// Why an operator's action was not done.
#[derive(Clone, Copy, Debug)]
enum Refusal<'a> {
    NoSuchRoom(&'a str),
    NotInRoom,
    NotOperator,
    NoSuchPerson(&'a str),
    NotInIt(&'a str),
    Elsewhere(&'a str),
}

impl<S: crate::Storage> Step<'_, S> {
    fn refuse_moderation(&mut self, conn: ConnectionId, room: Option<RoomId>, why: Refusal<'_>) {
        let name = room
            .and_then(|room| self.rooms.get(room))
            .map(|info| info.name.clone());
        let shown = name.as_ref().map_or("", |name| name.as_str());
        if self.speaks_irc(conn) {
            match why {
                Refusal::NoSuchRoom(room) => numeric!(
                    self,
                    conn,
                    ERR_NOSUCHCHANNEL,
                    "{} :No such channel",
                    Visible(room)
                ),
                Refusal::NotInRoom => numeric!(
                    self,
                    conn,
                    ERR_NOTONCHANNEL,
                    "{shown} :You're not on that channel"
                ),
                Refusal::NotOperator => numeric!(
                    self,
                    conn,
                    ERR_CHANOPRIVSNEEDED,
                    "{shown} :You're not channel operator"
                ),
                Refusal::NoSuchPerson(nick) => numeric!(
                    self,
                    conn,
                    ERR_NOSUCHNICK,
                    "{} :No such nick/channel",
                    Visible(nick)
                ),
                Refusal::NotInIt(nick) => numeric!(
                    self,
                    conn,
                    ERR_USERNOTINCHANNEL,
                    "{} {shown} :They aren't on that channel",
                    Visible(nick)
                ),
                Refusal::Elsewhere(nick) => server_notice!(
                    self,
                    conn,
                    "*** error: {} is on another server; operators act on people of this one only \
                     (so far)",
                    Visible(nick)
                ),
            }
        } else {
            match why {
                Refusal::NoSuchRoom(room) => {
                    error!(self, conn, "there is no room {}", Visible(room));
                }
                Refusal::NotInRoom => error!(self, conn, "you are not in {shown}"),
                Refusal::NotOperator => error!(
                    self,
                    conn, "you are not an operator of {shown} (whoever makes a room is its first)"
                ),
                Refusal::NoSuchPerson(nick) => {
                    error!(self, conn, "no one here is called {}", Visible(nick));
                }
                Refusal::NotInIt(nick) => {
                    error!(self, conn, "{} is not in {shown}", Visible(nick));
                }
                Refusal::Elsewhere(nick) => error!(
                    self,
                    conn,
                    "{} is on another server; operators act on people of this one only (so far)",
                    Visible(nick)
                ),
            }
        }
    }

    /// The check every operator's action makes: `room` (by name, or the current room when
    /// `None`) exists, `conn` is in it and is one of its operators; it is told why not.
    fn operated_room(&mut self, conn: ConnectionId, room: Option<&str>) -> Option<RoomId> {
        let found = match room {
            Some(name) => self.rooms.find(name),
            None => self.current(conn),
        };
        let Some(room) = found else {
            match room {
                Some(name) => self.refuse_moderation(conn, None, Refusal::NoSuchRoom(name)),
                None => self.refuse_moderation(conn, None, Refusal::NotInRoom),
            }
            return None;
        };
        if !self.roster.in_room(conn, room) {
            self.refuse_moderation(conn, Some(room), Refusal::NotInRoom);
            return None;
        }
        if !self.roster.is_op(conn, room) {
            self.refuse_moderation(conn, Some(room), Refusal::NotOperator);
            return None;
        }
        Some(room)
    }

    /// [`operated_room`](Self::operated_room)'s checks, and that `target` is a person here
    /// in the room.
    fn operator_target<'t>(
        &mut self,
        conn: ConnectionId,
        room: Option<&'t str>,
        target: &'t str,
    ) -> Option<(RoomId, ConnectionId)> {
        let room = self.operated_room(conn, room)?;
        let Some(who) = self.roster.find(target) else {
            self.refuse_moderation(conn, Some(room), Refusal::NoSuchPerson(target));
            return None;
        };
        if !self.roster.in_room(who, room) {
            self.refuse_moderation(conn, Some(room), Refusal::NotInIt(target));
            return None;
        }
        if self.is_remote(who) {
            self.refuse_moderation(conn, Some(room), Refusal::Elsewhere(target));
            return None;
        }
        Some((room, who))
    }

    /// `conn` puts `target` out of `room` (the current room when `None`), telling the room.
    pub(crate) fn kick(
        &mut self,
        conn: ConnectionId,
        room: Option<&str>,
        target: &str,
        reason: Option<&str>,
    ) {
        let Some((room, who)) = self.operator_target(conn, room, target) else {
            return;
        };
        self.publish(&Happened::Kicked {
            who,
            by: conn,
            room,
            reason,
        });
        self.leave_room(who, room);
    }

    /// Whether `conn` matches one of `room`'s bans (by `nick!user@host`).
    pub(crate) fn banned(&self, conn: ConnectionId, room: RoomId) -> bool {
        let mut prefix = heapless::String::<{ 2 * crate::state::roster::MAX_NICK_BYTES }>::new();
        if write!(prefix, "{}", self.roster.prefix(conn)).is_err() {
            return false;
        }
        self.rooms
            .bans_of(room)
            .any(|ban| super::irc::glob(ban.mask.as_bytes(), prefix.as_bytes()))
    }

    /// `conn` bans `mask` (a nickname, or `nick!user@host` with `*` and `?`) from `room` (the
    /// current room when `None`), or lifts the ban. A ban keeps its matches from joining; it
    /// does not put out who is in.
    pub(crate) fn set_ban(&mut self, conn: ConnectionId, room: Option<&str>, mask: &str, on: bool) {
        let Some(room) = self.operated_room(conn, room) else {
            return;
        };
        // A bare nickname bans it from anywhere.
        let mut full = heapless::String::<{ crate::state::rooms::MAX_BAN_MASK_BYTES }>::new();
        let written = if mask.contains(['!', '@']) {
            write!(full, "{mask}")
        } else {
            write!(full, "{mask}!*@*")
        };
        if written.is_err() || mask.is_empty() || mask.contains(|c: char| c.is_control()) {
            let text = format_args!(
                "a ban mask is a nickname or nick!user@host, at most {} bytes",
                crate::state::rooms::MAX_BAN_MASK_BYTES
            );
            return self.moderation_error(conn, text);
        }
        let changed = if on {
            let mut by = heapless::String::<{ crate::state::rooms::MAX_SETTER_BYTES }>::new();
            let _ = write!(by, "{}", self.roster.name(conn));
            match self.rooms.ban(room, &full, &by, self.now) {
                Ok(added) => added,
                Err(_) => {
                    let text = format_args!(
                        "{} bans are kept already, the most there can be; lift one first",
                        crate::state::rooms::MAX_BANS
                    );
                    return self.moderation_error(conn, text);
                }
            }
        } else {
            self.rooms.unban(room, &full)
        };
        if changed {
            self.publish(&Happened::BanSet {
                by: conn,
                room,
                mask: &full,
                on,
            });
        }
    }

    /// `conn` (an operator of the room called `room_name`) sets `mode` on it (`on`), or not.
    pub(crate) fn set_room_mode(
        &mut self,
        conn: ConnectionId,
        room_name: &str,
        mode: RoomMode,
        on: bool,
    ) {
        let Some(room) = self.operated_room(conn, Some(room_name)) else {
            return;
        };
        if self
            .rooms
            .get_mut(room)
            .is_some_and(|info| info.set(mode, on))
        {
            self.publish(&Happened::RoomModeSet {
                by: conn,
                room,
                mode,
                on,
            });
        }
    }

    /// Tells `conn` a locked topic is its operators' to set.
    pub(crate) fn topic_refused(&mut self, conn: ConnectionId, room: RoomId) {
        self.refuse_moderation(conn, Some(room), Refusal::NotOperator);
    }

    /// Tells `conn` what went wrong, as an error line or an IRC server notice.
    fn moderation_error(&mut self, conn: ConnectionId, text: core::fmt::Arguments<'_>) {
        if self.speaks_irc(conn) {
            server_notice!(self, conn, "*** error: {text}");
        } else {
            error!(self, conn, "{text}");
        }
    }

    /// IRC's ban list of the room called `name`: `367` for each, then `368`.
    pub(crate) fn ban_list(&mut self, conn: ConnectionId, name: &crate::state::rooms::RoomName) {
        use super::irc::numeric::{RPL_BANLIST, RPL_ENDOFBANLIST};
        let (server, me) = (self.server_name, self.roster.irc_name(conn));
        let Some(room) = self.rooms.find(name.as_str()) else {
            return;
        };
        let start = self.out.mark();
        for ban in self.rooms.bans_of(room) {
            let _ = write!(
                self.out,
                ":{server} {RPL_BANLIST} {me} {name} {} {} {}\r\n",
                Visible(&ban.mask),
                ban.by,
                ban.at.as_millis() / 1000
            );
        }
        let _ = write!(
            self.out,
            ":{server} {RPL_ENDOFBANLIST} {me} {name} :End of channel ban list\r\n"
        );
        self.out.send(start, Audience::one(conn));
    }

    /// `conn` gives `target` `status` in `room` (the current room when `None`), or takes it.
    pub(crate) fn set_status(
        &mut self,
        conn: ConnectionId,
        room: Option<&str>,
        target: &str,
        status: Status,
        on: bool,
    ) {
        let Some((room, who)) = self.operator_target(conn, room, target) else {
            return;
        };
        if self.roster.has(who, room, status) == on {
            return;
        }
        self.roster.set_status(who, room, status, on);
        self.publish(&Happened::StatusSet {
            who,
            by: conn,
            room,
            status,
            on,
        });
    }

    /// Whether `conn` may talk in `room`: not muted there, and an operator or voiced if the
    /// room is moderated. Tells it why not.
    pub(crate) fn may_speak(&mut self, conn: ConnectionId, room: RoomId) -> bool {
        let muted = self.roster.has(conn, room, Status::Muted);
        let moderated = self
            .rooms
            .get_mut(room)
            .is_some_and(|info| info.has(RoomMode::Moderated))
            && !self.roster.is_op(conn, room)
            && !self.roster.has(conn, room, Status::Voice);
        if !muted && !moderated {
            return true;
        }
        let Some(name) = self.rooms.get(room).map(|info| info.name.clone()) else {
            return false;
        };
        if self.speaks_irc(conn) {
            let why = if muted { "you are muted" } else { "+m" };
            numeric!(
                self,
                conn,
                ERR_CANNOTSENDTOCHAN,
                "{name} :Cannot send to channel ({why})"
            );
        } else if muted {
            error!(self, conn, "you are muted in {name}; it was not sent");
        } else {
            error!(
                self,
                conn, "only operators and voiced people talk in {name}; it was not sent"
            );
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use core::time::Duration;
    use std::string::String;
    use std::vec::Vec;

    use crate::testing::{Driver, Transcript};
    use crate::{Config, ConnectionId, Instant, ServerName};

    struct Room {
        driver: Driver<16>,
        heard: Transcript,
    }

    impl Room {
        fn new() -> Self {
            let config = Config::default()
                .with_colour(false)
                .with_flood_limit(None)
                .with_greeting_delay(Duration::ZERO)
                .with_server_name(ServerName::new("irc.test").unwrap());
            Self {
                driver: Driver::new(config, Instant::from_millis(1_000)),
                heard: Transcript::default(),
            }
        }

        fn connect(&mut self, lines: &str) -> ConnectionId {
            let heard = &mut self.heard;
            let conn = self
                .driver
                .connect(&mut |output| heard.record(output))
                .unwrap();
            self.send(conn, lines);
            conn
        }

        fn send(&mut self, conn: ConnectionId, text: &str) -> Vec<String> {
            let heard = &mut self.heard;
            self.driver
                .input(conn, text.as_bytes(), &mut |output| heard.record(output));
            self.heard.take(conn)
        }
    }

    #[test]
    fn a_ban_keeps_its_matches_out_until_it_is_lifted() {
        let mut room = Room::new();
        let alice = room.connect("/nick alice\n/join #rust\n");
        let bob = room.connect("/nick bob\n/join #rust\n");
        let dave = room.connect("NICK dave\r\nUSER d 0 * :D\r\nJOIN #rust\r\n");
        room.heard.take(alice);
        room.heard.take(bob);
        assert_eq!(
            room.send(bob, "/ban dave\n"),
            ["*** error: you are not an operator of #rust (whoever makes a room is its first)"]
        );
        assert_eq!(
            room.send(alice, "/ban BOB\n"),
            ["*** alice banned BOB!*@* from #rust"]
        );
        assert_eq!(
            room.heard.take(dave),
            [":alice!plain@hidden MODE #rust +b BOB!*@*"]
        );
        // It does not put bob out; once out, he cannot come back, under any case of his name.
        room.send(bob, "/part #rust\n");
        assert_eq!(
            room.send(bob, "/join #RUST\n"),
            ["*** error: you are banned from #rust"]
        );
        // Back on a new connection, by the same name: still out.
        room.send(bob, "/quit\n");
        let again = room.connect("/nick bob\n");
        room.heard.take(again);
        assert_eq!(
            room.send(again, "/join #rust\n"),
            ["*** error: you are banned from #rust"]
        );
        // IRC: the list, a masked ban, 474.
        let ivy = room.connect("NICK ivy\r\nUSER ivy 0 * :I\r\n");
        room.heard.take(ivy);
        room.heard.take(dave);
        assert_eq!(
            room.send(dave, "MODE #rust +b\r\n"),
            [
                ":irc.test 367 dave #rust BOB!*@* alice 1",
                ":irc.test 368 dave #rust :End of channel ban list"
            ]
        );
        room.send(alice, "/op dave\n");
        room.send(dave, "MODE #rust +b *!~ivy@*\r\n");
        assert_eq!(
            room.send(ivy, "JOIN #rust\r\n"),
            [":irc.test 474 ivy #rust :Cannot join channel (+b)"]
        );
        // Lifted: bob is let in again.
        room.heard.take(alice);
        room.heard.take(again);
        assert_eq!(
            room.send(alice, "/unban bob\n"),
            ["*** alice lifted the ban on bob!*@* in #rust"]
        );
        room.heard.take(again);
        assert_eq!(
            room.send(again, "/join #rust\n")[0],
            "*** You are now talking in #rust."
        );
    }

    #[test]
    fn muted_people_and_the_voiceless_of_a_moderated_room_are_not_heard() {
        let mut room = Room::new();
        let alice = room.connect("/nick alice\n/join #rust\n");
        let bob = room.connect("/nick bob\n/join #rust\n");
        let dave = room.connect("NICK dave\r\nUSER d 0 * :D\r\nJOIN #rust\r\n");
        for conn in [alice, bob, dave] {
            room.heard.take(conn);
        }
        assert_eq!(
            room.send(alice, "/mute bob\n"),
            ["*** alice muted bob in #rust"]
        );
        assert_eq!(
            room.send(bob, "hello?\n"),
            [
                "*** alice muted bob in #rust",
                "*** error: you are muted in #rust; it was not sent"
            ]
        );
        assert_eq!(
            room.heard.take(dave),
            [":irc.test NOTICE #rust :*** alice muted bob"]
        );
        room.send(alice, "/unmute bob\n");
        room.heard.take(bob);
        room.send(bob, "thanks\n");
        assert_eq!(room.heard.take(alice), ["bob: thanks"]);
        // +m: only operators and voiced people talk.
        room.send(alice, "/op dave\n");
        room.send(dave, "MODE #rust +m\r\nMODE #rust +v bob\r\n");
        room.heard.take(dave);
        let names = room.send(dave, "NAMES #rust\r\n");
        assert!(names[0].ends_with(":@alice +bob @dave"), "{names:?}");
        let carl = room.connect("/nick carl\n/join #rust\n");
        room.heard.take(carl);
        assert_eq!(
            room.send(carl, "me too\n"),
            ["*** error: only operators and voiced people talk in #rust; it was not sent"]
        );
        room.heard.take(bob);
        room.send(bob, "voiced\n");
        assert_eq!(room.heard.take(carl), ["bob: voiced"]);
        let ivy = room.connect("NICK ivy\r\nUSER i 0 * :I\r\nJOIN #rust\r\n");
        room.heard.take(ivy);
        assert_eq!(
            room.send(ivy, "PRIVMSG #rust :hi\r\n"),
            [":irc.test 404 ivy #rust :Cannot send to channel (+m)"]
        );
    }

    #[test]
    fn lusers_and_time_are_answered() {
        let mut room = Room::new();
        let _alice = room.connect("/nick alice\n/join #rust\n");
        let dave = room.connect("NICK dave\r\nUSER d 0 * :D\r\n");
        room.heard.take(dave);
        assert_eq!(
            room.send(dave, "LUSERS\r\n"),
            [
                ":irc.test 251 dave :There are 2 users and 0 invisible on 1 servers",
                ":irc.test 252 dave 0 :operator(s) online",
                ":irc.test 254 dave 2 :channels formed",
                ":irc.test 255 dave :I have 2 clients and 0 servers",
                ":irc.test 265 dave 2 2 :Current local users 2, max 2",
                ":irc.test 266 dave 2 2 :Current global users 2, max 2"
            ]
        );
        assert_eq!(
            room.send(dave, "TIME\r\n"),
            [":irc.test 391 dave irc.test 1 0 :1970-01-01 00:00 UTC"]
        );
    }

    #[test]
    fn whoever_makes_a_room_keeps_order_in_it() {
        let mut room = Room::new();
        let alice = room.connect("/nick alice\n/join #rust\n");
        let bob = room.connect("/nick bob\n/join #rust\n");
        let dave = room.connect("NICK dave\r\nUSER d 0 * :D\r\nJOIN #rust\r\n");
        let names = room.send(dave, "NAMES #rust\r\n");
        assert!(
            names[0].ends_with(" 353 dave = #rust :@alice bob dave"),
            "{names:?}"
        );
        for conn in [alice, bob] {
            room.heard.take(conn);
        }
        // Nobody is the lobby's operator, and a member who is not one can do nothing.
        assert_eq!(
            room.send(bob, "/kick alice\n"),
            ["*** error: you are not an operator of #rust (whoever makes a room is its first)"]
        );
        assert_eq!(
            room.send(dave, "KICK #lobby bob\r\n"),
            [":irc.test 482 dave #lobby :You're not channel operator"]
        );
        assert_eq!(
            room.send(alice, "/kick carol\n"),
            ["*** error: no one here is called carol"]
        );

        // alice makes dave an operator; dave puts bob out, with a reason.
        assert_eq!(
            room.send(alice, "/op dave\n"),
            ["*** alice made dave an operator of #rust"]
        );
        assert_eq!(
            room.heard.take(dave),
            [":alice!plain@hidden MODE #rust +o dave"]
        );
        assert_eq!(
            room.heard.take(bob),
            ["*** alice made dave an operator of #rust"]
        );
        assert_eq!(
            room.send(dave, "KICK #rust bob :too loud\r\n"),
            [":dave!~d@hidden KICK #rust bob :too loud"]
        );
        assert_eq!(
            room.heard.take(bob),
            ["*** You were put out of #rust by dave (too loud)"]
        );
        assert_eq!(
            room.heard.take(alice),
            ["*** bob was put out of #rust by dave (too loud)"]
        );
        // bob is out: his lines go to his other room, the lobby.
        assert!(!room.send(bob, "/list\n")[0].contains("#rust"));
        assert_eq!(
            room.send(dave, "KICK #rust bob\r\n"),
            [":irc.test 441 dave bob #rust :They aren't on that channel"]
        );
        // MODE -o takes it back; a KICK then is refused.
        room.send(dave, "MODE #rust -o alice\r\n");
        assert_eq!(
            room.send(alice, "/kick dave\n"),
            [
                "*** dave took operator from alice in #rust",
                "*** error: you are not an operator of #rust (whoever makes a room is its first)"
            ]
        );
        // +t: the topic is the operators' to set.
        assert_eq!(
            room.send(dave, "MODE #rust +t\r\nMODE #rust\r\n"),
            [
                ":dave!~d@hidden MODE #rust +t",
                ":irc.test 324 dave #rust +t"
            ]
        );
        assert_eq!(
            room.send(alice, "/topic mine\n"),
            [
                "*** dave let only operators set the topic of #rust",
                "*** error: you are not an operator of #rust (whoever makes a room is its first)"
            ]
        );
        assert_eq!(
            room.send(dave, "TOPIC #rust :ours\r\n"),
            [":dave!~d@hidden TOPIC #rust :ours"]
        );
        room.send(dave, "MODE #rust -t\r\n");
        room.heard.take(alice);
        assert_eq!(
            room.send(alice, "/topic mine\n"),
            ["*** alice set the topic of #rust: mine"]
        );
    }
}
