//! The records the pipelines read and write, as JSON on their topics.
//!
//! Money is in cents (`i64`), times in ms since the epoch (the records' event times are
//! their Kafka timestamps too).

use serde::{Deserialize, Serialize};

/// How an order was placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Channel {
    Counter,
    App,
    DriveThrough,
    Delivery,
}

impl Channel {
    /// Every channel.
    pub const ALL: [Channel; 4] = [
        Channel::Counter,
        Channel::App,
        Channel::DriveThrough,
        Channel::Delivery,
    ];

    /// Its name on topics and in workbooks.
    pub fn name(self) -> &'static str {
        match self {
            Channel::Counter => "counter",
            Channel::App => "app",
            Channel::DriveThrough => "drive-through",
            Channel::Delivery => "delivery",
        }
    }
}

/// One line of an order: a menu item and how many.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OrderLine {
    pub item: String,
    pub quantity: u32,
}

/// An order (topic `orders`, keyed by store id).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Order {
    pub id: String,
    pub store: String,
    pub customer: String,
    pub channel: Channel,
    pub lines: Vec<OrderLine>,
    /// When it was placed.
    pub time: i64,
}

/// A menu item (compacted topic `menu`, keyed by item id).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MenuItem {
    pub name: String,
    pub category: String,
    /// Its price now, in cents.
    pub price: i64,
}

/// What a user did in a workbook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Open,
    Edit,
    Formula,
    Pivot,
    Refresh,
    Save,
    Close,
}

/// One Excel action (topic `excel-usage`, keyed by user id).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ExcelUsage {
    pub user: String,
    pub department: String,
    pub workbook: String,
    pub action: Action,
    pub cells: u32,
    /// When it happened.
    pub time: i64,
}

/// An employee (compacted topic `employees`, keyed by user id).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Employee {
    pub department: String,
    pub role: String,
}

/// An order line with its menu item as the menu has it now (`enriched-lines`, keyed by
/// store id).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EnrichedLine {
    pub order: String,
    pub store: String,
    pub channel: Channel,
    pub item: String,
    pub name: String,
    pub category: String,
    pub quantity: u32,
    /// The item's price, in cents.
    pub unit_price: i64,
    /// `quantity * unit_price`, in cents.
    pub total: i64,
    /// Whether it is its order's first line (an order is counted once, by its first).
    pub first: bool,
}

/// An order line whose item is not on the menu (`unknown-menu-items`, keyed by store id):
/// where it is, for whoever keeps the menu.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UnknownItem {
    pub order: String,
    pub store: String,
    /// The line's place in its order, from 0.
    pub line: usize,
    pub item: String,
    pub quantity: u32,
    /// The order's event time.
    pub time: i64,
}

/// Revenue and orders of a window (`revenue-per-store-minute`, keyed by store and window).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Revenue {
    /// In cents.
    pub revenue: i64,
    pub orders: u64,
}

/// How many of each item a window sold (`top-items-per-hour`, keyed by the hour's start).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemCounts {
    /// Quantity sold, by item id.
    pub counts: std::collections::BTreeMap<String, u64>,
}

impl ItemCounts {
    /// The `n` best sellers, the most sold first (ties by item id).
    pub fn top(&self, n: usize) -> Vec<(String, u64)> {
        let mut ranked: Vec<(String, u64)> =
            self.counts.iter().map(|(k, v)| (k.clone(), *v)).collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        ranked.truncate(n);
        ranked
    }
}

/// An item's quantity in a window, on its way to the window's ranking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemQuantity {
    pub item: String,
    pub quantity: u64,
}

/// What a user did in one Excel session (`excel-sessions`, keyed by user and session).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SessionStats {
    pub actions: u64,
    pub edits: u64,
    pub formulas: u64,
    pub cells: u64,
}

impl SessionStats {
    /// These figures with one more action.
    pub fn with(self, usage: &ExcelUsage) -> Self {
        Self {
            actions: self.actions + 1,
            edits: self.edits + u64::from(usage.action == Action::Edit),
            formulas: self.formulas + u64::from(usage.action == Action::Formula),
            cells: self.cells + u64::from(usage.cells),
        }
    }

    /// Two sessions' figures together.
    pub fn merged(self, other: Self) -> Self {
        Self {
            actions: self.actions + other.actions,
            edits: self.edits + other.edits,
            formulas: self.formulas + other.formulas,
            cells: self.cells + other.cells,
        }
    }
}

/// A department's Excel use in a day (`department-usage-per-day`, keyed by department and
/// day).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepartmentUsage {
    pub stats: SessionStats,
    /// The users who did something.
    pub users: std::collections::BTreeSet<String>,
}
