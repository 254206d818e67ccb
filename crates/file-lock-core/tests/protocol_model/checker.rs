//! The explicit-state checker: breadth-first exploration of the reachable
//! graph, the properties over it, and traces to print.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::{BuildHasherDefault, Hasher};
use std::time::Instant;

use crate::model::{raw_successors, Pc, Protocol, State, User, CRASHES};

/// FxHash: std's SipHash makes the whole run about three times slower in a debug build.
#[derive(Default)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        bytes.iter().for_each(|&b| self.write_usize(b as usize));
    }
    fn write_u8(&mut self, i: u8) {
        self.write_usize(i as usize);
    }
    fn write_usize(&mut self, i: usize) {
        self.0 = (self.0.rotate_left(5) ^ i as u64).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    fn finish(&self) -> u64 {
        self.0.rotate_left(26)
    }
}

/// The reachable graph, in BFS order (so parent pointers give shortest traces).
pub struct Graph {
    pub states: Vec<State>,
    parent: Vec<u32>,
    /// Predecessors by a process's own step or the environment's. Crash edges
    /// are left out: survivors must get on without anyone else dying.
    pred: Vec<Vec<u32>>,
    transitions: usize,
}

fn explore(init: State, proto: &Protocol) -> Graph {
    let mut index: HashMap<State, u32, BuildHasherDefault<FxHasher>> = HashMap::default();
    index.insert(init, 0);
    let (mut states, mut parent, mut pred) = (vec![init], vec![0], vec![vec![]]);
    let (mut next, mut transitions) = (0, 0);
    while next < states.len() {
        for (label, mut t) in raw_successors(&states[next], proto) {
            t.canonicalise();
            let id = *index.entry(t).or_insert_with(|| {
                states.push(t);
                parent.push(next as u32);
                pred.push(vec![]);
                (states.len() - 1) as u32
            });
            if label.1 != CRASHES {
                pred[id as usize].push(next as u32);
            }
            transitions += 1;
        }
        next += 1;
    }
    Graph {
        states,
        parent,
        pred,
        transitions,
    }
}

/// A check's outcome: per property, the shortest trace violating it.
pub struct Report {
    pub title: String,
    pub exclusion: Option<String>,
    pub unlinked_holder: Option<String>,
    pub stuck: Option<String>,
    pub graph: Graph,
    proto: Protocol,
}

impl Report {
    pub fn passes_all(&self) -> bool {
        self.exclusion.is_none() && self.unlinked_holder.is_none() && self.stuck.is_none()
    }

    /// The shortest trace to a state where `pred` holds, if any.
    pub fn find(&self, pred: impl Fn(&State) -> bool) -> Option<String> {
        let i = self.graph.states.iter().position(pred)?;
        Some(render_trace(&self.graph, i, &self.proto))
    }

    pub fn explain(&self) -> String {
        let mut s = format!("{}\n", self.title);
        let verdicts = [
            ("exclusive holder alone", &self.exclusion),
            ("holder's file still at P", &self.unlinked_holder),
            ("crashed holder's lock eventually free (AG EF)", &self.stuck),
        ];
        for (name, found) in verdicts {
            match found {
                None => writeln!(s, "  {name}: holds").unwrap(),
                Some(trace) => writeln!(s, "  {name}: VIOLATED, shortest trace:\n{trace}").unwrap(),
            }
        }
        s
    }
}

