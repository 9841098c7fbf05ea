use super::*;

fn at(ms: u64) -> Stamp {
    Stamp::from_nanos(ms * 1_000_000)
}

fn active(until_ms: u64) -> LeaseState {
    LeaseState::Active { until: at(until_ms) }
}

fn sup(on_child_exit: OnChildExit, exit_on_loss: bool) -> Supervisor {
    Supervisor::new(3, RunOptions { on_child_exit, exit_on_loss }, Duration::from_millis(100))
}

fn start(until_ms: u64, epoch: i64) -> Vec<Action> {
    vec![Action::GuardedWork(true), Action::Guard(Order::Start { deadline: at(until_ms), epoch, leader: 3 })]
}

fn exited(how: ExitHow, by: StoppedBy) -> Report {
    Report::Exited { pid: 100, how, by }
}

#[test]
fn runs_while_active_renews_and_stops_when_inactive() {
    let mut s = sup(OnChildExit::Resign, false);
    assert_eq!(s.on_lease(LeaseState::Waiting { until: at(50) }, 2, at(0)), vec![]);
    assert_eq!(s.on_lease(active(1000), 2, at(50)), start(1000, 2));
    assert_eq!(s.on_report(Report::Started { pid: 100 }, at(51)), vec![]);
    assert_eq!(s.command_pid(), Some(100));
    assert_eq!(s.on_lease(active(1100), 2, at(100)), vec![Action::Guard(Order::Renew { deadline: at(1100) })]);
    assert_eq!(s.on_signal(1), vec![Action::Guard(Order::Signal(1))]);
    assert_eq!(s.on_lease(LeaseState::Inactive, 2, at(200)), vec![Action::Guard(Order::Stop)]);
    assert_eq!(s.on_lease(LeaseState::Inactive, 2, at(210)), vec![], "one stop");
    assert_eq!(s.on_report(exited(ExitHow::Signal(15), StoppedBy::Order), at(220)), vec![Action::GuardedWork(false)]);
    assert_eq!(s.on_signal(1), vec![], "nothing to signal");
    // Active again in a later epoch: a new command.
    assert_eq!(s.on_lease(active(3000), 3, at(2000)), start(3000, 3));
}

#[test]
fn a_command_that_exits_makes_the_leader_resign() {
    let mut s = sup(OnChildExit::Resign, false);
    s.on_lease(active(1000), 2, at(0));
    s.on_report(Report::Started { pid: 100 }, at(1));
    let out = s.on_report(exited(ExitHow::Code(1), StoppedBy::Itself), at(10));
    assert_eq!(out, vec![Action::GuardedWork(false), Action::Resign]);
    assert_eq!(s.on_lease(active(1100), 2, at(20)), vec![], "no restart while resigning");
    assert_eq!(s.on_lease(LeaseState::Inactive, 2, at(30)), vec![]);
    assert_eq!(s.on_lease(active(5000), 4, at(4000)), start(5000, 4), "leading again later runs it again");
}

