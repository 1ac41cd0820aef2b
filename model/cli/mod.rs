//! The command line: `check`, `replay`, `audit`, `ipam ops` (and the L2 commands).
//!
//! This is the I/O edge: it reads files and stdin, measures wall time,
//! draws progress on stderr, watches the run's limits ([`limits`]) and
//! decides exit codes. The contract: exit 0 = every verdict as expected,
//! conclusively (or the replayed schedule violates nothing), 1 = a
//! conclusive mismatch (or a violation replayed), 2 = bad input, usage or
//! a write error, with a message naming the file, line and column and what
//! to do; 3 = nothing contradicts but an expected verdict is `unknown`;
//! 130 = interrupted, with the finished rows printed.

mod audit;
mod audit_l2;
mod kernel;
pub mod limits;
mod merge;
mod ops;
mod output;
mod simulate;
mod soak;
pub(crate) use output::format_ms;

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};

use crate::explore::{self, token, Bounds, Options, Progress, Strategy};
use crate::scenario::{self, InputError, Scenario};

/// netrace: finds and explains race conditions in container networking.
#[derive(Parser, Debug)]
#[command(name = "netrace", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Colour in text output: auto (on a terminal, unless NO_COLOR is set
    /// and not empty), always, or never.
    #[arg(long, global = true, value_enum, default_value = "auto")]
    color: ColorArg,
}

/// `--color`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ColorArg {
    /// On a terminal, unless `NO_COLOR` is set to a non-empty value.
    Auto,
    /// Always (even with `NO_COLOR`: the flag is the more explicit wish).
    Always,
    /// Never.
    Never,
}

impl ColorArg {
    /// Whether text on standard output gets ANSI colours
    /// (<https://no-color.org>: `NO_COLOR` present and not empty turns
    /// colour off by default; a command-line flag overrides it).
    fn paint(self) -> output::Paint {
        let color = match self {
            ColorArg::Always => true,
            ColorArg::Never => false,
            ColorArg::Auto => {
                std::io::stdout().is_terminal()
                    && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            }
        };
        output::Paint { color }
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check every scenario × variant × property and print the fix matrix.
    ///
    /// Verdicts: holds (the whole bounded space covered, the property
    /// held), violated (a counterexample), vacuous (covered, but nothing to
    /// check), unknown (not violated, but the space was not covered: a
    /// bound, memory, time, Ctrl-C or random sampling).
    ///
    /// Exit codes: 0 every verdict matches its expectation, conclusively;
    /// 1 a conclusive verdict contradicts its expectation; 2 bad input or
    /// usage; 3 nothing contradicts, but an expected verdict is unknown;
    /// 130 interrupted (the finished rows are printed).
    Check(CheckArgs),
    /// Print the full trace of one schedule (a replay token).
    Replay(ReplayArgs),
    /// Push operations through the faithful libnetwork bitseq.
    Ipam {
        #[command(subcommand)]
        command: IpamCommand,
    },
    /// Print an L2 scenario's topology as Graphviz DOT, or write it as SVG
    /// (`--svg OUT.svg`, no Graphviz needed).
    Topology(TopologyArgs),
    /// Run an L2 schedule on the real kernel (root) and compare with the model.
    Kernel(KernelArgs),
    /// Combine the JSON outputs of `check --shard I/N` (I = 1..N) into the
    /// verdicts and counterexamples of one unsharded run.
    ///
    /// Exit codes as for `check`; 2 when a shard is missing, repeated, or
    /// from another scenario, bound or strategy.
    Merge(MergeArgs),
    /// Read a dockerd debug log, find the windows of concurrent address
    /// requests, write the IPAM scenario of each and check it.
    ///
    /// The log's releases (`ReleaseAddress`) and assignments (`Assigning
    /// addresses for endpoint ...`) are put on one timeline per network;
    /// assignments at most --window apart form a window, and a window with
    /// two or more is checked under the daemon's profile (--profile, or
    /// from the log's `Docker daemon ... version=` line, else 17.05) and
    /// the later fixes. The log does not list the addresses in use: the
    /// addresses up to the highest released one are taken to be held
    /// (--held A-B says otherwise). See docs/audit.md.
    ///
    /// Exit codes: 0 no hazard under the daemon's profile (or no
    /// overlapping requests); 1 a hazard (a property violated); 2 bad
    /// input or usage; 3 no hazard found, but a search did not cover its
    /// space or a window could not be modelled.
    Audit(audit::AuditArgs),
    /// Seeded timed runs of an L2 scenario's traffic (containers with the
    /// kernel's ARP timers), with loss, outage episodes, br0 FDB moves and
    /// the timed properties per variant.
    ///
    /// Verdicts are sampled: "violated" with a witness seed, or "not
    /// violated in N runs", never "holds". Exit codes: 0 every
    /// simulate_expect met; 1 a property expected "not violated" was
    /// violated; 2 bad input or usage; 3 a property expected "violated"
    /// was not seen; 130 interrupted (the finished runs are reported).
    Simulate(simulate::SimulateArgs),
}

#[derive(clap::Args, Debug)]
pub(crate) struct MergeArgs {
    /// The shards' `check --shard I/N --format json` outputs (JSON lines).
    #[arg(required = true)]
    pub(crate) files: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) format: Format,
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
    /// Override the scenario's state bound for the search that picks the
    /// default schedule (1 to 1000000000).
    #[arg(long)]
    pub(crate) max_states: Option<i64>,
    /// Override the scenario's depth bound for that search (1 to 1000000).
    #[arg(long)]
    pub(crate) max_depth: Option<i64>,
    /// Soak instead of a schedule: run the scenario's [[traffic]] with real
    /// container stacks for this long (5s to 10m, e.g. 20s), run the model
    /// on the same plan, and compare them statistically.
    #[arg(long, value_name = "DURATION")]
    pub(crate) soak: Option<String>,
    /// With --soak: seeds the delayers' draws and the model's runs (run r
    /// uses seed + r).
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// With --soak: the model's runs per variant (default 20).
    #[arg(long)]
    pub(crate) runs: Option<i64>,
    /// With --soak: the kernel's soaks per variant (default 1; 1 to 20),
    /// each DURATION long, delayer seeds seed, seed + 1, ...; their counts
    /// are summed for the comparison and each is printed.
    #[arg(long, value_name = "N")]
    pub(crate) soak_runs: Option<i64>,
    /// With --soak: also write what each kernel soak recorded (its
    /// `bridge monitor fdb` events, the delayer's records, per-flow
    /// probes) and the relay given to the model, as JSON (one line per
    /// variant), to this file.
    #[arg(long, value_name = "FILE")]
    pub(crate) soak_record: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) format: Format,
}

