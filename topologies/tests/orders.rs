//! The order pipelines on the test driver, over a generated workload with late and
//! out-of-order orders: each store's revenue and orders per minute equal the figures
//! computed from the input, a late order's minute without it, as the window's grace says.

use std::collections::BTreeMap;

use homa::prelude::*;
use homa_topologies::generate::{self, Event, Workload};
use homa_topologies::model::{
    Channel, ItemCounts, MenuItem, Order, OrderLine, Revenue, UnknownItem,
};
use homa_topologies::orders::{
    self, MENU, ORDERS, REVENUE_GRACE, REVENUE_PER_CHANNEL_HOUR, REVENUE_PER_STORE_MINUTE,
    TOP_ITEMS_PER_HOUR, UNKNOWN_ITEMS,
};

/// Revenue and orders per (store, minute start), from the orders in arrival order, as a
/// windowed aggregation with `REVENUE_GRACE` counts them (a late order's window dropped it
/// once stream time passed the window's end and grace); and how many were late.
fn expected(events: &[Event]) -> (BTreeMap<(String, i64), Revenue>, u64) {
    let prices: BTreeMap<String, i64> = generate::menu()
        .into_iter()
        .map(|(id, item)| (id, item.price))
        .collect();
    let grace = i64::try_from(REVENUE_GRACE.as_millis()).expect("a short grace");
    let (mut figures, mut late, mut stream_time) = (BTreeMap::new(), 0, -1);
    for event in events {
        let Event::Order(order) = event else { continue };
        stream_time = stream_time.max(order.time);
        let start = order.time - order.time.rem_euclid(60_000);
        if start + 60_000 <= stream_time - grace {
            late += 1;
            continue;
        }
        let revenue: &mut Revenue = figures.entry((order.store.clone(), start)).or_default();
        revenue.orders += 1;
        for line in &order.lines {
            revenue.revenue += i64::from(line.quantity) * prices[&line.item];
        }
    }
    (figures, late)
}

#[test]
fn revenue_per_store_and_minute_matches_the_input() {
    let mut builder = StreamsBuilder::new();
    orders::build(&mut builder);
    let topology = builder.build().expect("a topology");
    let config = StreamsConfig::builder()
        .application_id("orders-test")
        .build()
        .expect("a config");
    let driver = TopologyTestDriver::new(&topology, config).expect("a driver");
    let menu = driver.create_input_topic::<String, Json<MenuItem>>(MENU);
    for (id, item) in generate::menu() {
        menu.pipe_input_with_timestamp(id, Json(item), 0);
    }
    let workload = Workload::demo(7, 2);
    let events = generate::events(&workload);
    let input = driver.create_input_topic::<String, Json<Order>>(ORDERS);
    let mut piped = 0;
    for event in &events {
        if let Event::Order(order) = event {
            input.pipe_input_with_timestamp(order.store.clone(), Json(order.clone()), order.time);
            piped += 1;
        }
    }
    // A last order an hour on closes every window before it (its own stays open).
    let end = workload.start_ms + workload.span_ms + 3_600_000;
    let closing = Order {
        id: "closing".into(),
        store: "s01".into(),
        customer: "c0".into(),
        channel: homa_topologies::model::Channel::Counter,
        lines: vec![homa_topologies::model::OrderLine {
            item: "i01".into(),
            quantity: 1,
        }],
        time: end,
    };
    input.pipe_input_with_timestamp("s01".into(), Json(closing), end);

    let (expected, late) = expected(&events);
    assert!(piped > 1_000, "a workload of {piped} orders");
    assert!(late > 0, "some orders are late beyond the grace");
    let mut written: BTreeMap<(String, i64), Revenue> = BTreeMap::new();
    let output = driver.create_output_topic::<Vec<u8>, Json<Revenue>>(REVENUE_PER_STORE_MINUTE);
    for (key, value) in output.read_key_values_to_list() {
        let (store, start) = key.split_at(key.len() - 8);
        let start = i64::from_be_bytes(start.try_into().expect("8 bytes"));
        let store = String::from_utf8(store.to_vec()).expect("a store id");
        assert!(
            written.insert((store, start), value.0).is_none(),
            "a window's final figures are written once"
        );
    }
    assert_eq!(written.len(), expected.len());
    assert_eq!(written, expected);

    // Per channel and hour, every 15 minutes; and the items sold per hour: each window's
    // last update. No order is later than these windows' grace.
    let prices: BTreeMap<String, i64> = generate::menu()
        .into_iter()
        .map(|(id, item)| (id, item.price))
        .collect();
    let (mut channels, mut items) = (BTreeMap::new(), BTreeMap::new());
    for event in &events {
        let Event::Order(order) = event else { continue };
        let hour = order.time - order.time.rem_euclid(3_600_000);
        let quarter = order.time - order.time.rem_euclid(900_000);
        for start in (0..4).map(|i| quarter - i * 900_000) {
            let revenue: &mut Revenue = channels
                .entry((order.channel.name().to_string(), start))
                .or_default();
            revenue.orders += 1;
            for line in &order.lines {
                revenue.revenue += i64::from(line.quantity) * prices[&line.item];
            }
        }
        let counts: &mut BTreeMap<String, u64> = items.entry(hour).or_default();
        for line in &order.lines {
            *counts.entry(line.item.clone()).or_default() += u64::from(line.quantity);
        }
    }
    let output = driver.create_output_topic::<Vec<u8>, Json<Revenue>>(REVENUE_PER_CHANNEL_HOUR);
    let mut written: BTreeMap<(String, i64), Revenue> = BTreeMap::new();
    for (key, value) in output.read_key_values_to_list() {
        let (channel, start) = key.split_at(key.len() - 8);
        let start = i64::from_be_bytes(start.try_into().expect("8 bytes"));
        written.insert(
            (String::from_utf8_lossy(channel).into_owned(), start),
            value.0,
        );
    }
    // The closing order's windows are the input's too.
    for start in (0..4).map(|i| end - end.rem_euclid(900_000) - i * 900_000) {
        let revenue = channels.entry(("counter".to_string(), start)).or_default();
        revenue.orders += 1;
        revenue.revenue += prices["i01"];
    }
    assert_eq!(written, channels);
    items
        .entry(end - end.rem_euclid(3_600_000))
        .or_default()
        .entry("i01".to_string())
        .and_modify(|q| *q += 1)
        .or_insert(1);
    let output = driver.create_output_topic::<i64, Json<ItemCounts>>(TOP_ITEMS_PER_HOUR);
    let written: BTreeMap<i64, BTreeMap<String, u64>> = output
        .read_key_values_to_list()
        .into_iter()
        .map(|(hour, counts)| (hour, counts.0.counts))
        .collect();
    assert_eq!(written, items);
    let top = ItemCounts {
        counts: written.values().next().cloned().unwrap_or_default(),
    }
    .top(10);
    assert_eq!(top.len(), 10);
    assert!(top.windows(2).all(|w| w[0].1 >= w[1].1), "{top:?}");
}

