//! The split keeps articles whole; the shuffle is a seeded permutation.

use std::collections::{HashMap, HashSet};

use pretrainzero::data::split::shuffled;
use pretrainzero::data::{CorpusSpec, ParagraphRules, Split, SplitRule};

#[test]
fn no_article_on_both_sides_and_fraction_close() {
    let spec = CorpusSpec {
        path: crate::wikipedia_sample(),
        format: None,
        text_field: "text".into(),
        rules: ParagraphRules::default(),
    };
    let rule = SplitRule {
        seed: 11,
        validation_fraction: 0.3,
    };
    let mut sides: HashMap<String, HashSet<bool>> = HashMap::new();
    let mut paragraphs = 0;
    for paragraph in spec.open().unwrap() {
        let validation = rule.split_of(&paragraph.article_id) == Split::Validation;
        sides
            .entry(paragraph.article_id)
            .or_default()
            .insert(validation);
        paragraphs += 1;
    }
    assert!(paragraphs > 1000);
    assert!(sides.values().all(|s| s.len() == 1), "an article was split");
    let held_out = sides.values().filter(|s| s.contains(&true)).count() as f64 / sides.len() as f64;
    // 83 articles, p = 0.3: the binomial standard deviation is 0.05.
    assert!(
        (held_out - 0.3).abs() < 0.2,
        "validation fraction {held_out}"
    );
    // A different seed gives a different split.
    let other = SplitRule {
        seed: 12,
        validation_fraction: 0.3,
    };
    assert!(sides
        .keys()
        .any(|id| rule.split_of(id) != other.split_of(id)));
}

#[test]
fn shuffle_is_deterministic_and_a_permutation() {
    let items: Vec<u32> = (0..1000).collect();
    let a = shuffled(items.clone(), 64, 5);
    let b = shuffled(items.clone(), 64, 5);
    let c = shuffled(items.clone(), 64, 6);
    assert_eq!(a, b, "same seed, same order");
    assert_ne!(a, c, "another seed, another order");
    assert_ne!(a, items, "the order changed");
    let mut sorted = a.clone();
    sorted.sort();
    assert_eq!(sorted, items, "a permutation");
    // With a buffer of 64, item k has not entered before output k - 64: no item
    // comes out more than 64 places early.
    for (position, &item) in a.iter().enumerate() {
        assert!(item as usize <= position + 64, "item {item} at {position}");
    }
}
