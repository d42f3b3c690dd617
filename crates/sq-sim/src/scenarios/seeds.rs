//! The text formats of pinned seeds and saved scripts.

use sq_model::{parse_script, ParseError, Transition};

/// Reads a seeds file: one unsigned 64-bit seed per line; blank lines and `#` comments skipped.
pub fn parse_seeds(text: &str) -> Result<Vec<u64>, ParseError> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.split('#').next().unwrap_or("").trim()))
        .filter(|(_, l)| !l.is_empty())
        .map(|(line, l)| {
            l.parse().map_err(|_| ParseError {
                line,
                message: format!("`{l}` is not a seed (an unsigned 64-bit number)"),
            })
        })
        .collect()
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
