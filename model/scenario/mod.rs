//! Scenario files: TOML in, validated models out, and every problem
//! reported with the file, line, column and what to do.
//!
//! The format is documented for users in `docs/scenario-format.md`; this
//! module is its only reader. A file has a `kind` (registered in [`KINDS`], see [`kind`]) that
//! selects the rest of its shape; unknown keys are errors, not ignored, so
//! a typo cannot silently change what is checked.
//!
//! Loading builds the model of every variant, so a scenario that loads is
//! a scenario that can be checked: bad CIDRs, pools too small, unknown
//! profiles or properties and impossible bounds all fail here, with a
//! position.

pub mod catalogue;
pub mod cluster;
pub mod ipam;
pub mod kind;
pub mod l2;

pub use kind::{Kind, System, Variant, VariantOf, KINDS};

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::explore::{Bounds, Stop, Strategy};

/// A verdict, expected or found.
///
/// A scenario may expect `holds`, `violated` or `vacuous`; `unknown` is
/// only ever found, never expected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verdict {
    /// The whole bounded space was covered and no reachable state
    /// violates the property.
    Holds,
    /// A reachable state violates it: conclusive however the search ended.
    Violated,
    /// The whole bounded space was covered, but the property never had
    /// anything to check (it held because it never applied).
    Vacuous,
    /// Not violated in what was searched, but the search did not cover
    /// the space, for the reason named.
    Unknown(Stop),
}

impl Verdict {
    /// `holds`, `violated`, `vacuous` or `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Holds => "holds",
            Verdict::Violated => "violated",
            Verdict::Vacuous => "vacuous",
            Verdict::Unknown(_) => "unknown",
        }
    }

    /// True for every verdict but `unknown`.
    pub fn is_conclusive(self) -> bool {
        !matches!(self, Verdict::Unknown(_))
    }

    /// The verdict in words, with the reason of an `unknown`:
    /// `unknown (max_states)`.
    pub fn words(self) -> String {
        match self {
            Verdict::Unknown(stop) => format!("unknown ({})", stop.as_str()),
            v => v.as_str().to_string(),
        }
    }
}

/// Bad input: where, what, and what to do. Printed as
/// `FILE:LINE:COLUMN: error: MESSAGE` then `  hint: HINT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputError {
    /// The file (or `stdin`, or the command-line argument).
    pub file: String,
    /// 1-based line, 0 when the problem is the file as a whole.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub hint: String,
}

impl InputError {
    /// An error about the file as a whole.
    pub fn whole(
        file: impl Into<String>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> InputError {
        InputError {
            file: file.into(),
            line: 0,
            column: 0,
            message: message.into(),
            hint: hint.into(),
        }
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(
                f,
                "{}:{}:{}: error: {}",
                self.file, self.line, self.column, self.message
            )?;
        } else {
            write!(f, "{}: error: {}", self.file, self.message)?;
        }
        if !self.hint.is_empty() {
            write!(f, "\n  hint: {}", self.hint)?;
        }
        Ok(())
    }
}

impl std::error::Error for InputError {}

/// The text of a file being loaded, for turning byte spans into positions.
pub struct Source<'a> {
    /// Display name.
    pub file: String,
    /// Contents.
    pub text: &'a str,
}

impl Source<'_> {
    /// 1-based line and column (in characters) of a byte offset.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = self.text[line_start..offset].chars().count() + 1;
        (line, column)
    }

    /// An error at a span.
    pub fn error(
        &self,
        span: Range<usize>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> InputError {
        let (line, column) = self.position(span.start);
        InputError {
            file: self.file.clone(),
            line,
            column,
            message: message.into(),
            hint: hint.into(),
        }
    }

    /// Parses TOML into `T`, mapping syntax and shape errors to positions.
    pub fn parse<T: for<'de> Deserialize<'de>>(&self, hint: &str) -> Result<T, InputError> {
        toml::from_str::<T>(self.text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            self.error(span, serde_message(e.message()), hint)
        })
    }
}

/// A TOML/serde error message in scenario terms: serde's untagged-enum
/// message names a Rust type, so say what the key takes instead.
pub(crate) fn serde_message(message: &str) -> String {
    let message = message.trim().replace('\n', " ");
    if message.contains("untagged enum RawRuns") {
        "`run` takes a number of containers (run = 16) or a list of names (run = [\"web\", \"db\"])"
            .to_string()
    } else if message.contains("untagged enum") {
        "this value has the wrong type for its key".to_string()
    } else {
        message
    }
}

