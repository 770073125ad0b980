//! `homa topics` against the real broker: create (again, as no error), list, describe,
//! delete.

mod common;

use homa_integration_tests::{kafka, unique_name};

fn homa(args: &[&str]) -> (bool, String) {
    common::homa("topics", args)
}

#[test]
fn topics_are_created_listed_described_and_deleted() {
    let (orders, menu) = (unique_name("orders"), unique_name("menu"));
    let (ok, text) = homa(&["create", &orders, "--partitions", "3"]);
    assert!(
        ok && text.contains(&format!("created {orders} (3 partitions)")),
        "{text}"
    );
    let (ok, text) = homa(&["create", &menu, "--partitions", "1", "--compact"]);
    assert!(ok, "{text}");
    assert_eq!(
        kafka().topic_configs(&menu).expect("configs")["cleanup.policy"],
        "compact"
    );
    let (ok, text) = homa(&["create", &orders, "--partitions", "3"]);
    assert!(ok && text.contains("exists already"), "{text}");
    let (ok, text) = homa(&["create", &orders, "--partitions", "5"]);
    assert!(
        !ok && text.contains("exists with 3 partitions, not 5"),
        "{text}"
    );
    let (ok, text) = homa(&["list"]);
    assert!(
        ok && text.contains(&format!("{orders}\t3 partitions")),
        "{text}"
    );
    let (ok, text) = homa(&["describe", &orders]);
    assert!(ok && text.contains("partition 2: leader"), "{text}");
    let (ok, text) = homa(&["delete", &orders, &menu]);
    assert!(ok && text.contains(&format!("deleted {orders}")), "{text}");
    let (ok, text) = homa(&["describe", &orders]);
    assert!(!ok && text.contains("does not exist"), "{text}");
}
