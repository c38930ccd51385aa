//! The two rewards of the min-max game (DESIGN.md §1, §4).

/// Predictor: 1 for an exact match with the hidden span, else 0 (no answer → 0).
pub fn predictor_reward(correct: bool) -> f32 {
    if correct {
        1.0
    } else {
        0.0
    }
}

/// Generator: `1 − acc` of the predictor group on its mask, except that an
/// unpredictable mask (`acc == 0`) earns nothing. An invalid mask gets 0 and
/// no predictor rollouts (`None`).
pub fn generator_reward(predictor_accuracy: Option<f32>) -> f32 {
    match predictor_accuracy {
        None => 0.0,
        Some(acc) if acc <= 0.0 => 0.0,
        Some(acc) => 1.0 - acc,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generator_reward_cases() {
        assert_eq!(
            generator_reward(Some(0.0)),
            0.0,
            "unpredictable spans earn nothing"
        );
        assert_eq!(generator_reward(Some(1.0 / 8.0)), 7.0 / 8.0);
        assert_eq!(
            generator_reward(Some(1.0)),
            0.0,
            "trivial spans earn nothing"
        );
        assert_eq!(generator_reward(None), 0.0, "invalid mask");
        assert_eq!(predictor_reward(true), 1.0);
        assert_eq!(predictor_reward(false), 0.0);
    }
}
