//! SASL `PLAIN` (IRCv3 `sasl`, `AUTHENTICATE`, numerics 900-908): a client logs in to its
//! account while it registers, the password checked by the runner as `/identify`'s is (see
//! [`account`](crate::account)). Offered only where the runner keeps accounts.

use crate::dialect::Happened;
use core::fmt::Write;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::numeric::{
    ERR_SASLABORTED, ERR_SASLALREADY, ERR_SASLFAIL, ERR_SASLTOOLONG, RPL_LOGGEDIN, RPL_SASLMECHS,
    RPL_SASLSUCCESS,
};
use super::*;
use crate::account::{AccountAnswer, AccountAsk, Password};
use crate::state::connection::{Caps, Sasl};
use crate::state::roster::Nickname;

/// The most base64 one `AUTHENTICATE` line carries; a line of exactly this many means more
/// follow. PLAIN's credentials here (two names and a password) always fit in one.
const CHUNK: usize = 400;

impl<S: crate::Storage> Step<'_, S> {
    fn sasl_state(&mut self, conn: ConnectionId, state: Sasl) {
        if let Some(registration) = self.registration_mut(conn) {
            registration.sasl = state;
        }
    }

    fn sasl_failed(&mut self, conn: ConnectionId) {
        self.sasl_state(conn, Sasl::Idle);
        numeric!(self, conn, ERR_SASLFAIL, ":SASL authentication failed");
    }

    pub(crate) fn authenticate(&mut self, conn: ConnectionId, message: &Message<'_>) {
        let Some(registration) = self
            .roster
            .get(conn)
            .and_then(|slot| slot.connection.registration)
        else {
            return;
        };
        if self.accounts.is_none() || !registration.caps.has(Caps::SASL) {
            return self.sasl_failed(conn);
        }
        let Some(param) = message.param(0).filter(|param| !param.is_empty()) else {
            return self.missing(conn, "AUTHENTICATE");
        };
        if param == "*" {
            self.sasl_state(conn, Sasl::Idle);
            return numeric!(self, conn, ERR_SASLABORTED, ":SASL authentication aborted");
        }
        if self.account_of(conn).is_some() {
            return numeric!(
                self,
                conn,
                ERR_SASLALREADY,
                ":You have already authenticated"
            );
        }
        match registration.sasl {
            Sasl::Idle if param.eq_ignore_ascii_case("PLAIN") => {
                self.sasl_state(conn, Sasl::Plain);
                irc!(self, Audience::one(conn), "AUTHENTICATE +");
            }
            Sasl::Idle => {
                numeric!(
                    self,
                    conn,
                    RPL_SASLMECHS,
                    "PLAIN :are available SASL mechanisms"
                );
                self.sasl_failed(conn);
            }
            Sasl::Plain if param.len() >= CHUNK => {
                self.sasl_state(conn, Sasl::Idle);
                numeric!(self, conn, ERR_SASLTOOLONG, ":SASL message too long");
            }
            Sasl::Plain => self.sasl_plain(conn, param),
            // One at a time: the answer to the last is on its way.
            Sasl::Checking => {}
        }
    }

    /// `AUTHENTICATE <base64 of authzid NUL authcid NUL password>`.
    fn sasl_plain(&mut self, conn: ConnectionId, payload: &str) {
        let mut decoded = [0_u8; CHUNK];
        let Ok(length) = STANDARD.decode_slice(payload.as_bytes(), &mut decoded) else {
            return self.sasl_failed(conn);
        };
        let Ok(plain) = core::str::from_utf8(&decoded[..length]) else {
            return self.sasl_failed(conn);
        };
        let mut parts = plain.split('\0');
        let (Some(authzid), Some(authcid), Some(password), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return self.sasl_failed(conn);
        };
        // Logging in as someone else's account (an authzid of its own) is not offered.
        let (Ok(account), Ok(password)) = (Nickname::new(authcid), Password::new(password)) else {
            return self.sasl_failed(conn);
        };
        if !authzid.is_empty() && !account.matches(authzid) {
            return self.sasl_failed(conn);
        }
        if self.ask_account(
            conn,
            account,
            AccountAsk::Identify(password),
            crate::state::asks::Via::Sasl,
        ) {
            self.sasl_state(conn, Sasl::Checking);
        } else {
            self.sasl_failed(conn);
        }
    }

    /// The runner's answer to a SASL login: `900` and `903`, or `904`; then the registration
    /// that waited for it goes on.
    pub(crate) fn sasl_answered(
        &mut self,
        conn: ConnectionId,
        account: Nickname,
        answer: AccountAnswer,
    ) {
        if answer == AccountAnswer::Done {
            self.roster.set_account(conn, Some(account.clone()));
            self.server_bans.suspect(conn);
            self.publish(&Happened::AccountSet {
                who: conn,
                account: Some(account.as_str()),
            });
            self.sasl_state(conn, Sasl::Idle);
            let prefix = self.roster.prefix(conn);
            numeric!(
                self,
                conn,
                RPL_LOGGEDIN,
                "{prefix} {account} :You are now logged in as {account}"
            );
            numeric!(
                self,
                conn,
                RPL_SASLSUCCESS,
                ":SASL authentication successful"
            );
        } else {
            self.sasl_failed(conn);
        }
        self.try_register(conn);
    }
}