#[test]
fn a_refused_resignation_is_asked_again_or_given_up_for_a_restart_here() {
    let mut s = sup(OnChildExit::Resign, false);
    s.on_lease(active(10_000), 2, at(0));
    s.on_report(Report::Started { pid: 100 }, at(1));
    assert_eq!(s.on_report(exited(ExitHow::Code(1), StoppedBy::Itself), at(10)).last(), Some(&Action::Resign));
    // A follower still joining: asked again after RESIGN_RETRY, not before.
    assert!(!s.retrying_resign());
    assert_eq!(s.on_resign_refused(true, at(11)), vec![]);
    assert!(s.retrying_resign());
    let again = at(11) + RESIGN_RETRY;
    assert_eq!(s.next_timer(), Some(again));
    assert_eq!(s.on_timer(at(12)), vec![]);
    assert_eq!(s.on_timer(again), vec![Action::Resign]);
    assert_eq!(s.on_lease(active(10_100), 2, at(300)), vec![], "no restart while resigning");
    // ZooKeeper servers in the ensemble: it can never hand over, so the command runs here again.
    assert_eq!(s.on_resign_refused(false, at(400)), vec![]);
    assert_eq!(s.next_timer(), Some(at(400) + BACKOFF_MIN));
    assert_eq!(s.on_timer(at(400) + BACKOFF_MIN), start(10_100, 2));
    // A resignation that went through: the lease ends, nothing is asked again.
    let mut s = sup(OnChildExit::Resign, false);
    s.on_lease(active(10_000), 2, at(0));
    s.on_report(Report::Started { pid: 100 }, at(1));
    s.on_report(exited(ExitHow::Code(1), StoppedBy::Itself), at(10));
    s.on_resign_refused(true, at(11));
    assert_eq!(s.on_lease(LeaseState::Inactive, 2, at(100)), vec![]);
    assert_eq!(s.next_timer(), None);
    assert_eq!(s.on_resign_refused(true, at(120)), vec![], "not leading: nothing to ask");
}

#[test]
fn restart_backs_off_and_resets_after_a_long_run() {
    let mut s = sup(OnChildExit::Restart, false);
    s.on_lease(active(100_000), 2, at(0));
    s.on_report(Report::Started { pid: 100 }, at(0));
    assert_eq!(s.on_report(exited(ExitHow::Code(1), StoppedBy::Itself), at(10)), vec![Action::GuardedWork(false)]);
    assert_eq!(s.next_timer(), Some(at(1010)));
    assert_eq!(s.on_timer(at(500)), vec![]);
    assert_eq!(s.on_lease(active(100_001), 2, at(600)), vec![], "renewals wait for the back-off");
    assert_eq!(s.on_timer(at(1010)), start(100_001, 2));
    s.on_report(Report::Started { pid: 101 }, at(1010));
    s.on_report(exited(ExitHow::Code(1), StoppedBy::Itself), at(1020));
    assert_eq!(s.next_timer(), Some(at(3020)), "doubled");
    assert_eq!(s.on_timer(at(3020)), start(100_001, 2));
    s.on_report(Report::Started { pid: 102 }, at(3020));
    s.on_report(exited(ExitHow::Code(1), StoppedBy::Itself), at(3020 + 61_000));
    assert_eq!(s.next_timer(), Some(at(3020 + 62_000)), "back to 1 s after running a minute");
}

#[test]
fn exit_policy_resigns_and_ends_with_code_4() {
    let mut s = sup(OnChildExit::Exit, false);
    s.on_lease(active(1000), 2, at(0));
    s.on_report(Report::Started { pid: 100 }, at(0));
    let out = s.on_report(exited(ExitHow::Code(7), StoppedBy::Itself), at(5));
    assert_eq!(
        out,
        vec![Action::GuardedWork(false), Action::Resign, Action::End(RunEnd::CommandExited(ExitHow::Code(7)))]
    );
    assert_eq!(RunEnd::CommandExited(ExitHow::Code(7)).exit_code(), 4);
}

#[test]
fn exit_on_loss_ends_with_code_3_once_the_command_is_gone() {
    let mut s = sup(OnChildExit::Resign, true);
    s.on_lease(active(1000), 2, at(0));
    s.on_report(Report::Started { pid: 100 }, at(0));
    assert_eq!(s.on_lease(LeaseState::Inactive, 2, at(800)), vec![Action::Guard(Order::Stop)]);
    let out = s.on_report(exited(ExitHow::Signal(15), StoppedBy::Order), at(810));
    assert_eq!(out, vec![Action::GuardedWork(false), Action::End(RunEnd::LeadershipLost)]);
    assert_eq!(RunEnd::LeadershipLost.exit_code(), 3);
    // A resignation on purpose is not a loss.
    let mut s = sup(OnChildExit::Resign, true);
    s.on_lease(active(1000), 2, at(0));
    s.on_report(Report::Started { pid: 100 }, at(0));
    s.on_report(exited(ExitHow::Code(0), StoppedBy::Itself), at(5));
    assert_eq!(s.on_lease(LeaseState::Inactive, 2, at(10)), vec![]);
}

