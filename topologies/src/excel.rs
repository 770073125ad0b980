//! The Excel-usage pipelines: sessions per user, and each department's use per day.

use std::time::Duration;

use homa::prelude::*;

use crate::model::{DepartmentUsage, Employee, ExcelUsage, SessionStats};

/// Excel actions, keyed by user id.
pub const EXCEL_USAGE: &str = "excel-usage";
/// The employees, compacted, keyed by user id.
pub const EMPLOYEES: &str = "employees";
/// Each user's sessions (30 minutes without an action end one), keyed by user and session.
pub const EXCEL_SESSIONS: &str = "excel-sessions";
/// Each department's use per day, keyed by department and day.
pub const DEPARTMENT_USAGE_PER_DAY: &str = "department-usage-per-day";

/// The gap of inactivity that ends a session.
pub const SESSION_GAP: Duration = Duration::from_secs(30 * 60);
/// How late an action may come for its session or day.
pub const USAGE_GRACE: Duration = Duration::from_secs(300);

/// Each user's Excel sessions: actions, edits, formulas and cells, a session being the
/// actions up to [`SESSION_GAP`] apart (its duration is the window's).
pub fn sessions(
    usage: &KStream<String, Json<ExcelUsage>>,
) -> KTable<Windowed<String>, Json<SessionStats>> {
    usage
        .group_by_key()
        .windowed_by(SessionWindows::of_inactivity_gap_and_grace(
            SESSION_GAP,
            USAGE_GRACE,
        ))
        .aggregate_with(
            || Json(SessionStats::default()),
            |_, usage: &Json<ExcelUsage>, stats: Json<SessionStats>| Json(stats.with(usage)),
            |_, earlier: Json<SessionStats>, later: Json<SessionStats>| {
                Json(earlier.merged(*later))
            },
            Materialized::as_("excel-sessions-store"),
        )
}

/// Each department's use per day of event time: the users' actions joined with the
/// employee list (its department for the user, else the one the action names).
pub fn department_usage_per_day(
    builder: &mut StreamsBuilder,
    usage: &KStream<String, Json<ExcelUsage>>,
) -> KTable<Windowed<String>, Json<DepartmentUsage>> {
    let employees =
        builder.table::<String, Json<Employee>>(EMPLOYEES, Materialized::as_("employees"));
    usage
        .left_join_table(
            &employees,
            |usage: &Json<ExcelUsage>, employee: Option<&Json<Employee>>| {
                let mut usage = usage.clone();
                if let Some(employee) = employee {
                    usage.department.clone_from(&employee.department);
                }
                usage
            },
        )
        .group_by(|_, usage: &Json<ExcelUsage>| usage.department.clone())
        .windowed_by(TimeWindows::of_size_and_grace(
            Duration::from_secs(24 * 3600),
            USAGE_GRACE,
        ))
        .aggregate_with(
            || Json(DepartmentUsage::default()),
            |_, usage: &Json<ExcelUsage>, mut day: Json<DepartmentUsage>| {
                day.stats = day.stats.with(usage);
                day.users.insert(usage.user.clone());
                day
            },
            Materialized::as_("department-usage-per-day-store"),
        )
}

/// The Excel pipelines on `builder`, each to its topic.
pub fn build(builder: &mut StreamsBuilder) {
    let usage = builder.stream::<String, Json<ExcelUsage>>(EXCEL_USAGE);
    sessions(&usage).to_stream().to(EXCEL_SESSIONS);
    department_usage_per_day(builder, &usage)
        .to_stream()
        .to(DEPARTMENT_USAGE_PER_DAY);
}
