//! Accounts: a nickname kept with a password, the password checked by the runner.
//!
//! The core never sees a password hash and never hashes: hashing is slow on purpose (Argon2id,
//! tens of milliseconds) and needs a place to keep its result, so it is the runner's. With
//! [`Config::accounts`](crate::Config) on, `/register`, `/identify` (`/login`) and `/password`
//! (and IRC's `PRIVMSG NickServ :IDENTIFY ...`) come out as an [`AccountRequest`]
//! ([`Output::Account`](crate::Output::Account)), the way a nickname claim does; the person
//! waits, one request at a time, and the runner answers with
//! [`Server::handle_account`](crate::Server::handle_account). A request not answered within
//! [`Config::account_timeout`](crate::Config) is told it could not be checked.
//!
//! Once identified, a person is logged in to that account until they `/logout` or leave
//! (`WHOIS` shows it, `330`). A nickname that is an account is protected: when someone goes by
//! it without being identified as it, the runner (which knows the accounts) says so with
//! [`Server::handle_nick_registered`](crate::Server::handle_nick_registered), and they must
//! identify within [`Config::nick_grace`](crate::Config) or are renamed `anonymous-N`.

use core::fmt;
use core::time::Duration;

use crate::state::roster::{ConnectionId, Nickname};

/// The longest password, in bytes. Longer ones are refused before they reach the runner.
pub const MAX_PASSWORD_BYTES: usize = 128;

/// The shortest password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// How long an account request may wait for its answer unless
/// [`Config::account_timeout`](crate::Config) says otherwise. Longer than a claim's: the runner
/// hashes, and slows down answers to repeated wrong passwords.
pub const DEFAULT_ACCOUNT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long someone going by a registered nickname has to identify, unless
/// [`Config::nick_grace`](crate::Config) says otherwise.
pub const DEFAULT_NICK_GRACE: Duration = Duration::from_secs(60);

/// A password as typed: 8 to 128 bytes, no spaces or control characters. Never shown: its
/// `Debug` hides it, so it cannot end up in a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(heapless::String<MAX_PASSWORD_BYTES>);

/// Why a string is not a [`Password`]; renders as a message fit to show the user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PasswordError {
    /// Shorter than [`MIN_PASSWORD_CHARS`].
    TooShort,
    /// Longer than [`MAX_PASSWORD_BYTES`].
    TooLong,
    /// A space or a control character.
    InvalidChar,
}

impl fmt::Display for PasswordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort => write!(f, "a password has at least {MIN_PASSWORD_CHARS} characters"),
            Self::TooLong => write!(f, "a password has at most {MAX_PASSWORD_BYTES} bytes"),
            Self::InvalidChar => f.write_str("a password has no spaces or control characters"),
        }
    }
}

impl core::error::Error for PasswordError {}

impl Password {
    /// Checks `text` as a password.
    ///
    /// ```
    /// use chat_core::account::{Password, PasswordError};
    /// assert_eq!(Password::new("correct horse").unwrap_err(), PasswordError::InvalidChar);
    /// assert_eq!(Password::new("short").unwrap_err(), PasswordError::TooShort);
    /// assert_eq!(Password::new("tr0ub4dor&3").unwrap().as_str(), "tr0ub4dor&3");
    /// ```
    pub fn new(text: &str) -> Result<Self, PasswordError> {
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(PasswordError::InvalidChar);
        }
        if text.chars().count() < MIN_PASSWORD_CHARS {
            return Err(PasswordError::TooShort);
        }
        heapless::String::try_from(text)
            .map(Self)
            .map_err(|_| PasswordError::TooLong)
    }

    /// The password, for the runner to hash or check. Show it to no one.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

/// What a person asks of their account.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AccountAsk {
    /// Make the account (named after their nickname) with this password; they are identified
    /// as it once made.
    Register(Password),
    /// They are the account's owner: this is its password.
    Identify(Password),
    /// Change the account's password from `old` (checked) to `new`.
    ChangePassword {
        /// The password now.
        old: Password,
        /// The password from now on.
        new: Password,
    },
}

/// A person's request about an account, from [`Output::Account`](crate::Output::Account):
/// hand it back to [`Server::handle_account`](crate::Server::handle_account) with the answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountRequest {
    conn: ConnectionId,
    account: Nickname,
    ask: AccountAsk,
    /// The account's name as it was registered, where the runner said so.
    registered_as: Option<Nickname>,
}

impl AccountRequest {
    pub(crate) fn new(conn: ConnectionId, account: Nickname, ask: AccountAsk) -> Self {
        Self {
            conn,
            account,
            ask,
            registered_as: None,
        }
    }

    /// Who asks.
    pub fn conn(&self) -> ConnectionId {
        self.conn
    }

    /// The account: a nickname, compared as names are
    /// ([`NameKey`](crate::NameKey)): keep accounts by its key.
    pub fn account(&self) -> &Nickname {
        &self.account
    }

    /// What they ask.
    pub fn ask(&self) -> &AccountAsk {
        &self.ask
    }

    /// Tells the core how the account was spelt when it was registered (`Alice` where
    /// `ALICE` was asked for): once identified, the person's account is shown that way
    /// (`WHOIS`, `account-notify`, events), whatever they typed. Set it before
    /// [`Server::handle_account`](crate::Server::handle_account). `false`, and nothing
    /// changes, unless `registered` is the same name as [`account`](Self::account)
    /// ([`NameKey`](crate::NameKey)) and a valid nickname: a request is never turned into
    /// another account's.
    ///
    /// ```
    /// # use chat_core::account::AccountRequest;
    /// fn answered(mut request: AccountRequest, stored_name: &str) -> AccountRequest {
    ///     if !request.spell_as_registered(stored_name) {
    ///         // Not the same name: keep the spelling asked.
    ///     }
    ///     request
    /// }
    /// ```
    pub fn spell_as_registered(&mut self, registered: &str) -> bool {
        match Nickname::new(registered) {
            Ok(name) if name.key() == self.account.key() => {
                self.registered_as = Some(name);
                true
            }
            _ => false,
        }
    }