#[derive(clap::Args, Debug)]
struct TopologyArgs {
    /// The scenario file (kind = "l2").
    scenario: PathBuf,
    /// Draw this variant only (default: every variant, the first drawn and
    /// what differs between them marked).
    #[arg(long)]
    variant: Option<String>,
    /// Write an SVG picture drawn by netrace (no Graphviz needed) to this
    /// file instead of printing DOT.
    #[arg(long, value_name = "OUT.svg")]
    svg: Option<PathBuf>,
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
    /// Exhaustive breadth-first search (default): shortest counterexamples.
    Bfs,
    /// Exhaustive depth-first search: the same verdicts, far less memory.
    Dfs,
    /// Seeded random walks.
    Random,
    /// Probabilistic concurrency testing: random actor priorities with
    /// --pct-depth - 1 change points, --walks runs (see the user guide).
    Pct,
}

/// A reduction switched on or off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum OnOff {
    /// On (the default).
    On,
    /// Off, for comparison.
    Off,
}

#[derive(clap::Args, Debug)]
struct CheckArgs {
    /// Scenario files or directories (default: scenarios/ and scenarios/scale/).
    paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Only this variant (in every scenario that has it).
    #[arg(long)]
    variant: Option<String>,
    /// Search strategy, for every variant (default: what each scenario's
    /// `[explore]` says, else bfs).
    #[arg(long, value_enum)]
    strategy: Option<StrategyArg>,
    /// Seed for --strategy random.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Number of walks for --strategy random (runs for --strategy pct).
    #[arg(long, default_value_t = 10_000)]
    walks: u64,
    /// The bug depth --strategy pct aims at: 1 + the number of priority
    /// change points per run (1 to 100).
    #[arg(long, default_value_t = 3)]
    pct_depth: u32,
    /// Override the scenario's state bound (1 to 1000000000).
    #[arg(long)]
    max_states: Option<i64>,
    /// Override the scenario's depth bound (1 to 1000000).
    #[arg(long)]
    max_depth: Option<i64>,
    /// Memory budget of the search, e.g. 8G (default: 3/4 of the memory
    /// available at start). A search that reaches it ends as
    /// `unknown (memory)`.
    #[arg(long)]
    max_memory: Option<String>,
    /// Time limit of each variant's search, e.g. 30s or 5m. A search that
    /// reaches it ends as `unknown (time)`.
    #[arg(long)]
    time_limit: Option<String>,
    /// Treat every property without an expectation as expected to hold
    /// (without it, a scenario with no expectations is an exploration).
    #[arg(long)]
    expect_holds: bool,
    /// Turn off the partial-order reduction (for comparison).
    #[arg(long)]
    no_por: bool,
    /// The symmetry reduction: interchangeable actors (concurrent `docker
    /// run`s on one daemon) are explored once per arrangement, not once
    /// per permutation. Verdicts are the same either way; `off` is for
    /// comparison.
    #[arg(long, value_enum, default_value_t = OnOff::On)]
    symmetry: OnOff,
    /// Stop at the first counterexample: each search ends when it finds a
    /// violation (the properties it has not decided read `unknown
    /// (first_violation)`), and no variant is checked after the first one
    /// whose verdicts contradict their expectations.
    #[arg(long)]
    fail_fast: bool,
    /// Explore only part I of N of each search (I from 1 to N), for
    /// spreading a search over the jobs of a batch system; combine the
    /// JSON outputs with `netrace merge` (docs/scaling.md).
    #[arg(long, value_name = "I/N")]
    shard: Option<String>,
    /// Threads of a breadth-first search (default: the machine's cores).
    /// Verdicts, state counts and counterexamples are the same for every
    /// number.
    #[arg(long)]
    jobs: Option<usize>,
    /// Also write an HTML report into this directory: an index, one page
    /// per scenario (description, topology, fix matrix, figures) and one
    /// per counterexample with its sequence diagram. Static files that
    /// work opened from disk.
    #[arg(long, value_name = "DIR")]
    html: Option<PathBuf>,
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
    /// Also write every frame of the trace to this pcapng file (L2 scenarios): one
    /// interface per capture point, timestamps from the simulated clock.
    #[arg(long)]
    pcap: Option<PathBuf>,
    /// Also draw the trace as a sequence diagram in this SVG file: one
    /// lane per container, bridge port, vxlan device and driver (L2), or
    /// per run, rm, handle and store (IPAM).
    #[arg(long)]
    svg: Option<PathBuf>,
    /// With --svg: draw every step (by default a schedule of more than 40
    /// steps has its runs of quiet steps folded into one row).
    #[arg(long, requires = "svg")]
    full: bool,
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
    let paint = cli.color.paint();
    let result = match cli.command {
        Command::Check(a) => cmd_check(a, paint),
        Command::Replay(a) => cmd_replay(a),
        Command::Ipam {
            command: IpamCommand::Ops(a),
        } => ops::cmd_ipam_ops(a),
        Command::Topology(a) => cmd_topology(a),
        Command::Kernel(a) => kernel::cmd_kernel(a),
        Command::Merge(a) => merge::cmd_merge(a, paint),
        Command::Audit(a) => audit::cmd_audit(a, paint),
        Command::Simulate(a) => simulate::cmd_simulate(a),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}

/// `--shard I/N`: part I (1-based) of N.
fn parse_shard(text: &str) -> Result<explore::Shard, InputError> {
    let bad = || {
        InputError::whole(
            "--shard",
            format!("--shard {text} is not a part I/N"),
            "give I/N with 1 <= I <= N <= 1000000, e.g. --shard 2/4 (or JOB_COMPLETION_INDEX + 1)",
        )
    };
    let (i, n) = text.split_once('/').ok_or_else(bad)?;
    let (i, n): (u64, u64) = (
        i.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if i == 0 || i > n || n > 1_000_000 {
        return Err(bad());
    }
    Ok(explore::Shard {
        index: i - 1,
        count: n,
    })
}

/// Progress on stderr, driven by time: a spinner on a terminal, a line
/// every few seconds otherwise; nothing for searches that end quickly.
pub(crate) struct ProgressLine {
    bar: Option<indicatif::ProgressBar>,
    started: Instant,
    last: Instant,
    what: String,
    max_memory: Option<u64>,
}

impl ProgressLine {
    pub(crate) fn new(max_memory: Option<u64>) -> ProgressLine {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = indicatif::ProgressBar::new_spinner();
            b.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            b
        });
        ProgressLine {
            bar,
            started: Instant::now(),
            last: Instant::now(),
            what: String::new(),
            max_memory,
        }
    }

