//! The check both targets make on every line the core sends with colour off.

/// `bytes` is whole lines of UTF-8 with no control character (C0, DEL, C1) and no bidirectional
/// override or isolate, except the `\r\n` that ends each line, and the two `\x01` around an
/// IRC action (`PRIVMSG #room :\x01ACTION text\x01`).
pub fn check_plain(bytes: &[u8]) {
    assert!(bytes.ends_with(b"\r\n"), "{bytes:?}");
    let text = std::str::from_utf8(bytes).expect("output is UTF-8");
    for line in text.split_terminator("\r\n") {
        let line = match line.split_once(" :\x01ACTION ") {
            Some((head, action)) if head.contains(" PRIVMSG ") => action
                .strip_suffix('\x01')
                .expect("an action ends with \\x01"),
            _ => line,
        };
        let bad = line.chars().find(|&c| {
            c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        });
        assert!(bad.is_none(), "{bad:?} in {line:?}");
    }
}
