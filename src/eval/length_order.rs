//! The order in which evaluation runs its items: longest first, so that each batch
//! holds sequences of similar length.
//!
//! A batch pads every sequence to its longest one. Held-out paragraphs run from a dozen
//! words to several hundred, so batches taken in corpus order spend most of their
//! compute on padding: for the 3,196 masked-span prompts of the shipped sample at batch
//! 64, the padded prompts are 2.5 times as long as the real ones in all (counted in
//! characters), and attention, quadratic in length, costs 5.3 times as much; sorted by
//! length, 1.07 and 1.37 times. Results are put back in item order, and each item's
//! padding is masked (positions count from its own first token), so likelihoods and
//! greedy answers are those of the item alone, up to float rounding (which can flip a
//! near-tie between two tokens). Sampled answers are not: the rollout engine seeds each
//! batch, so an item's draws depend on which items share its batch. Longest first puts
//! the largest batch, and so the memory peak, at the start, where a run that cannot fit
//! fails at once; the progress bar's time estimate starts high for the same reason.

/// A permutation of item indices, longest item first (ties in item order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LengthOrder {
    /// `order[k]` is the index of the item run `k`-th.
    order: Vec<usize>,
}

impl LengthOrder {
    /// The order of items of the given lengths (one per item, in item order).
    pub fn longest_first(lengths: impl IntoIterator<Item = usize>) -> Self {
        let lengths: Vec<usize> = lengths.into_iter().collect();
        let mut order: Vec<usize> = (0..lengths.len()).collect();
        // A stable sort keeps equal lengths in item order, so the order is reproducible.
        order.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
        Self { order }
    }

    /// The items in run order.
    pub fn arrange<T: Clone>(&self, items: &[T]) -> Vec<T> {
        self.order.iter().map(|&i| items[i].clone()).collect()
    }

    /// Results in run order (one per item) put back in item order.
    pub fn restore<T>(&self, results: Vec<T>) -> Vec<T> {
        assert_eq!(
            results.len(),
            self.order.len(),
            "one result per item is needed to restore the item order"
        );
        let mut slots: Vec<Option<T>> = std::iter::repeat_with(|| None)
            .take(results.len())
            .collect();
        for (&item, result) in self.order.iter().zip(results) {
            slots[item] = Some(result);
        }
        slots
            .into_iter()
            .map(|slot| slot.expect("the order is a permutation"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_first_with_ties_in_item_order() {
        let order = LengthOrder::longest_first([3, 7, 1, 7, 5]);
        assert_eq!(
            order.arrange(&["a", "b", "c", "d", "e"]),
            ["b", "d", "e", "a", "c"]
        );
    }

    #[test]
    fn restore_inverts_arrange() {
        let lengths = [4, 9, 2, 9, 6, 1, 6];
        let items: Vec<usize> = (0..lengths.len()).collect();
        let order = LengthOrder::longest_first(lengths);
        let results: Vec<String> = order
            .arrange(&items)
            .iter()
            .map(|i| format!("result of {i}"))
            .collect();
        let restored = order.restore(results);
        for (i, result) in restored.iter().enumerate() {
            assert_eq!(result, &format!("result of {i}"));
        }
    }

    #[test]
    fn empty_input() {
        let order = LengthOrder::longest_first([]);
        assert!(order.arrange::<u8>(&[]).is_empty());
        assert!(order.restore::<u8>(Vec::new()).is_empty());
    }
}