#[test]
fn shutdown_resigns_stops_and_ends_with_code_0() {
    let mut s = sup(OnChildExit::Resign, false);
    s.on_lease(active(1000), 2, at(0));
    s.on_report(Report::Started { pid: 100 }, at(0));
    assert_eq!(s.on_shutdown(), vec![Action::Resign, Action::Guard(Order::Stop)]);
    assert_eq!(s.on_lease(LeaseState::Inactive, 2, at(5)), vec![]);
    let out = s.on_report(exited(ExitHow::Signal(15), StoppedBy::Order), at(6));
    assert_eq!(out, vec![Action::GuardedWork(false), Action::End(RunEnd::Stopped)]);
    assert_eq!(s.on_shutdown(), vec![], "ends once");
    // Not leading: nothing to resign, nothing to stop.
    let mut s = sup(OnChildExit::Resign, false);
    assert_eq!(s.on_shutdown(), vec![Action::End(RunEnd::Stopped)]);
}

#[test]
fn a_guard_stop_at_the_deadline_restarts_once_the_lease_is_back() {
    let mut s = sup(OnChildExit::Resign, false);
    s.on_lease(active(1000), 2, at(0));
    s.on_report(Report::Started { pid: 100 }, at(0));
    // The daemon was frozen: the guard stopped the command; the lease published before the freeze
    // says active, but it is over: nothing starts until the lease is confirmed again.
    let out = s.on_report(exited(ExitHow::Signal(15), StoppedBy::Deadline), at(1000));
    assert_eq!(out, vec![Action::GuardedWork(false)]);
    assert_eq!(s.on_lease(active(2000), 2, at(1100)), start(2000, 2));
    let mut s = sup(OnChildExit::Resign, false);
    s.on_lease(active(1000), 2, at(0));
    s.on_report(Report::Started { pid: 100 }, at(0));
    s.on_lease(LeaseState::Inactive, 2, at(900));
    assert_eq!(
        s.on_report(exited(ExitHow::Signal(15), StoppedBy::Deadline), at(1000)),
        vec![Action::GuardedWork(false)]
    );
}

#[test]
fn a_lease_that_ended_meanwhile_starts_nothing() {
    let mut s = sup(OnChildExit::Exit, false);
    assert_eq!(s.on_lease(active(1000), 2, at(950)), vec![], "within the grace period of its end");
    assert_eq!(s.on_lease(active(2000), 2, at(1000)), start(2000, 2));
    assert_eq!(s.on_report(Report::TooLate, at(1950)), vec![Action::GuardedWork(false)], "not a command failure");
    assert_eq!(s.on_lease(active(3000), 2, at(2000)), start(3000, 2));
}

#[test]
fn a_new_epoch_replaces_the_command() {
    let mut s = sup(OnChildExit::Resign, false);
    s.on_lease(active(1000), 2, at(0));
    s.on_report(Report::Started { pid: 100 }, at(0));
    assert_eq!(s.on_lease(active(2000), 3, at(500)), vec![Action::Guard(Order::Stop)]);
    let out = s.on_report(exited(ExitHow::Signal(15), StoppedBy::Order), at(510));
    assert_eq!(out, vec![Action::GuardedWork(false)].into_iter().chain(start(2000, 3)).collect::<Vec<_>>());
}

#[test]
fn a_start_failure_counts_as_an_exit() {
    let mut s = sup(OnChildExit::Exit, false);
    s.on_lease(active(1000), 2, at(0));
    let out = s.on_report(Report::StartFailed { reason: "no such file".into() }, at(1));
    assert_eq!(
        out,
        vec![Action::GuardedWork(false), Action::Resign, Action::End(RunEnd::CommandExited(ExitHow::Code(126)))]
    );
}
