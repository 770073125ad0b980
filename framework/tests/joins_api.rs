//! The joins' public API as the joins issue writes it: every join kind in one program,
//! run on the test driver.

use std::time::Duration;

use homa::prelude::*;

fn customer_id_of(order: &str) -> String {
    order.split(':').next().unwrap_or_default().to_string()
}

fn product_id_of(order: &str) -> String {
    order.rsplit(':').next().unwrap_or_default().to_string()
}

#[test]
fn a_program_of_every_join_runs_on_the_driver() {
    let mut builder = StreamsBuilder::new();
    let s = Duration::from_secs;
    let left = builder.stream::<String, String>("left");
    let right = builder.stream::<String, String>("right");
    let w = JoinWindows::of_time_difference_and_grace(s(5), s(2));
    left.join(&right, |l, r| format!("{l}+{r}"), w).to("inner");
    left.left_join(&right, |l, r: Option<&String>| format!("{l}+{r:?}"), w)
        .to("left");
    left.outer_join(
        &right,
        |l: Option<&String>, r: Option<&String>| format!("{l:?}+{r:?}"),
        w,
    )
    .to("outer");
    left.join_with(
        &right,
        |l, r| format!("{l}*{r}"),
        JoinWindows::of_time_difference_without_grace(s(5)),
        StreamJoined::with_store_name("named"),
    )
    .to("named");

    let orders = builder.stream::<String, String>("orders");
    let customers: KTable<String, String> =
        builder.table("customers", Materialized::as_("customers"));
    orders
        .join_table(&customers, |o, c| format!("{o}/{c}"))
        .to("enriched");
    orders
        .left_join_table(&customers, |o, c: Option<&String>| format!("{o}/{c:?}"))
        .to("enriched-all");

    let a: KTable<String, String> = builder.table("a", Materialized::default());
    let b: KTable<String, String> = builder.table("b", Materialized::default());
    a.join(&b, |x, y| format!("{x}{y}")).to_stream().to("ab");
    a.left_join(&b, |x, y: Option<&String>| format!("{x}{y:?}"))
        .to_stream()
        .to("ab-left");
    a.outer_join(&b, |x: Option<&String>, y: Option<&String>| {
        format!("{x:?}{y:?}")
    })
    .to_stream()
    .to("ab-outer");

    let orders_table: KTable<String, String> =
        builder.table("orders-table", Materialized::default());
    orders_table
        .join_on_foreign_key(
            &customers,
            |order: &String| customer_id_of(order),
            |order, customer| format!("{order}@{customer}"),
        )
        .to_stream()
        .to("fk");
    orders_table
        .left_join_on_foreign_key(
            &customers,
            |order: &String| customer_id_of(order),
            |order, c: Option<&String>| format!("{order}@{c:?}"),
        )
        .to_stream()
        .to("fk-left");

    let products: GlobalKTable<String, String> =
        builder.global_table("products", Materialized::as_("products"));
    orders
        .join_global(
            &products,
            |_k, v: &String| product_id_of(v),
            |v, p| format!("{v}#{p}"),
        )
        .to("with-product");
    orders
        .left_join_global(
            &products,
            |_k, v: &String| product_id_of(v),
            |v, p: Option<&String>| format!("{v}#{p:?}"),
        )
        .to("with-product-all");

    let clicks = builder.stream::<String, String>("clicks");
    let views = builder.stream::<String, String>("views");
    let totals: KTable<String, i64> = clicks
        .group_by_key()
        .cogroup(|_k, v: &String, agg: i64| agg + v.len() as i64)
        .cogroup(&views.group_by_key(), |_k, v: &String, agg: i64| {
            agg + 100 * v.len() as i64
        })
        .aggregate(|| 0);
    totals.to_stream().to("totals");

    let topology = builder.build().expect("a topology");
    let config = StreamsConfig::builder()
        .application_id("joins-api")
        .build()
        .expect("a config");
    let driver = TopologyTestDriver::new(&topology, config).expect("a driver");
    let pipe = |topic: &str, key: &str, value: &str, at: i64| {
        driver
            .create_input_topic::<String, String>(topic)
            .pipe_input_with_timestamp(key.to_string(), value.to_string(), at);
    };
    pipe("customers", "c1", "alice", 1);
    pipe("products", "p1", "burger", 1);
    pipe("orders", "c1", "c1:p1", 2);
    pipe("orders-table", "o1", "c1:p1", 3);
    pipe("left", "k", "l", 10);
    pipe("right", "k", "r", 12);
    pipe("a", "k", "x", 1);
    pipe("b", "k", "y", 2);
    pipe("clicks", "u", "ab", 1);
    pipe("views", "u", "c", 2);
    let read = |topic: &str| -> Vec<String> {
        driver
            .create_output_topic::<String, String>(topic)
            .read_values_to_list()
    };
    assert_eq!(read("enriched"), ["c1:p1/alice"]);
    assert_eq!(read("with-product"), ["c1:p1#burger"]);
    assert_eq!(read("fk"), ["c1:p1@alice"]);
    assert_eq!(read("inner"), ["l+r"]);
    assert_eq!(read("named"), ["l*r"]);
    assert_eq!(read("ab"), ["xy"]);
    let totals: Vec<i64> = driver
        .create_output_topic::<String, i64>("totals")
        .read_values_to_list();
    assert_eq!(totals, [2, 102]);
}
