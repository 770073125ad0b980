//! A synthetic burger-order and Excel-usage workload, the same for the same seed: a menu
//! and an employee list, then orders and Excel actions over a simulated span, in event
//! time. Orders peak at lunch (11:30 to 13:30) and favour a few popular items; a few users
//! do most of the Excel work; a share of the events arrive late (after later ones, by up to
//! `late_ms`), as devices that were offline send them.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::model::{Action, Channel, Employee, ExcelUsage, MenuItem, Order, OrderLine};

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    pub seed: u64,
    /// The event time of the first events, ms since the epoch.
    pub start_ms: i64,
    /// How much event time the events span.
    pub span_ms: i64,
    pub stores: usize,
    /// About how many orders an hour each store takes outside the lunch peak (three times
    /// as many in it).
    pub orders_per_store_hour: u32,
    pub users: usize,
    /// Excel actions an hour of an ordinary user (heavy users do ten times as many).
    pub actions_per_user_hour: u32,
    /// The share of events that arrive late, in `0.0..=1.0`.
    pub late_share: f64,
    /// How late a late event arrives at most.
    pub late_ms: i64,
}

impl Workload {
    /// A few simulated hours around lunch on 2026-12-01, for the demo and the tests.
    pub fn demo(seed: u64, hours: i64) -> Self {
        Self {
            seed,
            // 2026-12-01 10:00 UTC.
            start_ms: 1_796_119_200_000,
            span_ms: hours * 3_600_000,
            stores: 5,
            orders_per_store_hour: 120,
            users: 40,
            actions_per_user_hour: 30,
            late_share: 0.02,
            late_ms: 90_000,
        }
    }
}

/// The menu: item ids `i01`.. with names, categories and prices (cents).
pub fn menu() -> Vec<(String, MenuItem)> {
    const ITEMS: [(&str, &str, i64); 16] = [
        ("Classic Burger", "burgers", 599),
        ("Cheeseburger", "burgers", 649),
        ("Bacon Burger", "burgers", 749),
        ("Veggie Burger", "burgers", 699),
        ("Double Burger", "burgers", 899),
        ("Chicken Sandwich", "sandwiches", 679),
        ("Fish Sandwich", "sandwiches", 629),
        ("Fries", "sides", 249),
        ("Large Fries", "sides", 329),
        ("Onion Rings", "sides", 299),
        ("Salad", "sides", 449),
        ("Cola", "drinks", 199),
        ("Lemonade", "drinks", 229),
        ("Milkshake", "drinks", 379),
        ("Coffee", "drinks", 179),
        ("Sundae", "desserts", 299),
    ];
    ITEMS
        .iter()
        .enumerate()
        .map(|(i, (name, category, price))| {
            let item = MenuItem {
                name: (*name).to_string(),
                category: (*category).to_string(),
                price: *price,
            };
            (format!("i{:02}", i + 1), item)
        })
        .collect()
}

/// The departments users belong to.
pub const DEPARTMENTS: [&str; 4] = ["finance", "operations", "marketing", "people"];

/// The employees: user ids `u01`.. with their department and role.
pub fn employees(users: usize) -> Vec<(String, Employee)> {
    (0..users)
        .map(|i| {
            let employee = Employee {
                department: DEPARTMENTS[i % DEPARTMENTS.len()].to_string(),
                role: if i % 7 == 0 { "manager" } else { "analyst" }.to_string(),
            };
            (format!("u{:02}", i + 1), employee)
        })
        .collect()
}

/// An event of the workload, in the order it arrives.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Keyed by store id.
    Order(Order),
    /// Keyed by user id.
    Usage(ExcelUsage),
}

impl Event {
    /// Its event time.
    pub fn time(&self) -> i64 {
        match self {
            Event::Order(order) => order.time,
            Event::Usage(usage) => usage.time,
        }
    }
}

