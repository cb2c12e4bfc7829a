//! How an attempt ends: the answer or failure is booked, health and the binder learn of it,
//! and the job either ends with its one [`Outcome`] or waits for another attempt. Stopping
//! (Ctrl-C, SIGTERM) and losing every forwarding unit end the jobs still waiting here too.

use super::health::{self, UnitChange, UnitState};
use super::{Attempt, Engine, State, BATCH};
use crate::endpoint::WorkAnswer;
use crate::outcome::{Failure, NotSent, Outcome, OutcomeKind};
use crate::policy::{Answered, Observation, View};
use std::time::Instant;

impl Engine {
    /// The result of one attempt: bookkeeping, health, the binder's observation, and the job's
    /// fate (an outcome, or another attempt).
    pub(super) fn finish(
        &self,
        st: &mut State,
        a: Attempt,
        sent: f64,
        end: f64,
        result: Result<WorkAnswer, Failure>,
    ) {
        let f = usize::from(a.route.forwarder);
        st.forwarders[f].in_flight = st.forwarders[f].in_flight.saturating_sub(1);
        if let Some(m) = a.bound {
            st.machines[m].in_flight = st.machines[m].in_flight.saturating_sub(1);
        }
        // An answer naming a machine that is not in the system is not an answer from it.
        let result = result.and_then(|ans| {
            let m = ans
                .machine_index()
                .and_then(|i| self.cfg.layout.machine_index(&ans.region, i))
                .ok_or(Failure::BadResponse)?;
            Ok((m, ans))
        });
        let now = Instant::now();
        let connect_failed = matches!(result, Err(Failure::Connect));
        match st.unit_health[f].record(connect_failed, now) {
            UnitChange::Lost => st.report.forwarders_lost.push(f),
            UnitChange::Recovered => {
                st.report.forwarders_lost.retain(|&x| x != f);
            }
            UnitChange::None | UnitChange::Suspended => {}
        }
        st.forwarders[f].usable = st.unit_health[f].usable(st.forwarders[f].in_flight);
        let mut ejected_now = false;
        match &result {
            Ok((m, _)) => st.machine_health[*m].record_ok(),
            Err(Failure::Connect) => {}
            Err(_) => {
                if let Some(m) = a.bound {
                    let wall = self.cfg.time_scale.to_wall(self.cfg.eject_ms);
                    if health::record_machine_failure(
                        &mut st.machine_health,
                        m,
                        self.cfg.eject_after,
                        wall,
                        now,
                    ) {
                        st.machines[m].ejected = true;
                        st.report.ejections += 1;
                        ejected_now = true;
                    }
                }
            }
        }
        let superseded = st.alive.get(&a.id).is_none_or(|j| j.done);
        let obs = Observation {
            job: a.id,
            route: a.route,
            machine: result.as_ref().ok().map(|(m, _)| *m).or(a.bound),
            sent_ms: sent,
            end_ms: end,
            result: match &result {
                Ok((_, ans)) => Ok(Answered {
                    response_time: ans.response_time,
                    work_time: ans.work_time,
                }),
                Err(f) => Err(*f),
            },
            superseded,
        };
        let unissued = self.cfg.n - st.next_id;
        let alive = st.alive.len();
        {
            let view = View {
                now_ms: end,
                machines: &st.machines,
                forwarders: &st.forwarders,
                unissued,
                alive,
            };
            if let Some(b) = st.binder.as_mut() {
                b.observe(&view, &obs);
            }
        }
        let Some(job) = st.alive.get_mut(&a.id) else {
            return;
        };
        job.in_flight = job.in_flight.saturating_sub(1);
        if job.done {
            if job.in_flight == 0 {
                st.alive.remove(&a.id);
            }
            return;
        }
        let outcome = |kind, machine: Option<usize>, ans: Option<&WorkAnswer>, start| Outcome {
            id: a.id,
            forwarder: Some(a.route.forwarder),
            target: a.route.target,
            machine: machine.map(|m| m as u16),
            attempts: 0,
            kind,
            start_ms: start,
            sent_ms: sent,
            end_ms: end,
            response_time: ans.map(|x| x.response_time),
            work_time: ans.map(|x| x.work_time),
        };
        match result {
            Ok((m, ans)) => {
                job.done = true;
                if a.hedge {
                    st.report.hedges_won += 1;
                }
                let mut o = outcome(OutcomeKind::Ok, Some(m), Some(&ans), job.start_ms);
                o.attempts = job.attempts;
                if job.in_flight == 0 {
                    st.alive.remove(&a.id);
                }
                self.ended(st, o);
            }
            Err(failure) => {
                job.last_failure = Some(failure);
                if job.in_flight > 0 {
                    // Its other copy may still answer.
                    return;
                }
                let unit_out =
                    failure == Failure::Connect && st.unit_health[f].state != UnitState::Up;
                let moved = (unit_out && st.unit_health.iter().any(|u| u.state != UnitState::Lost))
                    || ejected_now
                    || a.bound.is_some_and(|m| st.machines[m].ejected);
                if !moved {
                    job.counted += 1;
                }
                let room = job.counted < self.cfg.max_attempts
                    && usize::from(job.attempts)
                        < usize::from(self.cfg.max_attempts)
                            + st.forwarders.len()
                            + st.machines.len();
                let retry = failure.retriable() && !st.stopping && room;
                let retry = retry
                    && (moved || {
                        if st.retries_left > 0 {
                            st.retries_left -= 1;
                            st.report.retries += 1;
                            true
                        } else {
                            false
                        }
                    });
                if retry {
                    if moved {
                        st.report.moves += 1;
                    }
                    job.avoid = a.bound.or(obs.machine);
                    st.retries.push_back(a.id);
                    return;
                }
                let mut o = outcome(OutcomeKind::Failed(failure), None, None, job.start_ms);
                o.attempts = job.attempts;
                st.alive.remove(&a.id);
                self.ended(st, o);
            }
        }
    }