    /// The account's name as it was registered, if the runner said
    /// ([`spell_as_registered`](Self::spell_as_registered)); otherwise as asked.
    pub fn registered_spelling(&self) -> &Nickname {
        self.registered_as.as_ref().unwrap_or(&self.account)
    }
}

use crate::state::asks::AskKind;
pub use crate::state::asks::MAX_WAITING_ACCOUNT_ASKS;

/// The most accounts named server operators (see [`Operators`]).
pub const MAX_OPERATORS: usize = 32;

/// The accounts whose people are server operators, set with
/// [`Server::set_operators`](crate::Server::set_operators): whoever is identified as one may
/// act as an operator of every room (kick, ban, modes, invitations, a locked topic) and comes
/// into any room past its bans, key, limit and invite-only mode, and may send IRC's
/// `WALLOPS`. IRC's `OPER NAME PASSWORD` identifies as one of these accounts (an
/// [`AccountAsk::Identify`] like any other, answered `381`); `WHOIS` shows `313`. Names are
/// compared as nicknames are
/// ([`NameKey`](crate::NameKey)).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Operators {
    accounts: heapless::Vec<crate::state::names::NameKey, MAX_OPERATORS>,
}

/// Why a list of operators was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OperatorsError {
    /// The name at this place in the list (from 0) is not a valid nickname, so no account.
    NotAName(usize),
    /// More than [`MAX_OPERATORS`] names.
    TooMany,
}

impl fmt::Display for OperatorsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAName(at) => {
                write!(f, "operator number {} is not a valid account name", at + 1)
            }
            Self::TooMany => write!(f, "at most {MAX_OPERATORS} accounts can be operators"),
        }
    }
}

impl core::error::Error for OperatorsError {}

impl Operators {
    /// No operators.
    pub const NONE: Self = Self {
        accounts: heapless::Vec::new(),
    };

    /// The accounts called `names` (each a valid nickname; duplicates count once).
    ///
    /// ```
    /// use chat_core::account::{Operators, OperatorsError};
    /// let operators = Operators::new(["alice", "Bob"]).unwrap();
    /// assert!(operators.contains("BOB"));
    /// assert!(!operators.contains("carol"));
    /// assert_eq!(Operators::new(["ok", "not ok"]), Err(OperatorsError::NotAName(1)));
    /// ```
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, OperatorsError> {
        let mut accounts = heapless::Vec::new();
        for (at, name) in names.into_iter().enumerate() {
            let key = Nickname::new(name)
                .map_err(|_| OperatorsError::NotAName(at))?
                .key();
            if !accounts.contains(&key) {
                accounts.push(key).map_err(|_| OperatorsError::TooMany)?;
            }
        }
        Ok(Self { accounts })
    }

    /// Whether the account called `account` is one of them.
    pub fn contains(&self, account: &str) -> bool {
        crate::state::names::NameKey::of(account).is_some_and(|key| self.accounts.contains(&key))
    }

    /// How many accounts are operators.
    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    /// Whether no account is one.
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }
}

impl AccountAsk {
    pub(crate) fn kind(&self) -> AskKind {
        match self {
            Self::Register(_) => AskKind::Register,
            Self::Identify(_) => AskKind::Identify,
            Self::ChangePassword { .. } => AskKind::ChangePassword,
        }
    }
}

/// The runner's answer to an [`AccountRequest`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AccountAnswer {
    /// Done: registered (and identified), identified, or the password changed.
    Done,
    /// The password is not the account's.
    WrongPassword,
    /// There is no such account (to identify as, or to change).
    NoSuchAccount,
    /// The account exists already (to register).
    Taken,
    /// It could not be decided now (the place accounts are kept cannot be reached); try
    /// again later.
    Unavailable,
}

#[cfg(test)]
mod tests {
    use core::time::Duration;
    use std::string::String;
    use std::vec::Vec;

    use super::*;
    use crate::testing::{Driver, Transcript};
    use crate::{Config, Error, Instant, ServerName};

    struct Node {
        driver: Driver<16>,
        heard: Transcript,
    }

    impl Node {
        fn new(accounts: bool) -> Self {
            let config = Config::default()
                .with_colour(false)
                .with_flood_limit(None)
                .with_greeting_delay(Duration::ZERO)
                .with_silence_timeout(None)
                .with_server_name(ServerName::new("irc.test").unwrap())
                .with_accounts(accounts)
                .with_account_timeout(Duration::from_secs(10))
                .with_nick_grace(Duration::from_secs(30));
            Self {
                driver: Driver::new(config, Instant::from_millis(1_000)),
                heard: Transcript::default(),
            }
        }

        fn connect(&mut self) -> ConnectionId {
            let heard = &mut self.heard;
            let conn = self
                .driver
                .connect(&mut |output| heard.record(output))
                .unwrap();
            self.heard.take(conn);
            conn
        }

        fn send(&mut self, conn: ConnectionId, text: &str) -> Vec<String> {
            let heard = &mut self.heard;
            self.driver
                .input(conn, text.as_bytes(), &mut |output| heard.record(output));
            self.heard.take(conn)
        }

        /// The one request made since the last call.
        fn request(&mut self) -> AccountRequest {
            let mut requests = self.driver.take_account_requests();
            assert_eq!(requests.len(), 1, "{requests:?}");
            requests.remove(0)
        }

        fn answer(&mut self, request: &AccountRequest, answer: AccountAnswer) -> Vec<String> {
            let heard = &mut self.heard;
            self.driver
                .answer_account(request, answer, &mut |output| heard.record(output))
                .unwrap();
            self.heard.take(request.conn())
        }

