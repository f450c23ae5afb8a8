fn main() -> std::process::ExitCode {
    chronos_server::cli::main()
}
