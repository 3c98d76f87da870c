//! What the client lets through to the terminal: text, and the colour codes it understands.
//! Every other control byte from the network is shown visibly, never written raw.

/// Makes one line from the server safe for a terminal.
///
/// Keeps SGR colour sequences (`ESC [ digits;... m`) when `colour` is on and drops them when it
/// is off. Shows every other C0 control, DEL and lone ESC in caret notation (`^[`), and C1
/// controls and bidirectional overrides as U+FFFD. Invalid UTF-8 becomes U+FFFD.
pub(crate) fn sanitize(line: &[u8], colour: bool) -> String {
    let text = String::from_utf8_lossy(line);
    let mut out = String::with_capacity(text.len());
    let mut rest: &str = &text;
    while let Some(c) = rest.chars().next() {
        if c == '\u{1b}'
            && let Some(length) = sgr_length(rest)
        {
            if colour {
                out.push_str(&rest[..length]);
            }
            rest = &rest[length..];
            continue;
        }
        match u8::try_from(c) {
            Ok(byte @ (0..=0x1f | 0x7f)) => {
                out.push('^');
                out.push(char::from(byte ^ 0x40));
            }
            _ if c.is_control()
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') =>
            {
                out.push(char::REPLACEMENT_CHARACTER);
            }
            _ => out.push(c),
        }
        rest = &rest[c.len_utf8()..];
    }
    if colour && out.contains('\u{1b}') {
        // Whatever the server left open, the prompt and the next line start uncoloured.
        out.push_str("\x1b[0m");
    }
    out
}

/// The length of the SGR sequence at the start of `text`, if there is one.
fn sgr_length(text: &str) -> Option<usize> {
    let params = text.strip_prefix("\x1b[")?;
    let digits = params
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b';')
        .count();
    (digits <= 16 && params.as_bytes().get(digits) == Some(&b'm')).then_some(2 + digits + 1)
}

/// The server's text without colour codes, for the client's own reading of it.
pub(crate) fn plain(line: &[u8]) -> String {
    sanitize(line, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        #[rustfmt::skip]
        let cases: &[(&[u8], &str, &str)] = &[
            // input,                          colour on,                         colour off
            (b"plain",                          "plain",                           "plain"),
            (b"\x1b[33m***\x1b[0m hi",          "\x1b[33m***\x1b[0m hi\x1b[0m",    "*** hi"),
            (b"\x1b[1;31mred",                  "\x1b[1;31mred\x1b[0m",            "red"),
            (b"\x1b[2Jclear",                   "^[[2Jclear",                      "^[[2Jclear"),
            (b"\x1b]0;title\x07",               "^[]0;title^G",                    "^[]0;title^G"),
            (b"\x1b[999999999999999999m",       "^[[999999999999999999m",          "^[[999999999999999999m"),
            (b"bell\x07 nul\x00",               "bell^G nul^@",                    "bell^G nul^@"),
            (b"csi \xc2\x9b2J",                 "csi \u{fffd}2J",                  "csi \u{fffd}2J"),
            (b"bad \xff utf8",                  "bad \u{fffd} utf8",               "bad \u{fffd} utf8"),
            ("中文 \u{202e}x".as_bytes(),       "中文 \u{fffd}x",                  "中文 \u{fffd}x"),
            (b"lone \x1b",                      "lone ^[",                         "lone ^["),
        ];
        for (input, on, off) in cases {
            assert_eq!(sanitize(input, true), *on, "colour on: {input:?}");
            assert_eq!(sanitize(input, false), *off, "colour off: {input:?}");
        }
    }
}