        /// A new connection going by `name`, the only server operator's account, identified
        /// as it (what it heard taken).
        fn operator(&mut self, name: &str) -> ConnectionId {
            self.driver
                .server_mut()
                .set_operators(Operators::new([name]).unwrap());
            let conn = self.connect();
            self.send(
                conn,
                &std::format!("/nick {name}\n/identify correct-horse\n"),
            );
            let request = self.request();
            self.answer(&request, AccountAnswer::Done);
            conn
        }

        /// The runner says `conn` goes by `nick`, a registered nickname.
        fn registered(&mut self, conn: ConnectionId, nick: &str) {
            let heard = &mut self.heard;
            self.driver
                .nick_registered(conn, nick, &mut |output| heard.record(output))
                .unwrap();
        }

        fn advance(&mut self, by: Duration) {
            let heard = &mut self.heard;
            self.driver.advance(by, &mut |output| heard.record(output));
        }
    }

    #[test]
    fn identified_as_the_account_as_registered_whatever_was_typed() {
        let mut node = Node::new(true);
        let ann = node.connect();
        node.send(ann, "/nick ann\n/login ANN correct-horse\n");
        let mut request = node.request();
        assert_eq!(request.account().as_str(), "ANN");
        // Another account's name is refused, the request unchanged.
        assert!(!request.spell_as_registered("bob"));
        assert!(!request.spell_as_registered("not a name"));
        assert_eq!(request.registered_spelling().as_str(), "ANN");
        assert!(request.spell_as_registered("Ann"));
        assert_eq!(request.account().as_str(), "ANN", "still the one asked for");
        assert_eq!(
            node.answer(&request, AccountAnswer::Done),
            ["*** You are now identified as Ann."]
        );
        assert_eq!(
            node.driver
                .server()
                .account_of("ann")
                .map(|name| name.as_str()),
            Some("Ann")
        );
    }

    #[test]
    fn oper_identifies_as_an_operators_account_and_wallops_reach_who_asked() {
        let mut node = Node::new(true);
        node.driver
            .server_mut()
            .set_operators(Operators::new(["Root"]).unwrap());
        let ivy = node.connect();
        node.send(ivy, "NICK ivy\r\nUSER i 0 * :I\r\n");
        let (w, quiet, ann) = (node.connect(), node.connect(), node.connect());
        node.send(w, "NICK w\r\nUSER w 0 * :W\r\n");
        node.send(quiet, "NICK quiet\r\nUSER q 0 * :Q\r\n");
        node.send(ann, "/nick ann\n");
        for conn in [ivy, w, quiet, ann] {
            node.heard.take(conn);
        }
        // +w is asked for; -w, or never asking, gets nothing.
        assert_eq!(
            node.send(w, "MODE w +w\r\nMODE w\r\n"),
            [":w MODE w :+w", ":irc.test 221 w +w"]
        );
        assert!(node.send(quiet, "MODE quiet -w\r\n").is_empty());
        // Not an operator: 481; a name that is no operator's account: 491, no request.
        assert_eq!(
            node.send(ivy, "WALLOPS :hi\r\n"),
            [":irc.test 481 ivy :Permission Denied - only server operators send WALLOPS (OPER)"]
        );
        assert_eq!(
            node.send(ivy, "OPER ivy correct-horse\r\n"),
            [
                ":irc.test 491 ivy :No such operator here (operators are the accounts the server names)"
            ]
        );
        assert!(node.driver.take_account_requests().is_empty());
        // A password that could never be one is wrong at once; a wrong one, once checked.
        assert_eq!(
            node.send(ivy, "OPER root short\r\n"),
            [":irc.test 464 ivy :Password incorrect"]
        );
        assert!(node.send(ivy, "OPER ROOT wrong-horse\r\n").is_empty());
        let request = node.request();
        assert_eq!(request.account().as_str(), "ROOT");
        assert_eq!(
            request.ask(),
            &AccountAsk::Identify(Password::new("wrong-horse").unwrap())
        );
        assert_eq!(
            node.answer(&request, AccountAnswer::WrongPassword),
            [":irc.test 464 ivy :Password incorrect"]
        );
        // The right one: identified as the account (as the runner spells it), an operator.
        // What comes after OPER waits for its answer.
        let input = b"OPER root correct-horse\r\nPING :after\r\n";
        let heard = &mut node.heard;
        let fed = node
            .driver
            .input(ivy, input, &mut |output| heard.record(output));
        assert!(fed.held);
        assert!(node.heard.take(ivy).is_empty(), "PING waits");
        let mut request = node.request();
        assert!(request.spell_as_registered("Root"));
        assert_eq!(
            node.answer(&request, AccountAnswer::Done),
            [
                ":irc.test 381 ivy :You are now an IRC operator (identified as Root)",
                ":ivy MODE ivy :+o"
            ]
        );
        assert_eq!(node.heard.resumed, [ivy, ivy], "once for each answer");
        let rest = core::str::from_utf8(&input[fed.taken..]).unwrap();
        assert_eq!(node.send(ivy, rest), [":irc.test PONG irc.test after"]);
        assert_eq!(
            node.driver.server().account(ivy).map(Nickname::as_str),
            Some("Root")
        );
        assert_eq!(node.send(ivy, "MODE ivy\r\n"), [":irc.test 221 ivy +o"]);
        // WHO marks a server operator with `*`.
        let who = node.send(w, "WHO ivy\r\nWHO w\r\n");
        assert!(who[0].contains(" ivy H* :0 "), "{who:?}");
        assert!(who[2].contains(" w H :0 "), "{who:?}");
        assert_eq!(
            node.send(ivy, "OPER root correct-horse\r\n"),
            [":irc.test 381 ivy :You are now an IRC operator"]
        );
        // WALLOPS: to +w, and back to the sender; not to the others, nor to text users.
        assert_eq!(
            node.send(ivy, "WALLOPS :hi \x1b everyone\r\n"),
            [
                ":irc.test NOTICE ivy :*** error: your line contains the control character ^[; \
                 it was not processed"
            ]
        );
        assert_eq!(
            node.send(ivy, "WALLOPS :hi everyone\r\n"),
            [":ivy!~i@hidden WALLOPS :hi everyone"]
        );
        assert_eq!(node.heard.take(w), [":ivy!~i@hidden WALLOPS :hi everyone"]);
        assert!(node.heard.take(quiet).is_empty());
        assert!(node.heard.take(ann).is_empty());
        assert_eq!(
            node.send(ivy, "WALLOPS\r\n"),
            [":irc.test 461 ivy WALLOPS :Not enough parameters"]
        );
        // An operator with +w gets it once.
        node.send(ivy, "MODE ivy +w\r\n");
        assert_eq!(
            node.send(ivy, "WALLOPS :again\r\n"),
            [":ivy!~i@hidden WALLOPS :again"]
        );
    }

