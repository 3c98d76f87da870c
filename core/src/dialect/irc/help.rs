//! `HELP` (and its other name `HELPOP`) and `INFO`: fixed text about the commands and the
//! server, from tables in this file.

use super::numeric::{
    ERR_HELPNOTFOUND, RPL_ENDOFHELP, RPL_ENDOFINFO, RPL_HELPSTART, RPL_HELPTXT, RPL_INFO,
};
use core::fmt::Write;

use super::Step;
use crate::dialect::text::Visible;
use crate::output::Audience;
use crate::state::roster::ConnectionId;

/// One line about each command understood, by name: what `HELP <command>` answers.
const TOPICS: [(&str, &str); 33] = [
    (
        "AWAY",
        "AWAY [:message] - marks you away with a message, or back without one",
    ),
    ("CAP", "CAP LS|LIST|REQ|END - IRCv3 capability negotiation"),
    (
        "CHATHISTORY",
        "CHATHISTORY LATEST|BEFORE|AFTER|AROUND|BETWEEN|TARGETS - a room's past lines",
    ),
    (
        "HELP",
        "HELP [command] - the commands understood, or what one does",
    ),
    ("HELPOP", "HELPOP [command] - the same as HELP"),
    ("INFO", "INFO - about this server"),
    (
        "ISON",
        "ISON nick [nick...] - which of these nicknames are online",
    ),
    (
        "JOIN",
        "JOIN #room[,#room...] - joins rooms, making those that do not exist; JOIN 0 leaves all",
    ),
    (
        "KICK",
        "KICK #room nick [:reason] - puts someone out of a room you operate",
    ),
    (
        "LIST",
        "LIST [#room|mask|!mask|>N|<N,...] - the rooms, with their sizes and topics; secret ones only to their members",
    ),
    ("LUSERS", "LUSERS - how many people and rooms there are"),
    (
        "MONITOR",
        "MONITOR +|- nick[,nick...], MONITOR C|L|S - be told when these nicknames come and go",
    ),
    (
        "MODE",
        "MODE #room [+|-o|v|b|m|s|t [arg]] - a room's modes; MODE nick - your own",
    ),
    ("MOTD", "MOTD - the message of the day"),
    ("NAMES", "NAMES #room[,#room...] - who is in these rooms"),
    ("NICK", "NICK name - takes a nickname, or changes yours"),
    (
        "NOTICE",
        "NOTICE target :text - like PRIVMSG, never answered automatically",
    ),
    ("PART", "PART #room[,#room...] [:reason] - leaves rooms"),
    (
        "PASS",
        "PASS password - accepted and not checked: the server has no password",
    ),
    ("PING", "PING token - the server answers PONG token"),
    ("PONG", "PONG token - the answer to the server's PING"),
    (
        "PRIVMSG",
        "PRIVMSG target[,target...] :text - says text to a room or a person",
    ),
    ("QUIT", "QUIT [:reason] - leaves the server"),
    ("SETNAME", "SETNAME :real name - changes your real name"),
    (
        "TAGMSG",
        "TAGMSG target - a message with tags and no text (IRCv3 message-tags)",
    ),
    ("TIME", "TIME - the server's time"),
    (
        "TOPIC",
        "TOPIC #room [:topic] - shows or sets a room's topic",
    ),
    ("USER", "USER user 0 * :real name - registers, with NICK"),
    (
        "USERHOST",
        "USERHOST nick [nick...] - the user@host of these people",
    ),
    (
        "WHO",
        "WHO #room|mask [%fields[,token]] - one line about each person in a room or matching a mask (WHOX fields: tcuihsnfdlaor)",
    ),
    ("WHOIS", "WHOIS nick - about someone online"),
    (
        "WHOWAS",
        "WHOWAS nick [count] - about someone who went by that nickname and has left",
    ),
    (
        "AUTHENTICATE",
        "AUTHENTICATE PLAIN - logs in to an account (IRCv3 sasl), where accounts are kept",
    ),
];

/// The lines of `INFO`.
const INFO: [&str; 4] = [
    "A chat server that people on IRC, on plain-text terminals (nc, telnet) and",
    "on the original JSON client share: each sees the same rooms in its own dialect.",
    "Its protocol core is sans-IO and no_std; a runner drives it over sockets.",
    "See PROTOCOL.md in its sources for what each dialect offers.",
];

impl<S: crate::Storage> Step<'_, S> {
    /// `HELP` or `HELPOP`: `704`, `705`s, `706` about `subject` (or the index of commands
    /// without one); `524` alone for a subject that is not a command.
    pub(crate) fn irc_help(&mut self, conn: ConnectionId, subject: Option<&str>) {
        let (server, me) = (self.server_name, self.roster.irc_name(conn));
        let start = self.out.mark();
        match subject {
            None => {
                let _ = write!(
                    self.out,
                    ":{server} {RPL_HELPSTART} {me} index :Commands understood (HELP <command> tells more):\r\n"
                );
                for names in TOPICS.chunks(8) {
                    let _ = write!(self.out, ":{server} {RPL_HELPTXT} {me} index :");
                    for (at, (name, _)) in names.iter().enumerate() {
                        let space = if at == 0 { "" } else { " " };
                        let _ = write!(self.out, "{space}{name}");
                    }
                    let _ = write!(self.out, "\r\n");
                }
                let _ = write!(
                    self.out,
                    ":{server} {RPL_ENDOFHELP} {me} index :End of /HELP\r\n"
                );
            }
            Some(subject) => match TOPICS
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(subject))
            {
                Some(&(name, text)) => {
                    let _ = write!(
                        self.out,
                        ":{server} {RPL_HELPSTART} {me} {name} :** {name} **\r\n\
                         :{server} {RPL_HELPTXT} {me} {name} :{text}\r\n\
                         :{server} {RPL_ENDOFHELP} {me} {name} :End of /HELP\r\n"
                    );
                }
                None => {
                    let _ = write!(
                        self.out,
                        ":{server} {ERR_HELPNOTFOUND} {me} {} :No help available on this topic\r\n",
                        Visible(subject.split(' ').next().unwrap_or_default())
                    );
                }
            },
        }
        self.out.send(start, Audience::one(conn));
    }

    /// `INFO`: `371`s, then `374`. A target server, if given, is not looked at: there is
    /// only this one to tell about.
    pub(crate) fn info(&mut self, conn: ConnectionId) {
        let (server, me) = (self.server_name, self.roster.irc_name(conn));
        let start = self.out.mark();
        for line in INFO {
            let _ = write!(self.out, ":{server} {RPL_INFO} {me} :{line}\r\n");
        }
        let _ = write!(
            self.out,
            ":{server} {RPL_ENDOFINFO} {me} :End of /INFO list\r\n"
        );
        self.out.send(start, Audience::one(conn));
    }
}

#[cfg(test)]
mod tests {
    use super::TOPICS;

    #[test]
    fn every_help_topic_is_one_short_line_named_once() {
        for (at, (name, text)) in TOPICS.iter().enumerate() {
            assert!(text.starts_with(name), "{name}: {text}");
            assert!(text.len() < 400, "{name} is too long for one line");
            assert!(
                !TOPICS[at + 1..].iter().any(|(other, _)| other == name),
                "{name} twice"
            );
        }
    }
}