/// A loaded scenario.
#[derive(Debug)]
pub struct Scenario {
    /// Where it came from.
    pub path: PathBuf,
    /// Its name (part of every replay token's checksum).
    pub name: String,
    /// What it reproduces, for people.
    pub description: String,
    /// Search bounds.
    pub bounds: Bounds,
    /// How to search it when the command line does not say (`[explore]`);
    /// a variant's own `explore` comes first. `None`: breadth-first.
    pub explore: Option<Strategy>,
    /// The system and its variants, whatever its kind ([`kind`]).
    pub system: Box<dyn System>,
    /// A hash of the scenario's normalised content and the model version
    /// ([`content_hash`]): replay tokens carry it.
    pub content_hash: u32,
}

impl Scenario {
    /// What every kind's loader ends with: the keys all kinds share
    /// (`name`, `description`, `[explore]`), the resolved bounds and the
    /// kind's system. The content hash is filled in by [`load_str`].
    pub(crate) fn loaded(
        src: &Source,
        path: &Path,
        name: &Spanned<String>,
        description: String,
        bounds: Bounds,
        explore: &Option<RawExplore>,
        system: Box<dyn System>,
    ) -> Result<Scenario, InputError> {
        Ok(Scenario {
            path: path.to_path_buf(),
            name: name.get_ref().clone(),
            description,
            bounds,
            explore: RawExplore::resolve_opt(explore, src)?,
            content_hash: 0,
            system,
        })
    }

    /// Variant names in file order.
    pub fn variant_names(&self) -> Vec<String> {
        self.system.variant_names()
    }

    /// The variant named `name`, or an error naming `what` (the flag or
    /// argument that asked for it) and listing the variants.
    pub fn find_variant(&self, name: &str, what: &str) -> Result<&dyn Variant, InputError> {
        self.system.variant(name).ok_or_else(|| {
            InputError::whole(
                what,
                format!("scenario {} has no variant {name}", self.name),
                format!("variants: {}", self.variant_names().join(", ")),
            )
        })
    }
}

/// Keys every scenario has, read first to learn the kind.
#[derive(Deserialize)]
struct Head {
    kind: Option<Spanned<String>>,
}

/// The `[bounds]` table.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawBounds {
    max_states: Option<Spanned<i64>>,
    max_depth: Option<Spanned<i64>>,
}

impl RawBounds {
    /// Validates the bounds.
    pub fn resolve(&self, src: &Source) -> Result<Bounds, InputError> {
        // One key at a time, so an error points at the key that has it.
        let at = |key: &Option<Spanned<i64>>| key.as_ref().map(|v| (*v.get_ref(), v.span()));
        let mut b = Bounds::default();
        if let Some((v, span)) = at(&self.max_states) {
            b = b.with(Some(v), None).map_err(|e| bad_bound(src, span, e))?;
        }
        if let Some((v, span)) = at(&self.max_depth) {
            b = b.with(None, Some(v)).map_err(|e| bad_bound(src, span, e))?;
        }
        Ok(b)
    }
}

/// The `[explore]` table, and a variant's `explore = { ... }`: how the
/// scenario (or that variant) is searched when the command line gives no
/// `--strategy`. A sampled strategy here makes every property it does not
/// find violated read `unknown (sampling)`, so such a variant should
/// expect only `violated`.
#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawExplore {
    strategy: Spanned<String>,
    seed: Option<Spanned<i64>>,
    runs: Option<Spanned<i64>>,
    depth: Option<Spanned<i64>>,
}

/// The most runs an `[explore]` table may ask for.
pub const MAX_EXPLORE_RUNS: i64 = 100_000_000;

