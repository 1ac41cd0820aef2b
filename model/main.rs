//! The `netrace` binary: see [`netrace::cli`].

/// Counts the bytes in use, so `--max-memory` ends a search before the
/// OOM killer would.
#[global_allocator]
static ALLOC: netrace::cli::limits::CountingAlloc = netrace::cli::limits::CountingAlloc;

fn main() -> std::process::ExitCode {
    netrace::cli::main()
}