    /// A new search starts: rates count from now.
    pub(crate) fn start(&mut self, what: &str) {
        if self.what != what {
            self.what = what.to_string();
            self.started = Instant::now();
            self.last = Instant::now();
        }
    }

    pub(crate) fn update(&mut self, p: Progress) {
        let elapsed = self.started.elapsed();
        if elapsed < Duration::from_secs(2) {
            return;
        }
        let rate = p.states as f64 / elapsed.as_secs_f64().max(1e-9);
        let mut msg = format!(
            "{}: {} states ({:.0}% of max_states {}), {:.0} states/s, depth {}",
            self.what,
            p.states,
            100.0 * p.states as f64 / p.max_states.max(1) as f64,
            p.max_states,
            rate,
            p.depth
        );
        if limits::memory_is_counted() {
            let _ = write!(msg, ", memory {} MiB", limits::memory_in_use() >> 20);
            if let Some(m) = self.max_memory {
                let _ = write!(msg, " of {} MiB", m >> 20);
            }
        }
        match &self.bar {
            Some(b) => {
                b.set_message(msg);
                b.tick();
            }
            None => {
                if self.last.elapsed() > Duration::from_secs(5) {
                    self.last = Instant::now();
                    eprintln!("netrace: {msg}");
                }
            }
        }
    }

