//! The burger-order pipelines: orders enriched with the menu, and revenue per store and
//! minute.

use std::time::Duration;

use homa::prelude::*;

use crate::model::{EnrichedLine, ItemCounts, ItemQuantity, MenuItem, Order, Revenue, UnknownItem};

/// Orders, keyed by store id.
pub const ORDERS: &str = "orders";
/// The menu, compacted, keyed by item id.
pub const MENU: &str = "menu";
/// The menu's global store.
pub const MENU_STORE: &str = "menu";
/// Revenue and orders per store and minute, final results only.
pub const REVENUE_PER_STORE_MINUTE: &str = "revenue-per-store-minute";

/// Revenue and orders per channel and hour, every 15 minutes.
pub const REVENUE_PER_CHANNEL_HOUR: &str = "revenue-per-channel-hour";
/// Quantities sold per item and hour, keyed by the hour's start.
pub const TOP_ITEMS_PER_HOUR: &str = "top-items-per-hour";
/// The order lines whose item is not on the menu: the menu's owners' to-do list.
pub const UNKNOWN_ITEMS: &str = "unknown-menu-items";

/// How late a line may come for the hourly figures (channels, items).
pub const HOURLY_GRACE: Duration = Duration::from_secs(300);

/// How late an order may come for its minute of revenue: after that it is dropped (and
/// counted as late).
pub const REVENUE_GRACE: Duration = Duration::from_secs(30);

/// Each line of each order with its menu item as the menu has it now (a join with the
/// menu, a global table: every instance has all of it), keyed by store id. A line whose
/// item is not on the menu goes to [`UNKNOWN_ITEMS`] instead, saying where it is.
pub fn enriched_lines(builder: &mut StreamsBuilder) -> KStream<String, Json<EnrichedLine>> {
    let menu = builder.global_table::<String, Json<MenuItem>>(MENU, Materialized::as_(MENU_STORE));
    let lines = builder
        .stream::<String, Json<Order>>(ORDERS)
        .flat_map_values(|order: &Json<Order>| {
            let order = order.clone();
            (0..order.lines.len()).map(move |i| (order.clone(), i))
        })
        .left_join_global(
            &menu,
            |_, (order, i): &(Json<Order>, usize)| order.lines[*i].item.clone(),
            |(order, i), item: Option<&Json<MenuItem>>| {
                let line = &order.lines[*i];
                let Some(item) = item else {
                    return Err(Json(UnknownItem {
                        order: order.id.clone(),
                        store: order.store.clone(),
                        line: *i,
                        item: line.item.clone(),
                        quantity: line.quantity,
                        time: order.time,
                    }));
                };
                Ok(Json(EnrichedLine {
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
                }))
            },
        );
    lines
        .flat_map_values(|line: &Result<_, Json<UnknownItem>>| line.clone().err())
        .to(UNKNOWN_ITEMS);
    lines.flat_map_values(|line: &Result<Json<EnrichedLine>, _>| line.clone().ok())
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
            |_, line: &Json<EnrichedLine>, sum: Json<Revenue>| with_line(sum, line),
            Materialized::as_("revenue-per-store-minute-store"),
        )
        .suppress(Suppressed::until_window_closes(BufferConfig::unbounded()))
}

/// Revenue and orders of each channel in hours of event time that start every 15
/// minutes (hopping windows, [`HOURLY_GRACE`]), updated as lines come.
pub fn revenue_per_channel_hour(
    lines: &KStream<String, Json<EnrichedLine>>,
) -> KTable<Windowed<String>, Json<Revenue>> {
    lines
        .group_by(|_, line: &Json<EnrichedLine>| line.channel.name().to_string())
        .windowed_by(
            TimeWindows::of_size_and_grace(Duration::from_secs(3600), HOURLY_GRACE)
                .advance_by(Duration::from_secs(900)),
        )
        .aggregate_with(
            || Json(Revenue::default()),
            |_, line: &Json<EnrichedLine>, sum: Json<Revenue>| with_line(sum, line),
            Materialized::as_("revenue-per-channel-hour-store"),
        )
}

/// The quantity of each item sold in each hour of event time (tumbling, [`HOURLY_GRACE`]),
/// gathered by hour into one row per hour (keyed by its start) to rank: a windowed
/// aggregate, then a table grouped by window, whose counts follow every update.
pub fn items_per_hour(
    lines: &KStream<String, Json<EnrichedLine>>,
) -> KTable<i64, Json<ItemCounts>> {
    lines
        .group_by(|_, line: &Json<EnrichedLine>| line.item.clone())
        .windowed_by(TimeWindows::of_size_and_grace(
            Duration::from_secs(3600),
            HOURLY_GRACE,
        ))
        .aggregate_with(
            || 0_u64,
            |_, line: &Json<EnrichedLine>, quantity: u64| quantity + u64::from(line.quantity),
            Materialized::as_("item-quantities-per-hour"),
        )
        .group_by(|key: &Windowed<String>, quantity: &u64| {
            let item = ItemQuantity {
                item: key.key().clone(),
                quantity: *quantity,
            };
            (key.window().start(), Json(item))
        })
        .aggregate_with(
            || Json(ItemCounts::default()),
            |_, item: &Json<ItemQuantity>, mut counts: Json<ItemCounts>| {
                *counts.counts.entry(item.item.clone()).or_default() += item.quantity;
                counts
            },
            |_, item: &Json<ItemQuantity>, mut counts: Json<ItemCounts>| {
                if let Some(count) = counts.counts.get_mut(&item.item) {
                    *count = count.saturating_sub(item.quantity);
                    if *count == 0 {
                        counts.counts.remove(&item.item);
                    }
                }
                counts
            },
            Materialized::as_("items-per-hour"),
        )
}

/// `sum` with one more line (and its order, by its first line).
fn with_line(sum: Json<Revenue>, line: &EnrichedLine) -> Json<Revenue> {
    Json(Revenue {
        revenue: sum.revenue + line.total,
        orders: sum.orders + u64::from(line.first),
    })
}

/// The order pipelines on `builder`, each to its topic.
pub fn build(builder: &mut StreamsBuilder) {
    let lines = enriched_lines(builder);
    revenue_per_store_minute(&lines)
        .to_stream()
        .to(REVENUE_PER_STORE_MINUTE);
    revenue_per_channel_hour(&lines)
        .to_stream()
        .to(REVENUE_PER_CHANNEL_HOUR);
    items_per_hour(&lines).to_stream().to(TOP_ITEMS_PER_HOUR);
}
