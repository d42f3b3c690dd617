//! The text formats of pinned seeds and saved scripts.

use crate::text::{digits, excerpt};
use sq_model::ClusterShape;
use sq_model::{parse_script, ParseError, Transition};

/// Reads a seeds file: one unsigned 64-bit seed per line, in the digits 0-9 only (no sign);
/// blank lines and `#` comments skipped.
pub fn parse_seeds(text: &str) -> Result<Vec<u64>, ParseError> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.split('#').next().unwrap_or("").trim()))
        .filter(|(_, l)| !l.is_empty())
        .map(|(line, l)| {
            digits(l).ok_or_else(|| ParseError {
                line,
                message: format!("`{}` is not a seed (an unsigned 64-bit number)", excerpt(l)),
            })
        })
        .collect()
}

/// A saved script: the run's seed (from a `# seed: N` line) and its transitions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptFile {
    /// The seed, if the file names one.
    pub seed: Option<u64>,
    /// The cluster's size, from a `# nodes: N` line (1 or 3; 1 without one).
    pub nodes: u8,
    /// Whether the cluster tiers to an object store, from a `# store: on` line.
    pub store: bool,
    /// Whether damage follows the fault atlas: false with an `# atlas: off` line, which lets
    /// damage exceed what a quorum survives (see [`crate::SimConfig::atlas`]).
    pub atlas: bool,
    /// The transitions.
    pub transitions: Vec<Transition>,
}

/// The cluster `nodes` replicas make in a script file: one node, or three.
pub fn script_shape(nodes: u8) -> ClusterShape {
    if nodes == 3 {
        ClusterShape::THREE_NODES
    } else {
        ClusterShape::SINGLE_NODE
    }
}

/// Reads a script file: transitions one per line (see [`sq_model::parse_script`]), with an
/// optional comment line naming the run's seed.
///
/// The seed line is `# seed: N`, with any spacing around `#`, `seed` and `:` (`#seed:5` is the
/// same line). A comment whose first word is `seed` in any case and is followed by `:`, `=` or a
/// digit is taken for an attempt at one, and must be exactly that form: a misspelt seed line
/// would otherwise replay the script under seed 0 without a word. A second seed line must name
/// the same seed.
pub fn parse_script_file(text: &str) -> Result<ScriptFile, ParseError> {
    let mut seed: Option<(u64, usize)> = None;
    let mut nodes = None;
    let mut store = false;
    let mut atlas = true;
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim() == STORE_LINE {
            store = true;
            continue;
        }
        if line.trim() == ATLAS_OFF_LINE {
            atlas = false;
            continue;
        }
        if let Some(n) = nodes_line(line) {
            let n = n.map_err(|()| ParseError {
                line: line_no,
                message: format!(
                    "`{}` looks like a nodes line; write it as `# nodes: 1` or `# nodes: 3`",
                    excerpt(line.trim())
                ),
            })?;
            if nodes.is_some_and(|m| m != n) {
                return Err(ParseError {
                    line: line_no,
                    message: format!("a second nodes line says {n}"),
                });
            }
            nodes = Some(n);
            continue;
        }
        let Some(declared) = seed_line(line) else {
            continue;
        };
        let value = declared.map_err(|()| ParseError {
            line: line_no,
            message: format!(
                "`{}` looks like a seed line; write it as `# seed: N`, N in the digits 0-9",
                excerpt(line.trim())
            ),
        })?;
        match seed {
            Some((earlier, at)) if earlier != value => {
                return Err(ParseError {
                    line: line_no,
                    message: format!("seed {value} contradicts seed {earlier} on line {at}"),
                })
            }
            Some(_) => {}
            None => seed = Some((value, line_no)),
        }
    }
    Ok(ScriptFile {
        seed: seed.map(|(value, _)| value),
        nodes: nodes.unwrap_or(1),
        store,
        atlas,
        transitions: parse_script(text)?,
    })
}