    #[test]
    fn oper_without_accounts_or_in_time_is_refused() {
        let mut node = Node::new(false);
        node.driver
            .server_mut()
            .set_operators(Operators::new(["root"]).unwrap());
        let ivy = node.connect();
        node.send(ivy, "NICK ivy\r\nUSER i 0 * :I\r\n");
        assert_eq!(
            node.send(ivy, "OPER root correct-horse\r\n"),
            [
                ":irc.test 491 ivy :No such operator here (operators are the accounts the server names)"
            ]
        );
        assert_eq!(
            node.send(ivy, "OPER root\r\n"),
            [":irc.test 461 ivy OPER :Not enough parameters"]
        );
        let mut node = Node::new(true);
        node.driver
            .server_mut()
            .set_operators(Operators::new(["root"]).unwrap());
        let ivy = node.connect();
        node.send(
            ivy,
            "NICK ivy\r\nUSER i 0 * :I\r\nOPER root correct-horse\r\n",
        );
        node.request();
        // Not answered within the account timeout (10 s here).
        let heard = &mut node.heard;
        node.driver
            .advance(Duration::from_secs(11), &mut |output| heard.record(output));
        assert_eq!(
            node.heard.take(ivy),
            [":irc.test 491 ivy :Accounts cannot be checked just now; try again later"]
        );
        assert!(node.driver.server().account(ivy).is_none());
    }

    #[test]
    fn an_account_named_an_operator_keeps_order_in_every_room() {
        let mut node = Node::new(true);
        node.driver
            .server_mut()
            .set_operators(Operators::new(["Root"]).unwrap());
        let ann = node.connect();
        node.send(
            ann,
            "/nick ann\n/join #den\n/mode +k sesame\n/mode +i\n/ban root\n",
        );
        let root = node.connect();
        node.send(root, "/nick root\n");
        let ivy = node.connect();
        node.send(ivy, "NICK ivy\r\nUSER i 0 * :I\r\n");
        // Not identified: nobody special.
        node.heard.take(root);
        assert_eq!(
            node.send(root, "/join #den\n"),
            ["*** error: you are banned from #den"]
        );
        assert_eq!(
            node.send(ivy, "OPER ivy pw\r\n"),
            [
                ":irc.test 491 ivy :No such operator here (operators are the accounts the server names)"
            ]
        );
        node.send(root, "/identify correct-horse\n");
        let request = node.request();
        assert_eq!(
            node.answer(&request, AccountAnswer::Done),
            [
                "*** You are now identified as root.",
                "*** You are a server operator: you keep order in every room."
            ]
        );
        // Past the ban, the key and +i; and may act in a room it is not an operator of.
        assert_eq!(
            node.send(root, "/join #den\n")[0],
            "*** You are now talking in #den."
        );
        node.heard.take(ann);
        assert_eq!(
            node.send(root, "/kick ann out\n"),
            ["*** ann was put out of #den by root (out)"]
        );
        assert_eq!(
            node.heard.take(ann),
            ["*** You were put out of #den by root (out)"]
        );
        node.heard.take(ivy);
        let whois = node.send(ivy, "WHOIS root\r\nLUSERS\r\n");
        assert!(
            whois.contains(&":irc.test 313 ivy root :is a server operator".into()),
            "{whois:?}"
        );
        assert!(
            whois.contains(&":irc.test 252 ivy 1 :operator(s) online".into()),
            "{whois:?}"
        );
        // Dropped from the list: no longer one.
        node.driver.server_mut().set_operators(Operators::NONE);
        assert_eq!(
            node.send(root, "/mode -k sesame\n"),
            ["*** error: you are not an operator of #den (whoever makes a room is its first)"]
        );
        assert_eq!(Operators::new(["a"; 33]).map(|ops| ops.len()), Ok(1));
        let many: Vec<String> = (0..33).map(|n| std::format!("op{n}")).collect();
        assert_eq!(
            Operators::new(many.iter().map(String::as_str)),
            Err(OperatorsError::TooMany)
        );
    }

    #[test]
    fn the_sweep_puts_out_everyone_a_new_ban_names_and_then_ends() {
        use core::net::{IpAddr, Ipv4Addr};
        let mut node = Node::new(true);
        let root = node.operator("root");
        let mut banned = Vec::new();
        let mut kept = Vec::new();
        for n in 0..12_u8 {
            let now = node.driver.now();
            let peer = IpAddr::V4(Ipv4Addr::new(10, n % 2, 0, n));
            let crate::Admission::Accepted(conn) = node
                .driver
                .server_mut()
                .handle_connect_from(now, peer)
                .unwrap()
            else {
                panic!("room for 16");
            };
            node.driver.drain(&mut |_| {});
            if n % 2 == 1 {
                banned.push(conn);
            } else {
                kept.push(conn);
            }
        }
        // Some leave while the sweep goes on: nobody is skipped.
        node.send(root, "/serverban 10.1.0.0/16\n");
        let heard = &mut node.heard;
        assert!(
            node.driver
                .disconnect(kept[0], crate::DisconnectReason::Closed, &mut |o| heard
                    .record(o))
        );
        node.advance(Duration::ZERO);
        let here: Vec<_> = node.driver.server().members("#lobby").collect();
        for &conn in &banned {
            assert!(!here.contains(&conn), "{conn:?} still here");
        }
        for &conn in &kept[1..] {
            assert!(here.contains(&conn), "{conn:?} put out");
        }
        assert!(here.contains(&root), "an operator stays");
        assert_eq!(here.len(), 1 + kept.len() - 1);
        assert_ne!(node.driver.server().poll_timeout(), Some(node.driver.now()));
    }

