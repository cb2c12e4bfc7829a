//! The controller's decisions on a scripted view: the first wave, small batches, the nearest
//! machine once known, silence and hedges, a false ceiling that gives way.

use super::*;
use crate::policy::testing::{fresh, ok, Loads};

fn start(n: u64, model: Option<&Calibration>) -> Box<dyn Binder> {
    let layout = Layout::documented();
    Controller
        .start(&StartInput {
            n,
            layout: &layout,
            forwarder_urls: &["http://f".to_string()],
            model,
            seed: 3,
            time_scale: Default::default(),
        })
        .unwrap()
}

/// Started from a cached picture: the test machines, one unit passing a job per 17 ms.
fn start_cached(n: u64) -> Box<dyn Binder> {
    let mut model = crate::calibrate::test_model(1, 17.0);
    model.forwarders[0].url = "http://f".into();
    start(n, Some(&model))
}

fn send(b: &mut Box<dyn Binder>, loads: &mut Loads, now: f64, id: u32) -> Option<Route> {
    match b.next(&loads.view(now, 1000), Some(&fresh(id))) {
        Decision::Send { route, .. } => {
            loads.book(route);
            Some(route)
        }
        _ => None,
    }
}

#[test]
fn with_nothing_known_the_first_wave_is_spread_evenly() {
    let mut b = start(1000, None);
    let mut loads = Loads::new(5, 1);
    let mut id = 0;
    while send(&mut b, &mut loads, 0.0, id).is_some() {
        id += 1;
    }
    assert_eq!(id, 5 * WAVE_MAX as u32);
    assert!(loads
        .machines
        .iter()
        .all(|m| m.in_flight == WAVE_MAX as u32));
}

#[test]
fn small_batches_are_sent_at_once() {
    let mut b = start(10, None);
    let mut loads = Loads::new(5, 1);
    let sent = (0..10)
        .filter(|&id| send(&mut b, &mut loads, 0.0, id).is_some())
        .count();
    assert_eq!(sent, 10);
    assert!(loads.machines.iter().all(|m| m.in_flight == 2));
}

/// Once machines have answered, the next jobs go to the one that answers soonest.
#[test]
fn after_the_first_answers_jobs_go_to_the_nearest_machine() {
    let mut b = start(1000, None);
    let mut loads = Loads::new(5, 1);
    let trips = [600.0, 590.0, 350.0, 400.0, 380.0];
    let mut routes = Vec::new();
    for id in 0..5 {
        routes.push(send(&mut b, &mut loads, 0.0, id).unwrap());
    }
    for (id, r) in routes.iter().enumerate() {
        let Target::Machine(m) = r.target else {
            panic!()
        };
        let t = trips[m as usize];
        loads.unbook(*r);
        b.observe(
            &loads.view(t + 13.0, 995),
            &ok(id as u32, *r, 0.0, t + 13.0, t as u64),
        );
    }
    let r = send(&mut b, &mut loads, 700.0, 10).unwrap();
    assert_eq!(r.target, Target::Machine(2));
}

/// One job to each machine at 0; every machine but 0 answers at `at` (`response_time` `rt`).
fn all_but_machine_0_answer(at: f64, rt: u64) -> (Box<dyn Binder>, Loads, Vec<(u32, Route)>) {
    let mut b = start(1000, None);
    let mut loads = Loads::new(5, 1);
    let mut sent: Vec<(u32, Route)> = Vec::new();
    for id in 0..5 {
        sent.push((id, send(&mut b, &mut loads, 0.0, id).unwrap()));
    }
    for &(id, r) in &sent {
        if r.target == Target::Machine(0) {
            continue;
        }
        loads.unbook(r);
        b.observe(&loads.view(at, 995), &ok(id, r, 0.0, at, rt));
    }
    (b, loads, sent)
}

#[test]
fn a_machine_silent_long_after_the_others_is_left_alone_and_its_jobs_are_hedged() {
    // Everyone but machine 0 answers at ~400 ms.
    let (mut b, loads, sent) = all_but_machine_0_answer(410.0, 400);
    // Much later, the next decision copies machine 0's job elsewhere.
    let stuck = sent
        .iter()
        .find(|(_, r)| r.target == Target::Machine(0))
        .unwrap()
        .0;
    match b.next(&loads.view(2000.0, 995), Some(&fresh(5))) {
        Decision::Hedge { job, route, .. } => {
            assert_eq!(job, stuck);
            assert_ne!(route.target, Target::Machine(0));
        }
        d => panic!("{d:?}"),
    }
}

