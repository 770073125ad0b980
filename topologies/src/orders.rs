//! The burger-order pipelines: orders enriched with the menu, and revenue per store and
//! minute.

use std::time::Duration;

use homa::prelude::*;

use crate::model::{EnrichedLine, MenuItem, Order, Revenue};

/// Orders, keyed by store id.
pub const ORDERS: &str = "orders";
/// The menu, compacted, keyed by item id.
pub const MENU: &str = "menu";
/// The menu's global store.
pub const MENU_STORE: &str = "menu";
/// Revenue and orders per store and minute, final results only.
pub const REVENUE_PER_STORE_MINUTE: &str = "revenue-per-store-minute";

/// How late an order may come for its minute of revenue: after that it is dropped (and
/// counted as late).
pub const REVENUE_GRACE: Duration = Duration::from_secs(30);

/// Each line of each order with its menu item as the menu has it now (a join with the
/// menu, a global table: every instance has all of it), keyed by store id. A line whose
/// item is not on the menu is dropped and counted.
pub fn enriched_lines(builder: &mut StreamsBuilder) -> KStream<String, Json<EnrichedLine>> {
    let menu = builder.global_table::<String, Json<MenuItem>>(MENU, Materialized::as_(MENU_STORE));
    builder
        .stream::<String, Json<Order>>(ORDERS)
        .flat_map_values(|order: &Json<Order>| {
            let order = order.clone();
            (0..order.lines.len()).map(move |i| (order.clone(), i))
        })
        .join_global(
            &menu,
            |_, (order, i): &(Json<Order>, usize)| order.lines[*i].item.clone(),
            |(order, i), item| {
                let line = &order.lines[*i];
                Json(EnrichedLine {
                    order: order.id.clone(),
                    store: order.store.clone(),
                    channel: order.channel,
                    item: line.item.clone(),
                    name: item.name.clone(),
                    category: item.category.clone(),
                    quantity: line.quantity,
                    unit_price: item.price,
                    total: i64::from(line.quantity) * item.price,
                    first: *i == 0,
                })
            },
        )
}

/// Revenue and orders of each store in each minute of event time (tumbling windows,
/// [`REVENUE_GRACE`]), each window's final figures once it closes, into
/// [`REVENUE_PER_STORE_MINUTE`].
pub fn revenue_per_store_minute(
    lines: &KStream<String, Json<EnrichedLine>>,
) -> KTable<Windowed<String>, Json<Revenue>> {
    lines
        .group_by_key()
        .windowed_by(TimeWindows::of_size_and_grace(
            Duration::from_secs(60),
            REVENUE_GRACE,
        ))
        .aggregate_with(
            || Json(Revenue::default()),
            |_, line: &Json<EnrichedLine>, sum: Json<Revenue>| {
                Json(Revenue {
                    revenue: sum.revenue + line.total,
                    orders: sum.orders + u64::from(line.first),
                })
            },
            Materialized::as_("revenue-per-store-minute-store"),
        )
        .suppress(Suppressed::until_window_closes(BufferConfig::unbounded()))
}

/// The order pipelines on `builder`: revenue per store and minute to its topic.
pub fn build(builder: &mut StreamsBuilder) {
    let lines = enriched_lines(builder);
    revenue_per_store_minute(&lines)
        .to_stream()
        .to(REVENUE_PER_STORE_MINUTE);
}
