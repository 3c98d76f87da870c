//! IRCv3 `MONITOR`: `+ nick,...`, `- nick,...`, `C`, `L`, `S`, and the `730`/`731` lines a
//! watcher gets when someone takes or leaves a nickname it watches (see
//! [`Watches`](crate::state::monitor::Watches) for the bounds).

use super::numeric::{
    ERR_ERRONEUSNICKNAME, ERR_MONLISTFULL, RPL_ENDOFMONLIST, RPL_MONLIST, RPL_MONOFFLINE,
    RPL_MONONLINE,
};
use core::fmt::Write;

use super::Step;
use crate::dialect::Happened;
use crate::dialect::text::Visible;
use crate::output::Audience;
use crate::state::connection::Caps;
use crate::state::monitor::{Full, MAX_MONITOR, MAX_WATCHERS};
use crate::state::nickname::Nickname;
use crate::state::roster::ConnectionId;
use crate::wire::irc::Message;

/// Bytes of targets on one `730`, `731` or `732` line before another is begun.
const TARGETS_LINE_BYTES: usize = 400;

impl<S: crate::Storage> Step<'_, S> {
    /// `MONITOR +|-|C|L|S [targets]`.
    pub(crate) fn monitor(&mut self, conn: ConnectionId, message: &Message<'_>) {
        let Some(sub) = message.param(0) else {
            return self.missing(conn, "MONITOR");
        };
        let targets = message.param(1).unwrap_or_default();
        match sub {
            "+" if !targets.is_empty() => self.monitor_add(conn, targets),
            "-" if !targets.is_empty() => {
                for target in targets.split(',') {
                    self.watches.remove(conn, target);
                }
            }
            "C" | "c" => self.watches.clear(conn),
            "L" | "l" => self.monitor_list(conn),
            "S" | "s" => {
                let mut watched: heapless::Vec<Nickname, MAX_MONITOR> = heapless::Vec::new();
                for nick in self.watches.of(conn) {
                    // Cannot fail: a connection watches at most MAX_MONITOR nicknames.
                    let _ = watched.push(nick.clone());
                }
                self.monitor_status(conn, watched.iter().map(Nickname::as_str));
            }
            _ => self.missing(conn, "MONITOR"),
        }
    }

    /// `MONITOR + a,b`: watches each valid nickname (`432` for another) until a list is full
    /// (`734` with the rest), then tells which of those added are online and which not.
    fn monitor_add(&mut self, conn: ConnectionId, targets: &str) {
        let mut added: heapless::Vec<Nickname, MAX_MONITOR> = heapless::Vec::new();
        let mut rest = targets;
        while !rest.is_empty() {
            let (target, after) = rest.split_once(',').unwrap_or((rest, ""));
            let Ok(nick) = Nickname::new(target) else {
                if !target.is_empty() {
                    numeric!(
                        self,
                        conn,
                        ERR_ERRONEUSNICKNAME,
                        "{} :Erroneous nickname",
                        Visible(target)
                    );
                }
                rest = after;
                continue;
            };
            match self.watches.add(conn, nick.clone()) {
                Ok(()) => {
                    // At most MAX_MONITOR are added: the watcher's own list stops more.
                    let _ = added.push(nick);
                }
                Err(full) => {
                    let limit = match full {
                        Full::Watcher => MAX_MONITOR,
                        Full::Nickname => MAX_WATCHERS,
                        Full::Server => crate::state::monitor::MAX_WATCHES,
                    };
                    numeric!(
                        self,
                        conn,
                        ERR_MONLISTFULL,
                        "{limit} {} :Monitor list is full",
                        Visible(rest)
                    );
                    break;
                }
            }
            rest = after;
        }
        self.monitor_status(conn, added.iter().map(Nickname::as_str));
    }

    /// `730` with those of `nicks` someone goes by (as `nick!user@host`), `731` with the rest.
    fn monitor_status<'n>(
        &mut self,
        conn: ConnectionId,
        nicks: impl Iterator<Item = &'n str> + Clone,
    ) {
        let (server, me) = (self.server_name, self.roster.irc_name(conn));
        let start = self.out.mark();
        for online in [true, false] {
            let code = if online {
                RPL_MONONLINE
            } else {
                RPL_MONOFFLINE
            };
            let mut line_start = None;
            for nick in nicks.clone() {
                let found = self.roster.find(nick);
                if found.is_some() != online {
                    continue;
                }
                let at = self.out.mark();
                match line_start {
                    Some(begun) if at - begun < TARGETS_LINE_BYTES => {
                        let _ = self.out.write_char(',');
                    }
                    Some(_) => {
                        let _ = write!(self.out, "\r\n:{server} {code} {me} :");
                        line_start = Some(self.out.mark());
                    }
                    None => {
                        let _ = write!(self.out, ":{server} {code} {me} :");
                        line_start = Some(self.out.mark());
                    }
                }
                match found {
                    Some(id) => {
                        let _ = write!(self.out, "{}", self.roster.prefix(id));
                    }
                    None => {
                        let _ = write!(self.out, "{nick}");
                    }
                }
            }
            if line_start.is_some() {
                let _ = write!(self.out, "\r\n");
            }
        }
        self.out.send(start, Audience::one(conn));
    }

    /// `MONITOR L`: `732` lines with the nicknames watched, then `733`.
    fn monitor_list(&mut self, conn: ConnectionId) {
        let (server, me) = (self.server_name, self.roster.irc_name(conn));
        let start = self.out.mark();
        let mut line_start = None;
        for nick in self.watches.of(conn) {
            let at = self.out.mark();
            match line_start {
                Some(begun) if at - begun < TARGETS_LINE_BYTES => {
                    let _ = write!(self.out, ",{nick}");
                }
                Some(_) => {
                    let _ = write!(self.out, "\r\n:{server} {RPL_MONLIST} {me} :{nick}");
                    line_start = Some(at);
                }
                None => {
                    let _ = write!(self.out, ":{server} {RPL_MONLIST} {me} :{nick}");
                    line_start = Some(at);
                }
            }
        }
        if line_start.is_some() {
            let _ = write!(self.out, "\r\n");
        }
        let _ = write!(
            self.out,
            ":{server} {RPL_ENDOFMONLIST} {me} :End of MONITOR list\r\n"
        );
        self.out.send(start, Audience::one(conn));
    }

    /// Tells the watchers of the names `happened` makes taken or free: someone with a
    /// nickname arrived, or changed it (not a change of case or look-alike).
    pub(crate) fn monitor_news(&mut self, happened: &Happened<'_>) {
        match *happened {
            Happened::Arrived { who } => self.monitor_online(who, None),
            Happened::Renamed { who, new, .. } => {
                type Buffer = heapless::String<{ crate::state::nickname::MAX_NICK_BYTES }>;
                let (mut was, mut now) = (Buffer::new(), Buffer::new());
                let _ = write!(was, "{}", self.roster.name(who));
                let _ = write!(now, "{new}");
                if crate::state::names::same(&was, &now) {
                    return;
                }
                self.monitor_offline(&was);
                self.monitor_online(who, Some(&now));
            }
            _ => {}
        }
    }

    /// `730 :nick!user@host` to the watchers of `who`'s nickname (`new`, if given: it is
    /// taking it now).
    fn monitor_online(&mut self, who: ConnectionId, new: Option<&str>) {
        let has_nick = self
            .roster
            .get(who)
            .is_some_and(|slot| slot.person.nick.is_some());
        if !has_nick && new.is_none() {
            return;
        }
        let prefix = self.roster.prefix(who);
        let mut name: heapless::String<{ crate::state::nickname::MAX_NICK_BYTES }> =
            heapless::String::new();
        match new {
            Some(new) => {
                let _ = name.push_str(new);
            }
            None => {
                let _ = write!(name, "{}", self.roster.name(who));
            }
        }
        let server = self.server_name;
        for watcher in self.watches.watchers(&name) {
            if !self.speaks_irc(watcher) {
                continue;
            }
            let me = self.roster.irc_name(watcher);
            irc!(
                self,
                Audience::one(watcher),
                ":{server} {RPL_MONONLINE} {me} :{name}!{}@{}",
                prefix.user,
                prefix.host
            );
        }
    }

    /// The watchers of `who`'s nickname that share no room with it and turned on
    /// `extended-monitor` and `cap`: those `extended-monitor` tells of its `AWAY` or `SETNAME`.
    pub(crate) fn monitoring(
        &self,
        who: ConnectionId,
        cap: Caps,
    ) -> heapless::Vec<ConnectionId, MAX_WATCHERS> {
        if self
            .roster
            .get(who)
            .is_none_or(|slot| slot.person.nick.is_none())
        {
            return heapless::Vec::new();
        }
        let mut name: heapless::String<{ crate::state::nickname::MAX_NICK_BYTES }> =
            heapless::String::new();
        let _ = write!(name, "{}", self.roster.name(who));
        let mut watchers = self.watches.watchers(&name);
        let roster = &*self.roster;
        let wanted = Caps::EXTENDED_MONITOR.with(cap, true);
        watchers.retain(|&watcher| {
            watcher != who
                && self.caps(watcher).has(wanted)
                && !roster
                    .rooms_of(watcher)
                    .any(|room| roster.in_room(who, room))
        });
        watchers
    }

    /// `731 :name` to the watchers of `name`, which no one goes by any more.
    pub(crate) fn monitor_offline(&mut self, name: &str) {
        let server = self.server_name;
        for watcher in self.watches.watchers(name) {
            if !self.speaks_irc(watcher) {
                continue;
            }
            let me = self.roster.irc_name(watcher);
            irc!(
                self,
                Audience::one(watcher),
                ":{server} {RPL_MONOFFLINE} {me} :{name}"
            );
        }
    }
}