/// Against a server answering in a fraction of a millisecond, a machine quiet for a few
/// milliseconds is a client thread waiting for a core, not a silent machine: no copies (a busy
/// two-core client once copied a tenth of a 400,000-request batch and ran at a third of its
/// speed). Quiet for longer than the wall-time floor, it is silent again.
#[test]
fn a_few_milliseconds_of_quiet_against_a_sub_millisecond_server_is_not_silence() {
    let (mut b, mut loads, _) = all_but_machine_0_answer(0.3, 0);
    // 5 ms later (over fifteen times the others' latency): still no copy.
    match b.next(&loads.view(5.0, 995), Some(&fresh(5))) {
        Decision::Hedge { .. } => panic!("a hedge after 5 ms of quiet"),
        Decision::Send { route, .. } => loads.book(route),
        Decision::Wait { .. } => {}
    }
    // A wall-time second later (time scale 1): silent.
    let hedged = (0..50).any(|k| {
        matches!(
            b.next(&loads.view(1000.0 + k as f64, 995), Some(&fresh(6 + k))),
            Decision::Hedge { .. }
        )
    });
    assert!(hedged, "machine 0 quiet for a second was never copied from");
}

/// Two units, one known to pass a job per 17 ms, the other not measured yet: the unknown one
/// is not taken for an empty one (it once drew every job until its own queue showed, and a
/// batch's end piled up at its stage while the machines starved).
#[test]
fn a_unit_with_no_ceiling_seen_yet_does_not_draw_every_job() {
    let mut model = crate::calibrate::test_model(1, 17.0);
    model.forwarders[0].url = "http://f".into();
    let layout = Layout::documented();
    let mut b = Controller
        .start(&StartInput {
            n: 5000,
            layout: &layout,
            forwarder_urls: &["http://f".to_string(), "http://g".to_string()],
            model: Some(&model),
            seed: 3,
            time_scale: Default::default(),
        })
        .unwrap();
    let mut loads = Loads::new(5, 2);
    let mut per_unit = [0u32; 2];
    for id in 0..40 {
        let r = send(&mut b, &mut loads, 0.0, id).expect("room for 40 jobs");
        per_unit[usize::from(r.forwarder)] += 1;
    }
    assert!(per_unit[0] >= 15, "{per_unit:?}");
}

/// A cached ceiling that is not there: the unit shows no queue, the window grows.
#[test]
fn a_window_from_a_false_ceiling_grows_when_the_unit_shows_no_queue() {
    let mut b = start_cached(5000);
    let mut loads = Loads::new(5, 1);
    let mut now = 0.0;
    let mut in_flight: VecDeque<(u32, Route, f64)> = VecDeque::new();
    let mut id = 0;
    let mut peak = 0;
    for _ in 0..4000 {
        while let Some(r) = send(&mut b, &mut loads, now, id) {
            in_flight.push_back((id, r, now));
            id += 1;
        }
        peak = peak.max(in_flight.len());
        // No unit ceiling: every job comes back 400 ms after its send, no queueing.
        let Some((j, r, sent)) = in_flight.pop_front() else {
            break;
        };
        now = now.max(sent + 400.0);
        loads.unbook(r);
        b.observe(&loads.view(now, 1000), &ok(j, r, sent, now, 399));
    }
    // The cached window was ~28 (59/s x 0.4 s + 4); the machines alone allow far more.
    assert!(peak > 60, "{peak}");
}

/// Sends at `now` until the controller holds back (with `n - id` jobs left in a batch of
/// `n`); returns how many it sent.
fn send_while_room(
    b: &mut Box<dyn Binder>,
    loads: &mut Loads,
    now: f64,
    id: &mut u32,
    n: u64,
) -> u32 {
    let before = *id;
    while u64::from(*id) < n {
        let Decision::Send { route, .. } =
            b.next(&loads.view(now, n - u64::from(*id)), Some(&fresh(*id)))
        else {
            break;
        };
        loads.book(route);
        *id += 1;
    }
    *id - before
}