    #[test]
    fn an_empty_room_goes_once_a_server_operator_lifts_what_kept_it() {
        let mut node = Node::new(true);
        let ann = node.connect();
        node.send(ann, "/nick ann\n/join #den\n/ban bob\n/part #den\n");
        let root = node.operator("root");
        node.heard.take(root);
        let listed = node.send(root, "/rooms\n");
        assert!(
            listed.iter().any(|line| line.contains("#den")),
            "{listed:?}"
        );
        // From outside: nobody in the room to tell.
        assert!(node.send(root, "/mode #den -b bob\n").is_empty());
        let listed = node.send(root, "/rooms\n");
        assert!(
            !listed.iter().any(|line| line.contains("#den")),
            "{listed:?}"
        );
    }

    #[test]
    fn a_registered_rooms_order_from_another_server_holds_here() {
        use crate::relay::{Refused, RoomChange};
        let mut node = Node::new(true);
        let ann = node.connect();
        node.send(ann, "/nick ann\n");
        node.heard.take(ann);
        let mut events = 0;
        // Applies `change`, its output heard.
        let mut apply = |node: &mut Node, change| {
            let now = node.driver.now();
            let applied = node.driver.server_mut().handle_room_change(now, change);
            let heard = &mut node.heard;
            node.driver.drain(&mut |output| {
                // The room coming to be here is news; the changes are not.
                events += usize::from(matches!(
                    output,
                    crate::Output::Event(event)
                        if !matches!(event, crate::Event::RoomCreated { .. })
                ));
                heard.record(output);
            });
            applied
        };
        let keyed = RoomChange::Modes {
            room: "#den",
            modes: "t",
            key: Some("sesame"),
            limit: None,
        };
        // An unregistered room's order stays on its server.
        assert_eq!(apply(&mut node, keyed), Ok(false));
        let registered = RoomChange::Registered {
            room: "#Den",
            founder: Some("root"),
        };
        assert_eq!(apply(&mut node, registered), Ok(true));
        assert_eq!(apply(&mut node, registered), Ok(false), "once");
        assert_eq!(
            node.driver.server().founder("#den").map(Nickname::as_str),
            Some("root")
        );
        assert_eq!(apply(&mut node, keyed), Ok(true));
        assert_eq!(apply(&mut node, keyed), Ok(false), "once");
        let bad = RoomChange::Modes {
            room: "#den",
            modes: "Q",
            key: None,
            limit: None,
        };
        assert_eq!(
            apply(&mut node, bad),
            Err(Error::Relayed(Refused::RoomChange))
        );
        let in_den = |node: &Node| {
            node.driver
                .server()
                .rooms_of(ann)
                .any(|room| room.as_str() == "#Den")
        };
        node.send(ann, "/join #den\n");
        assert!(!in_den(&node), "keyed");
        let now = node.driver.now();
        let ban = RoomChange::Banned {
            list: crate::BanList::Bans,
            room: "#den",
            mask: "ann!*@*",
            by: "root",
            at: now,
            until: None,
        };
        assert_eq!(apply(&mut node, ban), Ok(true));
        node.send(ann, "/join #den sesame\n");
        assert!(!in_den(&node), "banned");
        let lifted = RoomChange::Unbanned {
            list: crate::BanList::Bans,
            room: "#den",
            mask: "ANN!*@*",
        };
        assert_eq!(apply(&mut node, lifted), Ok(true));
        node.send(ann, "/join #den sesame\n");
        assert!(in_den(&node), "let in with the key");
        // Members here are told of what changes next.
        node.heard.take(ann);
        let opened = RoomChange::Modes {
            room: "#den",
            modes: "",
            key: None,
            limit: Some(10),
        };
        assert_eq!(apply(&mut node, opened), Ok(true));
        assert_eq!(
            node.heard.take(ann),
            ["*** [#Den] Modes now: none, at most 10 people (set on another server)."]
        );
        assert_eq!(events, 0, "told where it was made");
    }

    #[test]
    fn a_server_ban_from_another_server_holds_here_without_an_event() {
        use crate::relay::{Refused, ServerBanChange};
        let mut node = Node::new(true);
        let root = node.operator("root");
        let eve = node.connect();
        node.send(eve, "/nick eve\n");
        node.heard.take(eve);
        let now = node.driver.now();
        let set = ServerBanChange::Set {
            mask: "EVE",
            by: "ops",
            at: now,
            until: None,
            reason: "spam",
        };
        let server = node.driver.server_mut();
        assert_eq!(server.handle_server_ban(now, set), Ok(true));
        let mut events = Vec::new();
        while let Some(output) = server.poll_output() {
            if let crate::Output::Event(event) = output {
                events.push(std::format!("{event}"));
            }
        }
        assert!(events.is_empty(), "told where it was set: {events:?}");
        assert_eq!(server.handle_server_ban(now, set), Ok(false), "once");
        assert_eq!(
            server.handle_server_ban(
                now,
                ServerBanChange::Set {
                    mask: "not a mask!",
                    by: "ops",
                    at: now,
                    until: None,
                    reason: "",
                }
            ),
            Err(Error::Relayed(Refused::BanMask))
        );
        // Put out at the next timeout, and listed to an operator here.
        node.advance(Duration::ZERO);
        assert_eq!(
            node.heard.take(eve),
            ["*** You are banned from this server (spam)."]
        );
        node.heard.take(root);
        let listed = node.send(root, "/serverbans\n");
        assert_eq!(listed[0], "*** Server bans (1):", "{listed:?}");
        // Lifted elsewhere: the name is free here again.
        let now = node.driver.now();
        let server = node.driver.server_mut();
        assert_eq!(
            server.handle_server_ban(now, ServerBanChange::Lifted { mask: "eve" }),
            Ok(true)
        );
        while server.poll_output().is_some() {}
        let back = node.connect();
        assert_eq!(
            node.send(back, "/nick eve\n"),
            ["*** You are now known as eve."]
        );
    }

