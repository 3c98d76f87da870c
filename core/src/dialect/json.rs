//! The original client's JSON dialect: an object becomes a plain-text command.

use crate::dialect::text::{CharName, first_unsafe_char};
use crate::output::Audience;
use crate::state::roster::ConnectionId;
use crate::wire::json::Object;
use crate::wire::plain::Command;

use super::*;

impl<S: crate::Storage> Step<'_, S> {
    /// Tells a JSON connection that it sent something that is not an object.
    pub(crate) fn stray(&mut self, conn: ConnectionId) {
        error!(
            self,
            conn,
            "expected a JSON object such as {{\"type\":\"boardcast\",\"message\":\"hi\"}}; skipped the text outside one"
        );
    }

    /// Handles one complete object from a connection speaking the original client's JSON.
    pub(crate) fn json(&mut self, conn: ConnectionId, object: &[u8]) {
        let Ok(text) = core::str::from_utf8(object) else {
            return error!(
                self,
                conn, "your object is not valid UTF-8; it was not sent"
            );
        };
        let object = match Object::parse(text) {
            Ok(object) => object,
            Err(error) => return error!(self, conn, "{error}"),
        };
        // Escapes such as \n or \u001b decode to control characters: refused as in a line.
        if let Some(bad) = first_unsafe_char(&object.message).or(first_unsafe_char(&object.user)) {
            return error!(
                self,
                conn,
                "your message contains the control character {}; it was not sent",
                CharName(bad),
            );
        }
        match object.command() {
            Ok(Command::Say(text)) if text.trim().is_empty() => {}
            Ok(command) => self.command(conn, command),
            Err(error) => error!(self, conn, "{error}"),
        }
    }
}