/// Machines asleep: nothing comes back for seconds. The forwarding unit could pass jobs all
/// that time, so the first wave grows with the silence — doubling per second of it, up to each
/// machine's share — instead of leaving the unit idle until the machines wake (a batch of 800
/// over five sleeping machines once ran at 60 % of its bound that way).
#[test]
fn while_every_machine_is_silent_the_first_wave_grows_with_the_silence() {
    let mut b = start(800, None);
    let mut loads = Loads::new(5, 1);
    let mut id = 0;
    assert_eq!(send_while_room(&mut b, &mut loads, 0.0, &mut id, 800), 80);
    assert_eq!(send_while_room(&mut b, &mut loads, 10.0, &mut id, 800), 0);
    // One second of silence: twice the wave.
    assert_eq!(
        send_while_room(&mut b, &mut loads, 1000.0, &mut id, 800),
        80
    );
    // Ten seconds: each machine's share (80 % of the batch over five machines), no more.
    send_while_room(&mut b, &mut loads, 10_000.0, &mut id, 800);
    assert_eq!(id, 640);
    assert!(loads.machines.iter().all(|m| m.in_flight == 128));
}

/// The same with a cached picture (machines known, a unit passing one job per 17 ms): while
/// nothing comes back, the unit's window is what keeps its stage busy for the silence so far.
#[test]
fn while_every_machine_is_silent_a_known_units_window_grows_with_the_silence() {
    let mut b = start_cached(5000);
    let mut loads = Loads::new(5, 1);
    let mut id = 0;
    let first = send_while_room(&mut b, &mut loads, 0.0, &mut id, 5000);
    assert!(first < 60, "{first}");
    // Four seconds of silence: the stage could have passed 235 jobs by now.
    send_while_room(&mut b, &mut loads, 4000.0, &mut id, 5000);
    assert!(id >= 235, "{id}");
    // Once answers flow, silence is over: no more than before are sent at once.
    for m in 0..5u16 {
        let r = Route {
            forwarder: 0,
            target: Target::Machine(m),
        };
        loads.unbook(r);
        b.observe(
            &loads.view(4400.0, 5000),
            &ok(u32::from(m), r, 0.0, 4400.0, 400),
        );
    }
    let after = send_while_room(&mut b, &mut loads, 4401.0, &mut id, 5000);
    assert!(after <= 5, "{after}");
}

/// An answer as [`ok`] gives it, with the machine's `work_time`.
fn answered(job: u32, route: Route, sent: f64, end: f64, rt: u64, work: u64) -> Observation {
    let mut obs = ok(job, route, sent, end, rt);
    obs.result = Ok(crate::policy::Answered {
        response_time: rt,
        work_time: work,
    });
    obs
}

/// Machine 0 was asleep: its first wave waited three seconds for its boot, so every answer it
/// gave is three seconds long and its trip, read from them, is too. The others answer in 400 ms
/// (behind a queue at the unit) and still hold most of their first wave. Everything is sent: the
/// tail of a long queue is copied to machine 0, which the typical trip says would answer it
/// sooner. Believed, its own estimate would have kept it idle to the end (and gone into the
/// cache).
#[test]
fn an_idle_machine_known_only_from_answers_that_waited_takes_a_copy_of_the_tail() {
    let mut b = start(1000, None);
    let mut loads = Loads::new(5, 1);
    let mut out: Vec<(u32, Route)> = Vec::new();
    for id in 0..80 {
        out.push((id, send(&mut b, &mut loads, 0.0, id).unwrap()));
    }
    let mut answered_per_machine = [0u32; 5];
    for &(id, r) in &out {
        let Target::Machine(m) = r.target else {
            panic!()
        };
        let k = answered_per_machine[m as usize];
        let (end, rt) = match m {
            0 => (3000.0 + 10.0 * f64::from(k), 2990 + 10 * u64::from(k)),
            _ if k < 2 => (3100.0 + 100.0 * f64::from(k), 390 + 100 * u64::from(k)),
            _ => continue,
        };
        answered_per_machine[m as usize] += 1;
        loads.unbook(r);
        b.observe(&loads.view(end, 0), &answered(id, r, 0.0, end, rt, 100));
    }
    match b.next(&loads.view(3300.0, 0), None) {
        Decision::Hedge { job, route, .. } => {
            assert_eq!(route.target, Target::Machine(0));
            let donor = out.iter().find(|(id, _)| *id == job).unwrap().1.target;
            assert_ne!(donor, Target::Machine(0));
        }
        d => panic!("{d:?}"),
    }
}