    #[test]
    fn a_server_ban_puts_out_who_matches_and_keeps_them_out() {
        use core::net::{IpAddr, Ipv4Addr};
        let mut node = Node::new(true);
        let root = node.operator("root");
        let ann = node.connect();
        node.send(ann, "/nick ann\n");
        assert_eq!(
            node.send(ann, "/serverban bob\n"),
            ["*** error: only server operators ban from the server (--oper)"]
        );
        // Connections from an address, for the network ban.
        let from = |node: &mut Node, last: u8| {
            let peer = IpAddr::V4(Ipv4Addr::new(198, 51, 100, last));
            let heard = &mut node.heard;
            let now = node.driver.now();
            let admission = node
                .driver
                .server_mut()
                .handle_connect_from(now, peer)
                .unwrap();
            node.driver.drain(&mut |output| heard.record(output));
            admission
        };
        let crate::Admission::Accepted(eve) = from(&mut node, 7) else {
            panic!("not banned yet");
        };
        node.heard.take(eve);
        node.heard.take(root);
        assert_eq!(
            node.send(
                root,
                "/serverban 198.51.100.9/24 1h botnet\n/serverban $a:mallory\n"
            ),
            [
                "*** You banned 198.51.100.0/24 from the server for 1h (botnet).",
                "*** You banned $a:mallory from the server."
            ]
        );
        // The sweep puts eve out at the next timeout.
        assert_eq!(node.driver.server().poll_timeout(), Some(node.driver.now()));
        node.advance(Duration::ZERO);
        assert_eq!(
            node.heard.take(eve),
            ["*** You are banned from this server (botnet)."]
        );
        assert!(node.driver.server().nickname(eve).is_none(), "gone");
        assert_eq!(
            from(&mut node, 200),
            crate::Admission::Banned(b"*** You are banned from this server.\r\n")
        );
        // A nickname ban puts out whoever takes the name; an account ban whoever identifies.
        node.send(root, "/serverban bob 10m\n");
        let bob = node.connect();
        assert_eq!(
            node.send(bob, "/nick BOB\n"),
            [
                "*** You are now known as BOB.",
                "*** You are banned from this server."
            ]
        );
        // And whoever takes a name that looks like it (a digit one for an L).
        let b0b = node.connect();
        assert_eq!(
            node.send(b0b, "/nick b0b\n"),
            [
                "*** You are now known as b0b.",
                "*** You are banned from this server."
            ]
        );
        let rob = node.connect();
        assert_eq!(
            node.send(rob, "/nick rob\n"),
            ["*** You are now known as rob."]
        );
        let irc = node.connect();
        node.send(irc, "NICK mal\r\nUSER m 0 * :M\r\n");
        node.heard.take(irc);
        node.send(irc, "PRIVMSG NickServ :IDENTIFY mallory pw-pw-pw-pw\r\n");
        let request = node.request();
        assert_eq!(
            node.answer(&request, AccountAnswer::Done)
                .last()
                .map(String::as_str),
            Some("ERROR :Closing link: you are banned from this server")
        );
        // The list, and lifting.
        node.heard.take(root);
        let listed = node.send(root, "/serverbans\n");
        assert_eq!(listed[0], "*** Server bans (3):");
        assert_eq!(
            listed[1],
            "***   198.51.100.0/24 (by root 0 s ago, 1h left) (botnet)"
        );
        assert_eq!(
            node.send(root, "/serverunban 198.51.100.0/24\n"),
            ["*** You lifted the server ban on 198.51.100.0/24."]
        );
        assert!(matches!(from(&mut node, 7), crate::Admission::Accepted(_)));
        // `user@host` is any nickname's; a name banned matches in any case; `Bob` and `bob`
        // are one mask.
        node.heard.take(root);
        assert_eq!(
            node.send(
                root,
                "/serverban ~evil@* 1h\n/serverban Émile\n/serverban ÉMILE\n"
            ),
            [
                "*** You banned *!~evil@* from the server for 1h.",
                "*** You banned Émile!*@* from the server.",
                "*** ÉMILE!*@* is banned from the server already."
            ]
        );
        let evil = node.connect();
        node.send(evil, "NICK evil\r\nUSER evil 0 * :E\r\n");
        assert!(node.driver.server().nickname(evil).is_none(), "put out");
        let emile = node.connect();
        node.send(emile, "/nick émile\n");
        assert!(node.driver.server().nickname(emile).is_none(), "put out");
        // Lifted in another case: told, and kept, as it was set.
        let mut lifted = Vec::new();
        let heard = &mut node.heard;
        node.driver
            .input(root, "/serverunban ÉMILE\n".as_bytes(), &mut |output| {
                if let crate::Output::Event(event) = &output {
                    lifted.push(std::format!("{event}"));
                }
                heard.record(output);
            });
        assert_eq!(lifted, ["server-unbanned Émile!*@*"]);
        assert_eq!(
            node.heard.take(root).last().map(String::as_str),
            Some("*** You lifted the server ban on Émile!*@*.")
        );
        node.send(root, "/serverban Émile\n");
        let peer = IpAddr::V6(Ipv4Addr::new(198, 51, 100, 7).to_ipv6_mapped());
        node.send(root, "/serverban 198.51.100.7\n");
        let now = node.driver.now();
        assert!(matches!(
            node.driver.server_mut().handle_connect_from(now, peer),
            Ok(crate::Admission::Banned(_))
        ));
        node.driver.drain(&mut |_| {});
        node.heard.take(root);
        assert_eq!(
            node.send(root, "/serverban 10.0.0.0/33\n"),
            [
                "*** error: a server ban names a nickname, nick!user@host, $a:ACCOUNT, an \
                 address or a network (198.51.100.0/24), at most 64 bytes"
            ]
        );
    }

