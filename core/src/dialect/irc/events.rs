//! Events as IRC clients see them: JOIN, PART, PRIVMSG, NOTICE, TOPIC, NICK and QUIT from the
//! person's `nick!user@host`.

use core::fmt::Write;

use super::{IrcReason, IrcText};
use crate::dialect::text::Visible;
use crate::dialect::{Happened, Step};
use crate::event::LineKind;
use crate::output::{Audience, Speaks};

impl<const N: usize> Step<'_, N> {
    /// The lines that tell IRC clients of `happened`.
    pub(crate) fn render_irc(&mut self, happened: &Happened<'_>) {
        match *happened {
            Happened::Arrived { .. }
            | Happened::Away { .. }
            | Happened::RoomCreated { .. }
            | Happened::RoomRemoved { .. } => {}
            Happened::Joined { who, room } => {
                let Some(info) = self.rooms.get(room) else {
                    return;
                };
                let (prefix, name) = (self.roster.prefix(who), info.name);
                let others = Audience::room_but(room, who).speaking(Speaks::Irc);
                irc!(self, others, ":{prefix} JOIN {name}");
                if self.speaks_irc(who) {
                    irc!(self, Audience::one(who), ":{prefix} JOIN {name}");
                }
            }
            Happened::Parted { who, room, reason } => {
                let Some(info) = self.rooms.get(room) else {
                    return;
                };
                let (prefix, name, reason) =
                    (self.roster.prefix(who), info.name, IrcReason(reason));
                let others = Audience::room_but(room, who).speaking(Speaks::Irc);
                irc!(self, others, ":{prefix} PART {name}{reason}");
                // To `who` by itself: recipients are found when the output is polled, and by
                // then it is no longer a member.
                if self.speaks_irc(who) {
                    irc!(self, Audience::one(who), ":{prefix} PART {name}{reason}");
                }
            }
            Happened::Said {
                who,
                room,
                kind,
                text,
                ..
            } => {
                let Some(info) = self.rooms.get(room) else {
                    return;
                };
                let everyone = Audience::room_but(room, who).speaking(Speaks::Irc);
                let prefix = self.roster.prefix(who);
                match kind {
                    LineKind::Notice => irc!(
                        self,
                        everyone,
                        ":{prefix} NOTICE {} :{}",
                        info.name,
                        Visible(text)
                    ),
                    LineKind::Line | LineKind::Action => irc!(
                        self,
                        everyone,
                        ":{prefix} PRIVMSG {} :{}",
                        info.name,
                        IrcText(kind, text)
                    ),
                }
            }
            Happened::Private {
                from,
                to,
                kind,
                text,
            } => {
                if !self.speaks_irc(to) {
                    return;
                }
                let verb = match kind {
                    LineKind::Notice => "NOTICE",
                    LineKind::Line | LineKind::Action => "PRIVMSG",
                };
                irc!(
                    self,
                    Audience::private(to, from),
                    ":{} {verb} {} :{}",
                    self.roster.prefix(from),
                    self.roster.name(to),
                    IrcText(kind, text)
                );
            }
            Happened::TopicSet { who, room, topic } => {
                let Some(info) = self.rooms.get(room) else {
                    return;
                };
                irc!(
                    self,
                    Audience::room(room).speaking(Speaks::Irc),
                    ":{} TOPIC {} :{}",
                    self.roster.prefix(who),
                    info.name,
                    Visible(topic)
                );
            }
            Happened::Renamed {
                who,
                new,
                rooms,
                tell_self,
            } => {
                let prefix = self.roster.prefix(who);
                if rooms.len != 0 {
                    let others = Audience::rooms_but(rooms, who).speaking(Speaks::Irc);
                    irc!(self, others, ":{prefix} NICK :{new}");
                }
                // Registering, it is not told: the welcome tells it its name.
                if tell_self && self.speaks_irc(who) {
                    irc!(self, Audience::one(who), ":{prefix} NICK :{new}");
                }
            }
            Happened::Departed {
                who, why, rooms, ..
            } => {
                if rooms.len != 0 {
                    irc!(
                        self,
                        Audience::rooms_but(rooms, who).speaking(Speaks::Irc),
                        ":{} QUIT :{why}",
                        self.roster.prefix(who)
                    );
                }
            }
        }
    }
}
