//! The IRC numerics this server sends, by name (RFC 1459, RFC 2812, and the Modern IRC
//! documents where they differ). A numeric reply is `:server CODE nick ...`.

/// The welcome: the first line of a registered client.
pub(crate) const RPL_WELCOME: &str = "001";
/// "Your host is ..."
pub(crate) const RPL_YOURHOST: &str = "002";
/// "This server was created ..."
pub(crate) const RPL_CREATED: &str = "003";
/// The server's name, version and modes.
pub(crate) const RPL_MYINFO: &str = "004";
/// The server's features (`ISUPPORT` tokens).
pub(crate) const RPL_ISUPPORT: &str = "005";
/// A client's own user modes.
pub(crate) const RPL_UMODEIS: &str = "221";
/// The person messaged is away.
pub(crate) const RPL_AWAY: &str = "301";
/// `USERHOST` answer.
pub(crate) const RPL_USERHOST: &str = "302";
/// `ISON` answer.
pub(crate) const RPL_ISON: &str = "303";
/// No longer marked away.
pub(crate) const RPL_UNAWAY: &str = "305";
/// Now marked away.
pub(crate) const RPL_NOWAWAY: &str = "306";
/// `WHOIS`: nick, user, host, real name.
pub(crate) const RPL_WHOISUSER: &str = "311";
/// `WHOWAS`: nick, user, host, real name of someone who left.
pub(crate) const RPL_WHOWASUSER: &str = "314";
/// `WHOIS`: the server the person is on.
pub(crate) const RPL_WHOISSERVER: &str = "312";
pub(crate) const RPL_WHOISACCOUNT: &str = "330";
pub(crate) const RPL_LOGGEDIN: &str = "900";
pub(crate) const RPL_SASLSUCCESS: &str = "903";
pub(crate) const ERR_SASLFAIL: &str = "904";
pub(crate) const ERR_SASLTOOLONG: &str = "905";
pub(crate) const ERR_SASLABORTED: &str = "906";
pub(crate) const ERR_SASLALREADY: &str = "907";
pub(crate) const RPL_SASLMECHS: &str = "908";
/// End of a `WHO` answer.
pub(crate) const RPL_ENDOFWHO: &str = "315";
/// End of a `WHOIS` answer.
pub(crate) const RPL_ENDOFWHOIS: &str = "318";
/// `WHOIS`: the channels the person is in.
pub(crate) const RPL_WHOISCHANNELS: &str = "319";
/// Start of a `LIST` answer.
pub(crate) const RPL_LISTSTART: &str = "321";
/// One channel of a `LIST` answer.
pub(crate) const RPL_LIST: &str = "322";
/// End of a `LIST` answer.
pub(crate) const RPL_LISTEND: &str = "323";
/// A channel's modes.
pub(crate) const RPL_CHANNELMODEIS: &str = "324";
/// When a channel was made (Unix seconds), after its modes.
pub(crate) const RPL_CREATIONTIME: &str = "329";
/// The channel has no topic.
pub(crate) const RPL_NOTOPIC: &str = "331";
/// The channel's topic.
pub(crate) const RPL_TOPIC: &str = "332";
pub(crate) const RPL_TOPICWHOTIME: &str = "333";
/// One person of a `WHO` answer with WHOX fields.
pub(crate) const RPL_WHOSPCRPL: &str = "354";
/// One person of a `WHO` answer.
pub(crate) const RPL_WHOREPLY: &str = "352";
/// Names in a channel.
pub(crate) const RPL_NAMREPLY: &str = "353";
/// End of a `NAMES` answer.
pub(crate) const RPL_ENDOFNAMES: &str = "366";
/// End of a channel's ban list (always empty here).
pub(crate) const RPL_ENDOFBANLIST: &str = "368";
/// End of a `WHOWAS` answer.
pub(crate) const RPL_ENDOFWHOWAS: &str = "369";
/// One line of the message of the day.
pub(crate) const RPL_MOTD: &str = "372";
/// Start of the message of the day.
pub(crate) const RPL_MOTDSTART: &str = "375";
pub(crate) const RPL_LUSERCLIENT: &str = "251";
pub(crate) const RPL_LUSEROP: &str = "252";
/// `LUSERS`: connections still registering.
pub(crate) const RPL_LUSERUNKNOWN: &str = "253";
pub(crate) const RPL_LUSERCHANNELS: &str = "254";
pub(crate) const RPL_LUSERME: &str = "255";
pub(crate) const RPL_LOCALUSERS: &str = "265";
pub(crate) const RPL_GLOBALUSERS: &str = "266";
pub(crate) const RPL_TIME: &str = "391";
/// One line of `INFO`.
pub(crate) const RPL_INFO: &str = "371";
/// End of `INFO`.
pub(crate) const RPL_ENDOFINFO: &str = "374";
/// `MONITOR`: nicknames watched that someone goes by, as `nick!user@host`.
pub(crate) const RPL_MONONLINE: &str = "730";
/// `MONITOR`: nicknames watched that no one goes by.
pub(crate) const RPL_MONOFFLINE: &str = "731";
/// `MONITOR L`: nicknames watched.
pub(crate) const RPL_MONLIST: &str = "732";
/// End of `MONITOR L`.
pub(crate) const RPL_ENDOFMONLIST: &str = "733";
/// `MONITOR +` past a bound.
pub(crate) const ERR_MONLISTFULL: &str = "734";
/// Start of a `HELP` answer.
pub(crate) const RPL_HELPSTART: &str = "704";
/// One line of a `HELP` answer.
pub(crate) const RPL_HELPTXT: &str = "705";
/// End of a `HELP` answer.
pub(crate) const RPL_ENDOFHELP: &str = "706";
/// `HELP` about something that is not a command here.
pub(crate) const ERR_HELPNOTFOUND: &str = "524";
/// End of the message of the day.
pub(crate) const RPL_ENDOFMOTD: &str = "376";
/// No one goes by that nick (or no such channel).
pub(crate) const ERR_NOSUCHNICK: &str = "401";
/// No such channel.
pub(crate) const ERR_NOSUCHCHANNEL: &str = "403";
/// The message cannot be sent to that channel.
pub(crate) const ERR_CANNOTSENDTOCHAN: &str = "404";
/// The client is in too many channels, or there are too many.
pub(crate) const ERR_TOOMANYCHANNELS: &str = "405";
/// No one went by that nick.
pub(crate) const ERR_WASNOSUCHNICK: &str = "406";
/// `PING` without a token.
pub(crate) const ERR_NOORIGIN: &str = "409";
/// An unknown `CAP` subcommand.
pub(crate) const ERR_INVALIDCAPCMD: &str = "410";
/// A message without a recipient.
pub(crate) const ERR_NORECIPIENT: &str = "411";
/// A message without text.
pub(crate) const ERR_NOTEXTTOSEND: &str = "412";
/// The line was too long.
pub(crate) const ERR_INPUTTOOLONG: &str = "417";
/// An unknown command.
pub(crate) const ERR_UNKNOWNCOMMAND: &str = "421";
/// `NICK` without a name.
pub(crate) const ERR_NONICKNAMEGIVEN: &str = "431";
/// Not a valid nickname.
pub(crate) const ERR_ERRONEUSNICKNAME: &str = "432";
/// The nickname is taken.
pub(crate) const ERR_NICKNAMEINUSE: &str = "433";
/// The client is not in that channel.
pub(crate) const ERR_NOTONCHANNEL: &str = "442";
pub(crate) const ERR_USERNOTINCHANNEL: &str = "441";
pub(crate) const ERR_CHANOPRIVSNEEDED: &str = "482";
pub(crate) const ERR_BANNEDFROMCHAN: &str = "474";
pub(crate) const RPL_BANLIST: &str = "367";
/// One invite exception (`+I`) of a channel.
pub(crate) const RPL_INVEXLIST: &str = "346";
/// The end of a channel's invite exceptions.
pub(crate) const RPL_ENDOFINVEXLIST: &str = "347";
/// One ban exception (`+e`) of a channel.
pub(crate) const RPL_EXCEPTLIST: &str = "348";
/// The end of a channel's ban exceptions.
pub(crate) const RPL_ENDOFEXCEPTLIST: &str = "349";
/// The command needs registration first.
pub(crate) const ERR_NOTREGISTERED: &str = "451";
/// Not enough parameters.
pub(crate) const ERR_NEEDMOREPARAMS: &str = "461";
/// Already registered.
pub(crate) const ERR_ALREADYREGISTERED: &str = "462";
/// The channel is full.
pub(crate) const ERR_CHANNELISFULL: &str = "471";
/// An unknown channel mode.
pub(crate) const ERR_UNKNOWNMODE: &str = "472";
/// The channel is invite-only (`+i`).
pub(crate) const ERR_INVITEONLYCHAN: &str = "473";
/// The channel's key (`+k`) was not given.
pub(crate) const ERR_BADCHANNELKEY: &str = "475";
/// The invitation went out.
pub(crate) const RPL_INVITING: &str = "341";
/// One pending invitation, on `INVITE` alone.
pub(crate) const RPL_INVITELIST: &str = "336";
/// The end of the pending invitations.
pub(crate) const RPL_ENDOFINVITELIST: &str = "337";
/// The invitee is in the channel already.
pub(crate) const ERR_USERONCHANNEL: &str = "443";
/// A command for server operators only.
pub(crate) const ERR_NOPRIVILEGES: &str = "481";
/// `STATS K`: one server-wide ban.
pub(crate) const RPL_STATSKLINE: &str = "216";
/// The end of a `STATS` report.
pub(crate) const RPL_ENDOFSTATS: &str = "219";
/// `OPER` from someone who is a server operator.
pub(crate) const RPL_YOUREOPER: &str = "381";
/// `OPER` from someone who is not one.
pub(crate) const ERR_NOOPERHOST: &str = "491";
/// `OPER` with a wrong password.
pub(crate) const ERR_PASSWDMISMATCH: &str = "464";
/// In `WHOIS`: a server operator.
pub(crate) const RPL_WHOISOPERATOR: &str = "313";
/// A mode's parameter is not valid (a key with a space, a limit of 0).
pub(crate) const ERR_INVALIDMODEPARAM: &str = "696";
/// An unknown user mode.
pub(crate) const ERR_UMODEUNKNOWNFLAG: &str = "501";
/// A user mode change for someone else.
pub(crate) const ERR_USERSDONTMATCH: &str = "502";
