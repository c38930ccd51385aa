use clap::Parser;

use pretrainzero::cli::Cli;

fn main() {
    let cli = Cli::parse();
    if let Err(error) = cli.command.run() {
        // One line: the error and its causes, outermost first.
        let chain: Vec<String> = error.chain().map(ToString::to_string).collect();
        eprintln!("error: {}", chain.join(": "));
        std::process::exit(1);
    }
}