pub fn check(proto: &Protocol, users: &[User], acquisitions: u8) -> Report {
    let started = Instant::now();
    let g = explore(State::initial(users, acquisitions), proto);
    let first = |pred: &dyn Fn(&State) -> bool| g.states.iter().position(pred);
    let trace = |i: usize| render_trace(&g, i, proto);
    let exclusion = first(&|s| s.exclusion_broken()).map(trace);
    let unlinked_holder = first(&|s| s.unlinked_holder()).map(trace);

    // AG EF goal: walk non-crash predecessor edges back from every goal state.
    let mut reaches_goal: Vec<bool> = g.states.iter().map(State::goal).collect();
    let mut work: Vec<usize> = (0..g.states.len()).filter(|&i| reaches_goal[i]).collect();
    while let Some(to) = work.pop() {
        for &from in &g.pred[to] {
            if !std::mem::replace(&mut reaches_goal[from as usize], true) {
                work.push(from as usize);
            }
        }
    }
    let stuck = reaches_goal.iter().position(|&ok| !ok).map(trace);

    let names: Vec<String> = users.iter().map(|u| format!("{u:?}")).collect();
    let (names, elapsed, n) = (names.join(", "), started.elapsed(), g.states.len());
    let report = Report {
        title: format!(
            "{} {{{names}}} x{acquisitions} acquisitions ({elapsed:.1?}): {n} states, {} \
             transitions",
            proto.name, g.transitions
        ),
        exclusion,
        unlinked_holder,
        stuck,
        graph: g,
        proto: *proto,
    };
    eprintln!("{}", report.explain());
    report
}

fn render_trace(g: &Graph, target: usize, proto: &Protocol) -> String {
    let back = |&i: &usize| (i != 0).then(|| g.parent[i] as usize);
    let mut path: Vec<usize> = std::iter::successors(Some(target), back).collect();
    path.reverse();
    // Canonical numbers change from state to state: print each file under the
    // number it got when created, following the renumbering step by step.
    let mut names: Vec<u8> = (0..g.states[0].n_inodes).collect();
    let mut fresh = names.len() as u8;
    let state = describe(&g.states[0], &names);
    let mut out = format!("     0. {:<62} | {state}\n", "start");
    for (k, w) in path.windows(2).enumerate() {
        let (from, to) = (&g.states[w[0]], &g.states[w[1]]);
        let canonical = |t: &State| {
            let mut t = *t;
            t.canonicalise();
            t == *to
        };
        let (label, mut raw) = raw_successors(from, proto)
            .into_iter()
            .find(|(_, t)| canonical(t))
            .expect("a parent's successor");
        while names.len() < raw.n_inodes as usize {
            names.push(fresh);
            fresh += 1;
        }
        let map = raw.canonicalise();
        let mut renamed = vec![0; to.n_inodes as usize];
        for (before, &after) in map.iter().enumerate().take(names.len()) {
            if after != u8::MAX {
                renamed[after as usize] = names[before];
            }
        }
        names = renamed;
        let who = label.0.map_or("-- ".to_string(), |p| format!("p{p} "));
        let step = format!("{who}{}{}", label.1, label.2);
        let state = describe(to, &names);
        writeln!(out, "    {:>2}. {step:<62} | {state}", k + 1).unwrap();
    }
    out
}

/// One line: P, the files, the guard, then each process.
fn describe(s: &State, names: &[u8]) -> String {
    let name = |i: u8| names[i as usize];
    let mut out = match s.link {
        Some(i) => format!("P=#{}", name(i)),
        None => "P=-".to_string(),
    };
    for i in 0..s.n_inodes {
        let content = format!("{:?}", s.content(i)).replace('(', "(p");
        write!(out, " #{}:{content}", name(i)).unwrap();
    }
    if let Some(g) = s.guard {
        write!(out, " guard:p{g}").unwrap();
    }
    for (p, pr) in s.procs[..s.n_procs as usize].iter().enumerate() {
        // A finished process's memory is forgotten, its kind too.
        let who = match (pr.pc, pr.strategy as usize, pr.shared) {
            (Pc::Done, ..) => "",
            (_, 0, true) => "os-sh ",
            (_, 0, false) => "os ",
            _ => "lf ",
        };
        write!(out, " | p{p} {who}{:?}", pr.pc).unwrap();
        if let Some(h) = pr.handle {
            let flock = ["", "+sh", "+ex"][pr.lock as usize];
            write!(out, " h#{}{flock}", name(h)).unwrap();
        }
    }
    out
}
