//! The command line: `check`, `replay`, `ipam ops` (and the L2 commands).
//!
//! This is the I/O edge: it reads files and stdin, measures wall time,
//! draws progress on stderr and decides exit codes. The contract:
//! exit 0 = every verdict as expected (or the replayed schedule violates
//! nothing), 1 = a mismatch (or a violation replayed), 2 = bad input or
//! usage, with a message naming the file, line and column and what to do.

mod kernel;
mod ops;
mod output;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};

use crate::explore::{self, token, Bounds, Options, Progress, Strategy};
use crate::scenario::{self, InputError, Scenario, System};

/// netrace: finds and explains race conditions in container networking.
#[derive(Parser, Debug)]
#[command(name = "netrace", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check every scenario × variant × property and print the fix matrix.
    Check(CheckArgs),
    /// Print the full trace of one schedule (a replay token).
    Replay(ReplayArgs),
    /// Push operations through the faithful libnetwork bitseq.
    Ipam {
        #[command(subcommand)]
        command: IpamCommand,
    },
    /// Print an L2 scenario's topology as Graphviz DOT.
    Topology(TopologyArgs),
    /// Run an L2 schedule on the real kernel (root) and compare with the model.
    Kernel(KernelArgs),
}

#[derive(clap::Args, Debug)]
pub(crate) struct KernelArgs {
    /// The scenario file (kind = "l2").
    pub(crate) scenario: PathBuf,
    /// Only this variant (default: the token's, or every variant).
    #[arg(long)]
    pub(crate) variant: Option<String>,
    /// Run this schedule (a replay token) instead of the default one: the
    /// forceable counterexample of l2.fdb_correct, else of another violated
    /// property, else the canonical schedule, else a seeded random walk.
    #[arg(long)]
    pub(crate) token: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) format: Format,
}

#[derive(clap::Args, Debug)]
struct TopologyArgs {
    /// The scenario file (kind = "l2").
    scenario: PathBuf,
}

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people.
    Text,
    /// One JSON object per line.
    Json,
}

/// Search strategies on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum StrategyArg {
    /// Exhaustive breadth-first search (default).
    Bfs,
    /// Seeded random walks.
    Random,
}

#[derive(clap::Args, Debug)]
struct CheckArgs {
    /// Scenario files or directories (default: scenarios/).
    paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Only this variant (in every scenario that has it).
    #[arg(long)]
    variant: Option<String>,
    /// Search strategy.
    #[arg(long, value_enum, default_value = "bfs")]
    strategy: StrategyArg,
    /// Seed for --strategy random.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Number of walks for --strategy random.
    #[arg(long, default_value_t = 10_000)]
    walks: u64,
    /// Override the scenario's state bound.
    #[arg(long)]
    max_states: Option<u64>,
    /// Override the scenario's depth bound.
    #[arg(long)]
    max_depth: Option<u32>,
    /// Turn off the partial-order reduction (for comparison).
    #[arg(long)]
    no_por: bool,
}

#[derive(clap::Args, Debug)]
struct ReplayArgs {
    /// The scenario file.
    scenario: PathBuf,
    /// The replay token printed by `netrace check`.
    token: String,
    /// Replay the token's schedule on another variant of the scenario.
    #[arg(long)]
    variant: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Also write every frame of the trace to this pcap file (L2 scenarios).
    #[arg(long)]
    pcap: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum IpamCommand {
    /// Read ops (JSON lines, the vector format) on stdin; print one result per line.
    Ops(OpsArgs),
}

#[derive(clap::Args, Debug)]
pub(crate) struct OpsArgs {
    /// Size of the handle in bits.
    #[arg(long)]
    pub(crate) bits: u64,
    /// Which libnetwork code: 17.05 or 2023.
    #[arg(long)]
    pub(crate) version: String,
}

/// Runs the command line; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = match cli.command {
        Command::Check(a) => cmd_check(a),
        Command::Replay(a) => cmd_replay(a),
        Command::Ipam {
            command: IpamCommand::Ops(a),
        } => ops::cmd_ipam_ops(a),
        Command::Topology(a) => cmd_topology(a),
        Command::Kernel(a) => kernel::cmd_kernel(a),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}