impl RawExplore {
    /// Validates the table into a strategy.
    pub fn resolve(&self, src: &Source) -> Result<Strategy, InputError> {
        let name = self.strategy.get_ref().as_str();
        let sampled = matches!(name, "random" | "pct");
        let not_for = |key: &str, v: &Option<Spanned<i64>>| -> Result<(), InputError> {
            match v {
                Some(v) => Err(src.error(
                    v.span(),
                    format!("{key} does not apply to strategy {name:?}"),
                    match key {
                        "depth" => "depth is PCT's bug depth: use it with strategy = \"pct\"",
                        _ => "seed and runs are for strategy = \"random\" or \"pct\"",
                    },
                )),
                None => Ok(()),
            }
        };
        if !sampled {
            not_for("seed", &self.seed)?;
            not_for("runs", &self.runs)?;
        }
        if name != "pct" {
            not_for("depth", &self.depth)?;
        }
        // A key's value, checked against its range; `default` when absent.
        let in_range = |key: &str,
                        v: &Option<Spanned<i64>>,
                        range: std::ops::RangeInclusive<i64>,
                        hint: String,
                        default: i64|
         -> Result<i64, InputError> {
            match v {
                Some(v) if !range.contains(v.get_ref()) => Err(src.error(
                    v.span(),
                    format!("{key} = {} is impossible", v.get_ref()),
                    hint,
                )),
                Some(v) => Ok(*v.get_ref()),
                None => Ok(default),
            }
        };
        let seed = in_range(
            "seed",
            &self.seed,
            0..=i64::MAX,
            "give a seed of 0 or more".into(),
            0,
        )?;
        let runs = in_range(
            "runs",
            &self.runs,
            1..=MAX_EXPLORE_RUNS,
            format!("give a number of runs from 1 to {MAX_EXPLORE_RUNS}"),
            10_000,
        )?;
        let depth = in_range(
            "depth",
            &self.depth,
            1..=100,
            "give a bug depth from 1 to 100 (3 finds most two-actor races)".into(),
            3,
        )?;
        let (seed, runs, depth) = (seed as u64, runs as u64, depth as u32);
        Ok(match name {
            "bfs" => Strategy::Bfs,
            "dfs" => Strategy::Dfs,
            "random" => Strategy::Random { seed, walks: runs },
            "pct" => Strategy::Pct { seed, runs, depth },
            other => {
                return Err(src.error(
                    self.strategy.span(),
                    format!("unknown strategy {other:?}"),
                    "strategy is \"bfs\", \"dfs\", \"random\" or \"pct\"",
                ))
            }
        })
    }

    /// Validates an optional table.
    pub fn resolve_opt(
        raw: &Option<RawExplore>,
        src: &Source,
    ) -> Result<Option<Strategy>, InputError> {
        raw.as_ref().map(|r| r.resolve(src)).transpose()
    }
}

fn bad_bound(src: &Source, span: Range<usize>, e: crate::explore::BadBound) -> InputError {
    src.error(
        span,
        format!("{} = {} is impossible", e.bound, e.value),
        e.hint,
    )
}

/// Parses the `expect` table of a variant against the known properties.
pub fn parse_expect(
    src: &Source,
    expect: &BTreeMap<Spanned<String>, Spanned<String>>,
    known: &[&str],
) -> Result<BTreeMap<String, Verdict>, InputError> {
    let mut out = BTreeMap::new();
    for (k, v) in expect {
        if !known.contains(&k.get_ref().as_str()) {
            return Err(src.error(
                k.span(),
                format!("unknown property {}", k.get_ref()),
                format!("this kind of scenario checks: {}", known.join(", ")),
            ));
        }
        let verdict = match v.get_ref().as_str() {
            "holds" => Verdict::Holds,
            "violated" => Verdict::Violated,
            "vacuous" => Verdict::Vacuous,
            "unknown" => {
                return Err(src.error(
                    v.span(),
                    "\"unknown\" cannot be expected",
                    "unknown is what an incomplete search finds; expect \"holds\", \"violated\" or \"vacuous\"",
                ))
            }
            other => {
                return Err(src.error(
                    v.span(),
                    format!("unknown verdict {other:?}"),
                    "expect \"holds\", \"violated\" or \"vacuous\"",
                ))
            }
        };
        out.insert(k.get_ref().clone(), verdict);
    }
    Ok(out)
}

/// Parses an IPv4 address field.
pub(crate) fn parse_ipv4(
    src: &Source,
    v: &Spanned<String>,
    what: &str,
) -> Result<std::net::Ipv4Addr, InputError> {
    v.get_ref().parse().map_err(|_| {
        src.error(
            v.span(),
            format!("{what} {:?} is not an IPv4 address", v.get_ref()),
            "write it as four decimal numbers, for example \"10.0.0.2\"",
        )
    })
}

/// Parses an IPv4 CIDR field.
pub(crate) fn parse_cidr(
    src: &Source,
    v: &Spanned<String>,
    what: &str,
) -> Result<ipnet::Ipv4Net, InputError> {
    v.get_ref().parse().map_err(|_| {
        src.error(
            v.span(),
            format!("{what} {:?} is not an IPv4 CIDR", v.get_ref()),
            "write it as ADDRESS/PREFIX, for example \"172.17.0.0/16\"",
        )
    })
}

