//! The text formats of pinned seeds and saved scripts.

use sq_model::{parse_script, ParseError, Transition};

/// Reads a seeds file: one unsigned 64-bit seed per line, in the digits 0-9 only (no sign);
/// blank lines and `#` comments skipped.
pub fn parse_seeds(text: &str) -> Result<Vec<u64>, ParseError> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.split('#').next().unwrap_or("").trim()))
        .filter(|(_, l)| !l.is_empty())
        .map(|(line, l)| {
            seed(l).ok_or_else(|| ParseError {
                line,
                message: format!("`{l}` is not a seed (an unsigned 64-bit number)"),
            })
        })
        .collect()
}

/// A seed written in the digits 0-9 only: `str::parse` also takes a leading `+`.
fn seed(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A saved script: the run's seed (from a `# seed: N` line) and its transitions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptFile {
    /// The seed, if the file names one.
    pub seed: Option<u64>,
    /// The transitions.
    pub transitions: Vec<Transition>,
}

/// Reads a script file: transitions one per line (see [`sq_model::parse_script`]), with an
/// optional `# seed: N` comment line naming the run's seed.
pub fn parse_script_file(text: &str) -> Result<ScriptFile, ParseError> {
    let mut seed = None;
    for (i, line) in text.lines().enumerate() {
        if let Some(v) = line.trim().strip_prefix("# seed:") {
            let v = v.trim();
            seed = Some(v.parse().map_err(|_| ParseError {
                line: i + 1,
                message: format!("`{v}` is not a seed"),
            })?);
        }
    }
    Ok(ScriptFile {
        seed,
        transitions: parse_script(text)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn seeds_are_digits_only() {
        assert_eq!(
            parse_seeds("# pinned\n7\n\n 18446744073709551615 # the last\n0\n"),
            Ok(vec![7, u64::MAX, 0])
        );
        for bad in ["+5", "-5", "5 6", "0x5", "18446744073709551616", "٣"] {
            assert_eq!(
                parse_seeds(&format!("1\n{bad}\n")).map_err(|e| e.line),
                Err(2),
                "{bad:?}"
            );
        }
    }
}
