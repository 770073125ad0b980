//! The Excel-usage pipelines on the test driver, over a generated workload with late and
//! out-of-order actions: every action is in exactly one of its user's sessions, sessions
//! are at least the gap apart, and each department's day adds up to its users' actions.

use std::collections::{BTreeMap, BTreeSet};

use homa::prelude::*;
use homa_topologies::excel::{
    self, DEPARTMENT_USAGE_PER_DAY, EMPLOYEES, EXCEL_SESSIONS, EXCEL_USAGE, SESSION_GAP,
};
use homa_topologies::generate::{self, Event, Workload};
use homa_topologies::model::{DepartmentUsage, Employee, ExcelUsage, SessionStats};

#[test]
fn sessions_and_departments_add_up_to_the_actions() {
    let mut builder = StreamsBuilder::new();
    excel::build(&mut builder);
    let topology = builder.build().expect("a topology");
    let config = StreamsConfig::builder()
        .application_id("excel-test")
        .build()
        .expect("a config");
    let driver = TopologyTestDriver::new(&topology, config).expect("a driver");
    let workload = Workload::demo(11, 3);
    let employees = driver.create_input_topic::<String, Json<Employee>>(EMPLOYEES);
    for (id, employee) in generate::employees(workload.users) {
        employees.pipe_input_with_timestamp(id, Json(employee), 0);
    }
    let input = driver.create_input_topic::<String, Json<ExcelUsage>>(EXCEL_USAGE);
    let (mut per_user, mut per_day): (
        BTreeMap<String, u64>,
        BTreeMap<(String, i64), DepartmentUsage>,
    ) = (BTreeMap::new(), BTreeMap::new());
    for event in generate::events(&workload) {
        let Event::Usage(usage) = event else { continue };
        *per_user.entry(usage.user.clone()).or_default() += 1;
        let day = usage.time - usage.time.rem_euclid(86_400_000);
        let entry = per_day.entry((usage.department.clone(), day)).or_default();
        entry.stats = entry.stats.with(&usage);
        entry.users.insert(usage.user.clone());
        input.pipe_input_with_timestamp(usage.user.clone(), Json(usage.clone()), usage.time);
    }
    assert!(per_user.values().sum::<u64>() > 1_000);

    // The sessions each user has at the end: the last value of each session key that no
    // tombstone (a merge) took back.
    let mut live: BTreeMap<Vec<u8>, Option<SessionStats>> = BTreeMap::new();
    let output = driver.create_output_topic::<Vec<u8>, Json<SessionStats>>(EXCEL_SESSIONS);
    for record in output.read_records_to_list() {
        live.insert(
            record.key.expect("a session key"),
            record.value.map(|v| v.0),
        );
    }
    let mut sessions: BTreeMap<String, Vec<(i64, i64, SessionStats)>> = BTreeMap::new();
    for (key, stats) in live {
        let Some(stats) = stats else { continue };
        let (user, times) = key.split_at(key.len() - 16);
        let end = i64::from_be_bytes(times[..8].try_into().expect("8 bytes"));
        let start = i64::from_be_bytes(times[8..].try_into().expect("8 bytes"));
        let user = String::from_utf8(user.to_vec()).expect("a user id");
        sessions.entry(user).or_default().push((start, end, stats));
    }
    let gap = i64::try_from(SESSION_GAP.as_millis()).expect("a short gap");
    for (user, mut list) in sessions.clone() {
        list.sort_by_key(|(start, _, _)| *start);
        for pair in list.windows(2) {
            assert!(
                pair[1].0 - pair[0].1 > gap,
                "{user}: sessions {pair:?} are one"
            );
        }
    }
    let actions: BTreeMap<String, u64> = sessions
        .iter()
        .map(|(user, list)| (user.clone(), list.iter().map(|(_, _, s)| s.actions).sum()))
        .collect();
    assert_eq!(actions, per_user);

    let output =
        driver.create_output_topic::<Vec<u8>, Json<DepartmentUsage>>(DEPARTMENT_USAGE_PER_DAY);
    let mut written: BTreeMap<(String, i64), DepartmentUsage> = BTreeMap::new();
    for (key, value) in output.read_key_values_to_list() {
        let (department, day) = key.split_at(key.len() - 8);
        let day = i64::from_be_bytes(day.try_into().expect("8 bytes"));
        written.insert(
            (String::from_utf8_lossy(department).into_owned(), day),
            value.0,
        );
    }
    assert_eq!(written, per_day);
    let users: BTreeSet<&String> = written.values().flat_map(|d| &d.users).collect();
    assert_eq!(users.len(), workload.users);
}
