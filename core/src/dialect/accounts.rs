//! Accounts as people see them (see [`account`](crate::account)): `/register`, `/identify`,
//! `/login`, `/logout` and `/password` for text users, `NickServ` for IRC clients; the
//! answers; and the grace period of a registered nickname.

use crate::dialect::Happened;
use core::fmt::Write;

use super::{Audience, Step, Visible};
use crate::account::{AccountAnswer, AccountAsk, AccountRequest, Password};
use crate::state::asks::{AskKind, MAX_WAITING_ACCOUNT_ASKS, Via, Waiting};
use crate::state::roster::{ConnectionId, Name, Nickname, Queue};

/// What someone asks of their account, as typed.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Asked<'a> {
    Register(&'a str),
    Identify {
        account: Option<&'a str>,
        password: &'a str,
    },
    Logout,
    Password {
        old: &'a str,
        new: &'a str,
    },
}

/// How NickServ's notices name it: IRC clients show notices from `NickServ` in its window.
const NICKSERV: &str = "NickServ!NickServ@services";

impl<S: crate::Storage> Step<'_, S> {
    /// Tells `conn` how its account request went: an IRC client hears it from NickServ.
    fn tell_account(&mut self, conn: ConnectionId, failed: bool, text: core::fmt::Arguments<'_>) {
        if self.speaks_irc(conn) {
            let me = self.roster.irc_name(conn);
            irc!(self, Audience::one(conn), ":{NICKSERV} NOTICE {me} :{text}");
        } else if failed {
            error!(self, conn, "{text}");
        } else {
            notice!(self, conn, "{text}");
        }
    }

    /// The account `conn` is identified as, if any.
    pub(crate) fn account_of(&self, conn: ConnectionId) -> Option<&Nickname> {
        self.roster.account(conn)
    }

    /// `/register`, `/identify`, `/login`, `/logout`, `/password`, or NickServ's.
    pub(crate) fn account_command(&mut self, conn: ConnectionId, asked: Asked<'_>) {
        if self.accounts.is_none() {
            return self.tell_account(conn, true, format_args!("this server keeps no accounts"));
        }
        let current = match self.roster.name(conn) {
            Name::Nick(nick) => Some(nick.clone()),
            Name::Anonymous(_) => None,
        };
        let password = |text: &str| Password::new(text);
        let (account, ask) = match asked {
            Asked::Logout => return self.logout(conn),
            Asked::Register(text) => {
                let Some(nick) = current else {
                    return self.tell_account(
                        conn,
                        true,
                        format_args!(
                            "pick a nickname first: an account is named after the nickname you \
                             register it with"
                        ),
                    );
                };
                match password(text) {
                    Ok(password) => (nick, AccountAsk::Register(password)),
                    Err(error) => return self.tell_account(conn, true, format_args!("{error}")),
                }
            }
            Asked::Identify {
                account,
                password: text,
            } => {
                let account = match account {
                    Some(name) => match Nickname::new(name) {
                        Ok(name) => name,
                        Err(error) => {
                            return self.tell_account(
                                conn,
                                true,
                                format_args!(
                                    "\"{}\" is not an account name: {error}",
                                    Visible(name)
                                ),
                            );
                        }
                    },
                    None => match current {
                        Some(nick) => nick,
                        None => {
                            return self.tell_account(
                                conn,
                                true,
                                format_args!(
                                    "you have no nickname to identify as; name the account: \
                                     /login NAME PASSWORD"
                                ),
                            );
                        }
                    },
                };
                if self
                    .account_of(conn)
                    .is_some_and(|held| held.matches(account.as_str()))
                {
                    return self.tell_account(
                        conn,
                        false,
                        format_args!("You are already identified as {account}."),
                    );
                }
                match password(text) {
                    Ok(password) => (account, AccountAsk::Identify(password)),
                    // A password that could never have been set is simply wrong.
                    Err(_) => {
                        return self.tell_account(
                            conn,
                            true,
                            format_args!("wrong password for {account}"),
                        );
                    }
                }
            }
            Asked::Password { old, new } => {
                let Some(account) = self.account_of(conn).cloned() else {
                    return self.tell_account(
                        conn,
                        true,
                        format_args!("identify first: /identify PASSWORD"),
                    );
                };
                let (Ok(old), new) = (password(old), password(new)) else {
                    return self.tell_account(
                        conn,
                        true,
                        format_args!("wrong password: your password was not changed"),
                    );
                };
                match new {
                    Ok(new) => (account, AccountAsk::ChangePassword { old, new }),
                    Err(error) => return self.tell_account(conn, true, format_args!("{error}")),
                }
            }
        };
        self.ask_account(conn, account, ask, Via::Command);
    }

    /// Hands the request to the runner, one per connection at a time; true if it was. Asked
    /// by SASL or `OPER` (`via`), nothing is said here when it was not: they say it with a
    /// numeric.
    pub(crate) fn ask_account(
        &mut self,
        conn: ConnectionId,
        account: Nickname,
        ask: AccountAsk,
        via: Via,
    ) -> bool {
        let quiet = via != Via::Command;
        let Some((timeout, _)) = self.accounts else {
            return false;
        };
        if self.account_asks.iter().any(|waiting| waiting.conn == conn) {
            if !quiet {
                self.tell_account(
                    conn,
                    true,
                    format_args!("your last account request is still being checked; wait a moment"),
                );
            }
            return false;
        }
        let waiting = Waiting {
            conn,
            account: account.clone(),
            kind: ask.kind(),
            via,
        };
        if self.account_asks.push(waiting).is_err() {
            if !quiet {
                self.tell_account(
                    conn,
                    true,
                    format_args!(
                        "{MAX_WAITING_ACCOUNT_ASKS} account requests are being checked already; \
                         try again in a moment"
                    ),
                );
            }
            return false;
        }
        let deadline = self.now.saturating_add(timeout);
        self.roster.enqueue(Queue::Account, conn, deadline);
        self.out.account(AccountRequest::new(conn, account, ask));
        true
    }

    fn logout(&mut self, conn: ConnectionId) {
        let Some(account) = self.roster.set_account(conn, None) else {
            return self.tell_account(conn, true, format_args!("you are not identified"));
        };
        self.tell_account(
            conn,
            false,
            format_args!("You are no longer identified as {account}."),
        );
        self.publish(&Happened::AccountSet {
            who: conn,
            account: None,
        });
        // Still going by the account's name: it is a registered nickname like any other now.
        if let Name::Nick(nick) = self.roster.name(conn)
            && nick.matches(account.as_str())
        {
            self.nick_registered(conn, account.as_str());
        }
    }

    /// The runner's answer to `conn`'s request about `account` (or none in time:
    /// `Unavailable`).
    pub(crate) fn account_answered(&mut self, waiting: Waiting, answer: AccountAnswer) {
        let Waiting {
            conn,
            account,
            kind,
            via,
        } = waiting;
        match via {
            Via::Sasl => return self.sasl_answered(conn, account, answer),
            Via::Oper => return self.oper_answered(conn, &account, answer),
            Via::Command => {}
        }
        match (kind, answer) {
            (AskKind::Register | AskKind::Identify, AccountAnswer::Done) => {
                let registered = kind == AskKind::Register;
                self.identified(conn, &account);
                if registered {
                    self.tell_account(
                        conn,
                        false,
                        format_args!(
                            "You registered the account {account}; you are identified as it."
                        ),
                    );
                } else {
                    self.tell_account(
                        conn,
                        false,
                        format_args!("You are now identified as {account}."),
                    );
                }
                if self.is_server_operator(conn) {
                    self.tell_account(
                        conn,
                        false,
                        format_args!("You are a server operator: you keep order in every room."),
                    );
                }
            }
            (AskKind::ChangePassword, AccountAnswer::Done) => {
                self.tell_account(conn, false, format_args!("Your password was changed."));
            }
            (AskKind::Register, AccountAnswer::Taken) => self.tell_account(
                conn,
                true,
                format_args!(
                    "the account {account} exists already; /identify PASSWORD if it is yours"
                ),
            ),
            (AskKind::ChangePassword, AccountAnswer::WrongPassword) => self.tell_account(
                conn,
                true,
                format_args!("wrong password: your password was not changed"),
            ),
            (_, AccountAnswer::WrongPassword) => {
                self.tell_account(conn, true, format_args!("wrong password for {account}"));
            }
            (_, AccountAnswer::NoSuchAccount) => self.tell_account(
                conn,
                true,
                format_args!(
                    "there is no account {account}; /register PASSWORD makes one for your \
                     nickname"
                ),
            ),
            _ => self.tell_account(
                conn,
                true,
                format_args!("accounts cannot be checked just now; try again later"),
            ),
        }
    }

    /// `conn` is identified as `account` now, as the runner said: everyone who follows it is
    /// told, and going by the account's name it is no longer taken for an impostor.
    pub(crate) fn identified(&mut self, conn: ConnectionId, account: &Nickname) {
        self.roster.set_account(conn, Some(account.clone()));
        self.server_bans.suspect(conn);
        self.publish(&Happened::AccountSet {
            who: conn,
            account: Some(account.as_str()),
        });
        if let Name::Nick(nick) = self.roster.name(conn)
            && nick.matches(account.as_str())
        {
            self.no_longer_unproven(conn);
        }
    }

    /// IRC's `OPER NAME PASSWORD`: identifies `conn` as the account `name` with `password`
    /// when `name` is a server operator's account (see
    /// [`Operators`](crate::account::Operators)), checked by the runner as `/login` is;
    /// answered `381` (`RPL_YOUREOPER`) once identified, `464` for a wrong password and `491`
    /// (`ERR_NOOPERHOST`) for a name that is no operator's, without asking the runner.
    pub(crate) fn oper(&mut self, conn: ConnectionId, name: &str, password: &str) {
        use super::irc::numeric::{ERR_NOOPERHOST, ERR_PASSWDMISMATCH, RPL_YOUREOPER};
        let account = Nickname::new(name)
            .ok()
            .filter(|account| self.operators.contains(account.as_str()));
        let (Some(account), Some(_)) = (account, self.accounts) else {
            return numeric!(
                self,
                conn,
                ERR_NOOPERHOST,
                ":No such operator here (operators are the accounts the server names)"
            );
        };
        if self
            .account_of(conn)
            .is_some_and(|held| held.matches(account.as_str()))
        {
            return numeric!(self, conn, RPL_YOUREOPER, ":You are now an IRC operator");
        }
        // A password that could never have been set is simply wrong.
        let Ok(password) = Password::new(password) else {
            return numeric!(self, conn, ERR_PASSWDMISMATCH, ":Password incorrect");
        };
        if !self.ask_account(conn, account, AccountAsk::Identify(password), Via::Oper) {
            numeric!(
                self,
                conn,
                ERR_NOOPERHOST,
                ":Your last account request is still being checked, or too many are; try again \
                 in a moment"
            );
        }
    }

    /// The runner's answer to `conn`'s `OPER` as `account`; its input, held back meanwhile,
    /// goes on (see [`Server::handle_input`](crate::Server::handle_input)).
    fn oper_answered(&mut self, conn: ConnectionId, account: &Nickname, answer: AccountAnswer) {
        use super::irc::numeric::{ERR_NOOPERHOST, ERR_PASSWDMISMATCH, RPL_YOUREOPER};
        self.out.resume(conn);
        match answer {
            AccountAnswer::Done => {
                self.identified(conn, account);
                let me = self.roster.irc_name(conn);
                numeric!(
                    self,
                    conn,
                    RPL_YOUREOPER,
                    ":You are now an IRC operator (identified as {account})"
                );
                // Clients learn their own operator status from a user mode.
                irc!(self, Audience::one(conn), ":{me} MODE {me} :+o");
            }
            AccountAnswer::WrongPassword | AccountAnswer::NoSuchAccount => {
                numeric!(self, conn, ERR_PASSWDMISMATCH, ":Password incorrect");
            }
            _ => numeric!(
                self,
                conn,
                ERR_NOOPERHOST,
                ":Accounts cannot be checked just now; try again later"
            ),
        }
    }

    /// The runner says `conn` goes by `nick`, an account's name: unless it is identified as
    /// it, its grace period starts.
    pub(crate) fn nick_registered(&mut self, conn: ConnectionId, nick: &str) {
        let Some((_, grace)) = self.accounts else {
            return;
        };
        let Name::Nick(current) = self.roster.name(conn) else {
            return;
        };
        if !current.matches(nick)
            || self.is_remote(conn)
            || self.account_of(conn).is_some_and(|held| held.matches(nick))
            || self
                .roster
                .get(conn)
                .is_some_and(|slot| slot.connection.unproven)
        {
            return;
        }
        let current = current.clone();
        if let Some(slot) = self.roster.get_mut(conn) {
            slot.connection.unproven = true;
        }
        let deadline = self.now.saturating_add(grace);
        self.roster.enqueue(Queue::Grace, conn, deadline);
        let seconds = grace.as_secs();
        let how = if self.speaks_irc(conn) {
            "/msg NickServ IDENTIFY PASSWORD"
        } else {
            "/identify PASSWORD"
        };
        self.tell_account(
            conn,
            false,
            format_args!(
                "The nickname {current} is registered: if it is yours, {how} within {seconds} s, \
                 or you will be renamed."
            ),
        );
    }

    /// `conn` no longer goes unproven by a registered nickname: its grace period ends.
    pub(crate) fn no_longer_unproven(&mut self, conn: ConnectionId) {
        if let Some(slot) = self.roster.get_mut(conn)
            && core::mem::take(&mut slot.connection.unproven)
        {
            self.roster.dequeue(Queue::Grace, conn);
        }
    }

    /// `conn`'s grace period ended without it identifying: it is `anonymous-N` again.
    pub(crate) fn grace_over(&mut self, conn: ConnectionId) {
        let Name::Nick(nick) = self.roster.name(conn) else {
            return self.no_longer_unproven(conn);
        };
        let nick = nick.clone();
        let anonymous = self.unname(conn);
        let how = if self.speaks_irc(conn) {
            "NICK"
        } else {
            "/nick NAME"
        };
        self.tell_account(
            conn,
            true,
            format_args!(
                "you did not identify as {nick} in time; you are {anonymous} now: pick another \
                 name with {how}"
            ),
        );
    }

    /// IRC's `PRIVMSG NickServ :TEXT`: `IDENTIFY [ACCOUNT] PASSWORD`, `REGISTER PASSWORD
    /// [EMAIL]`, `LOGOUT`, `SET PASSWORD`... as clients that know no SASL send them.
    pub(crate) fn nickserv(&mut self, conn: ConnectionId, text: &str) {
        let mut words = text.split_whitespace();
        let command = words.next().unwrap_or_default();
        let is = |name: &str| command.eq_ignore_ascii_case(name);
        let args: heapless::Vec<&str, 4> = words.by_ref().take(4).collect();
        let asked = if is("IDENTIFY") || is("LOGIN") {
            match args.as_slice() {
                [password] => Asked::Identify {
                    account: None,
                    password,
                },
                [account, password] => Asked::Identify {
                    account: Some(account),
                    password,
                },
                _ => return self.nickserv_usage(conn, "IDENTIFY [ACCOUNT] PASSWORD"),
            }
        } else if is("REGISTER") {
            // An email address after the password is taken and not kept.
            match args.as_slice() {
                [password] | [password, _] => Asked::Register(password),
                _ => return self.nickserv_usage(conn, "REGISTER PASSWORD"),
            }
        } else if is("LOGOUT") {
            Asked::Logout
        } else if is("PASSWORD")
            || (is("SET")
                && args
                    .first()
                    .is_some_and(|w| w.eq_ignore_ascii_case("PASSWORD")))
        {
            let args = if is("SET") { &args[1..] } else { &args[..] };
            match args {
                [old, new] => Asked::Password { old, new },
                _ => return self.nickserv_usage(conn, "PASSWORD OLD NEW"),
            }
        } else {
            return self.nickserv_usage(
                conn,
                "IDENTIFY [ACCOUNT] PASSWORD, REGISTER PASSWORD, LOGOUT or PASSWORD OLD NEW",
            );
        };
        self.account_command(conn, asked);
    }

    fn nickserv_usage(&mut self, conn: ConnectionId, usage: &str) {
        self.tell_account(conn, true, format_args!("usage: /msg NickServ {usage}"));
    }
}