    pub(crate) fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// Writes to stdout; a failed write (a full disk, a closed pipe) is an
/// error with exit 2, never a panic or a silent 0.
pub(crate) fn emit(out: &mut impl Write, text: &str) -> Result<(), InputError> {
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| {
            InputError::whole(
                "stdout",
                format!("cannot write the output: {e}"),
                "check the disk or the pipe that stdout goes to",
            )
        })
}

/// Bounds from the command line, checked as the scenario loader checks
/// them.
pub(crate) fn bounds_override(
    base: Bounds,
    max_states: Option<i64>,
    max_depth: Option<i64>,
) -> Result<Bounds, InputError> {
    base.with(max_states, max_depth).map_err(|e| {
        let flag = format!("--{}", e.bound.replace('_', "-"));
        let message = format!("{flag} = {} is impossible", e.value);
        InputError::whole(flag, message, e.hint)
    })
}

fn cmd_check(a: CheckArgs, paint: output::Paint) -> Result<u8, InputError> {
    use crate::check::{Judgement, Run};

    let paths = if a.paths.is_empty() {
        // The catalogue, and its scale scenarios where they are.
        let mut p = vec![PathBuf::from("scenarios")];
        if Path::new("scenarios/scale").is_dir() {
            p.push(PathBuf::from("scenarios/scale"));
        }
        p
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
    bounds_override(Bounds::default(), a.max_states, a.max_depth)?;
    if a.strategy == Some(StrategyArg::Pct) && !(1..=100).contains(&a.pct_depth) {
        return Err(InputError::whole(
            "--pct-depth",
            format!("--pct-depth {} is out of range", a.pct_depth),
            "give a depth from 1 to 100 (3 finds most two-actor races)",
        ));
    }
    if matches!(a.strategy, Some(StrategyArg::Random | StrategyArg::Pct)) && a.walks == 0 {
        return Err(InputError::whole(
            "--walks",
            "0 walks search nothing",
            "give a positive number of walks",
        ));
    }
    let shard = a.shard.as_deref().map(parse_shard).transpose()?;
    let jobs = match a.jobs {
        Some(0) => {
            return Err(InputError::whole(
                "--jobs",
                "--jobs 0 runs nothing",
                "give a number of threads from 1 up (the default is the machine's cores)",
            ))
        }
        Some(n) => n.min(1024),
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    if shard.is_some() && a.strategy == Some(StrategyArg::Dfs) {
        return Err(InputError::whole(
            "--shard",
            "--shard does not split a depth-first search",
            "shard a breadth-first search (the default), random walks or PCT",
        ));
    }
    let max_memory = match &a.max_memory {
        Some(t) => limits::parse_size("--max-memory", t)?,
        None => limits::default_max_memory(),
    };
    let time_limit = a
        .time_limit
        .as_deref()
        .map(|t| limits::parse_duration("--time-limit", t))
        .transpose()?;
    limits::catch_sigint();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut cells = 0usize;
    let mut worst = Judgement::Met;
    let mut contradicted = 0usize;
    let mut inconclusive = 0usize;
    let mut variants = 0usize;
    let mut interrupted = false;
    let mut sections: Vec<(&Scenario, Vec<crate::check::VariantResult>)> = Vec::new();
    for s in &scenarios {
        let bounds = bounds_override(s.bounds, a.max_states, a.max_depth)?;
        let options = Options {
            bounds,
            limits: limits::run_limits(max_memory, time_limit),
            strategy: match a.strategy.unwrap_or(StrategyArg::Bfs) {
                StrategyArg::Bfs => Strategy::Bfs,
                StrategyArg::Dfs => Strategy::Dfs,
                StrategyArg::Random => Strategy::Random {
                    seed: a.seed,
                    walks: a.walks,
                },
                StrategyArg::Pct => Strategy::Pct {
                    seed: a.seed,
                    runs: a.walks,
                    depth: a.pct_depth,
                },
            },
            por: !a.no_por,
            symmetry: a.symmetry == OnOff::On,
            stop_at_first: a.fail_fast,
            target: None,
            shard,
            jobs,
        };
        let mut progress = ProgressLine::new(Some(max_memory));
        let mut write_error = None;
        let results = {
            let run = Run {
                scenario: s,
                options: &options,
                expect_holds: a.expect_holds,
                scenario_strategy: a.strategy.is_none(),
            };
            crate::check::check_scenario(
                run,
                a.variant.as_deref(),
                &mut |v, p| {
                    progress.start(&format!("{} {v}", s.name));
                    progress.update(p)
                },
                &mut |r| {
                    // JSON lines are written as each variant ends, so an
                    // interrupted run keeps what it found.
                    if a.format == Format::Json && write_error.is_none() {
                        if let Err(e) = emit(&mut out, &output::json_lines(std::slice::from_ref(r)))
                        {
                            write_error = Some(e);
                        }
                    }
                },
            )
        };
        progress.finish();
        if let Some(e) = write_error {
            return Err(e);
        }
        if results.is_empty() {
            continue;
        }
        for r in &results {
            variants += 1;
            cells += r.properties.len();
            contradicted += r
                .properties
                .iter()
                .filter(|p| p.judgement == Judgement::Contradicted)
                .count();
            inconclusive += r
                .properties
                .iter()
                .filter(|p| p.judgement == Judgement::Inconclusive)
                .count();
            worst = worst.max(r.judgement());
            interrupted |= r.stop == Some(explore::Stop::Interrupted);
        }
        if a.format == Format::Text {
            emit(&mut out, &output::matrix(s, &results, paint))?;
        }
        if a.html.is_some() {
            sections.push((s, results));
        }
        if interrupted || (a.fail_fast && contradicted > 0) {
            break;
        }
    }
    if let Some(dir) = &a.html {
        let sections: Vec<crate::picture::report::Section> = sections
            .iter()
            .map(|(scenario, results)| crate::picture::report::Section { scenario, results })
            .collect();
        let index = crate::picture::report::write_report(dir, &sections)?;
        eprintln!("netrace check: HTML report written: {}", index.display());
    }
    if a.fail_fast && contradicted > 0 && !interrupted {
        eprintln!("netrace check: stopped by --fail-fast after the first contradicted verdict");
    }
    if a.format == Format::Text {
        let summary = if contradicted > 0 {
            format!("{contradicted} verdict(s) do NOT match their expectation")
        } else if inconclusive > 0 {
            format!(
                "{inconclusive} expected verdict(s) are unknown: the search did not cover the space (see the (!) lines)"
            )
        } else {
            "every verdict matches its expectation".to_string()
        };
        let mut line = format!(
            "{} scenario(s), {variants} variant(s), {cells} verdict(s): {summary}\n",
            scenarios.len()
        );
        if interrupted {
            line.push_str("interrupted: the rows above are what was finished; the running search is marked unknown (interrupted)\n");
        }
        emit(&mut out, &line)?;
    }
    Ok(if interrupted { 130 } else { exit_code(worst) })
}

/// The exit code of a run whose worst judgement is `worst` (the CLI
/// contract: 0 every expectation met, 1 one contradicted, 3 one
/// inconclusive).
pub(crate) fn exit_code(worst: crate::check::Judgement) -> u8 {
    match worst {
        crate::check::Judgement::Met => 0,
        crate::check::Judgement::Contradicted => 1,
        crate::check::Judgement::Inconclusive => 3,
    }
}

fn cmd_replay(a: ReplayArgs) -> Result<u8, InputError> {
    let s = scenario::load(&a.scenario)?;
    let t = token::decode((&s).into(), &a.token).map_err(|e| {
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
    let what = if a.variant.is_some() {
        "--variant"
    } else {
        "TOKEN"
    };
    let v = s.find_variant(&variant, what)?;
    let origin = s.find_variant(&t.variant, "TOKEN")?;
    let diverged = |d: explore::Divergence| {
        InputError::whole(
            "TOKEN",
            d.to_string(),
            format!(
                "a token replays on the scenario version it was found with; rerun `netrace check {}` for a fresh one",
                a.scenario.display()
            ),
        )
    };
    // On the token's own variant the schedule is replayed by choice; on
    // another it is replayed by action keys, the same actors in the same
    // order, and stops where the variant blocks it, saying why.
    let replayed = if variant == t.variant {
        v.replay(&t.schedule).map_err(diverged)?
    } else {
        v.replay_keys(&origin.keys_of(&t.schedule).map_err(diverged)?)
    };
    if let Some(path) = &a.pcap {
        write_pcap(path, &replayed)?;
    }
    let header = vec![
        format!("scenario {} · variant {}", s.name, v.name()),
        v.profile_line(),
    ];
    if let Some(path) = &a.svg {
        let diagram = crate::picture::sequence::Diagram {
            title: header[0].clone(),
            subtitle: vec![
                header[1].clone(),
                format!(
                    "netrace replay {} {}{}",
                    shown(&a.scenario),
                    a.token,
                    a.variant
                        .as_ref()
                        .map(|v| format!(" --variant {v}"))
                        .unwrap_or_default()
                ),
            ],
            replayed: &replayed,
            full: a.full,
        };
        write_file(path, &crate::picture::sequence::svg(&diagram))?;
    }
    let text = match a.format {
        Format::Text => output::replay_text(header, &t, &variant, &replayed),
        Format::Json => output::replay_json(&s.name, &variant, &replayed),
    };
    emit(&mut std::io::stdout().lock(), &text)?;
    Ok(if replayed.violated.is_empty() { 0 } else { 1 })
}

/// `replay --pcap PATH`: every frame of the trace, in order, as pcapng
/// (one interface per capture point, each packet's comment its step).
fn write_pcap(path: &Path, replayed: &scenario::kind::Replayed) -> Result<(), InputError> {
    let frames: Vec<(String, crate::sim::CapturedFrame)> = replayed
        .numbered_steps()
        .flat_map(|(n, st)| {
            let comment = format!("step {n}: {}", st.headline);
            st.frames.iter().map(move |f| (comment.clone(), f.clone()))
        })
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
    crate::wire::pcap::write_pcapng(std::io::BufWriter::new(file), &frames).map_err(|e| {
        InputError::whole(
            path.display().to_string(),
            format!("cannot write: {e}"),
            "check the disk",
        )
    })
}

/// Writes `text` to `path`, or says why it cannot.
pub(crate) fn write_file(path: &Path, text: &str) -> Result<(), InputError> {
    std::fs::write(path, text).map_err(|e| {
        InputError::whole(
            path.display().to_string(),
            format!("cannot write: {e}"),
            "check the directory exists and is writable",
        )
    })
}

fn cmd_topology(a: TopologyArgs) -> Result<u8, InputError> {
    let s = scenario::load(&a.scenario)?;
    let no_topology = || {
        InputError::whole(
            a.scenario.display().to_string(),
            format!("a {} scenario has no network topology", s.system.kind()),
            "netrace topology takes an l2 scenario",
        )
    };
    let variant = a.variant.as_deref();
    if s.system.topology_dot(None).is_none() {
        return Err(no_topology());
    }
    if let Some(v) = variant {
        s.find_variant(v, "--variant")?;
    }
    match &a.svg {
        None => {
            let dot = s.system.topology_dot(variant).ok_or_else(no_topology)?;
            emit(&mut std::io::stdout().lock(), &dot)?;
        }
        Some(path) => {
            let svg = s.system.topology_svg(variant).ok_or_else(no_topology)?;
            std::fs::write(path, svg).map_err(|e| {
                InputError::whole(
                    path.display().to_string(),
                    format!("cannot write the SVG picture: {e}"),
                    "check the directory exists and is writable, or give --svg another path",
                )
            })?;
        }
    }
    Ok(0)
}

/// The path shown in commands printed for the user.
pub(crate) fn shown(path: &Path) -> String {
    path.display().to_string()
}