/// The line that lets a script's damage land where it is aimed, beyond the fault atlas.
pub const ATLAS_OFF_LINE: &str = "# atlas: off";

/// The line that says a script's cluster has an object store.
pub const STORE_LINE: &str = "# store: on";

/// Whether `line` is a nodes line (`# nodes: 3`): `None` if not, `Some(Err(()))` if it looks
/// like one but does not say 1 or 3.
fn nodes_line(line: &str) -> Option<Result<u8, ()>> {
    let comment = line.trim().strip_prefix('#')?.trim_start();
    let rest = comment.strip_prefix("nodes")?.trim_start();
    let value = rest.strip_prefix(':')?.trim();
    Some(match digits(value) {
        Some(1) => Ok(1),
        Some(3) => Ok(3),
        _ => Err(()),
    })
}

/// Whether `line` is a seed line: `None` if it is not one, `Some(Err(()))` if it looks like one
/// but is not well formed, else the seed.
fn seed_line(line: &str) -> Option<Result<u64, ()>> {
    let comment = line.trim().strip_prefix('#')?.trim_start();
    let word = comment
        .get(..4)
        .filter(|w| w.eq_ignore_ascii_case("seed"))?;
    let rest = comment[word.len()..].trim_start();
    if !rest.starts_with([':', '=']) && !rest.starts_with(|c: char| c.is_ascii_digit()) {
        return None; // prose: "# seeds S01 runs", "# seed of the bug: …"
    }
    let value = match rest.strip_prefix(':') {
        Some(value) if word == "seed" => value.trim(),
        _ => return Some(Err(())),
    };
    Some(digits(value).ok_or(()))
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

    #[test]
    fn a_seed_line_takes_any_spacing() {
        for line in [
            "# seed: 5",
            "#seed: 5",
            "#seed:5",
            "#  seed:5",
            "  #\tseed  :  5  ",
            "# seed : 5",
        ] {
            let file = parse_script_file(&format!("{line}\nrun ms=5 seed=1\n"));
            assert_eq!(file.map(|f| f.seed), Ok(Some(5)), "{line:?}");
        }
        let file = parse_script_file("# a bug\n# seeds S01 runs\n# seed of the bug: unknown\n");
        assert_eq!(file.map(|f| f.seed), Ok(None));
    }

    #[test]
    fn a_malformed_seed_line_is_an_error_naming_its_line() {
        for line in [
            "# Seed: 5",
            "# SEED: 5",
            "# seed = 5",
            "# seed=5",
            "# seed 5",
            "# seed:",
            "# seed: +5",
            "# seed: 5 # found by swarm",
            "# seed: five",
            "# seed: 18446744073709551616",
        ] {
            let file = parse_script_file(&format!("run ms=5 seed=1\n{line}\n"));
            assert_eq!(
                file,
                Err(ParseError {
                    line: 2,
                    message: format!(
                        "`{}` looks like a seed line; write it as `# seed: N`, N in the digits 0-9",
                        line.trim()
                    )
                }),
                "{line:?}"
            );
        }
    }

    #[test]
    fn errors_quote_at_most_80_characters_escaped() {
        let line = format!("\u{1b}[2J{}", "9".repeat(10_000));
        assert_eq!(
            parse_seeds(&line),
            Err(ParseError {
                line: 1,
                message: format!(
                    "`\\u{{1b}}[2J{}…` is not a seed (an unsigned 64-bit number)",
                    "9".repeat(71)
                )
            })
        );
    }

    #[test]
    fn a_second_seed_line_must_agree() {
        let text = "# seed: 5\nrun ms=5 seed=1\n#seed:5\n";
        assert_eq!(parse_script_file(text).map(|f| f.seed), Ok(Some(5)));
        let text = "# seed: 5\nrun ms=5 seed=1\n# seed: 6\n";
        assert_eq!(
            parse_script_file(text),
            Err(ParseError {
                line: 3,
                message: "seed 6 contradicts seed 5 on line 1".into()
            })
        );
    }
}
