//! Input as sq-sim reads it and echoes it back: numbers in the digits 0-9 only, and pieces of
//! input escaped and cut short before they reach a terminal.

/// How many characters of one piece of input an error message quotes.
pub const ECHO: usize = 80;

/// A number written in the digits 0-9 only: `str::parse` also takes a leading `+`, and `+5` is not
/// a seed anyone means to type. `None` for anything else, or past `u64::MAX`.
pub fn digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Whether `c` must not reach a terminal as it is: control characters (a newline would make two
/// error lines of one, an escape sequence would repaint the screen) and Unicode's line
/// separators and bidirectional overrides.
pub fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `c` as it may be printed: itself, or escaped (`\n`, `\u{1b}`) if it is unsafe.
pub fn escaped(c: char) -> String {
    if unsafe_char(c) {
        c.escape_default().collect()
    } else {
        c.to_string()
    }
}

/// Appends `chars` to `out`, escaped, but stops before more than `max` characters would be
/// appended, and then appends `…`.
pub fn push_escaped(out: &mut String, chars: &[char], max: usize) {
    let mut room = max;
    for &c in chars {
        let piece = escaped(c);
        let len = piece.chars().count();
        if len > room {
            out.push('…');
            return;
        }
        room -= len;
        out.push_str(&piece);
    }
}

/// A piece of input as an error message quotes it: escaped, and at most [`ECHO`] characters as
/// printed (then `…`), so that a binary or enormous line still makes one short line.
pub fn excerpt(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    push_escaped(&mut out, &chars, ECHO);
    out
}
