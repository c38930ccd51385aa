use clap::Parser;

use pretrainzero::cli::Cli;

/// Training allocates and frees tensor buffers of the same sizes on every step; see the
/// `mimalloc` line in Cargo.toml for why the system allocator is replaced.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (index 15 of `mi_option_e` in mimalloc.h, which keeps
/// deprecated entries so that indices stay stable; the Rust binding has no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// By default mimalloc gives freed memory back to the kernel 10 ms after it is freed. A
/// training step frees its activation and gradient buffers (hundreds of MB) at the end and
/// allocates the same sizes again at the start of the next step, so each step paid for
/// page faults and kernel page zeroing (a quarter of a `small` pretraining step's time in
/// a profile). With purging off, the process keeps its peak footprint and reuses it.
fn keep_freed_memory_for_reuse() {
    // SAFETY: mi_option_set only stores an integer in mimalloc's option table.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
}

fn main() {
    keep_freed_memory_for_reuse();
    let cli = Cli::parse();
    if let Err(error) = cli.command.run() {
        // One line: the error and its causes, outermost first.
        let chain: Vec<String> = error.chain().map(ToString::to_string).collect();
        eprintln!("error: {}", chain.join(": "));
        std::process::exit(1);
    }
}