/// The model's truth for a burst sent at 0: each unit passes its jobs one per `pass` ms in the
/// order they were sent through it; each machine serves them one at a time in the order they
/// arrive. When the last answer is back.
fn burst_makespan(model: &Calibration, routes: &[Route]) -> f64 {
    let pass = model.forwarders[0].service_ms;
    let overhead = model.forwarders[0].overhead_ms;
    let mut passed = vec![0u32; model.forwarders.len()];
    let mut arrivals: Vec<(f64, usize)> = routes
        .iter()
        .map(|r| {
            let f = r.forwarder as usize;
            passed[f] += 1;
            let Target::Machine(m) = r.target else {
                panic!("a machine target")
            };
            let m = m as usize;
            (
                f64::from(passed[f]) * pass + model.machines[m].latency_ms / 2.0,
                m,
            )
        })
        .collect();
    arrivals.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut free = vec![0.0f64; model.machines.len()];
    let mut end = 0.0f64;
    for (arrive, m) in arrivals {
        free[m] = arrive.max(free[m]) + model.machines[m].service_ms;
        end = end.max(free[m] + model.machines[m].latency_ms / 2.0 + overhead);
    }
    end
}

/// A batch that goes out at once through several units with a ceiling: each unit passes its
/// jobs in the order they were sent, so a far machine's job placed late ends the batch late.
/// Earliest completion placed the far machines only once the near ones had queued — in the
/// stages' last places — and a warm batch of 100 through five units ended ~8 % above its bound
/// (a bound/wall of 0.888 end to end). Best fit against the planned end gives the far machines
/// the first places and keeps the near ones for the end.
#[test]
fn at_a_batchs_end_far_machines_take_the_stages_first_places() {
    let k = 5;
    let model = crate::calibrate::test_model(k, 17.0);
    let urls: Vec<String> = model.forwarders.iter().map(|f| f.url.clone()).collect();
    let layout = Layout::documented();
    let mut b = Controller
        .start(&StartInput {
            n: 100,
            layout: &layout,
            forwarder_urls: &urls,
            model: Some(&model),
            seed: 3,
            time_scale: Default::default(),
        })
        .unwrap();
    let mut loads = Loads::new(5, k);
    let routes: Vec<Route> = send_held(&mut b, &mut loads, 100)
        .into_iter()
        .map(|s| s.1)
        .collect();
    assert!(
        matches!(routes[0].target, Target::Machine(0 | 1)),
        "the first place goes to a far machine: {:?}",
        routes[0]
    );
    let makespan = burst_makespan(&model, &routes);
    let bound = crate::bound::lower_bound(100, &model).lower_bound_ms;
    assert!(
        makespan <= 1.03 * bound,
        "makespan {makespan:.0} ms against a bound of {bound:.0} ms"
    );
}

/// Sends a batch of `n` from 0 on with nothing answered, each job when the controller lets it
/// go (advancing to the end of each hold): (when, route) in send order.
fn send_held(b: &mut Box<dyn Binder>, loads: &mut Loads, n: u32) -> Vec<(f64, Route)> {
    let mut sent = Vec::new();
    let mut now = 0.0;
    for id in 0..n {
        loop {
            match b.next(&loads.view(now, u64::from(n - id)), Some(&fresh(id))) {
                Decision::Send { route, .. } => {
                    loads.book(route);
                    sent.push((now, route));
                    break;
                }
                Decision::Wait {
                    until_ms: Some(t), ..
                } if t > now => now = t,
                other => panic!("job {id} neither sent nor held: {other:?}"),
            }
        }
    }
    sent
}

/// Under best fit the plan rests on the order the stage sees, and a burst sent at once reaches
/// it in whatever order connections and threads get there (ten jobs sent within 5 ms once
/// passed up to five places out of order, and a batch of 10 ended ~60 ms late). So the jobs go
/// out half a pass apart: in order, and twice as fast as the stage passes them, so it never
/// waits for one and a ceiling that is gone still shows in the answers' spacing.
#[test]
fn under_best_fit_a_burst_goes_out_half_a_pass_apart() {
    let mut b = start_cached(10);
    let mut loads = Loads::new(5, 1);
    let sent = send_held(&mut b, &mut loads, 10);
    let pass = 17.0;
    for (i, w) in sent.windows(2).enumerate() {
        let gap = w[1].0 - w[0].0;
        assert!(
            (pass / 2.0 - 1e-6..pass).contains(&gap),
            "jobs {i} and {} sent {gap:.1} ms apart",
            i + 1
        );
    }
    // Every job is out before the stage could have passed the ones before it.
    let (last, _) = sent[9];
    assert!(last < 9.0 * pass, "the last job sent at {last:.0} ms");
}

