//! Runs the soak oracle on the example classic-17.03 plan
//! (`SoakPlan::classic_example`) and prints its report; with `--json`, the
//! report as one JSON object. Needs root.
//!
//! ```sh
//! cargo run --release --example soak -- [DURATION_MS] [SEED] [--json]
//! ```
//!
//! The scenario format of `netrace kernel FILE --soak` comes later; this
//! driver builds the plan by hand.

use std::process::ExitCode;

use netrace::kernel::soak::{soak, SoakPlan};
use netrace::kernel::KernelError;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    let nums: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let parse = |i: usize, default: u64| -> Result<u64, String> {
        nums.get(i).map_or(Ok(default), |s| {
            s.parse().map_err(|_| {
                format!("soak: {s:?} is not a number; usage: soak [DURATION_MS] [SEED] [--json]")
            })
        })
    };
    let (duration_ms, seed) = match (parse(0, 12_000), parse(1, 16)) {
        (Ok(d), Ok(s)) => (d, s),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let plan = SoakPlan::classic_example(duration_ms, seed);
    match soak(&plan) {
        Ok(report) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string(&report).expect("a report serialises")
                );
            } else {
                print!("{}", report.render());
                println!("summary: {:?}", report.summary());
            }
            ExitCode::SUCCESS
        }
        Err(e @ KernelError::Unavailable(_)) | Err(e @ KernelError::Failed(_)) => {
            eprintln!("soak: {e}");
            ExitCode::from(2)
        }
    }
}