    fn ended(&self, st: &mut State, o: Outcome) {
        st.ended += 1;
        if st.out.is_empty() {
            st.out_since = Some(Instant::now());
            st.out.reserve(BATCH);
        }
        st.out.push(o);
        if st.ended >= self.cfg.n {
            self.changed.notify_all();
        }
    }

    /// Ctrl-C: no new attempts; jobs waiting for a retry end with their last failure, jobs never
    /// sent are recorded as cancelled.
    pub(super) fn stop(&self, st: &mut State) {
        st.stopping = true;
        let now = self.now_ms();
        let mut ended = Vec::new();
        while let Some(id) = st.retries.pop_front() {
            if let Some(a) = st.alive.remove(&id) {
                let kind = a
                    .last_failure
                    .map_or(OutcomeKind::Cancelled, OutcomeKind::Failed);
                let mut o = Outcome::unsent(id, kind, now);
                o.attempts = a.attempts;
                o.start_ms = a.start_ms;
                o.forwarder = a.last_route.map(|r| r.forwarder);
                if let Some(r) = a.last_route {
                    o.target = r.target;
                }
                ended.push(o);
            }
        }
        for o in ended {
            self.ended(st, o);
        }
        self.fail_unissued(st, OutcomeKind::Cancelled);
        self.changed.notify_all();
    }

    /// Jobs never issued end now, as one range.
    pub(super) fn fail_unissued(&self, st: &mut State, kind: OutcomeKind) {
        let count = self.cfg.n - st.next_id;
        if count == 0 {
            return;
        }
        st.report.not_sent = Some(NotSent {
            from_id: st.next_id,
            count,
            kind,
        });
        st.next_id = self.cfg.n;
        st.ended += count;
    }

    /// Every forwarding unit is lost: whatever waits for an attempt fails now.
    pub(super) fn fail_everything_waiting(&self, st: &mut State, failure: Failure) {
        let now = self.now_ms();
        let mut ended = Vec::new();
        while let Some(id) = st.retries.pop_front() {
            if let Some(a) = st.alive.remove(&id) {
                let mut o = Outcome::unsent(
                    id,
                    OutcomeKind::Failed(a.last_failure.unwrap_or(failure)),
                    now,
                );
                o.attempts = a.attempts;
                o.start_ms = a.start_ms;
                o.forwarder = a.last_route.map(|r| r.forwarder);
                ended.push(o);
            }
        }
        for o in ended {
            self.ended(st, o);
        }
        self.fail_unissued(st, OutcomeKind::Failed(failure));
        self.changed.notify_all();
    }
}
