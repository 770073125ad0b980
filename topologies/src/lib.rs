//! The HOMA pipelines, each a pure function that adds its operators to a `StreamsBuilder`:
//! burger orders enriched with the menu, their revenue per store and minute and per
//! channel and hour, and the items sold per hour (`orders`); Excel sessions per user and
//! each department's use per day (`excel`); all over the records of `model`. `generate`
//! makes a synthetic workload of them, the same for the same seed, which the apps ingest
//! and the tests check the pipelines against. [`build`] adds them all.

pub mod excel;
pub mod generate;
pub mod model;
pub mod orders;

/// Every pipeline on `builder`: the analysis `homa analyze` runs.
pub fn build(builder: &mut homa::dsl::StreamsBuilder) {
    orders::build(builder);
    excel::build(builder);
}

/// The stores of the windowed aggregations of each input, by input topic.
const WINDOWED_STORES: [(&str, &[&str]); 2] = [
    (
        orders::ORDERS,
        &[
            "revenue-per-store-minute-store",
            "revenue-per-channel-hour-store",
            "item-quantities-per-hour",
            "items-per-hour",
        ],
    ),
    (
        excel::EXCEL_USAGE,
        &["excel-sessions-store", "department-usage-per-day-store"],
    ),
];

/// The input topic (`orders`, `excel-usage`) whose records a topic of the analysis holds:
/// the input itself, or a repartition topic of one of its aggregations
/// (`<application id>-<store>-repartition`). For the late-data report, which the metrics
/// give by the topic a late record was read from.
pub fn source_of(topic: &str) -> Option<&'static str> {
    WINDOWED_STORES.iter().find_map(|(input, stores)| {
        let repartitioned = stores
            .iter()
            .any(|store| topic.ends_with(&format!("-{store}-repartition")));
        (topic == *input || repartitioned).then_some(*input)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_late_record_is_told_by_the_input_it_came_from() {
        use super::source_of;
        assert_eq!(source_of("orders"), Some("orders"));
        let channels = "app-1-revenue-per-channel-hour-store-repartition";
        assert_eq!(source_of(channels), Some("orders"));
        assert_eq!(
            source_of("app-excel-sessions-store-repartition"),
            Some("excel-usage")
        );
        assert_eq!(source_of("menu"), None);
    }
}