    #[test]
    fn account_notify_tells_who_shares_a_room_of_identifying_and_logging_out() {
        let mut node = Node::new(true);
        let ivy = node.connect();
        node.send(
            ivy,
            "CAP LS 302\r\nCAP REQ :account-notify\r\nNICK ivy\r\nUSER i 0 * :I\r\nCAP END\r\n",
        );
        let dan = node.connect();
        node.send(dan, "NICK dan\r\nUSER d 0 * :D\r\n");
        let ann = node.connect();
        node.send(ann, "/nick ann\n");
        for conn in [ivy, dan] {
            node.heard.take(conn);
        }
        node.send(ann, "/identify correct-horse\n");
        let request = node.request();
        node.answer(&request, AccountAnswer::Done);
        assert_eq!(node.heard.take(ivy), [":ann!plain@hidden ACCOUNT ann"]);
        assert!(node.heard.take(dan).is_empty(), "dan did not ask");
        node.send(ann, "/logout\n");
        assert_eq!(node.heard.take(ivy), [":ann!plain@hidden ACCOUNT *"]);
        // Offered only with accounts.
        let mut without = Node::new(false);
        let irc = without.connect();
        let listed = without.send(irc, "CAP LS 302\r\n");
        assert!(!listed[0].contains("account-notify"), "{listed:?}");
        let other = node.connect();
        let listed = node.send(other, "CAP LS 302\r\n");
        assert!(listed[0].contains(" LS :account-notify "), "{listed:?}");
    }

    #[test]
    fn register_identify_logout_and_change_the_password() {
        let mut node = Node::new(true);
        let ann = node.connect();
        // A nickname first: the account is named after it.
        assert_eq!(
            node.send(ann, "/register hunter2hunter2\n"),
            [
                "*** error: pick a nickname first: an account is named after the nickname you \
              register it with"
            ]
        );
        node.send(ann, "/nick ann\n");
        assert_eq!(
            node.send(ann, "/register short\n"),
            ["*** error: a password has at least 8 characters"]
        );
        assert!(node.driver.take_account_requests().is_empty());

        assert!(node.send(ann, "/register hunter2hunter2\n").is_empty());
        let request = node.request();
        assert_eq!((request.conn(), request.account().as_str()), (ann, "ann"));
        assert_eq!(
            request.ask(),
            &AccountAsk::Register(Password::new("hunter2hunter2").unwrap())
        );
        // Its Debug shows no password.
        assert!(!std::format!("{request:?}").contains("hunter2"));
        // One request at a time.
        assert_eq!(
            node.send(ann, "/identify hunter2hunter2\n"),
            ["*** error: your last account request is still being checked; wait a moment"]
        );
        assert_eq!(
            node.answer(&request, AccountAnswer::Done),
            ["*** You registered the account ann; you are identified as it."]
        );
        // An answer given twice is stale.
        assert_eq!(
            node.driver
                .answer_account(&request, AccountAnswer::Done, &mut |_| {}),
            Err(Error::StaleAccount)
        );

        // WHOIS shows the account to IRC clients.
        let irc = node.connect();
        node.send(irc, "NICK ivy\r\nUSER i 0 * :I\r\n");
        let whois = node.send(irc, "WHOIS ann\r\n");
        assert!(
            whois.contains(&":irc.test 330 ivy ann ann :is logged in as".into()),
            "{whois:?}"
        );

        node.heard.take(ann);
        assert_eq!(
            node.send(ann, "/password hunter2hunter2 correct-horse\n"),
            Vec::<String>::new()
        );
        let change = node.request();
        assert_eq!(
            node.answer(&change, AccountAnswer::WrongPassword),
            ["*** error: wrong password: your password was not changed"]
        );
        node.send(ann, "/password hunter2hunter2 correct-horse\n");
        let change = node.request();
        assert_eq!(
            node.answer(&change, AccountAnswer::Done),
            ["*** Your password was changed."]
        );

        assert_eq!(
            node.send(ann, "/logout\n")[0],
            "*** You are no longer identified as ann."
        );
        assert_eq!(
            node.send(ann, "/password a-password b-password\n"),
            ["*** error: identify first: /identify PASSWORD"]
        );
        // Identifying: a wrong password, no account, then the right one.
        node.send(ann, "/login ann wrong-password\n");
        let identify = node.request();
        assert_eq!(
            node.answer(&identify, AccountAnswer::WrongPassword),
            ["*** error: wrong password for ann"]
        );
        node.send(ann, "/login bob some-password\n");
        let identify = node.request();
        assert_eq!(identify.account().as_str(), "bob");
        assert_eq!(
            node.answer(&identify, AccountAnswer::NoSuchAccount),
            ["*** error: there is no account bob; /register PASSWORD makes one for your nickname"]
        );
        node.send(ann, "/identify correct-horse\n");
        let identify = node.request();
        assert_eq!(
            node.answer(&identify, AccountAnswer::Done),
            ["*** You are now identified as ann."]
        );

        // No answer in time: it could not be checked.
        node.send(
            irc,
            "PRIVMSG NickServ :REGISTER ivy-password ivy@example.org\r\n",
        );
        let register = node.request();
        assert_eq!(register.account().as_str(), "ivy");
        node.advance(Duration::from_secs(11));
        assert_eq!(
            node.heard.take(irc),
            [
                ":NickServ!NickServ@services NOTICE ivy :accounts cannot be checked just now; try \
              again later"
            ]
        );
        assert_eq!(
            node.driver
                .answer_account(&register, AccountAnswer::Done, &mut |_| {}),
            Err(Error::StaleAccount)
        );
    }