/// Checks a scenario's variant list: at least one, every name usable and
/// used once. `profiles` names the profiles for the hint.
pub(crate) fn check_variant_names<'a>(
    src: &Source,
    scenario: &Spanned<String>,
    names: impl Iterator<Item = &'a Spanned<String>>,
    profiles: &[&str],
) -> Result<(), InputError> {
    let mut seen: Vec<&str> = Vec::new();
    for name in names {
        check_name(src, name, "variant")?;
        if seen.contains(&name.get_ref().as_str()) {
            return Err(src.error(
                name.span(),
                format!("variant {} is defined twice", name.get_ref()),
                "give every variant its own name",
            ));
        }
        seen.push(name.get_ref());
    }
    if seen.is_empty() {
        return Err(src.error(
            scenario.span(),
            "the scenario has no variants",
            format!(
                "add [[variant]] tables with name and profile (one of {})",
                profiles.join(", ")
            ),
        ));
    }
    Ok(())
}

/// A variant's `profile`: the built-in one of that name (`builtin`), or an
/// error at the key listing the names there are.
pub(crate) fn builtin_profile<P>(
    src: &Source,
    profile: &toml::Spanned<String>,
    names: &[&str],
    builtin: impl FnOnce(&str) -> Option<P>,
) -> Result<P, InputError> {
    builtin(profile.get_ref()).ok_or_else(|| {
        src.error(
            profile.span(),
            format!("unknown profile {:?}", profile.get_ref()),
            format!("profiles: {}", names.join(", ")),
        )
    })
}

/// A `[faults]` budget key: absent is 0, else 0 to 3 (each fault
/// multiplies the space to explore).
pub(crate) fn fault_budget(
    src: &Source,
    value: &Option<toml::Spanned<i64>>,
    key: &str,
) -> Result<u8, InputError> {
    match value {
        None => Ok(0),
        Some(n) if (0..=3).contains(n.get_ref()) => Ok(*n.get_ref() as u8),
        Some(n) => Err(src.error(
            n.span(),
            format!("{key} = {} is out of range", n.get_ref()),
            format!("give {key} = 0 to 3: each fault multiplies the space to explore"),
        )),
    }
}

/// Checks a scenario or variant name: non-empty, no spaces or `:`.
pub fn check_name(src: &Source, name: &Spanned<String>, what: &str) -> Result<(), InputError> {
    let n = name.get_ref();
    if n.is_empty() || n.chars().any(|c| c == ':' || c.is_whitespace()) {
        return Err(src.error(
            name.span(),
            format!("{what} name {n:?} is not usable"),
            "use letters, digits, '.', '-', '_' and '+' (no spaces or ':')",
        ));
    }
    Ok(())
}

/// Loads and validates a scenario file.
pub fn load(path: &Path) -> Result<Scenario, InputError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        InputError::whole(
            file.clone(),
            format!("cannot read the scenario: {e}"),
            "check the path; `netrace check` with no argument reads scenarios/",
        )
    })?;
    load_str(&file, &text, path)
}

/// The version of the model's semantics: bump it whenever a change makes
/// an existing schedule mean something else (a new step, another order of
/// enabled actions), so that old replay tokens are refused instead of
/// replaying another interleaving.
pub const MODEL_VERSION: u32 = 2;

/// A hash of what determines a scenario's models: its TOML parsed and
/// written back in a canonical form (sorted keys, no comments or
/// layout), without the keys that only speak to people (`description`,
/// `source`, and each variant's `note` and `expect`), plus
/// [`MODEL_VERSION`]. Two files with the same name but other content
/// hash differently; reformatting a file or editing its prose does not.
pub fn content_hash(text: &str) -> u32 {
    let mut value: toml::Value = match toml::from_str(text) {
        Ok(v) => v,
        Err(_) => toml::Value::String(text.to_string()),
    };
    if let Some(table) = value.as_table_mut() {
        table.remove("description");
        table.remove("source");
        // How a scenario is searched does not change what a schedule means.
        table.remove("explore");
        if let Some(toml::Value::Array(variants)) = table.get_mut("variant") {
            for v in variants.iter_mut().filter_map(toml::Value::as_table_mut) {
                v.remove("note");
                v.remove("expect");
                v.remove("explore");
            }
        }
    }
    let canonical = serde_json::to_string(&value).expect("a TOML value serialises");
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let version = format!("netrace-model-v{MODEL_VERSION}");
    for &b in version
        .as_bytes()
        .iter()
        .chain(&[0])
        .chain(canonical.as_bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h ^ (h >> 32)) as u32
}

/// Loads a scenario from text (`file` names it in errors).
pub fn load_str(file: &str, text: &str, path: &Path) -> Result<Scenario, InputError> {
    let mut s = load_kind(file, text, path)?;
    s.content_hash = content_hash(text);
    Ok(s)
}