/// Progress on stderr: a spinner on a terminal, a line every few seconds
/// otherwise; nothing for searches that end quickly.
struct ProgressLine {
    bar: Option<indicatif::ProgressBar>,
    started: Instant,
    last: Instant,
}

impl ProgressLine {
    fn new() -> ProgressLine {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = indicatif::ProgressBar::new_spinner();
            b.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            b
        });
        ProgressLine {
            bar,
            started: Instant::now(),
            last: Instant::now(),
        }
    }

    fn update(&mut self, what: &str, p: Progress) {
        let msg = format!(
            "{what}: {} states (bound {}), depth {}",
            p.states, p.max_states, p.depth
        );
        match &self.bar {
            Some(b) => {
                b.set_message(msg);
                b.tick();
            }
            None => {
                if self.started.elapsed() > Duration::from_secs(2)
                    && self.last.elapsed() > Duration::from_secs(5)
                {
                    self.last = Instant::now();
                    eprintln!("netrace: {msg}");
                }
            }
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

fn cmd_check(a: CheckArgs) -> Result<u8, InputError> {
    let paths = if a.paths.is_empty() {
        vec![PathBuf::from("scenarios")]
    } else {
        a.paths.clone()
    };
    let files = scenario::collect(&paths)?;
    // Load everything first: bad input stops the run before any search.
    let scenarios: Vec<Scenario> = files
        .iter()
        .map(|f| scenario::load(f))
        .collect::<Result<_, _>>()?;
    if let Some(v) = &a.variant {
        if !scenarios.iter().any(|s| s.variant_names().contains(v)) {
            return Err(InputError::whole(
                "--variant",
                format!("no scenario has a variant named {v}"),
                "list the variants with `netrace check` and copy a name from the matrix",
            ));
        }
    }
    if a.max_states == Some(0) || a.max_depth == Some(0) {
        return Err(InputError::whole(
            "--max-states/--max-depth",
            "a bound of 0 leaves nothing to search",
            "give a positive bound",
        ));
    }
    if a.strategy == StrategyArg::Random && a.walks == 0 {
        return Err(InputError::whole(
            "--walks",
            "0 walks search nothing",
            "give a positive number of walks",
        ));
    }
    let mut all_match = true;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut cells = 0usize;
    let mut mismatches = 0usize;
    let mut variants = 0usize;
    for s in &scenarios {
        let mut bounds: Bounds = s.bounds;
        if let Some(m) = a.max_states {
            bounds.max_states = m;
        }
        if let Some(d) = a.max_depth {
            bounds.max_depth = d;
        }
        let options = Options {
            bounds,
            strategy: match a.strategy {
                StrategyArg::Bfs => Strategy::Bfs,
                StrategyArg::Random => Strategy::Random {
                    seed: a.seed,
                    walks: a.walks,
                },
            },
            por: !a.no_por,
            stop_at_first: false,
        };
        let mut progress = ProgressLine::new();
        let results =
            crate::check::check_scenario(s, &options, a.variant.as_deref(), &mut |v, p| {
                progress.update(&format!("{} {v}", s.name), p)
            });
        progress.finish();
        if results.is_empty() {
            continue;
        }
        for r in &results {
            variants += 1;
            cells += r.properties.len();
            mismatches += r.properties.iter().filter(|p| !p.matches).count();
            all_match &= r.all_match();
        }
        let text = match a.format {
            Format::Text => output::matrix(s, &results),
            Format::Json => output::json_lines(&results),
        };
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
    if a.format == Format::Text {
        let _ = writeln!(
            out,
            "{} scenario(s), {variants} variant(s), {cells} verdict(s): {}",
            scenarios.len(),
            if mismatches == 0 {
                "every verdict matches its expectation".to_string()
            } else {
                format!("{mismatches} verdict(s) do NOT match their expectation")
            }
        );
    }
    Ok(if all_match { 0 } else { 1 })
}

fn cmd_replay(a: ReplayArgs) -> Result<u8, InputError> {
    let s = scenario::load(&a.scenario)?;
    let t = token::decode(&s.name, &a.token).map_err(|e| {
        InputError::whole(
            "TOKEN",
            format!("the token is not usable: {e}"),
            format!(
                "copy the token exactly as `netrace check {}` printed it",
                a.scenario.display()
            ),
        )
    })?;
    let variant = a.variant.clone().unwrap_or_else(|| t.variant.clone());
    if !s.variant_names().contains(&variant) {
        return Err(InputError::whole(
            if a.variant.is_some() {
                "--variant"
            } else {
                "TOKEN"
            },
            format!("scenario {} has no variant {variant}", s.name),
            format!("variants: {}", s.variant_names().join(", ")),
        ));
    }
    let text = match &s.system {
        System::Ipam(sc) => {
            let v = sc
                .variants
                .iter()
                .find(|v| v.name == variant)
                .expect("checked above");
            let header = vec![
                format!("scenario {} · variant {}", s.name, v.name),
                format!("profile {}: {}", v.profile.name, v.profile.summary()),
            ];
            replay_model(&a, &s, &t, &variant, &v.model, header)?
        }
        System::L2(sc) => {
            let v = sc
                .variants
                .iter()
                .find(|v| v.name == variant)
                .expect("checked above");
            let header = vec![
                format!("scenario {} · variant {}", s.name, v.name),
                format!("profile {}: {}", v.profile.name, v.profile.summary()),
            ];
            replay_model(&a, &s, &t, &variant, &v.model, header)?
        }
    };
    let _ = std::io::stdout().write_all(text.0.as_bytes());
    Ok(text.1)
}

/// Replays a schedule on a model and renders it; returns (text, exit code).
fn replay_model<M: crate::sim::Model>(
    a: &ReplayArgs,
    s: &Scenario,
    t: &token::Token,
    variant: &str,
    model: &M,
    header: Vec<String>,
) -> Result<(String, u8), InputError> {
    let replay = explore::replay(model, &t.schedule).map_err(|d| {
        let note = if variant != t.variant {
            format!(
                " (the token was found on variant {}; on {variant} that schedule is not possible)",
                t.variant
            )
        } else {
            String::new()
        };
        InputError::whole(
            "TOKEN",
            format!("{d}{note}"),
            format!(
                "a token replays on the scenario version it was found with; rerun `netrace check {}` for a fresh one",
                a.scenario.display()
            ),
        )
    })?;
    if let Some(path) = &a.pcap {
        let frames: Vec<Vec<u8>> = replay
            .steps
            .iter()
            .flat_map(|st| st.frames.iter().cloned())
            .collect();
        if frames.is_empty() {
            return Err(InputError::whole(
                "--pcap",
                "this schedule moves no frames (only L2 scenarios have frames)",
                "use --pcap with an l2 scenario",
            ));
        }
        let file = std::fs::File::create(path).map_err(|e| {
            InputError::whole(
                path.display().to_string(),
                format!("cannot create: {e}"),
                "check the directory exists and is writable",
            )
        })?;
        crate::wire::pcap::write_pcap(std::io::BufWriter::new(file), &frames).map_err(|e| {
            InputError::whole(
                path.display().to_string(),
                format!("cannot write: {e}"),
                "check the disk",
            )
        })?;
    }
    let code = if replay.violated.is_empty() { 0 } else { 1 };
    let text = match a.format {
        Format::Text => output::replay_text(model, header, t, variant, &replay),
        Format::Json => output::replay_json(model, &s.name, variant, &replay),
    };
    Ok((text, code))
}

fn cmd_topology(a: TopologyArgs) -> Result<u8, InputError> {
    let s = scenario::load(&a.scenario)?;
    match &s.system {
        System::L2(sc) => {
            print!("{}", crate::overlay::topology::dot(&sc.spec));
            Ok(0)
        }
        System::Ipam(_) => Err(InputError::whole(
            a.scenario.display().to_string(),
            "an ipam scenario has no network topology",
            "netrace topology takes an l2 scenario",
        )),
    }
}

/// The path shown in commands printed for the user.
pub(crate) fn shown(path: &Path) -> String {
    path.display().to_string()
}
