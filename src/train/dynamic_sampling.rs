//! DAPO's dynamic sampling (Yu et al., 2025), off by default: a group whose rewards are
//! all equal carries no gradient and is dropped, so a step can end with nothing to
//! learn from. With `rollout.min_signal_groups` > 0 the step draws more paragraphs (up
//! to `rollout.max_extra_draws` more batches of `paragraphs_per_step`) until its
//! rollouts hold that many groups with unequal rewards. The paper does not do this.

/// Draws `draw(0)`, `draw(1)`, ... until the draws hold `min_signal_groups` groups
/// with reward variance (`signal_groups` of each draw, summed) or `1 + max_extra_draws`
/// draws were made. `min_signal_groups` 0: exactly one draw.
pub fn draw_until_signal<T, E>(
    min_signal_groups: usize,
    max_extra_draws: usize,
    mut draw: impl FnMut(usize) -> Result<T, E>,
    signal_groups: impl Fn(&T) -> usize,
) -> Result<Vec<T>, E> {
    let mut draws = Vec::new();
    let mut signal = 0;
    for index in 0..=max_extra_draws {
        let drawn = draw(index)?;
        signal += signal_groups(&drawn);
        draws.push(drawn);
        if signal >= min_signal_groups {
            break;
        }
    }
    Ok(draws)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(target: usize, bound: usize, signal_per_draw: &[usize]) -> Vec<usize> {
        draw_until_signal::<usize, ()>(target, bound, |i| Ok(signal_per_draw[i]), |&s| s).unwrap()
    }

    #[test]
    fn refills_to_the_target_or_stops_at_the_bound() {
        assert_eq!(
            run(3, 5, &[1, 0, 2, 9, 9, 9]),
            [1, 0, 2],
            "refilled to 3 signal groups"
        );
        assert_eq!(
            run(3, 2, &[0, 0, 0, 9]),
            [0, 0, 0],
            "1 + 2 draws, then stop"
        );
        assert_eq!(run(0, 5, &[0, 9]), [0], "off: one draw");
        assert_eq!(run(2, 5, &[4, 9]), [4], "the first draw already suffices");
    }
}