/// Sends what `b` sends at 0, then answers it as machines asleep would: after a 10 s boot, one
/// per 20 ms, each job queued later into the boot quicker than the one before (none of them
/// measures a trip). Machines in `awake` answer at once instead: 400 ms, 20 ms more per job
/// ahead. Returns how many jobs each machine had.
fn answer_after_a_boot(b: &mut Box<dyn Binder>, awake: &[usize]) -> Vec<usize> {
    let mut loads = Loads::new(5, 1);
    let mut per_machine: Vec<Vec<(u32, Route)>> = vec![Vec::new(); 5];
    let mut id = 0;
    while let Some(r) = send(b, &mut loads, 0.0, id) {
        let Target::Machine(m) = r.target else {
            panic!("{r:?}")
        };
        per_machine[m as usize].push((id, r));
        id += 1;
    }
    for (m, jobs) in per_machine.iter().enumerate() {
        for (k, &(job, r)) in jobs.iter().enumerate() {
            let k = k as f64;
            let (end, rt) = if awake.contains(&m) {
                (400.0 + 20.0 * k, 400.0 + 20.0 * k)
            } else {
                (10_500.0 + 20.0 * k, 10_500.0 - 400.0 * k)
            };
            loads.unbook(r);
            b.observe(&loads.view(end, 1000), &ok(job, r, 0.0, end, rt as u64));
        }
    }
    per_machine.iter().map(Vec::len).collect()
}

/// Machines asleep at the start: the first wave waits for the boot, then drains, and each job
/// queued later into the boot comes back quicker than the one before. None of those answers
/// measured a trip (each waited), so the quickest of them is passed on as an upper bound, not
/// as the machine's trip. Machine 4 was awake: its first job, sent alone, came back quickest,
/// and its trip is measured.
#[test]
fn a_trip_read_only_from_answers_that_waited_is_passed_on_as_an_upper_bound() {
    let mut b = start(1000, None);
    let jobs = answer_after_a_boot(&mut b, &[4]);
    assert!(jobs.iter().all(|&j| j >= 2), "{jobs:?}");
    let learned = b.learned().unwrap();
    for (m, e) in learned.machines.iter().enumerate() {
        if m == 4 {
            assert!(e.trip_measured, "{e:?}");
        } else {
            assert!(!e.trip_measured, "{e:?}");
            assert!(e.latency_ms > 4000.0, "{e:?}");
        }
    }
    // A run started from it learns those trips anew, as if never seen: its first wave goes to
    // every machine.
    let mut next = start(1000, Some(&learned));
    let mut loads = Loads::new(5, 1);
    let mut id = 0;
    while send(&mut next, &mut loads, 0.0, id).is_some() && id < 100 {
        id += 1;
    }
    assert!(
        loads.machines[..4].iter().all(|m| m.in_flight > 0),
        "{:?}",
        loads.machines
    );
}

/// The same boot, in a run started from trips an earlier run measured: answers that all waited
/// do not replace a trip they do not contradict.
#[test]
fn a_trip_measured_earlier_stands_against_answers_that_all_waited() {
    let mut b = start_cached(1000);
    let jobs = answer_after_a_boot(&mut b, &[]);
    let learned = b.learned().unwrap();
    let earlier = crate::calibrate::test_model(1, 17.0);
    for (m, e) in learned.machines.iter().enumerate() {
        if jobs[m] < 2 {
            continue; // one job alone into a boot cannot tell
        }
        assert!(e.trip_measured, "{e:?}");
        let was = earlier.machines[m].latency_ms + earlier.machines[m].service_ms;
        assert!(
            (e.latency_ms + e.service_ms - was).abs() < 1.0,
            "{e:?} vs {was}"
        );
    }
    assert!(jobs.iter().filter(|&&j| j >= 2).count() >= 2, "{jobs:?}");
}