    #[test]
    fn a_registered_nickname_must_be_proven_within_its_grace() {
        let mut node = Node::new(true);
        let (ann, bob) = (node.connect(), node.connect());
        node.send(ann, "/nick ann\n");
        node.send(bob, "/nick bob\n");
        node.heard.take(bob);
        node.heard.take(ann);
        // The runner says ann is an account's name: ann has 30 s.
        node.registered(ann, "ANN");
        assert_eq!(
            node.heard.take(ann),
            [
                "*** The nickname ann is registered: if it is yours, /identify PASSWORD within 30 \
              s, or you will be renamed."
            ]
        );
        // Said again: told once.
        node.registered(ann, "ann");
        assert!(node.heard.take(ann).is_empty());
        node.advance(Duration::from_secs(29));
        assert!(node.heard.take(ann).is_empty());
        node.advance(Duration::from_secs(2));
        assert_eq!(
            node.heard.take(ann),
            [
                "*** You are now known as anonymous-1.",
                "*** error: you did not identify as ann in time; you are anonymous-1 now: pick \
                 another name with /nick NAME"
            ]
        );
        assert_eq!(
            node.heard.take(bob),
            ["*** ann is now known as anonymous-1"]
        );

        // Identifying in time ends the grace; so does a new name.
        node.send(bob, "/nick carl\n");
        node.registered(bob, "carl");
        node.send(bob, "/identify carls-password\n");
        let identify = node.request();
        node.answer(&identify, AccountAnswer::Done);
        node.send(ann, "/nick dora\n");
        node.registered(ann, "dora");
        node.send(ann, "/nick edna\n");
        node.heard.take(ann);
        node.advance(Duration::from_secs(60));
        let (to_bob, to_ann) = (node.heard.take(bob), node.heard.take(ann));
        assert!(
            to_bob.iter().all(|line| !line.contains("did not identify")),
            "{to_bob:?}"
        );
        assert!(to_ann.is_empty(), "{to_ann:?}");
        // Identified as it already: nothing to prove.
        node.registered(bob, "carl");
        assert!(node.heard.take(bob).is_empty());
    }

    #[test]
    fn an_irc_client_logs_in_with_sasl_plain_while_it_registers() {
        use base64::Engine;
        let plain = |authzid: &str, authcid: &str, password: &str| {
            let mut encoded = [0_u8; 400];
            let length = base64::engine::general_purpose::STANDARD
                .encode_slice(
                    std::format!("{authzid}\0{authcid}\0{password}"),
                    &mut encoded,
                )
                .unwrap();
            String::from_utf8(encoded[..length].to_vec()).unwrap()
        };
        let mut node = Node::new(true);
        let irc = node.connect();
        let listed = node.send(irc, "CAP LS 302\r\n");
        assert!(listed[0].contains(" sasl=PLAIN "), "{listed:?}");
        node.send(irc, "CAP REQ :sasl\r\nNICK ann\r\nUSER a 0 * :A\r\n");
        // Another mechanism, then an abort.
        assert_eq!(
            node.send(irc, "AUTHENTICATE EXTERNAL\r\n"),
            [
                ":irc.test 908 ann PLAIN :are available SASL mechanisms",
                ":irc.test 904 ann :SASL authentication failed"
            ]
        );
        assert_eq!(node.send(irc, "AUTHENTICATE PLAIN\r\n"), ["AUTHENTICATE +"]);
        assert_eq!(
            node.send(irc, "AUTHENTICATE *\r\n"),
            [":irc.test 906 ann :SASL authentication aborted"]
        );
        // A wrong password.
        node.send(irc, "AUTHENTICATE PLAIN\r\n");
        let line = std::format!("AUTHENTICATE {}\r\n", plain("", "ann", "wrong-password"));
        assert!(node.send(irc, &line).is_empty());
        let request = node.request();
        assert_eq!(
            (request.account().as_str(), request.ask()),
            (
                "ann",
                &AccountAsk::Identify(Password::new("wrong-password").unwrap())
            )
        );
        assert_eq!(
            node.answer(&request, AccountAnswer::WrongPassword),
            [":irc.test 904 ann :SASL authentication failed"]
        );
        // The right one: the welcome waits for the answer, even past CAP END.
        node.send(irc, "AUTHENTICATE PLAIN\r\n");
        let line = std::format!("AUTHENTICATE {}\r\n", plain("ann", "ann", "hunter2hunter2"));
        node.send(irc, &line);
        let request = node.request();
        assert!(node.send(irc, "CAP END\r\n").is_empty(), "no welcome yet");
        let answered = node.answer(&request, AccountAnswer::Done);
        assert_eq!(
            answered[..3],
            [
                ":irc.test 900 ann ann!~a@hidden ann :You are now logged in as ann",
                ":irc.test 903 ann :SASL authentication successful",
                ":irc.test 001 ann :Welcome to the chat, ann!~a@hidden"
            ]
        );
        assert_eq!(
            node.send(irc, "AUTHENTICATE PLAIN\r\n"),
            [":irc.test 907 ann :You have already authenticated"]
        );

        // Without accounts, SASL is not offered, and cannot be asked for.
        let mut node = Node::new(false);
        let irc = node.connect();
        let listed = node.send(irc, "CAP LS 302\r\n");
        assert!(!listed[0].contains("sasl"), "{listed:?}");
        assert_eq!(
            node.send(irc, "CAP REQ :sasl\r\n"),
            [":irc.test CAP * NAK :sasl"]
        );
    }

    #[test]
    fn without_accounts_the_commands_say_so() {
        let mut node = Node::new(false);
        let ann = node.connect();
        node.send(ann, "/nick ann\n");
        assert_eq!(
            node.send(ann, "/register hunter2hunter2\n"),
            ["*** error: this server keeps no accounts"]
        );
        assert!(node.driver.take_account_requests().is_empty());
    }
}
