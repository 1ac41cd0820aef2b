//! The `netrace` binary: see [`netrace::cli`].
fn main() -> std::process::ExitCode {
    netrace::cli::main()
}
