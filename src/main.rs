use clap::Parser;

use pretrainzero::cli::Cli;

/// Training allocates and frees tensor buffers of the same sizes on every step; see the
/// `mimalloc` line in Cargo.toml for why the system allocator is replaced.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = Cli::parse();
    if let Err(error) = cli.command.run() {
        // One line: the error and its causes, outermost first.
        let chain: Vec<String> = error.chain().map(ToString::to_string).collect();
        eprintln!("error: {}", chain.join(": "));
        std::process::exit(1);
    }
}