/// The workload's events, in arrival order: by event time, except the late ones, which
/// arrive up to `late_ms` after their time.
pub fn events(workload: &Workload) -> Vec<Event> {
    let mut rng = SmallRng::seed_from_u64(workload.seed);
    let menu = menu();
    let staff = employees(workload.users);
    // (arrival time, event)
    let mut events: Vec<(i64, Event)> = Vec::new();
    let hours = (workload.span_ms as f64 / 3_600_000.0).max(0.0);
    for store in 0..workload.stores {
        let store_id = format!("s{:02}", store + 1);
        let count = (f64::from(workload.orders_per_store_hour) * hours * 1.6) as usize;
        for n in 0..count {
            let time = order_time(&mut rng, workload);
            let lines = (0..rng.random_range(1..=4))
                .map(|_| OrderLine {
                    item: menu[popular(&mut rng, menu.len())].0.clone(),
                    quantity: rng.random_range(1..=3),
                })
                .collect();
            let order = Order {
                id: format!("{store_id}-{n:06}"),
                store: store_id.clone(),
                customer: format!("c{:05}", rng.random_range(0..20_000)),
                channel: Channel::ALL[rng.random_range(0..Channel::ALL.len())],
                lines,
                time,
            };
            events.push((arrival(&mut rng, workload, time), Event::Order(order)));
        }
    }
    for (user, (user_id, employee)) in staff.iter().enumerate() {
        let heavy = user % 10 == 0;
        let rate = f64::from(workload.actions_per_user_hour) * if heavy { 10.0 } else { 1.0 };
        let count = (rate * hours) as usize;
        for n in 0..count {
            let time = workload.start_ms + rng.random_range(0..workload.span_ms.max(1));
            let actions = [
                Action::Open,
                Action::Edit,
                Action::Edit,
                Action::Edit,
                Action::Formula,
                Action::Formula,
                Action::Pivot,
                Action::Refresh,
                Action::Save,
                Action::Close,
            ];
            let usage = ExcelUsage {
                user: user_id.clone(),
                department: employee.department.clone(),
                workbook: format!("{}-{}.xlsx", employee.department, n % 3),
                action: actions[rng.random_range(0..actions.len())],
                cells: rng.random_range(1..200),
                time,
            };
            events.push((arrival(&mut rng, workload, time), Event::Usage(usage)));
        }
    }
    events.sort_by_key(|(arrival, event)| (*arrival, event.time()));
    events.into_iter().map(|(_, event)| event).collect()
}

/// An order's time: uniform over the span, three times as dense over lunch.
fn order_time(rng: &mut SmallRng, workload: &Workload) -> i64 {
    loop {
        let time = workload.start_ms + rng.random_range(0..workload.span_ms.max(1));
        let minute_of_day = (time / 60_000).rem_euclid(24 * 60);
        let lunch = (11 * 60 + 30..13 * 60 + 30).contains(&minute_of_day);
        // Keep a lunch time always, another one in three: lunch is three times as dense.
        if lunch || rng.random_range(0..3) == 0 {
            return time;
        }
    }
}

/// When an event of `time` arrives: at once, or late for a share of them.
fn arrival(rng: &mut SmallRng, workload: &Workload, time: i64) -> i64 {
    if rng.random_bool(workload.late_share.clamp(0.0, 1.0)) {
        time + rng.random_range(1..=workload.late_ms.max(1))
    } else {
        time
    }
}

/// An index below `n`, the first ones much more often (a rough Zipf: rank r weighs 1/r).
fn popular(rng: &mut SmallRng, n: usize) -> usize {
    let total: f64 = (1..=n).map(|r| 1.0 / r as f64).sum();
    let mut pick = rng.random_range(0.0..total);
    for r in 1..=n {
        pick -= 1.0 / r as f64;
        if pick <= 0.0 {
            return r - 1;
        }
    }
    n - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_makes_the_same_events() {
        let workload = Workload::demo(3, 1);
        assert_eq!(events(&workload), events(&workload));
        assert_ne!(events(&workload), events(&Workload::demo(4, 1)));
    }

    #[test]
    fn orders_peak_at_lunch_and_some_arrive_late() {
        let workload = Workload::demo(5, 4);
        let events = events(&workload);
        let (mut lunch, mut other, mut late, mut newest) = (0, 0, 0, i64::MIN);
        for event in &events {
            if event.time() < newest {
                late += 1;
            }
            newest = newest.max(event.time());
            if let Event::Order(order) = event {
                let minute = (order.time / 60_000).rem_euclid(24 * 60);
                match (11 * 60 + 30..13 * 60 + 30).contains(&minute) {
                    true => lunch += 1,
                    false => other += 1,
                }
            }
        }
        // Two lunch hours and two others, three times as dense.
        assert!(lunch > 2 * other, "{lunch} lunch orders, {other} others");
        assert!(
            late > 0 && late < events.len() / 10,
            "{late} late of {}",
            events.len()
        );
    }

    #[test]
    fn popular_items_come_first() {
        let mut rng = SmallRng::seed_from_u64(1);
        let mut counts = [0_u32; 16];
        for _ in 0..10_000 {
            counts[popular(&mut rng, 16)] += 1;
        }
        assert!(counts[0] > 5 * counts[15], "{counts:?}");
    }
}
