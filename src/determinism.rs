//! Deterministic mode: the same seed gives bitwise-identical metrics (all but the
//! wall-clock fields) and weights, run after run and across kill and resume.
//!
//! The CPU backends split reductions over rayon's pool, and rayon's work stealing
//! decides at run time how partial sums are grouped, so float results differ in the
//! last bits from run to run. With one pool thread every reduction runs in one fixed
//! order (and a micro-batch runs as one shard); the price is the second core
//! (about 1.6x slower on 2 cores, see docs/RELIABILITY.md). GPU backends are not
//! made deterministic by this.

/// Makes rayon's global pool single-threaded. Must run before the pool is first
/// used; a pool that already has more threads is an error.
pub fn enter_deterministic_mode() -> anyhow::Result<()> {
    // matrixmultiply (ndarray's matmul) keeps a pool of its own; its results do not
    // depend on its thread count, but one thread keeps the mode's cost predictable.
    std::env::set_var("MATMUL_NUM_THREADS", "1");
    let built = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build_global();
    if built.is_err() && rayon::current_num_threads() != 1 {
        anyhow::bail!(
            "deterministic mode must be chosen before any parallel work (rayon's pool already has {} threads)",
            rayon::current_num_threads()
        );
    }
    Ok(())
}