#[test]
fn a_line_of_an_item_not_on_the_menu_is_reported_and_the_rest_of_its_order_counted() {
    let mut builder = StreamsBuilder::new();
    orders::build(&mut builder);
    let topology = builder.build().expect("a topology");
    let config = StreamsConfig::builder()
        .application_id("unknown-items-test")
        .build()
        .expect("a config");
    let driver = TopologyTestDriver::new(&topology, config).expect("a driver");
    let menu = driver.create_input_topic::<String, Json<MenuItem>>(MENU);
    let burger = MenuItem {
        name: "Classic Burger".into(),
        category: "burgers".into(),
        price: 599,
    };
    menu.pipe_input_with_timestamp("i01".to_string(), Json(burger), 0);
    let line = |item: &str, quantity| OrderLine {
        item: item.into(),
        quantity,
    };
    let order = Order {
        id: "o1".into(),
        store: "s01".into(),
        customer: "c1".into(),
        channel: Channel::Counter,
        lines: vec![line("i01", 2), line("i99", 1)],
        time: 60_000,
    };
    let input = driver.create_input_topic::<String, Json<Order>>(ORDERS);
    input.pipe_input_with_timestamp("s01".to_string(), Json(order), 60_000);
    // A later order closes the minute (past its grace).
    let later = Order {
        id: "o2".into(),
        store: "s01".into(),
        customer: "c2".into(),
        channel: Channel::Counter,
        lines: vec![line("i01", 1)],
        time: 600_000,
    };
    input.pipe_input_with_timestamp("s01".to_string(), Json(later), 600_000);

    let unknown = driver.create_output_topic::<String, Json<UnknownItem>>(UNKNOWN_ITEMS);
    let reported: Vec<_> = unknown
        .read_key_values_to_list()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    let expected = UnknownItem {
        order: "o1".into(),
        store: "s01".into(),
        line: 1,
        item: "i99".into(),
        quantity: 1,
        time: 60_000,
    };
    assert_eq!(reported, [("s01".to_string(), expected)]);
    let revenue = driver.create_output_topic::<Vec<u8>, Json<Revenue>>(REVENUE_PER_STORE_MINUTE);
    let figures: Vec<Revenue> = (revenue.read_key_values_to_list().into_iter())
        .map(|(_, v)| v.0)
        .collect();
    let first_minute = Revenue {
        revenue: 2 * 599,
        orders: 1,
    };
    assert_eq!(
        figures,
        [first_minute],
        "its known line, and the order, counted"
    );
}
