fn main() {
    std::process::exit(hookgate::cli::main());
}