fn load_kind(file: &str, text: &str, path: &Path) -> Result<Scenario, InputError> {
    let src = Source {
        file: file.to_string(),
        text,
    };
    let head: Head = src.parse("a scenario is a TOML file; see docs/scenario-format.md")?;
    let Some(kind) = head.kind else {
        return Err(src.error(
            0..0,
            "the scenario has no `kind`",
            format!("add kind = {} at the top", kinds_hint(" or kind = ")),
        ));
    };
    match KINDS.iter().find(|k| k.name == kind.get_ref()) {
        Some(k) => (k.load)(&src, path),
        None => Err(src.error(
            kind.span(),
            format!("unknown scenario kind {:?}", kind.get_ref()),
            format!(
                "kind is one of: {}",
                KINDS
                    .iter()
                    .map(|k| format!("\"{}\" ({})", k.name, k.about))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// `"ipam"<sep>"l2"`: the registered kinds, quoted.
fn kinds_hint(sep: &str) -> String {
    KINDS
        .iter()
        .map(|k| format!("\"{}\"", k.name))
        .collect::<Vec<_>>()
        .join(sep)
}

/// The scenario files a list of paths names: files as given, directories
/// expanded to their `*.toml` files in name order.
pub fn collect(paths: &[PathBuf]) -> Result<Vec<PathBuf>, InputError> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| {
                    InputError::whole(
                        p.display().to_string(),
                        format!("cannot list: {e}"),
                        "check the path",
                    )
                })?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "toml"))
                .collect();
            found.sort();
            if found.is_empty() {
                return Err(InputError::whole(
                    p.display().to_string(),
                    "no scenario files (*.toml) in this directory",
                    "point at a directory of scenarios or at a file",
                ));
            }
            out.extend(found);
        } else if p.exists() {
            out.push(p.clone());
        } else {
            return Err(InputError::whole(
                p.display().to_string(),
                "no such file or directory",
                "check the path; `netrace check` with no argument reads scenarios/",
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_lines_and_char_columns() {
        let src = Source {
            file: "f".into(),
            text: "a = 1\nbé = \"x\"\n",
        };
        assert_eq!(src.position(0), (1, 1));
        assert_eq!(src.position(6), (2, 1));
        assert_eq!(src.position(9), (2, 3)); // after 'b' and 'é' (2 bytes)
    }

    #[test]
    fn a_value_of_the_wrong_shape_is_explained_in_scenario_terms() {
        let text = "name = \"x\"\nkind = \"ipam\"\n[network]\nsubnet = \"172.17.0.0/16\"\n[setup]\nrun = true\n[[actor]]\nrun = \"a\"\n[[variant]]\nname = \"v\"\nprofile = \"libnetwork-17.05\"\n";
        let e = load_str("f.toml", text, Path::new("f.toml")).unwrap_err();
        assert!(!e.message.contains("untagged"), "{e}");
        assert!(!e.message.contains("RawRuns"), "{e}");
        assert!(e.message.contains("`run` takes a number"), "{e}");
        assert_eq!(e.line, 5, "the [setup] table: {e}");
    }

    #[test]
    fn kinds_are_registered_once_and_dispatch_to_their_loader() {
        let mut names: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), KINDS.len(), "a kind is registered twice");
        // Every bundled scenario reaches the loader its `kind` names, and
        // the system it builds says so.
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut seen = std::collections::BTreeSet::new();
        for f in collect(&[dir]).unwrap() {
            let s = load(&f).unwrap();
            let text = std::fs::read_to_string(&f).unwrap();
            assert!(
                text.contains(&format!("kind = \"{}\"", s.system.kind())),
                "{}",
                f.display()
            );
            assert_eq!(s.variant_names().len(), s.system.variants().len());
            seen.insert(s.system.kind());
        }
        assert_eq!(
            seen.len(),
            KINDS.len(),
            "a registered kind has no bundled scenario"
        );
    }

    #[test]
    fn missing_and_unknown_kind() {
        let e = load_str("f.toml", "name = \"x\"\n", Path::new("f.toml")).unwrap_err();
        assert!(e.message.contains("no `kind`"));
        let e = load_str(
            "f.toml",
            "name = \"x\"\nkind = \"dns\"\n",
            Path::new("f.toml"),
        )
        .unwrap_err();
        assert_eq!((e.line, e.column), (2, 8));
        // The hint lists every registered kind.
        for k in KINDS {
            assert!(e.hint.contains(&format!("\"{}\"", k.name)), "{e}");
        }
        let e = load_str("f.toml", "name = [\n", Path::new("f.toml")).unwrap_err();
        assert!(e.line >= 1, "{e}");
    }
}
